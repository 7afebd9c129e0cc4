"""The HTML report rendered from real reports and opened in headless Chromium: every plot present and decoded by
the browser, the verdict table right, data escaped."""

from __future__ import annotations

import gc
import html.parser
import io
import subprocess

import matplotlib.figure
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from synth_platform.evaluation import metrics
from synth_platform.evaluation.html_report import headline_png, render_html_report
from synth_platform.evaluation.report import Thresholds, build_report
from synth_platform.profiling.profile import profile_dataframe
from synth_platform_tests.helpers.cdp import chromium

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOT_KINDS = {"verdicts", "marginals", "correlation", "association", "dcr", "tstr"}
# A column name that would become an element (and a mathtext formula in matplotlib) if it were not escaped.
HOSTILE_NAME = 'dose $<b id="injected">mg</b> & "total"$'


class _Dom(html.parser.HTMLParser):
    """What the tests read from Chromium's serialised DOM: body attributes, images, verdict rows, text, ids."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.body: dict[str, str] = {}
        self.images: list[dict[str, str]] = []
        self.verdict_rows: dict[str, list[str]] = {}
        self.ids: set[str] = set()
        self.text: list[str] = []
        self._row: str | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "body":
            self.body = attributes
        elif tag == "img":
            self.images.append(attributes)
        elif tag == "tr" and "data-check" in attributes:
            self._row = attributes["data-check"]
            self.verdict_rows[self._row] = []
        elif tag == "td" and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None and self._cell is not None:
            self.verdict_rows[self._row].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def plain_text(self) -> str:
        return "".join(self.text)



def _browser_dom(page: str, tmp_path, name: str = "report.html") -> _Dom:
    """Write the page, let headless Chromium load it (its load handler marks the decoded images) and parse the DOM."""
    path = tmp_path / name
    path.write_text(page, encoding="utf-8")
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions", "--no-first-run",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "<body" in result.stdout, result.stderr[-3000:]
    return _Dom(result.stdout)


def _assert_every_image_decoded(dom: _Dom) -> None:
    assert "data-images-loaded" in dom.body, "the page's load handler did not run"
    assert int(dom.body["data-images-total"]) == len(dom.images) > 0
    assert int(dom.body["data-images-loaded"]) == len(dom.images)
    assert sorted(dom.body["data-loaded-plots"].split()) == sorted(img["data-plot"] for img in dom.images)
    for img in dom.images:
        assert img["src"].startswith("data:image/png;base64,")
        assert img["alt"].strip()


def _assert_verdict_rows(dom: _Dom, report: dict) -> None:
    assert set(dom.verdict_rows) == set(report["verdicts"])
    for check, verdict in report["verdicts"].items():
        cells = dom.verdict_rows[check]
        result = cells[4]
        if verdict["value"] is None:
            assert result.startswith("pass")
        else:
            failed = "FAIL" if verdict["blocking"] else "FAIL (warning)"  # a fidelity check warns unless it blocks
            assert result == ("pass" if verdict["passed"] else failed), (check, cells)
            assert cells[1] == f"{verdict['value']:.4f}"
            assert cells[3] == ("≥ " if verdict["direction"] == "at_least" else "≤ ") + f"{verdict['threshold']:.2f}"
            if "interval" not in verdict:  # e.g. a TSTR ratio that is undefined on some resample
                assert cells[2] == "—" and cells[5] == "—", (check, cells)
                continue
            low, high = verdict["interval"]
            assert cells[2] == f"{low:.4f} – {high:.4f}"
            assert cells[5] == ("conclusive" if verdict["conclusive"] else "inconclusive: threshold inside the interval")


@pytest.fixture(scope="module")
def adult_parts(adult):
    """3000 training rows, 1000 holdout rows and 3000 other real rows as the 'synthetic' table, with age shifted by
    eight years and occupation shuffled across rows, so the plots have something to show."""
    rows = adult.sample(7000, random_state=5).reset_index(drop=True)
    training, holdout = rows.iloc[:3000].reset_index(drop=True), rows.iloc[3000:4000].reset_index(drop=True)
    synthetic = rows.iloc[4000:].reset_index(drop=True).copy()
    synthetic["age"] = synthetic["age"] + 8
    synthetic["occupation"] = synthetic["occupation"].sample(frac=1, random_state=0).to_numpy()
    return training, holdout, synthetic


@pytest.fixture(scope="module")
def adult_report(adult_parts):
    training, holdout, synthetic = adult_parts
    profile = profile_dataframe(training)
    # A KS threshold the shifted age column breaks: one failing check next to passing ones.
    report = build_report(training, holdout, synthetic, profile, thresholds=Thresholds(ks_mean_max=0.02),
                          privacy_rows=500, bootstrap_resamples=30)
    report["generator"] = {"plugin": "ddpm", "params": {}, "privacy_budget": None}
    report["source"] = {"table": "adult", "database": "sqlite:///embedded", "seed": 0}
    report["run_id"] = 'run <i id="run">1</i>'
    return report, training, synthetic, profile


@pytest.fixture(scope="module")
def mixed_parts():
    """A hospital-like table: a date column, missing values in numeric, date and categorical columns, and a column
    name full of HTML and mathtext specials."""
    rng = np.random.default_rng(7)
    n = 1400
    age = rng.normal(55, 15, n).round()
    frame = pd.DataFrame({
        "admitted": (pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")).strftime("%Y-%m-%d"),
        "age": age,
        HOSTILE_NAME: (age * 2 + rng.normal(0, 20, n)).round(1),
        "ward": rng.choice(["cardiology", "oncology", "A&E <triage>", "icu"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "outcome": rng.choice(["home", "transfer", "deceased"], n, p=[0.7, 0.2, 0.1]),
    })
    frame.loc[rng.random(n) < 0.1, "age"] = np.nan
    frame.loc[rng.random(n) < 0.05, HOSTILE_NAME] = np.nan
    frame.loc[rng.random(n) < 0.08, "ward"] = None
    frame.loc[rng.random(n) < 0.04, "admitted"] = None
    training, holdout = frame.iloc[:600].reset_index(drop=True), frame.iloc[600:900].reset_index(drop=True)
    synthetic = frame.iloc[900:].reset_index(drop=True).copy()
    synthetic["age"] = synthetic["age"] - 5
    return training, holdout, synthetic


@pytest.fixture(scope="module")
def mixed_report(mixed_parts):
    training, holdout, synthetic = mixed_parts
    profile = profile_dataframe(training)
    assert profile.column("admitted").kind == "datetime" and profile.column(HOSTILE_NAME).kind == "numeric"
    report = build_report(training, holdout, synthetic, profile, target="outcome", privacy_rows=200, bootstrap_resamples=30)
    return report, training, synthetic, profile


def test_adult_report_opens_in_chromium_with_every_plot_decoded(adult_report, tmp_path):
    report, training, synthetic, profile = adult_report
    page = render_html_report(report, training, synthetic, profile)
    assert "http://" not in page and "https://" not in page  # self-contained
    dom = _browser_dom(page, tmp_path)

    _assert_every_image_decoded(dom)
    kinds = [img["data-plot"] for img in dom.images]
    assert set(kinds) == PLOT_KINDS
    marginals = [img for img in dom.images if img["data-plot"] == "marginals"]
    assert sorted(img["data-column"] for img in marginals) == sorted(row["column"] for row in report["per_column"])
    age = next(img for img in marginals if img["data-column"] == "age")
    age_ks = next(row["value"] for row in report["per_column"] if row["column"] == "age")
    assert f"KS {age_ks:.3f}" in age["alt"]

    _assert_verdict_rows(dom, report)
    assert not report["verdicts"]["ks_mean_within_threshold"]["passed"]
    assert report["verdicts"]["membership_inference_auc_within_threshold"]["passed"]
    text = dom.plain_text
    assert "Not green: 1 of 4 checks failed." in text
    # the shifted age is detected too: a fidelity warning beside the verdict, not a fifth blocking failure
    detection = report["verdicts"]["detection_auc_within_threshold"]
    assert not detection["passed"] and not detection["blocking"]
    assert dom.verdict_rows["detection_auc_within_threshold"][4] == "FAIL (warning)"
    assert "fidelity checks failed (they warn and block nothing" in text
    assert f"detection_auc = {detection['value']:.4f}, above the threshold 0.75" in text
    assert "income" in text and report["train_synthetic_test_real"]["score_name"] in text
    # The run id is data too: shown as text, never turned into an element.
    assert 'run <i id="run">1</i>' in text and "run" not in dom.ids


def test_the_browser_check_notices_an_image_it_cannot_decode(adult_report, tmp_path):
    report, training, synthetic, profile = adult_report
    page = render_html_report(report, training, synthetic, profile)
    broken = page.replace("<body>", '<body><img data-plot="broken" alt="broken" src="data:image/png;base64,iVBORw0KGgoAAAA">', 1)
    dom = _browser_dom(broken, tmp_path)
    assert int(dom.body["data-images-total"]) == len(dom.images)
    assert int(dom.body["data-images-loaded"]) == len(dom.images) - 1
    assert "broken" not in dom.body["data-loaded-plots"].split()


def test_dates_missing_values_and_hostile_names_render_escaped(mixed_report, tmp_path):
    report, training, synthetic, profile = mixed_report
    page = render_html_report(report, training, synthetic, profile)
    assert 'id="injected"' not in page
    dom = _browser_dom(page, tmp_path)

    _assert_every_image_decoded(dom)
    assert {img["data-plot"] for img in dom.images} == PLOT_KINDS
    assert "injected" not in dom.ids
    assert HOSTILE_NAME in dom.plain_text  # shown literally, as text
    columns = {img["data-column"] for img in dom.images if img["data-plot"] == "marginals"}
    assert columns == {"admitted", "age", HOSTILE_NAME, "ward", "outcome"}
    assert any(HOSTILE_NAME in img["alt"] for img in dom.images)
    _assert_verdict_rows(dom, report)
    assert "outcome" in dom.plain_text


def test_absent_pieces_are_explained_instead_of_plotted(mixed_report):
    report, training, synthetic, profile = mixed_report
    # What the report holds for a table with one numeric column (no numeric pair) and no prediction target.
    report = {**report, "correlation": metrics.correlation_delta(training, synthetic, ["age"]), "train_synthetic_test_real": None}
    assert report["correlation"]["pairs"] == 0
    page = render_html_report(report, training, synthetic, profile)
    assert 'data-plot="correlation"' not in page and 'data-plot="tstr"' not in page
    assert "fewer than two numeric or date columns" in page
    assert "no target column to predict" in page
    assert 'data-plot="marginals"' in page and 'data-plot="dcr"' in page and 'data-plot="association"' in page


def test_an_inconclusive_and_a_not_applicable_verdict_are_said_so(adult_report):
    report, training, synthetic, profile = adult_report
    changed = {**report, "verdicts": {name: dict(v) for name, v in report["verdicts"].items()}}
    changed["verdicts"]["ks_mean_within_threshold"]["conclusive"] = False
    changed["verdicts"]["correlation_delta_within_threshold"].update(value=None, margin=None, passed=True)
    for key in ("interval", "conclusive"):
        changed["verdicts"]["correlation_delta_within_threshold"].pop(key)
    page = render_html_report(changed, training, synthetic, profile)
    assert "inconclusive: threshold inside the interval" in page
    assert "pass (not applicable)" in page
    assert _is_png(headline_png(changed))


def _is_png(data: bytes) -> bool:
    if not data.startswith(PNG_MAGIC):
        return False
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
        return image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100


def test_headline_png_is_a_png(adult_report):
    assert _is_png(headline_png(adult_report[0]))


def test_rendering_leaves_no_figure_behind(adult_report):
    report, training, synthetic, profile = adult_report
    import matplotlib.pyplot as plt

    def figures() -> int:
        gc.collect()
        return sum(isinstance(o, matplotlib.figure.Figure) for o in gc.get_objects())

    before = figures()
    render_html_report(report, training, synthetic, profile)
    headline_png(report)
    assert figures() == before
    assert plt.get_fignums() == []


def test_the_fidelity_checks_show_their_intervals_and_how_they_were_made(adult_report):
    """Read without a browser: the verdict rows of detection AUC and the TSTR ratio show their 95% intervals and
    whether they are conclusive, and the footer says what the two intervals cover."""
    report, training, synthetic, profile = adult_report
    page = render_html_report(report, training, synthetic, profile)
    dom = _Dom(page)
    _assert_verdict_rows(dom, report)
    for check in ("detection_auc_within_threshold", "tstr_ratio_at_least"):
        low, high = report["verdicts"][check]["interval"]
        assert dom.verdict_rows[check][2] == f"{low:.4f} – {high:.4f}"
        assert dom.verdict_rows[check][5] in ("conclusive", "inconclusive: threshold inside the interval")
    text = " ".join(dom.plain_text.split())
    assert "detection_auc: bias-corrected percentile bootstrap" in text and "tstr_ratio: bias-corrected" in text
    assert "not the refit noise of the classifier" in text
