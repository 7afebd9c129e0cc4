"""The two fidelity checks of the report (issue 21): detection AUC at most `detection_auc_max`, the TSTR/TRTR ratio
at least `tstr_ratio_min`. Real Adult rows judged by the real report, the real check definitions run by Dagster:
they warn without blocking by default, and fail with ERROR and block downstream with fidelity_checks_blocking."""

import json
from dataclasses import asdict

import dagster as dg
import numpy as np
import pytest

from synth_platform import preflight
from synth_platform.assets import ReportConfig, metrics_table, verdict_table
from synth_platform.checks import ALL_CHECKS, FIDELITY_CHECKS, THRESHOLD_CHECKS
from synth_platform.evaluation.report import build_report
from synth_platform.evaluation.thresholds import (
    AT_LEAST,
    AT_MOST,
    FIDELITY_RULES,
    REPORT_RULES,
    RULE_OF_CHECK,
    THRESHOLD_RULES,
    ThresholdRule,
    Thresholds,
    evaluate_threshold,
    judge,
    tstr_ratio,
)
from synth_platform.profiling.profile import profile_dataframe

DETECTION, TSTR = "detection_auc_within_threshold", "tstr_ratio_at_least"
REPORT_KEY = dg.AssetKey("privacy_utility_report")


def _rows(table) -> dict[str, dict]:
    """A metadata table of the report (summary or verdicts) by metric, as the UI shows its cells."""
    return {record.data["metric"]: record.data for record in table.value.records}


# --- the generalised threshold: "at least" beside "at most" ----------------------------------------------------


def _crafted(**metrics):
    return {"metrics": metrics, "thresholds": {"tstr_ratio_min": 0.96, "ks_mean_max": 0.10, "detection_auc_max": 0.75}}


def test_an_at_least_rule_passes_at_or_above_its_threshold_with_a_positive_margin():
    rule = RULE_OF_CHECK[TSTR]
    assert rule.direction == AT_LEAST and rule.metric == "tstr_ratio" and rule.threshold == "tstr_ratio_min"
    above = evaluate_threshold(_crafted(tstr_ratio=1.02), rule)
    assert above["passed"] and above["margin"] == pytest.approx(0.06) and above["direction"] == AT_LEAST
    assert evaluate_threshold(_crafted(tstr_ratio=0.96), rule)["passed"]  # the threshold itself passes
    below = evaluate_threshold(_crafted(tstr_ratio=0.90), rule)
    assert not below["passed"] and below["margin"] == pytest.approx(-0.06)
    # an "at most" rule on the same numbers: the other way round, its margin positive when passing too
    at_most = ThresholdRule("x", "tstr_ratio", "tstr_ratio_min", "")
    assert not evaluate_threshold(_crafted(tstr_ratio=1.02), at_most)["passed"]
    low = evaluate_threshold(_crafted(tstr_ratio=0.90), at_most)
    assert low["passed"] and low["margin"] == pytest.approx(0.06) and low["direction"] == AT_MOST


def test_an_at_least_rule_reads_its_interval_and_its_signs():
    rule = RULE_OF_CHECK[TSTR]
    report = {**_crafted(tstr_ratio=0.97), "intervals": {"tstr_ratio": [0.94, 1.0]}}
    verdict = evaluate_threshold(report, rule)
    assert verdict["passed"] and verdict["conclusive"] is False
    assert (rule.relation(True), rule.relation(False), rule.limit_sign) == ("≥", "<", "≥")
    assert (THRESHOLD_RULES[0].relation(True), THRESHOLD_RULES[0].relation(False)) == ("≤", ">")
    with pytest.raises(ValueError, match="direction"):
        ThresholdRule("x", "m", "t", "", direction="sideways")


def test_the_tstr_ratio_is_none_without_a_scale():
    assert tstr_ratio(0.6, 0.8) == pytest.approx(0.75)
    assert tstr_ratio(None, 0.8) is None and tstr_ratio(0.6, None) is None
    assert tstr_ratio(0.6, 0.0) is None
    assert tstr_ratio(-0.2, -0.1) is None  # an R² below zero is no scale: the ratio would read 2
    verdict = evaluate_threshold(_crafted(tstr_ratio=None), RULE_OF_CHECK[TSTR])
    assert verdict["passed"] and verdict["value"] is None and "not applicable" in verdict["note"]


def test_a_report_from_before_the_fidelity_checks_is_judged_by_their_defaults():
    old = {"metrics": {"detection_auc": 0.8, "tstr_score": 0.5, "trtr_score": 0.8},  # no tstr_ratio, no thresholds
           "thresholds": {"ks_mean_max": 0.1}}
    detection = evaluate_threshold(old, RULE_OF_CHECK[DETECTION])
    assert detection["threshold"] == 0.75 and not detection["passed"] and detection["blocking"] is False
    ratio = evaluate_threshold(old, RULE_OF_CHECK[TSTR])
    assert ratio["value"] == pytest.approx(0.625) and not ratio["passed"]


