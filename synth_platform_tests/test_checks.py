import math

import dagster as dg

from synth_platform.checks import THRESHOLD_CHECKS
from synth_platform.evaluation.report import THRESHOLD_RULES


def _crafted_report(**metrics):
    base = {"ks_mean": 0.05, "correlation_delta": 0.04, "membership_inference_auc": 0.52, "exact_copy_rate": 0.0}
    return {"metrics": {**base, **metrics},
            "thresholds": {"ks_mean_max": 0.1, "correlation_delta_max": 0.1, "mia_auc_max": 0.6, "exact_copy_rate_max": 0.05}}


def _run(check_name, report):
    check = next(c for c in THRESHOLD_CHECKS if c.check_specs and next(iter(c.check_specs)).name == check_name)
    return check(privacy_utility_report=report)


def test_one_blocking_check_per_threshold():
    specs = [next(iter(c.check_specs)) for c in THRESHOLD_CHECKS]
    assert [s.name for s in specs] == [r.check_name for r in THRESHOLD_RULES]
    assert all(s.blocking for s in specs)
    assert {s.asset_key for s in specs} == {dg.AssetKey("privacy_utility_report")}


def test_check_fails_on_a_crafted_report_with_value_threshold_and_margin():
    result = _run("membership_inference_auc_within_threshold", _crafted_report(membership_inference_auc=0.71))
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    assert result.metadata["value"].value == 0.71
    assert result.metadata["threshold"].value == 0.6
    assert math.isclose(result.metadata["margin"].value, -0.11)
    assert "0.7100 > 0.6000" in result.description


def test_check_passes_on_the_threshold_itself():
    assert _run("ks_mean_within_threshold", _crafted_report(ks_mean=0.1)).passed
    assert not _run("ks_mean_within_threshold", _crafted_report(ks_mean=0.1001)).passed


def test_not_applicable_metric_passes_and_says_so():
    result = _run("correlation_delta_within_threshold", _crafted_report(correlation_delta=None))
    assert result.passed and "not applicable" in result.description


def test_metadata_numbers_are_readable_and_the_verdict_uses_the_exact_value():
    """A metric of 17 digits shows 4 decimals in the check's metadata; passing or failing is judged on the exact value."""
    result = _run("ks_mean_within_threshold", _crafted_report(ks_mean=0.10004064134718737))
    assert not result.passed  # 0.10004… > 0.1, though it reads as 0.1 at 4 decimals
    assert result.metadata["value"].value == 0.1 and result.metadata["margin"].value == -0.0
    assert "= 0.10004 > 0.10000 (margin -0.00004)" in result.description  # as many decimals as tell them apart
    shown = _run("correlation_delta_within_threshold", _crafted_report(correlation_delta=0.11806064134718737))
    assert shown.metadata["value"].value == 0.1181 and len(repr(shown.metadata["margin"].value)) <= 7
