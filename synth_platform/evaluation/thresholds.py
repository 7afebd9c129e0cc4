"""The "all green" thresholds, the checks that judge them, and one threshold's verdict on a report. Pure logic, and
light: the Dagster definitions (checks, sensors, config defaults) import it without loading the metrics' libraries.

Two groups of rules. `THRESHOLD_RULES`: the four "all green" thresholds; their checks fail with ERROR severity and
block everything downstream, and they alone make `all_green`. `FIDELITY_RULES`: how realistic and how useful the
rows are (detection AUC, TSTR/TRTR ratio); their checks warn (WARN severity, nothing blocked) unless
`Thresholds.fidelity_checks_blocking` is on, when they count as the four do. `REPORT_RULES`: both, in the order the
report shows them.

A rule is "at most" (the value must be at or below its threshold: lower is better) or "at least" (at or above:
higher is better). A verdict's margin is positive when passing in both directions (threshold - value, or
value - threshold) and negative when failing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

AT_MOST, AT_LEAST = "at_most", "at_least"
DIRECTIONS = (AT_MOST, AT_LEAST)


@dataclass(frozen=True)
class Thresholds:
    """The limits of the report's checks: every "at most" metric at or below its `_max`, every "at least" one at or
    above its `_min`; and whether the fidelity checks block as the four "all green" ones do."""

    ks_mean_max: float = 0.10
    correlation_delta_max: float = 0.10
    mia_auc_max: float = 0.60
    exact_copy_rate_max: float = 0.05
    detection_auc_max: float = 0.75
    tstr_ratio_min: float = 0.96
    fidelity_checks_blocking: bool = False

    def __post_init__(self):
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name == "fidelity_checks_blocking":
                if not isinstance(value, bool):
                    raise ValueError(f"{spec.name} must be true or false, got {value!r}.")
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise ValueError(f"Threshold {spec.name} must be a number, got {value!r}.")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Threshold {spec.name} must lie in [0, 1], got {value}.")


@dataclass(frozen=True)
class ThresholdRule:
    check_name: str
    metric: str
    threshold: str  # the field of `Thresholds` (and key of a report's "thresholds")
    description: str
    direction: str = AT_MOST  # AT_MOST: value ≤ threshold passes; AT_LEAST: value ≥ threshold passes
    fidelity: bool = False  # a fidelity rule: blocks only when the report's thresholds say fidelity_checks_blocking

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}.")

    def passes(self, value: float, threshold: float) -> bool:
        return value <= threshold if self.direction == AT_MOST else value >= threshold

    def margin(self, value: float, threshold: float) -> float:
        """How far on the passing side of the threshold the value lies (negative: failing)."""
        return threshold - value if self.direction == AT_MOST else value - threshold

    def relation(self, passed: bool) -> str:
        """The sign between value and threshold: ≤ / > for "at most", ≥ / < for "at least"."""
        if self.direction == AT_MOST:
            return "≤" if passed else ">"
        return "≥" if passed else "<"

    @property
    def limit_sign(self) -> str:
        """How the threshold reads in a table: "≤" or "≥"."""
        return "≤" if self.direction == AT_MOST else "≥"


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
FIDELITY_RULES: tuple[ThresholdRule, ...] = (
    ThresholdRule("detection_auc_within_threshold", "detection_auc", "detection_auc_max",
                  "Cross-validated AUC of a gradient-boosting classifier telling synthetic rows from training rows "
                  "(0.5 = indistinguishable). Warns unless fidelity_checks_blocking is set.", fidelity=True),
    ThresholdRule("tstr_ratio_at_least", "tstr_ratio", "tstr_ratio_min",
                  "TSTR / TRTR: the holdout score of a model trained on synthetic rows over that of one trained on the "
                  "real training rows (1 = as useful as the real rows). Warns unless fidelity_checks_blocking is set.",
                  direction=AT_LEAST, fidelity=True),
)
REPORT_RULES: tuple[ThresholdRule, ...] = THRESHOLD_RULES + FIDELITY_RULES
RULE_OF_CHECK = {rule.check_name: rule for rule in REPORT_RULES}
RULE_OF_METRIC = {rule.metric: rule for rule in REPORT_RULES}


def direction_of(metric: str) -> str:
    """AT_LEAST for a metric judged "at least" (higher is better), else AT_MOST."""
    rule = RULE_OF_METRIC.get(metric)
    return rule.direction if rule is not None else AT_MOST


def tstr_ratio(tstr: float | None, trtr: float | None) -> float | None:
    """TSTR / TRTR; None when a score is missing or TRTR is not positive (a real-trained model that does no better
    than 0 — an R² at or below that of predicting the mean — gives the ratio no scale: a negative one would flip it)."""
    if tstr is None or trtr is None or not math.isfinite(float(tstr)) or not math.isfinite(float(trtr)):
        return None
    return float(tstr) / float(trtr) if float(trtr) > 0 else None


def _metric_value(report: dict, metric: str) -> float | None:
    metrics = report["metrics"]
    if metric == "tstr_ratio" and metric not in metrics:  # a report from before the ratio was a metric of its own
        return tstr_ratio(metrics.get("tstr_score"), metrics.get("trtr_score"))
    return metrics.get(metric)


def blocks(report: dict, rule: ThresholdRule) -> bool:
    """Whether a failure of `rule` blocks (ERROR severity) on this report: the four "all green" rules always, the
    fidelity rules when the report's thresholds say fidelity_checks_blocking."""
    return not rule.fidelity or bool((report.get("thresholds") or {}).get("fidelity_checks_blocking", False))


def evaluate_threshold(report: dict, rule: ThresholdRule) -> dict:
    """Value, threshold, margin (positive when passing, negative when failing, in either direction), pass/fail,
    direction and whether a failure blocks, of one rule. A report without the rule's threshold (made before the rule
    existed) is judged by the default."""
    given = (report.get("thresholds") or {}).get(rule.threshold)
    threshold = float(given if given is not None else getattr(Thresholds(), rule.threshold))
    common = {"metric": rule.metric, "direction": rule.direction, "blocking": blocks(report, rule)}
    value = _metric_value(report, rule.metric)
    if value is None:
        return {**common, "value": None, "threshold": threshold, "margin": None, "passed": True,
                "note": "not applicable to this table"}
    value = float(value)
    verdict = {**common, "value": value, "threshold": threshold, "margin": rule.margin(value, threshold),
               "passed": bool(rule.passes(value, threshold))}
    interval = (report.get("intervals") or {}).get(rule.metric)
    if interval is not None:
        low, high = float(interval[0]), float(interval[1])
        verdict["interval"] = [low, high]
        # Conclusive: the whole interval lies on one side of the threshold, so the verdict would not flip on
        # another draw of the same size. The verdict itself is the point estimate's (thresholds are never moved).
        verdict["conclusive"] = bool(not low <= threshold <= high)
    return verdict


def judge(report: dict) -> dict:
    """The report's verdicts (every rule of `REPORT_RULES`), `all_green` (every blocking rule passes: the four, and
    the fidelity rules when they block) and `fidelity_green` (the fidelity rules pass), set on `report` and
    returned."""
    report["verdicts"] = {rule.check_name: evaluate_threshold(report, rule) for rule in REPORT_RULES}
    report["all_green"] = all(v["passed"] for v in report["verdicts"].values() if v["blocking"])
    report["fidelity_green"] = all(report["verdicts"][rule.check_name]["passed"] for rule in FIDELITY_RULES)
    return report


RISK_ATTACKS = 1000  # attacks per re-identification risk (capped at the holdout's rows)
