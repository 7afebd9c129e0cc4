"""The report as a whole on real Adult rows: intervals around every judged metric, verdicts that say whether
they are conclusive."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, r2_score, roc_auc_score

from synth_platform.assets import verdict_table
from synth_platform.evaluation import metrics
from synth_platform.evaluation.report import (
    THRESHOLD_RULES, Thresholds, build_report, evaluate_threshold, resampled_detection_auc,
    resampled_tstr_ratio, tstr_ratio, tstr_ratio_interval, verdict_intervals,
)
from synth_platform.evaluation.uncertainty import bootstrap_interval
from synth_platform.profiling.profile import profile_dataframe


def _rows(table) -> list[dict]:
    """A metadata table of the report as the UI shows its cells."""
    return [record.data for record in table.value.records]


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
    assert all(row["95% interval"] for row in _rows(verdict_table(report)))  # as the UI shows the verdicts


def test_zero_bootstrap_resamples_turn_the_intervals_off_instead_of_failing(parts):
    # Preflight says "0 turns the intervals off"; the report used to raise from the bootstrap instead.
    training, holdout, fresh = parts
    report = build_report(training, holdout, fresh, profile_dataframe(training), privacy_rows=500, bootstrap_resamples=0)
    assert not {rule.metric for rule in THRESHOLD_RULES} & set(report["intervals"])  # only the Wilson risk intervals
    assert all(verdict.get("interval") is None for verdict in report["verdicts"].values())
    assert all(row["95% interval"] == "" for row in _rows(verdict_table(report)))  # the column stays, empty


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


# --- the fidelity metrics' intervals: predictions kept, evaluation rows resampled --------------------------------


def _detection(real_scores, synthetic_scores):
    labels = np.r_[np.zeros(len(real_scores)), np.ones(len(synthetic_scores))]
    return labels, np.r_[real_scores, synthetic_scores].astype(float)


def test_perfectly_separable_detection_predictions_give_the_interval_one_to_one():
    rng = np.random.default_rng(0)
    labels, probabilities = _detection(rng.uniform(0.0, 0.4, 300), rng.uniform(0.6, 1.0, 300))
    assert metrics.detection_auc_of(labels, probabilities) == 1.0
    interval = bootstrap_interval(resampled_detection_auc(labels, probabilities), point=1.0, bounds=(0.0, 1.0),
                                  n_resamples=50, seed=3)
    assert interval == (1.0, 1.0)


def test_a_detection_resample_is_scikit_learns_auc_of_the_rows_drawn_per_label_with_the_same_rng():
    rng = np.random.default_rng(1)
    real, synthetic = rng.normal(0.45, 0.1, 400).round(2), rng.normal(0.5, 0.1, 300).round(2)  # ties too
    labels, probabilities = _detection(real, synthetic)
    statistic = resampled_detection_auc(labels, probabilities)
    for seed in (0, 1, 2):
        by_hand = np.random.default_rng(seed)
        r, s = by_hand.integers(0, 400, 400), by_hand.integers(0, 300, 300)  # real first, then synthetic
        expected = roc_auc_score(np.r_[np.zeros(400), np.ones(300)], np.r_[real[r], synthetic[s]])
        assert statistic(np.random.default_rng(seed)) == pytest.approx(expected, abs=1e-12)
    # The whole interval by hand: the percentile interval of those AUCs, shifted by their mean's bias.
    point = metrics.detection_auc_of(labels, probabilities)
    by_hand = np.random.default_rng(5)
    values = []
    for _ in range(40):
        r, s = by_hand.integers(0, 400, 400), by_hand.integers(0, 300, 300)
        values.append(roc_auc_score(np.r_[np.zeros(400), np.ones(300)], np.r_[real[r], synthetic[s]]))
    low, high = np.percentile(values, [2.5, 97.5]) - (np.mean(values) - point)
    got = bootstrap_interval(statistic, point=point, bounds=(0.0, 1.0), n_resamples=40, seed=5)
    assert got == pytest.approx((low, high), abs=1e-12) and got[0] <= point <= got[1]


def _predictions(task, truth, synthetic_trained, real_trained):
    return metrics.HoldoutPredictions(task=task, truth=np.asarray(truth), synthetic_trained=np.asarray(synthetic_trained),
                                      real_trained=np.asarray(real_trained))


def test_a_tstr_resample_scores_both_models_on_the_same_holdout_rows():
    rng = np.random.default_rng(2)
    classes = np.array(["<=50K", ">50K", "other"], dtype=object)
    truth = rng.choice(classes, 500, p=[0.6, 0.3, 0.1])
    real_trained = np.where(rng.random(500) < 0.8, truth, rng.choice(classes, 500))
    synthetic_trained = np.where(rng.random(500) < 0.4, truth, rng.choice(classes[:2], 500))
    predictions = _predictions("classification", truth, synthetic_trained, real_trained)
    statistic = resampled_tstr_ratio(predictions)
    for seed in (0, 1):
        rows = np.random.default_rng(seed).integers(0, 500, 500)  # one resample for both scores: paired
        tstr = f1_score(truth[rows], synthetic_trained[rows], average="macro", zero_division=0.0)
        trtr = f1_score(truth[rows], real_trained[rows], average="macro", zero_division=0.0)
        assert statistic(np.random.default_rng(seed)) == pytest.approx(tstr / trtr, abs=1e-12)
    point = tstr_ratio(metrics.holdout_score("classification", truth, synthetic_trained),
                       metrics.holdout_score("classification", truth, real_trained))
    low, high = tstr_ratio_interval(predictions, point=point, n_resamples=60, seed=0)
    assert 0.0 <= low <= point <= high < 1.0

    y = rng.normal(0, 1, 400)
    regression = _predictions("regression", y, y + rng.normal(0, 0.8, 400), y + rng.normal(0, 0.5, 400))
    rows = np.random.default_rng(7).integers(0, 400, 400)
    expected = (r2_score(y[rows], regression.synthetic_trained[rows]) / r2_score(y[rows], regression.real_trained[rows]))
    assert resampled_tstr_ratio(regression)(np.random.default_rng(7)) == pytest.approx(expected, abs=1e-12)


def test_equal_predictions_give_a_tstr_ratio_interval_of_one_and_an_undefined_ratio_none():
    rng = np.random.default_rng(3)
    truth = rng.choice(np.array(["a", "b"], dtype=object), 300)
    guess = np.where(rng.random(300) < 0.75, truth, rng.choice(np.array(["a", "b"], dtype=object), 300))
    assert tstr_ratio_interval(_predictions("classification", truth, guess, guess), point=1.0, n_resamples=30) == [1.0, 1.0]
    y = rng.normal(0, 1, 200)
    # TRTR at or below 0 (a real-trained model no better than the mean): no ratio, so no interval.
    useless = _predictions("regression", y, y, rng.normal(0, 1, 200))
    assert tstr_ratio(1.0, r2_score(y, useless.real_trained)) is None
    assert tstr_ratio_interval(useless, point=None, n_resamples=30) is None
    # A TRTR of 0.01 (predictions 0.005 of the way from the mean to the truth: R² = 2c - c²): positive on the rows,
    # at or below 0 on some resamples, so the ratio has no bounded interval.
    weak = _predictions("regression", y, y, y.mean() + 0.005 * (y - y.mean()))
    trtr = r2_score(y, weak.real_trained)
    assert trtr == pytest.approx(0.009975)
    draws = np.random.default_rng(0)
    assert np.isnan([resampled_tstr_ratio(weak)(draws) for _ in range(30)]).any()
    assert tstr_ratio_interval(weak, point=tstr_ratio(1.0, trtr), n_resamples=30, seed=0) is None
    missing = metrics.HoldoutPredictions("classification", truth, None, guess)
    assert tstr_ratio_interval(missing, point=1.0) is None


def test_verdict_intervals_give_the_fidelity_intervals_only_when_given_their_predictions():
    rng = np.random.default_rng(4)
    training = pd.DataFrame({"x": rng.normal(0, 1, 200), "y": rng.normal(0, 1, 200)})
    synthetic = pd.DataFrame({"x": rng.normal(0, 1, 150), "y": rng.normal(0, 1, 150)})
    member, non_member = rng.random(100), rng.random(100)
    detection = _detection(rng.uniform(0.0, 0.6, 150), rng.uniform(0.4, 1.0, 150))
    truth = rng.choice(np.array(["a", "b"], dtype=object), 200)
    predictions = _predictions("classification", truth, truth, truth)
    point = {"ks_mean": 0.1, "correlation_delta": 0.1, "membership_inference_auc": 0.5, "exact_copy_rate": 0.0,
             "detection_auc": metrics.detection_auc_of(*detection), "tstr_ratio": 1.0}
    common = (training, synthetic, ["x", "y"], member, non_member, point)
    without = verdict_intervals(*common, n_resamples=20)
    assert "detection_auc" not in without and "tstr_ratio" not in without
    given = verdict_intervals(*common, n_resamples=20, detection=detection, holdout_predictions=predictions)
    assert given["tstr_ratio"] == [1.0, 1.0]
    assert given["detection_auc"] == list(bootstrap_interval(
        resampled_detection_auc(*detection), point=point["detection_auc"], bounds=(0.0, 1.0), n_resamples=20, seed=0))
    no_ratio = verdict_intervals(*common[:-1], {**point, "tstr_ratio": None}, n_resamples=20, detection=detection,
                                 holdout_predictions=predictions)
    assert "tstr_ratio" not in no_ratio  # absent, not NaN