def test_all_green_is_the_four_unless_the_fidelity_checks_block():
    metrics = {"ks_mean": 0.05, "correlation_delta": 0.05, "membership_inference_auc": 0.52, "exact_copy_rate": 0.0,
               "detection_auc": 0.9, "tstr_ratio": 0.99}
    report = judge({"metrics": metrics, "thresholds": asdict(Thresholds())})
    assert list(report["verdicts"]) == [rule.check_name for rule in REPORT_RULES]
    assert report["all_green"] is True and report["fidelity_green"] is False
    assert [v["blocking"] for v in report["verdicts"].values()] == [True] * 4 + [False] * 2
    blocking = judge({"metrics": metrics, "thresholds": asdict(Thresholds(fidelity_checks_blocking=True))})
    assert blocking["all_green"] is False and all(v["blocking"] for v in blocking["verdicts"].values())


def test_the_settings_are_validated():
    assert Thresholds().detection_auc_max == 0.75 and Thresholds().tstr_ratio_min == 0.96
    assert Thresholds().fidelity_checks_blocking is False
    with pytest.raises(ValueError, match="fidelity_checks_blocking must be true or false"):
        Thresholds(fidelity_checks_blocking=1)
    with pytest.raises(ValueError, match="tstr_ratio_min"):
        Thresholds(tstr_ratio_min=1.5)
    config = ReportConfig(detection_auc_max=0.7, tstr_ratio_min=0.9, fidelity_checks_blocking=True)
    assert config.thresholds() == Thresholds(detection_auc_max=0.7, tstr_ratio_min=0.9, fidelity_checks_blocking=True)
    assert ReportConfig().thresholds() == Thresholds()
    problems = preflight.config_problems({"privacy_utility_report": {
        **ReportConfig().model_dump(), "detection_auc_max": 0.4, "tstr_ratio_min": 1.5}})
    assert [p.setting for p in problems] == ["ops.privacy_utility_report.config.detection_auc_max",
                                             "ops.privacy_utility_report.config.tstr_ratio_min"]
    assert preflight.config_problems({"privacy_utility_report": ReportConfig().model_dump()}) == []


def test_the_fidelity_checks_are_defined_blocking_beside_the_four():
    specs = [next(iter(c.check_specs)) for c in FIDELITY_CHECKS]
    assert [s.name for s in specs] == [DETECTION, TSTR] == [r.check_name for r in FIDELITY_RULES]
    assert all(s.blocking and s.asset_key == REPORT_KEY for s in specs)
    assert set(FIDELITY_CHECKS + THRESHOLD_CHECKS) <= set(ALL_CHECKS)


# --- real reports on Adult ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parts(adult):
    """3000 training rows, 2000 holdout rows and 3000 other real rows from the same population."""
    rows = adult.sample(8000, random_state=4).reset_index(drop=True)
    return (rows.iloc[:3000].reset_index(drop=True), rows.iloc[3000:5000].reset_index(drop=True),
            rows.iloc[5000:].reset_index(drop=True))


def _report(parts, synthetic, thresholds=Thresholds()):
    training, holdout, _ = parts
    return build_report(training, holdout, synthetic, profile_dataframe(training), thresholds=thresholds,
                        privacy_rows=500, bootstrap_resamples=20, risk_attacks=100)


@pytest.fixture(scope="module")
def fresh_report(parts):
    return _report(parts, parts[2])


@pytest.fixture(scope="module")
def independent_columns(parts):
    """The training rows with each column shuffled on its own: every marginal exact, every dependence gone."""
    rng = np.random.default_rng(0)
    return parts[0].apply(lambda column: rng.permutation(column.to_numpy())).reset_index(drop=True)


@pytest.fixture(scope="module")
def independent_report(parts, independent_columns):
    return _report(parts, independent_columns)


def test_real_rows_from_the_population_pass_both_fidelity_checks(fresh_report):
    report = fresh_report
    m = report["metrics"]
    assert 0.45 <= m["detection_auc"] <= 0.60
    assert m["tstr_ratio"] == pytest.approx(m["tstr_score"] / m["trtr_score"]) and 0.95 <= m["tstr_ratio"] <= 1.05
    assert report["verdicts"][DETECTION]["passed"] and report["verdicts"][TSTR]["passed"]
    assert report["verdicts"][TSTR]["margin"] == pytest.approx(m["tstr_ratio"] - 0.96)
    assert report["all_green"] and report["fidelity_green"]
    shown = _rows(verdict_table(report))["tstr_ratio"]  # as the UI shows it
    assert shown["threshold"] == "≥ 0.96" and shown["verdict"] == "pass"


