"""The privacy/utility report as one self-contained HTML page with plots, for people who sign the data off.

Pure logic: no Dagster here. `render_html_report` turns the dict of `report.build_report` (plus the training and
synthetic rows, for the per-column plots) into a single HTML file: inline CSS, every plot a base64 PNG drawn by
matplotlib's Agg canvas, no external URL and no JavaScript library (one inline script of a few lines records
which images the browser decoded, for the tests). Every text that comes from the data (column names, categories,
run ids) is HTML-escaped. `headline_png` is the small verdict plot shown in Dagster's metadata.

Figures are `matplotlib.figure.Figure` objects drawn straight to PNG, never registered with pyplot, so nothing
stays open after a render; the plots are binned with numpy, raw rows are never plotted.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib import dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from synth_platform.evaluation.distances import MISSING, as_category
from synth_platform.evaluation.thresholds import AT_LEAST, direction_of

REAL_COLOUR = "#1f77b4"
SYNTHETIC_COLOUR = "#ff7f0e"
PASS_COLOUR = "#2e7d32"
FAIL_COLOUR = "#c62828"
DPI = 80
TOP_CATEGORIES = 12
NUMERIC_BINS = 40
MAX_HEATMAP_COLUMNS = 24
MAX_ANNOTATED_COLUMNS = 16
WORST_PAIRS = 12
LABEL_CHARS = 26

# What each judged metric means and which direction is good, in the words of the report's reader.
JUDGED = {
    "ks_mean": ("Numeric columns: distribution gap",
                "Mean Kolmogorov–Smirnov distance between real and synthetic values of each numeric or date column "
                "(0 = identical distributions, 1 = no overlap). Lower is better."),
    "correlation_delta": ("Numeric columns: correlations kept",
                          "Mean absolute difference of the Pearson correlations of numeric column pairs "
                          "(0 = same relationships). Lower is better."),
    "membership_inference_auc": ("Privacy: membership attack",
                                 "How well an attacker who holds the synthetic table can tell patients in the training "
                                 "data from patients outside it (0.5 = pure guessing, 1 = always right). Lower is "
                                 "better; 0.5 is the ideal."),
    "exact_copy_rate": ("Privacy: copied rows",
                        "Share of synthetic rows identical to a real training row. Lower is better."),
    "detection_auc": ("Fidelity: real or synthetic?",
                      "How well a classifier (cross-validated gradient boosting) tells synthetic rows from real ones "
                      "(0.5 = it cannot, 1 = every synthetic row is recognisable). Lower is better; 0.5 is the ideal."),
    "tstr_ratio": ("Fidelity: useful for prediction",
                   "Holdout score of a model trained on synthetic rows divided by that of the same model trained on the "
                   "real training rows (1 = as useful as the real rows). Higher is better."),
}


def _at_least(verdict: dict) -> bool:
    return (verdict.get("direction") or direction_of(verdict.get("metric", ""))) == AT_LEAST


def _relation(verdict: dict) -> str:
    """The sign between value and threshold as the verdict has it: ≤ / > (at most), ≥ / < (at least)."""
    if _at_least(verdict):
        return "≥" if verdict["passed"] else "<"
    return "≤" if verdict["passed"] else ">"


def _limit_sign(verdict: dict) -> str:
    return "≥" if _at_least(verdict) else "≤"


def _warns(verdict: dict) -> bool:
    """A failed verdict that blocks nothing (a fidelity check while fidelity_checks_blocking is off)."""
    return not verdict["passed"] and not verdict.get("blocking", True)

# The other metrics: one line each, and which direction is good.
OTHER_METRICS = {
    "tvd_mean": ("Mean total variation distance of the category shares of each categorical column (missing values a "
                 "category of their own).", "lower; 0 = same shares"),
    "association_delta": ("Mean |Cramér's V real − synthetic| over column pairs with a categorical column: how well "
                          "relationships involving categories are kept.", "lower; 0 = same strength of association"),
    "contingency_similarity_mean": ("Mean similarity of the joint distribution of those pairs (1 − total variation "
                                    "distance of their cross-tabulation).", "higher; 1 = identical cross-tabulations"),
    "detection_auc": ("How well a classifier tells synthetic rows from real rows (cross-validated).",
                      "closer to 0.5; 1 = every synthetic row is recognisable"),
    "holdout_exact_copy_rate": ("Share of holdout rows (real rows the generator never saw) that equal a training row: "
                                "the natural level of duplicates in this data.", "baseline for the copied-rows check"),
    "dcr_synthetic_to_training_median": ("Median distance of a synthetic row to its closest training row (0 = a copy, "
                                         "1 = different in every column).", "not much below the holdout median"),
    "dcr_synthetic_to_holdout_median": ("Median distance of a synthetic row to its closest holdout row.",
                                        "baseline for the line above"),
    "dcr_share": ("Share of synthetic rows closer to the training rows than to an equally large set of holdout rows.",
                  "about 0.5; well above 0.5 means training rows are being reproduced"),
    "dcr_overfitting_protection": ("SDMetrics' DCR overfitting protection, derived from the share above.",
                                   "higher; 1 = no sign of overfitting"),
    "nndr_synthetic_median": ("Median ratio of the distances of a synthetic row to its closest and second-closest "
                              "training rows; a low ratio marks a row sitting on one real record.",
                              "close to the holdout baseline; lower is riskier"),
    "nndr_holdout_median": ("The same ratio for holdout rows.", "baseline for the line above"),
    "density_ratio_membership_auc": ("A second membership attack (DOMIAS-style density ratio) that looks for places "
                                     "where synthetic rows are denser than real data predicts.",
                                     "lower; 0.5 = pure guessing"),
    "tstr_score": ("Prediction score of a model trained on synthetic rows and tested on the real holdout.",
                   "higher; close to the score trained on real rows"),
    "trtr_score": ("Prediction score of the same model trained on the real training rows: the ceiling.",
                   "reference for the line above"),
    "singling_out_risk": ("Re-identification (Giomi et al. 2023): how much more often predicates read off the synthetic "
                          "rows single out exactly one training person than one holdout person.",
                          "lower; 0 = no more than for people the generator never saw"),
    "linkability_risk": ("Re-identification: how much more often two halves of a training person's quasi-identifiers "
                         "lead to the same synthetic row than a holdout person's.", "lower; 0 = no linkage"),
    "inference_risk": ("Re-identification: how much more often a training person's secret column is guessed from "
                       "their quasi-identifiers via the nearest synthetic row than a holdout person's.",
                       "lower; 0 = nothing learnt about training people"),
}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1180px;
padding:1.2rem 1.5rem 3rem;color:#1d1d1f;line-height:1.45}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.headline{border-radius:8px;padding:1rem 1.3rem;margin-bottom:1rem}
.headline.green{background:#e8f5e9;border:2px solid #2e7d32}.headline.red{background:#ffebee;border:2px solid #c62828}
.headline p{margin:.3rem 0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{border:1px solid #ddd;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f4f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.pass{color:#2e7d32;font-weight:600}td.fail{color:#c62828;font-weight:700}td.warn{color:#b26a00}
.explain{color:#444;font-size:.93rem;max-width:60rem}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:.8rem}
figure{margin:0;border:1px solid #eee;border-radius:6px;padding:.3rem;background:#fff}
figure img,.wide img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:.82rem;color:#555;padding:.2rem .3rem}
.legend-real{color:#1f77b4;font-weight:600}.legend-synthetic{color:#ff7f0e;font-weight:600}
dl.context{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;font-size:.9rem}dl.context dt{color:#555}
dl.context dd{margin:0}
footer{margin-top:2.5rem;font-size:.82rem;color:#666}
"""

