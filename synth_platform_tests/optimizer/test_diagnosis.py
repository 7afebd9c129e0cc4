"""Diagnosis on real reports: Adult rows with a known defect built in, judged by the real report."""

import numpy as np
import pytest

from synth_platform.evaluation.report import Thresholds, build_report
from synth_platform.optimizer.diagnosis import (
    CORRELATION,
    DOWNSTREAM,
    DUPLICATES,
    FIDELITY,
    PRIVACY,
    UTILITY,
    diagnose,
    worst_correlation_pairs,
)
from synth_platform.profiling.profile import profile_dataframe


@pytest.fixture(scope="module")
def parts(adult):
    rows = adult.sample(1400, random_state=1).reset_index(drop=True)
    training, holdout, fresh = rows.iloc[:600], rows.iloc[600:1000], rows.iloc[1000:]
    return training.reset_index(drop=True), holdout.reset_index(drop=True), fresh.reset_index(drop=True)


def _report(parts, synthetic, **kwargs):
    training, holdout, _ = parts
    return build_report(training, holdout, synthetic, profile_dataframe(training), privacy_rows=200, bootstrap_resamples=20,
                        **kwargs)


def test_fresh_rows_from_the_population_pass_every_check(parts):
    # 400 real rows against 600: a model trained on fewer rows predicts a little worse, and at this size the TSTR
    # ratio of real rows scatters by several hundredths (0.93 here), so its limit is 0.90 for this table.
    diagnosis = diagnose(_report(parts, parts[2], thresholds=Thresholds(tstr_ratio_min=0.90)))
    assert diagnosis.findings == () and diagnosis.kind == "none"
    assert diagnosis.margins["membership_inference_auc"] > 0


def test_shifted_columns_are_a_utility_failure_that_names_them(parts):
    synthetic = parts[2].copy()
    synthetic["age"] = synthetic["age"] + 25
    synthetic["hours_per_week"] = synthetic["hours_per_week"] * 2
    diagnosis = diagnose(_report(parts, synthetic))
    finding = diagnosis.finding(UTILITY)
    assert finding is not None and diagnosis.primary.failure == UTILITY
    assert set(finding.drivers[:2]) == {"age", "hours_per_week"}
    assert "`age`" in finding.cause and f"{finding.value:.3f}" in finding.cause


def test_independently_shuffled_columns_are_a_correlation_failure_that_names_the_pairs(parts):
    synthetic = parts[2].copy()
    rng = np.random.default_rng(0)
    numeric = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    for column in numeric:  # marginals kept, every dependence between columns destroyed
        synthetic[column] = rng.permutation(synthetic[column].to_numpy())
    # Strengthen one real dependence in the training part so the failure is certain and its driver known.
    training = parts[0].copy()
    training["hours_per_week"] = training["age"] + rng.integers(0, 3, len(training))
    report = build_report(training, parts[1], synthetic, profile_dataframe(training), privacy_rows=200, bootstrap_resamples=20)
    diagnosis = diagnose(report)
    finding = diagnosis.finding(CORRELATION)
    assert finding is not None
    assert finding.drivers[0] == "age×hours_per_week"
    assert worst_correlation_pairs(report["correlation"])[0][:2] == ("age", "hours_per_week")
    assert "`age`×`hours_per_week`" in finding.cause


def test_copied_training_rows_are_privacy_and_duplicate_failures_privacy_first(parts):
    synthetic = parts[0].sample(400, random_state=0).reset_index(drop=True)
    diagnosis = diagnose(_report(parts, synthetic))
    assert diagnosis.failures[:2] == (PRIVACY, DUPLICATES)
    assert diagnosis.kind.startswith("several (privacy+duplicates")
    privacy, copies = diagnosis.finding(PRIVACY), diagnosis.finding(DUPLICATES)
    assert privacy.value > 0.75 and "memorises" in privacy.cause  # 2 of 3 members are copied
    assert copies.value == pytest.approx(1.0) and "400 of 400 rows" in copies.cause and "memorised, not chance" in copies.cause
    assert diagnosis.to_dict()["findings"][0]["check"] == "membership_inference_auc_within_threshold"


def test_independently_sampled_columns_are_fidelity_and_downstream_failures_that_quote_their_numbers(parts):
    training = parts[0]
    rng = np.random.default_rng(3)
    # Every column of the training rows shuffled on its own: the marginals exact, every dependence gone.
    synthetic = training.apply(lambda column: rng.permutation(column.to_numpy())).reset_index(drop=True)
    report = _report(parts, synthetic)
    diagnosis = diagnose(report)
    assert diagnosis.failures[-2:] == (FIDELITY, DOWNSTREAM)  # after every "all green" kind
    detection, downstream = diagnosis.finding(FIDELITY), diagnosis.finding(DOWNSTREAM)
    assert detection.value == report["metrics"]["detection_auc"] > 0.75 and detection.excess > 0
    assert f"Detection AUC {detection.value:.3f} > 0.75" in detection.cause
    # marginals kept, so the separating pairs are named, with their numbers; the strongest real association of
    # Adult (relationship × sex, Cramér's V about 0.65) is among them
    assert "pairs whose dependence differs most" in detection.cause and "columns whose values differ" not in detection.cause
    assert any(set(driver.split("×")) == {"relationship", "sex"} for driver in detection.drivers), detection.drivers
    assert "Cramér's V 0.6" in detection.cause
    m = report["metrics"]
    assert downstream.value == pytest.approx(m["tstr_score"] / m["trtr_score"]) and downstream.value < 0.96
    assert downstream.direction == "at_least" and downstream.excess == pytest.approx(0.96 - downstream.value)
    assert f"TSTR/TRTR ratio {downstream.value:.3f} < 0.96" in downstream.cause
    assert f"scores {m['tstr_score']:.3f} (macro_f1)" in downstream.cause and f"vs {m['trtr_score']:.3f}" in downstream.cause
    assert downstream.drivers == ("income",) and "`income`" in downstream.cause
    # margins are positive when passing in both directions, negative here
    assert diagnosis.margins["tstr_ratio"] == pytest.approx(downstream.value - 0.96) and diagnosis.margins["tstr_ratio"] < 0
    assert diagnosis.margins["detection_auc"] == pytest.approx(0.75 - detection.value) and diagnosis.margins["detection_auc"] < 0