def test_a_copy_of_the_holdout_is_undetectable_and_its_tstr_passes_above_one(parts):
    """Not a ratio of about 1: TSTR then trains on the very rows it is scored on. The "at least" check passes it."""
    report = _report(parts, parts[1].copy())
    assert 0.45 <= report["metrics"]["detection_auc"] <= 0.60
    assert report["metrics"]["tstr_ratio"] > 1.05 and report["verdicts"][TSTR]["passed"]
    assert report["verdicts"][TSTR]["margin"] > 0.05


def _materialize(report: dict) -> dg.ExecuteInProcessResult:
    """The real threshold and fidelity checks on a stand-in report asset, with an asset downstream of it."""

    @dg.asset(name="privacy_utility_report")
    def stand_in() -> dict:
        return report

    @dg.asset(deps=[stand_in])
    def downstream_of_report() -> int:
        return 1

    with dg.instance_for_test() as instance:
        return dg.materialize([stand_in, downstream_of_report, *THRESHOLD_CHECKS, *FIDELITY_CHECKS],
                              instance=instance, raise_on_error=False)


def _evaluations(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_independent_columns_fail_detection_with_a_warning_that_blocks_nothing(independent_report):
    report = independent_report
    assert report["metrics"]["detection_auc"] > 0.9 and report["metrics"]["ks_mean"] < 0.01
    assert report["all_green"] is True and report["fidelity_green"] is False  # the four pass, marginals exact
    result = _materialize(report)
    evaluations = _evaluations(result)
    assert set(evaluations) == {rule.check_name for rule in REPORT_RULES}
    detection = evaluations[DETECTION]
    assert not detection.passed and detection.severity == dg.AssetCheckSeverity.WARN
    assert detection.metadata["blocking"].value is False and detection.metadata["direction"].value == AT_MOST
    low, high = report["intervals"]["detection_auc"]
    assert (f"detection_auc = {report['metrics']['detection_auc']:.4f} (95% interval {low:.4f}–{high:.4f}) > 0.7500"
            in detection.description)
    assert detection.metadata["interval_low"].value == round(low, 4) and detection.metadata["conclusive"].value is True
    assert "blocks nothing" in detection.description
    tstr = evaluations[TSTR]
    assert not tstr.passed and tstr.severity == dg.AssetCheckSeverity.WARN and " < 0.9600" in tstr.description
    assert all(evaluations[rule.check_name].passed for rule in THRESHOLD_RULES)
    # Dagster blocks only on ERROR: the run succeeds and the asset downstream is materialized
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert dg.AssetKey("downstream_of_report") in materialized


def test_with_fidelity_checks_blocking_the_same_failure_is_an_error_that_blocks(parts, independent_columns):
    thresholds = ReportConfig(fidelity_checks_blocking=True).thresholds()
    report = _report(parts, independent_columns, thresholds)
    assert report["thresholds"]["fidelity_checks_blocking"] is True
    assert report["all_green"] is False and report["fidelity_green"] is False
    assert not report["verdicts"][DETECTION]["passed"] and report["verdicts"][DETECTION]["blocking"]
    result = _materialize(report)
    detection = _evaluations(result)[DETECTION]
    assert not detection.passed and detection.severity == dg.AssetCheckSeverity.ERROR
    assert "blocks nothing" not in detection.description
    assert _evaluations(result)[TSTR].severity == dg.AssetCheckSeverity.ERROR
    assert not result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {REPORT_KEY}  # the downstream asset never ran
    assert _rows(verdict_table(report))["detection_auc"]["verdict"].startswith("FAIL")  # blocking: not a warning
    assert "warning" not in _rows(verdict_table(report))["detection_auc"]["verdict"]


def test_a_blocking_run_of_passing_fidelity_checks_blocks_nothing(fresh_report):
    """The control for the test above: blocking on, both fidelity checks passing, the downstream asset runs."""
    report = judge({**fresh_report, "thresholds": asdict(Thresholds(fidelity_checks_blocking=True))})
    assert report["all_green"] and report["fidelity_green"]
    result = _materialize(report)
    assert result.success and all(e.passed for e in _evaluations(result).values())
    assert dg.AssetKey("downstream_of_report") in {e.asset_key for e in result.get_asset_materialization_events()}


# --- the fidelity metrics' 95% intervals ----------------------------------------------------------------------------


FIDELITY_METRICS = ("detection_auc", "tstr_ratio")


def _assert_interval_verdicts(report: dict) -> None:
    """Both fidelity verdicts carry the report's interval, conclusive exactly when the threshold lies outside it."""
    for rule in FIDELITY_RULES:
        low, high = report["intervals"][rule.metric]
        verdict = report["verdicts"][rule.check_name]
        assert low <= verdict["value"] <= high, rule.metric
        assert verdict["interval"] == [low, high]
        assert verdict["conclusive"] is (not low <= verdict["threshold"] <= high), rule.metric


def test_the_report_gives_both_fidelity_metrics_an_interval(fresh_report):
    report = fresh_report
    assert set(FIDELITY_METRICS) <= set(report["intervals"])
    for name in FIDELITY_METRICS:
        method = report["interval_method"][name]
        assert "20 " in method and "not the refit noise" in method and "bootstrap" in method
    _assert_interval_verdicts(report)
    shown = _rows(metrics_table(report))
    for name in FIDELITY_METRICS:
        low, high = report["intervals"][name]
        assert shown[name]["value"] == round(report["metrics"][name], 4)
        assert shown[name]["95% interval"] == f"{round(low, 4):g} – {round(high, 4):g}"


def test_real_rows_give_a_detection_interval_around_one_half_and_a_tstr_interval_around_one(fresh_report):
    """Fresh rows of the population: indistinguishable (the interval straddles 0.5) and as useful (it holds 1);
    both verdicts pass conclusively at the default thresholds."""
    d_low, d_high = fresh_report["intervals"]["detection_auc"]
    assert d_low < 0.5 < d_high and d_high - d_low < 0.1
    t_low, t_high = fresh_report["intervals"]["tstr_ratio"]
    assert t_low < 1.0 < t_high and t_high - t_low < 0.15
    assert all(fresh_report["verdicts"][rule.check_name]["conclusive"] for rule in FIDELITY_RULES)


def test_independent_columns_give_a_detection_interval_far_above_one_half(independent_report):
    report = independent_report
    low, high = report["intervals"]["detection_auc"]
    assert 0.9 < low <= report["metrics"]["detection_auc"] <= high <= 1.0
    low, high = report["intervals"]["tstr_ratio"]
    assert high < 0.96  # conclusively below the threshold: the dependence on the target is gone
    _assert_interval_verdicts(report)
    assert not report["verdicts"][DETECTION]["passed"] and report["verdicts"][DETECTION]["conclusive"]
    assert not report["verdicts"][TSTR]["passed"] and report["verdicts"][TSTR]["conclusive"]


def test_a_threshold_inside_a_fidelity_interval_makes_the_verdict_inconclusive(fresh_report):
    """The thresholds moved into the intervals: each verdict is the point value's, marked not conclusive; for the
    "at least" ratio, a threshold just below the value passes and one just above it fails, both inconclusive."""
    d_low, d_high = fresh_report["intervals"]["detection_auc"]
    t_low, t_high = fresh_report["intervals"]["tstr_ratio"]
    value = fresh_report["metrics"]["tstr_ratio"]
    for tstr_min, passed in (((t_low + value) / 2, True), ((value + t_high) / 2, False)):
        thresholds = {**fresh_report["thresholds"], "detection_auc_max": (d_low + d_high) / 2, "tstr_ratio_min": tstr_min}
        report = judge({**fresh_report, "thresholds": thresholds})
        _assert_interval_verdicts(report)
        assert report["verdicts"][DETECTION]["conclusive"] is False and report["verdicts"][TSTR]["conclusive"] is False
        assert report["verdicts"][TSTR]["passed"] is passed


def test_no_prediction_reaches_the_report(fresh_report, parts):
    """The classifiers' predictions serve the intervals only: the report (written to disk as JSON) holds the scores,
    no array of predictions or probabilities, nor any list as long as the rows scored."""
    report = fresh_report
    json.dumps(report)  # plain JSON: no arrays
    assert set(report) == {"rows", "metrics", "per_column", "correlation", "association", "train_synthetic_test_real",
                           "privacy_sample", "distance_histograms", "intervals", "reidentification",
                           "interval_method", "thresholds", "verdicts", "all_green", "fidelity_green"}
    utility = report["train_synthetic_test_real"]
    assert set(utility) == {"target", "task", "score_name", "train_synthetic_test_real", "train_real_test_real",
                            "ratio", "target_classes_grouped"}
    for side in ("train_synthetic_test_real", "train_real_test_real"):
        assert set(utility[side]) <= {"accuracy", "macro_f1", "score", "note"}
    shortest = min(len(part) for part in parts)

    def lists(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from lists(item)
        elif isinstance(value, list):
            yield value
            for item in value:
                yield from lists(item)

    assert max(len(found) for found in lists(report)) < shortest
