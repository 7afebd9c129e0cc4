"""Blocking asset checks: one per "all green" threshold, reading the verdict inputs from the report."""

from __future__ import annotations

import dagster as dg

from synth_platform.assets import privacy_utility_report
from synth_platform.evaluation.report import THRESHOLD_RULES, ThresholdRule, evaluate_threshold


def threshold_check(rule: ThresholdRule) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=privacy_utility_report, name=rule.check_name, blocking=True, description=rule.description)
    def _check(privacy_utility_report: dict) -> dg.AssetCheckResult:
        verdict = evaluate_threshold(privacy_utility_report, rule)
        value = verdict["value"]
        if value is None:
            text = f"{rule.metric} is not applicable to this table"
        else:
            relation = "≤" if verdict["passed"] else ">"
            interval = verdict.get("interval")
            shown = f"{value:.4f}" + (f" (95% interval {interval[0]:.4f}–{interval[1]:.4f})" if interval else "")
            text = f"{rule.metric} = {shown} {relation} {verdict['threshold']:.4f} (margin {verdict['margin']:+.4f})"
            if verdict.get("conclusive") is False:
                text += "; the threshold lies inside the interval, so this verdict is not conclusive"
        interval_metadata = {}
        if verdict.get("interval"):
            interval_metadata = {
                "interval_low": verdict["interval"][0],
                "interval_high": verdict["interval"][1],
                "conclusive": verdict["conclusive"],
            }
        return dg.AssetCheckResult(
            passed=verdict["passed"],
            severity=dg.AssetCheckSeverity.ERROR,
            description=text,
            metadata={
                "metric": rule.metric,
                "value": float("nan") if value is None else value,
                "threshold": verdict["threshold"],
                "margin": float("nan") if verdict["margin"] is None else verdict["margin"],
                "summary": text,
                **interval_metadata,
            },
        )

    return _check


THRESHOLD_CHECKS = [threshold_check(rule) for rule in THRESHOLD_RULES]
