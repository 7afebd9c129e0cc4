"""The privacy/utility report: every metric of a synthetic table against its training part and holdout, plus the
verdict of each threshold. Pure logic: no Dagster here."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd

from synth_platform.evaluation import metrics
from synth_platform.evaluation.uncertainty import CONFIDENCE, bootstrap_interval, resample_indices, wilson_interval
from synth_platform.profiling.profile import DatasetProfile, align_for_comparison


@dataclass(frozen=True)
class Thresholds:
    """The "all green" limits; every metric must be at or below its limit."""

    ks_mean_max: float = 0.10
    correlation_delta_max: float = 0.10
    mia_auc_max: float = 0.60
    exact_copy_rate_max: float = 0.05

    def __post_init__(self):
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise ValueError(f"Threshold {spec.name} must be a number, got {value!r}.")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Threshold {spec.name} must lie in [0, 1], got {value}.")


@dataclass(frozen=True)
class ThresholdRule:
    check_name: str
    metric: str
    threshold: str
    description: str


THRESHOLD_RULES: tuple[ThresholdRule, ...] = (
    ThresholdRule("ks_mean_within_threshold", "ks_mean", "ks_mean_max",
                  "Mean Kolmogorov-Smirnov statistic over numeric and datetime columns (synthetic vs training)."),
    ThresholdRule("correlation_delta_within_threshold", "correlation_delta", "correlation_delta_max",
                  "Mean |Δ Pearson ρ| over numeric column pairs (synthetic vs training)."),
    ThresholdRule("membership_inference_auc_within_threshold", "membership_inference_auc", "mia_auc_max",
                  "AUC of a distance-based membership attack, training rows vs holdout rows (0.5 = no leakage)."),
    ThresholdRule("duplicate_rate_within_threshold", "exact_copy_rate", "exact_copy_rate_max",
                  "Share of synthetic rows that exactly copy a training row (1 - SDMetrics NewRowSynthesis)."),
)


def evaluate_threshold(report: dict, rule: ThresholdRule) -> dict:
    """Value, threshold, margin (threshold - value; negative when failing) and pass/fail of one rule."""
    threshold = float(report["thresholds"][rule.threshold])
    value = report["metrics"].get(rule.metric)
    if value is None:
        return {"metric": rule.metric, "value": None, "threshold": threshold, "margin": None, "passed": True,
                "note": "not applicable to this table"}
    value = float(value)
    verdict = {"metric": rule.metric, "value": value, "threshold": threshold, "margin": threshold - value,
               "passed": bool(value <= threshold)}
    interval = (report.get("intervals") or {}).get(rule.metric)
    if interval is not None:
        low, high = float(interval[0]), float(interval[1])
        verdict["interval"] = [low, high]
        # Conclusive: the whole interval lies on one side of the threshold, so the verdict would not flip on
        # another draw of the same size. The verdict itself is the point estimate's (thresholds are never moved).
        verdict["conclusive"] = bool(not low <= threshold <= high)
    return verdict


def build_report(
    training: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    profile: DatasetProfile,
    *,
    target: str = "",
    thresholds: Thresholds = Thresholds(),
    privacy_rows: int = 2000,
    bootstrap_resamples: int = 200,
    seed: int = 0,
) -> dict:
    """Compute every metric, the 95% intervals of the verdict-bearing ones, and every threshold verdict;
    returns a JSON-ready dict."""
    numeric = profile.by_kind("numeric", "datetime")
    categorical = profile.by_kind("categorical")
    compared = numeric + categorical
    if not compared:
        raise ValueError("The profile has no numeric, datetime or categorical column to compare.")
    training = align_for_comparison(training, profile)[compared]
    holdout = align_for_comparison(holdout, profile)[compared]
    synthetic = align_for_comparison(synthetic, profile)[compared]
    rng = np.random.default_rng(seed)

    per_column = [
        {"column": c, "kind": profile.column(c).kind, "statistic": "ks", "value": metrics.ks_statistic(training[c], synthetic[c])}
        for c in numeric
    ] + [
        {"column": c, "kind": "categorical", "statistic": "tvd", "value": metrics.total_variation_distance(training[c], synthetic[c])}
        for c in categorical
    ]
    ks_values = [row["value"] for row in per_column if row["statistic"] == "ks"]
    tvd_values = [row["value"] for row in per_column if row["statistic"] == "tvd"]
    correlation = metrics.correlation_delta(training, synthetic, numeric)

    # Privacy: distances in SDMetrics' per-column space, fitted on the training part.
    space = metrics.MixedSpace.fit(training, numeric, categorical)
    n_equal = min(len(training), len(holdout))
    training_equal = training.iloc[rng.choice(len(training), size=n_equal, replace=False)]
    synthetic_query = synthetic.iloc[rng.choice(len(synthetic), size=min(privacy_rows, len(synthetic)), replace=False)]
    query = space.transform(synthetic_query)
    dcr_training = metrics.distance_to_closest_record(query, space.transform(training_equal), space.n_columns)
    dcr_holdout = metrics.distance_to_closest_record(query, space.transform(holdout), space.n_columns)

    n_attack = min(privacy_rows, len(holdout))
    members = training.iloc[rng.choice(len(training), size=n_attack, replace=False)]
    non_members = holdout.iloc[rng.choice(len(holdout), size=n_attack, replace=False)]
    synthetic_reference = space.transform(synthetic)
    member_dcr = metrics.distance_to_closest_record(space.transform(members), synthetic_reference, space.n_columns)
    non_member_dcr = metrics.distance_to_closest_record(space.transform(non_members), synthetic_reference, space.n_columns)

    target = target or _default_target(profile)
    utility = metrics.train_synthetic_test_real(synthetic, training, holdout, target, categorical, seed=seed) if target else None
    point = {
        "ks_mean": float(np.mean(ks_values)) if ks_values else None,
        "tvd_mean": float(np.mean(tvd_values)) if tvd_values else None,
        "correlation_delta": correlation["mean"],
        "detection_auc": metrics.detection_auc(training, synthetic, categorical, seed=seed),
        "exact_copy_rate": metrics.exact_copy_rate(synthetic, training),
        "holdout_exact_copy_rate": metrics.exact_copy_rate(holdout, training),
        "dcr_synthetic_to_training_median": float(np.median(dcr_training)),
        "dcr_synthetic_to_holdout_median": float(np.median(dcr_holdout)),
        "dcr_share": metrics.dcr_share(dcr_training, dcr_holdout),
        "membership_inference_auc": metrics.membership_inference_auc(member_dcr, non_member_dcr),
        "tstr_score": utility["train_synthetic_test_real"]["score"] if utility else None,
        "trtr_score": utility["train_real_test_real"]["score"] if utility else None,
    }
    intervals = verdict_intervals(
        training, synthetic, numeric, member_dcr, non_member_dcr, point, n_resamples=bootstrap_resamples, seed=seed
    )
    report = {
        "rows": {"training": len(training), "holdout": len(holdout), "synthetic": len(synthetic)},
        "metrics": point,
        "per_column": per_column,
        "correlation": correlation,
        "train_synthetic_test_real": utility,
        "privacy_sample": {"synthetic_query_rows": len(synthetic_query), "equal_size_reference_rows": n_equal,
                           "attack_rows_per_side": n_attack},
        "intervals": intervals,
        "interval_method": {
            "confidence": CONFIDENCE,
            "ks_mean": f"bias-corrected percentile bootstrap, {bootstrap_resamples} resamples of training and synthetic rows",
            "correlation_delta": f"bias-corrected percentile bootstrap, {bootstrap_resamples} resamples of training and synthetic rows",
            "membership_inference_auc": f"bias-corrected percentile bootstrap, {bootstrap_resamples} resamples of members and non-members",
            "exact_copy_rate": "Wilson score interval over the synthetic rows",
        },
        "thresholds": asdict(thresholds),
    }
    report["verdicts"] = {rule.check_name: evaluate_threshold(report, rule) for rule in THRESHOLD_RULES}
    report["all_green"] = all(v["passed"] for v in report["verdicts"].values())
    return report


def verdict_intervals(
    training: pd.DataFrame,
    synthetic: pd.DataFrame,
    numeric: list[str],
    member_dcr: np.ndarray,
    non_member_dcr: np.ndarray,
    point: dict[str, float | None],
    *,
    n_resamples: int = 200,
    seed: int = 0,
) -> dict[str, list[float]]:
    """95% intervals of the metrics the checks judge, each recomputed with the same function as its point value."""
    intervals: dict[str, list[float]] = {}
    if numeric:
        real_numbers = {c: metrics.numbers(training[c]).to_numpy() for c in numeric}
        synthetic_numbers = {c: metrics.numbers(synthetic[c]).to_numpy() for c in numeric}

        def ks_mean(rng: np.random.Generator) -> float:
            r, s = resample_indices(rng, len(training)), resample_indices(rng, len(synthetic))
            return float(np.mean([
                metrics.ks_statistic(pd.Series(real_numbers[c][r]), pd.Series(synthetic_numbers[c][s])) for c in numeric
            ]))

        intervals["ks_mean"] = list(bootstrap_interval(
            ks_mean, point=point["ks_mean"], bounds=(0.0, 1.0), n_resamples=n_resamples, seed=seed))
    if len(numeric) >= 2:
        real_frame = pd.DataFrame(real_numbers)
        synthetic_frame = pd.DataFrame(synthetic_numbers)

        def correlation_delta(rng: np.random.Generator) -> float:
            r, s = resample_indices(rng, len(training)), resample_indices(rng, len(synthetic))
            return metrics.correlation_delta(real_frame.iloc[r], synthetic_frame.iloc[s], numeric)["mean"]

        intervals["correlation_delta"] = list(bootstrap_interval(
            correlation_delta, point=point["correlation_delta"], bounds=(0.0, 2.0), n_resamples=n_resamples, seed=seed))

    def membership_auc(rng: np.random.Generator) -> float:
        m, n = resample_indices(rng, len(member_dcr)), resample_indices(rng, len(non_member_dcr))
        return metrics.membership_inference_auc(member_dcr[m], non_member_dcr[n])

    intervals["membership_inference_auc"] = list(bootstrap_interval(
        membership_auc, point=point["membership_inference_auc"], bounds=(0.0, 1.0), n_resamples=n_resamples, seed=seed))
    copies = int(round(point["exact_copy_rate"] * len(synthetic)))
    intervals["exact_copy_rate"] = list(wilson_interval(copies, len(synthetic)))
    return intervals


def _default_target(profile: DatasetProfile) -> str:
    """'income' on the bundled data; otherwise the last categorical column, else the last numeric one."""
    names = [c.name for c in profile.columns]
    if "income" in names:
        return "income"
    candidates = profile.by_kind("categorical") or profile.by_kind("numeric")
    return candidates[-1] if candidates else ""


def report_markdown(report: dict) -> str:
    """The headline table people read in the Dagster UI."""
    lines = ["| metric | value | 95% interval | threshold | verdict |", "|---|---|---|---|---|"]
    judged = {v["metric"]: v for v in report["verdicts"].values()}
    for name, value in report["metrics"].items():
        verdict = judged.get(name)
        shown = "n/a" if value is None else f"{value:.4f}"
        interval = (report.get("intervals") or {}).get(name)
        interval_text = f"{interval[0]:.4f} – {interval[1]:.4f}" if interval else ""
        if verdict:
            outcome = "pass" if verdict["passed"] else "**FAIL**"
            if verdict.get("conclusive") is False:
                outcome += " (threshold inside the interval)"
            lines.append(f"| {name} | {shown} | {interval_text} | ≤ {verdict['threshold']:.2f} | {outcome} |")
        else:
            lines.append(f"| {name} | {shown} | {interval_text} | | |")
    worst = sorted(report["per_column"], key=lambda row: row["value"], reverse=True)[:5]
    lines += ["", "Worst columns: " + ", ".join(f"`{r['column']}` ({r['statistic']} {r['value']:.3f})" for r in worst)]
    return "\n".join(lines)
