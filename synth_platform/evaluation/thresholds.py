"""The "all green" thresholds, the checks that judge them, and one threshold's verdict on a report. Pure logic, and
light: the Dagster definitions (checks, sensors, config defaults) import it without loading the metrics' libraries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


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


RISK_ATTACKS = 1000  # attacks per re-identification risk (capped at the holdout's rows)
