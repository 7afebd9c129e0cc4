"""The report as a whole on real Adult rows: intervals around every judged metric, verdicts that say whether
they are conclusive."""

import pytest

from synth_platform.evaluation.report import THRESHOLD_RULES, Thresholds, build_report, evaluate_threshold, report_markdown
from synth_platform.profiling.profile import profile_dataframe


@pytest.fixture(scope="module")
def parts(adult):
    rows = adult.sample(6000, random_state=11).reset_index(drop=True)
    return rows.iloc[:3000].reset_index(drop=True), rows.iloc[3000:4000].reset_index(drop=True), rows.iloc[4000:].reset_index(drop=True)


def _report(training, holdout, synthetic, **kwargs):
    profile = profile_dataframe(training)
    return build_report(training, holdout, synthetic, profile, privacy_rows=1000, bootstrap_resamples=100, **kwargs)


def test_fresh_rows_from_the_population_give_intervals_around_every_judged_metric(parts):
    training, holdout, fresh = parts
    report = _report(training, holdout, fresh)
    for rule in THRESHOLD_RULES:
        low, high = report["intervals"][rule.metric]
        value = report["metrics"][rule.metric]
        assert low <= value <= high, rule.metric
        assert report["verdicts"][rule.check_name]["interval"] == [low, high]
    low, high = report["intervals"]["membership_inference_auc"]
    # Rows the generator never saw carry no membership signal: the AUC is near 0.5, known to about ±0.025.
    assert abs(report["metrics"]["membership_inference_auc"] - 0.5) < 0.05 and high - low < 0.1
    assert report["intervals"]["exact_copy_rate"][0] == 0.0
    assert "95% interval" in report_markdown(report)


def test_a_copy_of_the_training_rows_is_conclusively_leaking(parts):
    training, holdout, _ = parts
    report = _report(training, holdout, training.sample(2000, random_state=0))
    mia = report["verdicts"]["membership_inference_auc_within_threshold"]
    assert not mia["passed"] and mia["conclusive"] and mia["interval"][0] > 0.6
    copies = report["verdicts"]["duplicate_rate_within_threshold"]
    assert report["metrics"]["exact_copy_rate"] == 1.0
    assert copies["interval"][0] > 0.99 and copies["conclusive"]


RISKS = ("singling_out_risk", "linkability_risk", "inference_risk")


def test_reidentification_risks_are_reported_with_control_and_baseline(parts):
    """The known answers of Giomi et al.: fresh population rows carry no risk beyond the control (every interval
    starts at 0), a copy of the training rows a high one; every risk comes with its main, control and baseline
    success rates (the report's section, and the HTML page's table)."""
    training, holdout, fresh = parts
    clean = _report(training, holdout, fresh, risk_attacks=800)
    leaky = _report(training, holdout, training.sample(2000, random_state=0), risk_attacks=800)
    for name in RISKS:
        assert clean["intervals"][name][0] == 0.0, name
        assert leaky["metrics"][name] > clean["metrics"][name], name
        assert clean["intervals"][name][0] <= clean["metrics"][name] <= clean["intervals"][name][1]
    assert leaky["intervals"]["singling_out_risk"][0] > 0.1  # two thirds of the attacked people are copied
    assert leaky["intervals"]["inference_risk"][0] > clean["intervals"]["inference_risk"][1]
    section = leaky["reidentification"]
    assert section["original_rows"] == section["control_rows"] == len(holdout)  # equal sizes, no extrapolation
    assert section["secret"] == "income" and "sex" in section["quasi_identifiers"]
    for risk in section["risks"].values():
        assert {"main", "control", "baseline"} <= set(risk) and risk["main"]["attacks"] == 800


def test_a_threshold_inside_the_interval_makes_the_verdict_inconclusive():
    rule = next(r for r in THRESHOLD_RULES if r.metric == "ks_mean")
    report = {"metrics": {"ks_mean": 0.095}, "thresholds": {"ks_mean_max": 0.1}, "intervals": {"ks_mean": [0.08, 0.11]}}
    verdict = evaluate_threshold(report, rule)
    assert verdict["passed"] and verdict["conclusive"] is False
    report["intervals"]["ks_mean"] = [0.08, 0.099]
    assert evaluate_threshold(report, rule)["conclusive"] is True
    assert Thresholds().ks_mean_max == 0.1  # the threshold itself is never moved by the interval