# Records which images the browser decoded (data-images-loaded, data-loaded-plots on <body>): checked in the tests.
LOAD_SCRIPT = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (img) { return img.complete && img.naturalWidth > 0; });
  document.body.dataset.imagesTotal = String(images.length);
  document.body.dataset.imagesLoaded = String(loaded.length);
  document.body.dataset.loadedPlots = loaded.map(function (img) { return img.dataset.plot; }).join(" ");
});
</script>"""


# ---------------------------------------------------------------------------------------------------------------
# Small helpers


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return f"{float(value):.{digits}f}"


def _plain(text: Any, limit: int | None = None) -> str:
    """Text for matplotlib: shortened, and with `$` escaped so data never switches on mathtext."""
    text = str(text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _text_inches(characters: int, fontsize: float) -> float:
    """Rough width of a line of text (DejaVu Sans averages about 0.6 em per character)."""
    return characters * fontsize * 0.6 / 72


def _figure(width: float, height: float, *, left: float = 0.6, right: float = 0.15, bottom: float = 0.5,
            top: float = 0.55, dpi: int = DPI, **spacing: float) -> Figure:
    """A figure with fixed margins in inches: no layout engine, which would draw every figure twice."""
    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=min(left / width, 0.7), right=1 - right / width, bottom=min(bottom / height, 0.7),
                           top=max(1 - top / height, 0.3), **spacing)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=figure.dpi, pil_kwargs={"compress_level": 1})  # flat colours: small anyway
    finally:
        figure.clear()  # a Figure not made by pyplot is freed with its last reference; clear drops its artists now
    return buffer.getvalue()


def _img(png: bytes, plot: str, alt: str, **attributes: str) -> str:
    extra = "".join(f' data-{_e(k)}="{_e(v)}"' for k, v in attributes.items())
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img data-plot="{_e(plot)}"{extra} alt="{_e(alt)}" src="data:image/png;base64,{encoded}">'


def _seconds(series: pd.Series, kind: str) -> np.ndarray:
    """A numeric or datetime column as finite floats (datetimes as seconds since 1970 UTC) with NaN for missing."""
    if kind == "datetime":
        stamps = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601") \
            if not pd.api.types.is_datetime64_any_dtype(series.dtype) else series
        if getattr(stamps.dt, "tz", None) is None:
            stamps = stamps.dt.tz_localize("UTC")
        values = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    values[~np.isfinite(values)] = np.nan
    return values


def _missing_share(values: np.ndarray) -> float:
    return float(np.isnan(values).mean()) if len(values) else 0.0


def _verdict_interval(report: dict, verdict: dict) -> list[float] | None:
    interval = verdict.get("interval") or (report.get("intervals") or {}).get(verdict.get("metric"))
    return [float(interval[0]), float(interval[1])] if interval else None


# ---------------------------------------------------------------------------------------------------------------
# Plots


def headline_png(report: dict) -> bytes:
    """The judged metrics as horizontal bars (green pass, red fail) with their 95% intervals as error bars and
    their thresholds as vertical lines; one row per check, each on its own scale. A small PNG."""
    verdicts = list((report.get("verdicts") or {}).values())
    labels = [_plain(JUDGED.get(v["metric"], (v["metric"],))[0], 34) for v in verdicts]
    left = 0.25 + _text_inches(max((len(label) for label in labels), default=10), 9)
    figure = _figure(left + 6.0, 0.75 + 0.62 * max(len(verdicts), 1), left=left, right=2.3, bottom=0.3, top=0.35,
                     dpi=96, hspace=0.9)
    if not verdicts:
        axes = figure.add_subplot()
        axes.axis("off")
        axes.text(0.5, 0.5, "no checks in this report", ha="center", va="center")
        return _png(figure)
    rows = figure.subplots(len(verdicts), 1, squeeze=False)[:, 0]
    for axes, verdict, label in zip(rows, verdicts, labels):
        metric, value, threshold = verdict["metric"], verdict.get("value"), float(verdict["threshold"])
        interval = _verdict_interval(report, verdict)
        axes.set_yticks([0], [label], fontsize=9)
        axes.tick_params(axis="x", labelsize=8)
        axes.set_ylim(-0.6, 0.6)
        if value is None:
            axes.set_xlim(0, max(threshold, 1e-3) * 1.4)
            axes.axvline(threshold, color="black", linestyle="--", linewidth=1.2)
            axes.text(1.03, 0.5, "n/a for this table", transform=axes.transAxes, ha="left", va="center",
                      fontsize=9, color="#666")
            continue
        colour = PASS_COLOUR if verdict["passed"] else FAIL_COLOUR
        axes.barh([0], [value], height=0.55, color=colour, alpha=0.85)
        top = max(threshold, value, interval[1] if interval else 0.0)
        if metric.endswith("_auc"):
            axes.axvline(0.5, color="#888", linestyle=":", linewidth=1)
            top = max(top, 0.65)
        if interval:
            axes.errorbar([value], [0], xerr=[[max(value - interval[0], 0.0)], [max(interval[1] - value, 0.0)]],
                          fmt="none", ecolor="black", capsize=4, linewidth=1.2)
        axes.axvline(threshold, color="black", linestyle="--", linewidth=1.4)
        axes.set_xlim(0, (top or 1e-3) * 1.45)
        relation = _relation(verdict)
        outcome = "pass" if verdict["passed"] else ("WARN" if _warns(verdict) else "FAIL")
        if verdict.get("conclusive") is False:
            outcome += "\n(inconclusive)"
        axes.text(1.03, 0.5, f"{value:.3f} {relation} {threshold:g}: {outcome}", transform=axes.transAxes,
                  ha="left", va="center", fontsize=9.5, color=colour, fontweight="bold")
    rows[0].set_title("Checks: value (bar), 95% interval (whiskers), threshold (dashed)", fontsize=9.5)
    return _png(figure)


def _numeric_marginal(name: str, kind: str, statistic: str, value: float, real: pd.Series, synthetic: pd.Series) -> bytes:
    a, b = _seconds(real, kind), _seconds(synthetic, kind)
    a_present, b_present = a[~np.isnan(a)], b[~np.isnan(b)]
    both = np.concatenate([a_present, b_present])
    if len(both) == 0:
        edges = np.array([0.0, 1.0])
    elif kind == "numeric" and np.all(np.mod(both, 1) == 0) and both.max() - both.min() <= 100 * NUMERIC_BINS:
        # Whole numbers: bins of a whole width centred on the values, so no bin catches one value more than its
        # neighbours (which would draw spikes that are not in the data).
        width = max(1.0, math.ceil((both.max() - both.min() + 1) / NUMERIC_BINS))
        edges = np.arange(both.min() - 0.5, both.max() + width, width)
    elif both.min() == both.max():
        edges = np.array([both.min() - 0.5, both.min() + 0.5])
    else:
        edges = np.histogram_bin_edges(both, bins=NUMERIC_BINS)
    real_share = np.histogram(a_present, bins=edges)[0] / max(len(a_present), 1)
    synthetic_share = np.histogram(b_present, bins=edges)[0] / max(len(b_present), 1)
    x = mdates.date2num(pd.to_datetime(edges, unit="s").to_numpy()) if kind == "datetime" and len(both) else edges
    figure = _figure(4.6, 3.0, left=0.62, bottom=0.42, top=0.5)
    axes = figure.add_subplot()
    missing = _missing_share(a) > 0 or _missing_share(b) > 0
    axes.stairs(real_share, x, fill=True, color=REAL_COLOUR, alpha=0.45,
                label=f"real ({_missing_share(a):.1%} missing)" if missing else "real")
    axes.stairs(synthetic_share, x, color=SYNTHETIC_COLOUR, linewidth=1.8,
                label=f"synthetic ({_missing_share(b):.1%} missing)" if missing else "synthetic")
    axes.set_ylim(0, max(real_share.max(initial=0), synthetic_share.max(initial=0), 1e-9) * 1.25)
    if kind == "datetime" and len(both):
        locator = mdates.AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    else:
        axes.xaxis.set_major_locator(MaxNLocator(6))
    axes.yaxis.set_major_locator(MaxNLocator(5))
    axes.set_ylabel("share of rows", fontsize=8)
    axes.tick_params(labelsize=7.5)
    axes.legend(fontsize=7.5, frameon=False, loc="upper right")
    axes.set_title(f"{_plain(name, 40)}\n{statistic.upper()} = {value:.3f}", fontsize=9.5)
    return _png(figure)


def _category_shares(series: pd.Series) -> pd.Series:
    return as_category(series, MISSING).value_counts(normalize=True) if len(series) else pd.Series(dtype=float)


def _categorical_marginal(name: str, statistic: str, value: float, real: pd.Series, synthetic: pd.Series) -> bytes:
    p, q = _category_shares(real), _category_shares(synthetic)
    p, q = p.align(q, fill_value=0.0)
    order = ((p + q) / 2).sort_values(ascending=False, kind="stable")
    has_missing = MISSING in order.index
    shown = [c for c in order.index if c != MISSING][:TOP_CATEGORIES]
    rest = [c for c in order.index if c != MISSING and c not in shown]
    labels = [_plain(c, LABEL_CHARS) for c in shown]
    real_values, synthetic_values = list(p[shown]), list(q[shown])
    if rest:
        labels.append(f"other ({len(rest)})")
        real_values.append(float(p[rest].sum()))
        synthetic_values.append(float(q[rest].sum()))
    if has_missing:
        labels.append("(missing)")
        real_values.append(float(p[MISSING]))
        synthetic_values.append(float(q[MISSING]))
    y = np.arange(len(labels))
    left = 0.15 + _text_inches(max(len(label) for label in labels), 7.5)
    figure = _figure(max(4.6, left + 2.8), 1.2 + 0.3 * max(len(labels), 2), left=left, bottom=0.5, top=0.5)
    axes = figure.add_subplot()
    axes.barh(y - 0.2, real_values, height=0.4, color=REAL_COLOUR, label="real")
    axes.barh(y + 0.2, synthetic_values, height=0.4, color=SYNTHETIC_COLOUR, label="synthetic")
    axes.set_yticks(y, labels, fontsize=7.5)
    axes.invert_yaxis()
    axes.xaxis.set_major_locator(MaxNLocator(5))
    axes.tick_params(axis="x", labelsize=7.5)
    axes.set_xlabel("share of rows", fontsize=8)
    axes.legend(fontsize=7.5, frameon=False, loc="lower right")
    axes.set_title(f"{_plain(name, 40)}\n{statistic.upper()} = {value:.3f}", fontsize=9.5)
    return _png(figure)


def _annotated_heatmap(axes, matrix: np.ndarray, labels: list[str], limit: float, annotate: bool):
    cmap = colormaps["RdBu_r"].with_extremes(bad="#e6e6e6")
    image = axes.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=-limit, vmax=limit)
    ticks = np.arange(len(labels))
    short = [_plain(label, 18) for label in labels]
    axes.set_xticks(ticks, short, rotation=45, ha="right", fontsize=7.5)
    axes.set_yticks(ticks, short, fontsize=7.5)
    if annotate:
        size = 7 if len(labels) <= 10 else 6
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                if i != j and np.isfinite(matrix[i, j]):
                    axes.text(j, i, f"{matrix[i, j]:+.2f}".replace("-", "−"), ha="center", va="center", fontsize=size,
                              color="white" if abs(matrix[i, j]) > 0.6 * limit else "black")
    return image


def _colour_bar(figure: Figure, axes, image, label: str) -> None:
    axes.apply_aspect()  # the square cells may have narrowed the axes: put the bar next to where they end
    box = axes.get_position()
    bar = figure.add_axes((box.x1 + 0.25 / figure.get_figwidth(), box.y0, 0.18 / figure.get_figwidth(), box.height))
    figure.colorbar(image, cax=bar).set_label(label, fontsize=8)
    bar.tick_params(labelsize=7.5)


def _heatmap_figure(columns: list[str]) -> Figure:
    """Room for the square matrix, its rotated labels (18 characters at most) and a colour bar."""
    label = _text_inches(min(max((len(c) for c in columns), default=4), 18), 7.5)
    cells = min(max(2.6, 0.42 * len(columns)), 10.0)
    left, bottom = 0.2 + label, 0.2 + 0.75 * label
    return _figure(left + cells + 1.5, bottom + cells + 0.45, left=left, right=1.5, bottom=bottom, top=0.45)


def _difference_heatmap_png(difference: np.ndarray, columns: list[str], statistic: str) -> bytes:
    """Synthetic − real of a pairwise statistic, diverging colours centred at 0 (at least ±0.1)."""
    limit = max(0.1, float(np.nanmax(np.abs(difference))) if np.isfinite(difference).any() else 0.1)
    figure = _heatmap_figure(columns)
    axes = figure.add_subplot()
    image = _annotated_heatmap(axes, difference, columns, limit, len(columns) <= MAX_ANNOTATED_COLUMNS)
    _colour_bar(figure, axes, image, f"synthetic − real ({statistic})")
    axes.set_title(f"{statistic}, synthetic − real", fontsize=10)
    return _png(figure)


def _correlation_png(correlation: dict) -> bytes:
    columns = list(correlation["columns"])
    difference = np.asarray(correlation["synthetic_matrix"], dtype=float) - np.asarray(correlation["real_matrix"], dtype=float)
    np.fill_diagonal(difference, np.nan)
    return _difference_heatmap_png(difference, columns, "Pearson ρ")


def _association_heatmap_png(association: dict) -> bytes | None:
    pairs = association["by_pair"]
    columns: list[str] = []
    for pair in pairs:
        for column in pair["pair"]:
            if column not in columns:
                columns.append(column)
    if len(columns) > MAX_HEATMAP_COLUMNS:
        return None
    position = {c: i for i, c in enumerate(columns)}
    matrix = np.full((len(columns), len(columns)), np.nan)
    for pair in pairs:
        i, j = position[pair["pair"][0]], position[pair["pair"][1]]
        matrix[i, j] = matrix[j, i] = float(pair["cramers_v_synthetic"]) - float(pair["cramers_v_real"])
    return _difference_heatmap_png(matrix, columns, "Cramér's V")


def _association_bars_png(association: dict) -> bytes:
    worst = sorted(association["by_pair"], key=lambda p: p["delta"], reverse=True)[:WORST_PAIRS]
    labels = [_plain(f"{a} × {b}", 40) for a, b in (p["pair"] for p in worst)]
    y = np.arange(len(worst))
    left = 0.15 + _text_inches(max(len(label) for label in labels), 7.5)
    figure = _figure(left + 4.4, 1.25 + 0.3 * max(len(worst), 2), left=left, bottom=0.5, top=0.4)
    axes = figure.add_subplot()
    axes.barh(y - 0.2, [p["cramers_v_real"] for p in worst], height=0.4, color=REAL_COLOUR, label="real")
    axes.barh(y + 0.2, [p["cramers_v_synthetic"] for p in worst], height=0.4, color=SYNTHETIC_COLOUR, label="synthetic")
    axes.set_yticks(y, labels, fontsize=7.5)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.tick_params(axis="x", labelsize=7.5)
    axes.set_xlabel("Cramér's V (0 = unrelated, 1 = one column determines the other)", fontsize=8)
    axes.legend(fontsize=7.5, frameon=False, loc="lower right")
    axes.set_title(f"The {len(worst)} pairs whose association changed most", fontsize=10)
    return _png(figure)


def _dcr_png(histograms: dict, metrics: dict) -> bytes:
    edges = np.asarray(histograms["edges"], dtype=float)
    figure = _figure(10.4, 3.4, left=0.6, bottom=0.5, top=0.35, wspace=0.22)
    left, right = figure.subplots(1, 2)
    panels = (
        (left, "synthetic_to_training", "synthetic → closest training row", "synthetic_to_holdout",
         "synthetic → closest holdout row", "Synthetic rows: distance to real rows"),
        (right, "members_to_synthetic", "training rows (members)", "non_members_to_synthetic",
         "holdout rows (non-members)", "Real rows: distance to closest synthetic row"),
    )
    for axes, first, first_label, second, second_label, title in panels:
        for key, label, colour, filled in ((first, first_label, REAL_COLOUR, True), (second, second_label, "#555555", False)):
            counts = np.asarray(histograms.get(key) or np.zeros(len(edges) - 1), dtype=float)
            share = counts / counts.sum() if counts.sum() else counts
            if filled:
                axes.stairs(share, edges, fill=True, color=colour, alpha=0.45, label=label)
            else:
                axes.stairs(share, edges, color=colour, linewidth=1.8, label=label)
        axes.set_ylim(0, axes.get_ylim()[1] * 1.25)
        axes.set_xlabel("distance (0 = identical row, 1 = different in every column)", fontsize=8)
        axes.set_ylabel("share of rows", fontsize=8)
        axes.tick_params(labelsize=7.5)
        axes.legend(fontsize=7.5, frameon=False, loc="upper right")
        axes.set_title(title, fontsize=10)
    for key, style in (("dcr_synthetic_to_training_median", "-"), ("dcr_synthetic_to_holdout_median", "--")):
        if metrics.get(key) is not None:
            left.axvline(float(metrics[key]), color="black", linestyle=style, linewidth=0.9)
    return _png(figure)


def _tstr_bars(utility: dict) -> list[tuple[float, str]]:
    """(bar height, label) trained on synthetic, then on real. An undefined score (None: nothing to train or score
    on, its note says why) is no bar, labelled n/a: a bar at 0 would read as a model that predicts nothing right."""
    bars = []
    for side in ("train_synthetic_test_real", "train_real_test_real"):
        score = utility[side].get("score")
        defined = score is not None and math.isfinite(float(score))
        bars.append((float(score), f"{float(score):.3f}") if defined else (0.0, "n/a"))
    return bars


def _tstr_png(utility: dict) -> bytes:
    bars_and_labels = _tstr_bars(utility)
    values = [value for value, _ in bars_and_labels]
    figure = _figure(4.8, 3.2, left=0.65, bottom=0.4, top=0.4)
    axes = figure.add_subplot()
    bars = axes.bar(["trained on synthetic", "trained on real"], values, color=[SYNTHETIC_COLOUR, REAL_COLOUR], width=0.55)
    low = min(0.0, *values)
    axes.set_ylim(low, max(1.0, *values) * 1.08)
    for bar, (value, label) in zip(bars, bars_and_labels):
        axes.text(bar.get_x() + bar.get_width() / 2, max(value, 0.0) + 0.02, label, ha="center", fontsize=9)
    axes.axhline(0, color="black", linewidth=0.8)
    axes.set_ylabel(f"{_plain(utility['score_name'])} on the real holdout", fontsize=8.5)
    axes.tick_params(labelsize=8)
    axes.set_title(f"Predicting '{_plain(utility['target'], 30)}' ({_plain(utility['task'])})", fontsize=10)
    return _png(figure)


# ---------------------------------------------------------------------------------------------------------------
# HTML sections


def _headline(report: dict) -> str:
    verdicts = report.get("verdicts") or {}
    # "Green" is about the blocking checks; a fidelity check that only warns is listed as a warning beside it.
    blocking = {name: v for name, v in verdicts.items() if v.get("blocking", True)}
    failed = [(name, v) for name, v in blocking.items() if not v["passed"]]
    warned = [(name, v) for name, v in verdicts.items() if _warns(v)]
    inconclusive = [(name, v) for name, v in verdicts.items() if v.get("conclusive") is False]
    green = bool(report.get("all_green", not failed))
    source = report.get("source") or {}
    title = f"Privacy and utility report{' – ' + _e(source['table']) if source.get('table') else ''}"

    def listed(items: list[tuple[str, dict]]) -> str:
        return "".join(
            f"<li>{_e(JUDGED.get(v['metric'], (name,))[0])}: <code>{_e(v['metric'])}</code> = {_fmt(v['value'])}, "
            f"{'below' if _at_least(v) else 'above'} the threshold {_fmt(v['threshold'], 2)}</li>" for name, v in items)

    if green:
        verdict = f"<p><strong>All green:</strong> the synthetic table passes all {len(blocking)} checks.</p>"
    else:
        verdict = (f"<p><strong>Not green:</strong> {len(failed)} of {len(blocking)} checks failed.</p>"
                   f"<ul>{listed(failed)}</ul>")
    if warned:
        verdict += (f"<p><strong>Warning:</strong> {len(warned)} of {len(verdicts) - len(blocking)} fidelity checks "
                    f"failed (they warn and block nothing unless fidelity_checks_blocking is set).</p>"
                    f"<ul>{listed(warned)}</ul>")
    note = ""
    if inconclusive:
        names = ", ".join(f"<code>{_e(v['metric'])}</code>" for _, v in inconclusive)
        note = (f"<p>Not conclusive: {names}. The threshold lies inside the 95% interval, so another sample of the "
                "same size could give the other verdict; a larger sample would settle it.</p>")
    return f'<header class="headline {"green" if green else "red"}"><h1>{title}</h1>{verdict}{note}</header>'


def _context(report: dict) -> str:
    rows = report.get("rows") or {}
    items = [("Rows compared", ", ".join(f"{_e(k)} {_fmt(v)}" for k, v in rows.items()))]
    generator = report.get("generator") or {}
    if generator.get("plugin"):
        budget = generator.get("privacy_budget")
        text = _e(generator["plugin"])
        if budget:
            text += " (differential privacy: " + ", ".join(f"{_e(k)} = {_e(v)}" for k, v in budget.items()) + ")"
        items.append(("Generator", text))
    source = report.get("source") or {}
    if source:
        items.append(("Source", ", ".join(f"{_e(k)} {_e(v)}" for k, v in source.items())))
    if report.get("run_id"):
        items.append(("Run", f"<code>{_e(report['run_id'])}</code>"))
    body = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in items)
    return (f'<dl class="context">{body}</dl><p class="explain">"Real" means the training rows the generator learned '
            "from; the holdout is real rows it never saw, kept aside to measure privacy and prediction quality.</p>")


def _verdict_section(report: dict) -> str:
    verdicts = report.get("verdicts") or {}
    rows = []
    for name, verdict in verdicts.items():
        label, meaning = JUDGED.get(verdict["metric"], (name, ""))
        interval = _verdict_interval(report, verdict)
        interval_text = f"{interval[0]:.4f} – {interval[1]:.4f}" if interval else "—"
        if verdict.get("value") is None:
            result, result_class = "pass (not applicable)", "pass"
        elif verdict["passed"]:
            result, result_class = "pass", "pass"
        else:
            result, result_class = ("FAIL (warning)", "warn") if _warns(verdict) else ("FAIL", "fail")
        if verdict.get("conclusive") is None:
            conclusive, conclusive_class = "—", ""
        elif verdict["conclusive"]:
            conclusive, conclusive_class = "conclusive", ""
        else:
            conclusive, conclusive_class = "inconclusive: threshold inside the interval", "warn"
        rows.append(
            f'<tr data-check="{_e(name)}"><td><strong>{_e(label)}</strong><br><code>{_e(verdict["metric"])}</code>'
            f'<div class="explain">{_e(meaning)}</div></td><td class="num">{_fmt(verdict.get("value"))}</td>'
            f'<td class="num">{interval_text}</td><td class="num">{_limit_sign(verdict)} {_fmt(verdict["threshold"], 2)}</td>'
            f'<td class="{result_class}">{result}</td><td class="{conclusive_class}">{conclusive}</td></tr>')
    table = ('<table class="verdicts"><thead><tr><th>check</th><th>value</th><th>95% interval</th><th>threshold</th>'
             f'<th>result</th><th>conclusive?</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')
    alt = "; ".join(
        f"{v['metric']} {_fmt(v.get('value'))} {'pass' if v['passed'] else 'FAIL'} (threshold {_fmt(v['threshold'], 2)})"
        for v in verdicts.values())
    return (
        "<h2>Checks</h2><p class=\"explain\">Each check passes when its value is at or below its threshold (≤), or "
        "at or above it (≥) for a check where higher is better. The fidelity checks (real or synthetic, useful for "
        "prediction) only warn unless the run makes them block. The 95% "
        "interval shows how much the value would move on another sample of the same size; when the threshold lies "
        "inside it, the verdict is <em>inconclusive</em> (it stands, but a larger sample could flip it).</p>"
        f'<div class="wide">{_img(headline_png(report), "verdicts", "Checks: " + alt)}</div>{table}')


def _other_metrics_section(report: dict) -> str:
    judged = {v["metric"] for v in (report.get("verdicts") or {}).values()}
    intervals = report.get("intervals") or {}
    rows = []
    for name, value in (report.get("metrics") or {}).items():
        if name in judged:
            continue
        meaning, direction = OTHER_METRICS.get(name, ("See docs/metrics.md for its definition.", ""))
        interval = intervals.get(name)
        shown = _fmt(value) + (f" ({interval[0]:.4f} – {interval[1]:.4f})" if interval else "")
        rows.append(f'<tr><td><code>{_e(name)}</code></td><td class="num">{shown}</td><td>{_e(meaning)}</td>'
                    f"<td>{_e(direction)}</td></tr>")
    if not rows:
        return ""
    return ("<h2>Other measurements</h2><p class=\"explain\">Not judged by a check; they help explain the checks.</p>"
            '<table class="metrics"><thead><tr><th>metric</th><th>value</th><th>what it measures</th>'
            f"<th>good when</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _reidentification_section(report: dict) -> str:
    section = report.get("reidentification")
    if not section:
        return ""
    rows = []
    for name, risk in section["risks"].items():
        cells = [f"<td><code>{_e(name)}</code></td>",
                 f'<td class="num">{_fmt(risk["risk"])} ({risk["risk_interval"][0]:.3f} – {risk["risk_interval"][1]:.3f})</td>']
        for side in ("main", "control", "baseline"):
            rate = risk[side]
            cells.append(f'<td class="num">{_fmt(rate["rate"], 3)} ({rate["successes"]}/{rate["attacks"]})</td>')
        notes = "; ".join(risk.get("notes") or []) + ("" if risk.get("informative", True) else " not informative: the random baseline does as well")
        cells.append(f"<td>{_e(risk['meaning'])}{(' ' + _e(notes)) if notes.strip() else ''}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        "<h2>Re-identification risks</h2><p class=\"explain\">The three attacks of Giomi et al. (PETS 2023, the "
        "anonymeter definitions): an attacker holding the synthetic table tries to single out, link and infer "
        f"training people ({section['original_rows']} sampled) and, as the control, holdout people the generator "
        f"never saw ({section['control_rows']}); the risk is the excess of the first over the second, "
        "(main − control) / (1 − control), with its 95% interval. The random baseline shows the attack does better "
        f"than guessing. Quasi-identifiers: {_e(', '.join(section['quasi_identifiers']) or 'none flagged')}; "
        f"inferred secret: {_e(section['secret'])}. Not judged by a check.</p>"
        '<table class="metrics"><thead><tr><th>risk</th><th>risk (95%)</th><th>main success</th><th>control</th>'
        f"<th>baseline</th><th>what it measures</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _marginal_section(report: dict, training: pd.DataFrame, synthetic: pd.DataFrame, profile) -> str:
    per_column = sorted(report.get("per_column") or [], key=lambda row: -float(row["value"]))
    figures = []
    for row in per_column:
        name, statistic, value = row["column"], row["statistic"], float(row["value"])
        if name not in training.columns or name not in synthetic.columns:
            continue
        kind = row.get("kind") or profile.column(name).kind
        if getattr(profile.column(name), "sensitive", False):  # no plot: its axes and bars would show its values
            figures.append(f"<figure><figcaption><strong>{_e(name)}</strong> ({_e(kind)}), {statistic.upper()} "
                           f"{value:.3f}; sensitive column: values not shown</figcaption></figure>")
            continue
        if statistic == "ks":
            png = _numeric_marginal(name, kind, statistic, value, training[name], synthetic[name])
            what = "histogram"
        else:
            png = _categorical_marginal(name, statistic, value, training[name], synthetic[name])
            what = "category shares"
        alt = f"{name}: {what}, real vs synthetic, {statistic.upper()} {value:.3f}"
        missing = ""
        if row.get("missing_real") or row.get("missing_synthetic"):
            missing = (f"; missing: real {float(row.get('missing_real') or 0):.1%}, "
                       f"synthetic {float(row.get('missing_synthetic') or 0):.1%}")
        figures.append(f"<figure>{_img(png, 'marginals', alt, column=name)}"
                       f"<figcaption><strong>{_e(name)}</strong> ({_e(kind)}), {statistic.upper()} {value:.3f}"
                       f"{missing}</figcaption></figure>")
    if not figures:
        return "<h2>Columns one by one</h2><p>No column was compared.</p>"
    return (
        "<h2>Columns one by one</h2><p class=\"explain\">Each column on its own, "
        '<span class="legend-real">real</span> (training rows) against <span class="legend-synthetic">synthetic</span>, '
        "worst first. Numeric and date columns: histograms on the same bins, with the Kolmogorov–Smirnov distance "
        "<strong>KS</strong> (largest gap between the two cumulative distributions; 0 = identical, 1 = no overlap). "
        f"Categorical columns: the share of each category (the {TOP_CATEGORIES} most common, the rest as "
        "&ldquo;other&rdquo;, missing values as their own bar), with the total variation distance <strong>TVD</strong> "
        "(share of rows that would have to change category; 0 = identical). Lower is better for both; below 0.1 "
        f'is usually hard to see.</p><div class="grid">{"".join(figures)}</div>')


def _correlation_section(report: dict) -> str:
    correlation = report.get("correlation") or {}
    head = "<h2>Relationships between numeric and date columns</h2>"
    if not correlation.get("pairs"):
        return head + ('<p class="explain">No correlation heatmap: the table has fewer than two numeric or date '
                       "columns, so there is no numeric pair to compare.</p>")
    worst = correlation.get("worst_pair") or []
    worst_text = (f" The largest change is between <strong>{_e(worst[0])}</strong> and <strong>{_e(worst[1])}</strong> "
                  f"({_fmt(correlation.get('worst'), 3)}).") if len(worst) == 2 else ""
    png = _correlation_png(correlation)
    alt = (f"Correlation difference heatmap over {len(correlation['columns'])} numeric columns, mean |Δρ| "
           f"{_fmt(correlation.get('mean'), 3)}")
    return head + (
        "<p class=\"explain\">Pearson correlation of every numeric (or date) pair in the synthetic table minus the same "
        "correlation in the real table. White (0) means the relationship is kept; red means it is stronger in the "
        f"synthetic table, blue weaker. Mean absolute difference {_fmt(correlation.get('mean'), 3)} over "
        f"{correlation['pairs']} pairs.{worst_text}</p>"
        f'<div class="wide">{_img(png, "correlation", alt)}</div>')


def _association_section(report: dict) -> str:
    association = report.get("association") or {}
    head = "<h2>Relationships involving categorical columns</h2>"
    if not association.get("pairs") or not association.get("by_pair"):
        return head + ('<p class="explain">No association plot: the table has no pair of columns with a categorical '
                       "column in it.</p>")
    parts = []
    heatmap = _association_heatmap_png(association)
    if heatmap is not None:
        parts.append(_img(heatmap, "association", "Heatmap of Cramér's V difference, synthetic minus real, per column pair"))
    worst = association.get("worst_pair") or []
    parts.append(_img(_association_bars_png(association), "association",
                      "Cramér's V real vs synthetic of the pairs that changed most" +
                      (f"; worst {worst[0]} × {worst[1]}" if len(worst) == 2 else "")))
    return head + (
        "<p class=\"explain\">Cramér's V measures how strongly two columns are related (0 = unrelated, 1 = one "
        "determines the other); numeric columns are cut into 10 bins for this. The heatmap shows synthetic minus "
        "real for every pair (0 = kept; grey cells are numeric pairs, shown in the correlation heatmap above); the "
        "bars compare both sides for the pairs that changed most. Mean "
        f"|ΔV| {_fmt(association.get('mean'), 3)} over {association['pairs']} pairs; mean contingency similarity "
        f"{_fmt(association.get('contingency_similarity_mean'), 3)} (1 = identical cross-tabulations).</p>"
        + "".join(f'<div class="wide">{part}</div>' for part in parts))


def _dcr_section(report: dict) -> str:
    histograms = report.get("distance_histograms")
    head = "<h2>Privacy: how close synthetic rows come to real patients</h2>"
    if not histograms:
        return head + "<p>No distance histograms in this report.</p>"
    metrics = report.get("metrics") or {}
    alt = (f"Distance to closest record histograms; median synthetic to training "
           f"{_fmt(metrics.get('dcr_synthetic_to_training_median'), 3)}, to holdout "
           f"{_fmt(metrics.get('dcr_synthetic_to_holdout_median'), 3)}")
    sample = report.get("privacy_sample") or {}
    sample_text = ", ".join(f"{_e(k.replace('_', ' '))} {_fmt(v)}" for k, v in sample.items())
    return head + (
        "<p class=\"explain\">Distance between two rows: 0 when they agree in every column, 1 when they differ in every "
        "column (numbers compared relative to the column's range). <strong>Left:</strong> for each synthetic row, the "
        "distance to its closest training row (filled) and to its closest holdout row (line; holdout rows were never "
        "shown to the generator). The two should look alike; a pile near 0 only on the training side means real "
        "patients are being reproduced. Vertical lines: medians (solid training, dashed holdout). "
        "<strong>Right:</strong> for real rows, the distance to the closest synthetic row, patients in the training "
        "data (filled) against patients outside it (line). If training patients sit clearly closer, an attacker can "
        f"tell who was in the data: that is what the membership attack AUC measures.</p>"
        f'<div class="wide">{_img(_dcr_png(histograms, metrics), "dcr", alt)}</div>'
        + (f'<p class="explain">Rows used: {sample_text}.</p>' if sample_text else ""))


def _tstr_section(report: dict) -> str:
    utility = report.get("train_synthetic_test_real")
    head = "<h2>Usefulness for prediction</h2>"
    if not utility:
        return head + ('<p class="explain">No prediction comparison: the report has no target column to predict '
                       "(set <code>target_column</code>).</p>")
    synthetic, real = utility["train_synthetic_test_real"], utility["train_real_test_real"]
    notes = "".join(f"<p>{_e(side)}: {_e(part['note'])}</p>" for side, part in
                    (("Trained on synthetic", synthetic), ("Trained on real", real)) if part.get("note"))
    ratio = utility.get("ratio")
    ratio_text = f" The synthetic-trained model reaches {ratio:.0%} of the real-trained score." if ratio is not None else ""
    alt = (f"Bar chart, {utility['score_name']} on the holdout: trained on synthetic {_fmt(synthetic.get('score'), 3)}, "
           f"trained on real {_fmt(real.get('score'), 3)}")
    return head + (
        f"<p class=\"explain\">The same model (gradient boosting) predicts <strong>{_e(utility['target'])}</strong> "
        f"({_e(utility['task'])}), once trained on the synthetic rows and once on the real training rows; both are "
        f"scored on the real holdout with <code>{_e(utility['score_name'])}</code> (higher is better). The closer the "
        f"two bars, the more useful the synthetic table is for this task.{ratio_text}</p>{notes}"
        f'<div class="wide">{_img(_tstr_png(utility), "tstr", alt)}</div>')


def _footer(report: dict) -> str:
    method = report.get("interval_method") or {}
    items = "".join(f"<li><code>{_e(k)}</code>: {_e(v)}</li>" for k, v in method.items() if k != "confidence")
    return (f"<footer><p>Intervals ({_e(method.get('confidence', 0.95))} confidence):</p><ul>{items}</ul>"
            "<p>The full numbers are in the JSON report next to this file.</p></footer>") if items else \
        "<footer><p>The full numbers are in the JSON report next to this file.</p></footer>"


def render_html_report(report: dict, training: pd.DataFrame, synthetic: pd.DataFrame, profile) -> str:
    """One self-contained HTML page: headline, checks, other metrics, per-column plots, correlation and
    association differences, distance histograms and the prediction comparison. `training` and `synthetic` are the
    rows the report compared (source-shaped; datetimes may still be text)."""
    source = report.get("source") or {}
    title = "Privacy and utility report" + (f" – {source['table']}" if source.get("table") else "")
    sections = [
        _headline(report),
        _context(report),
        _verdict_section(report),
        _other_metrics_section(report),
        _reidentification_section(report),
        _marginal_section(report, training, synthetic, profile),
        _correlation_section(report),
        _association_section(report),
        _dcr_section(report),
        _tstr_section(report),
        _footer(report),
    ]
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n" + "\n".join(sections)
            + f"\n{LOAD_SCRIPT}\n</body></html>\n")
