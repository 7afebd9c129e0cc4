"""Each metric against a reference implementation nobody here wrote (SDMetrics, SciPy, scikit-learn) or a
hand-computed case."""

import numpy as np
import pandas as pd
import pytest
from sdmetrics.column_pairs import CorrelationSimilarity
from sdmetrics.single_column import KSComplement, TVComplement
from sdmetrics.single_table import NewRowSynthesis

from synth_platform.evaluation import distances, metrics


@pytest.fixture(scope="module")
def halves(adult):
    shuffled = adult.sample(6000, random_state=1).reset_index(drop=True)
    return shuffled.iloc[:3000].reset_index(drop=True), shuffled.iloc[3000:].reset_index(drop=True)


@pytest.mark.parametrize("column", ["age", "fnlwgt", "capital_gain", "hours_per_week"])
def test_ks_statistic_matches_sdmetrics_ks_complement(halves, column):
    real, other = halves
    shifted = other[column] * 1.1 + 3
    for synthetic in (other[column], shifted):
        assert metrics.ks_statistic(real[column], synthetic) == pytest.approx(
            1 - KSComplement.compute(real[column], synthetic), abs=1e-9
        )


@pytest.mark.parametrize("column", ["workclass", "education", "race", "income"])
def test_total_variation_distance_matches_sdmetrics_tv_complement(halves, column):
    real, other = halves
    real_col, other_col = real[column].fillna("?"), other[column].fillna("?")
    assert metrics.total_variation_distance(real_col, other_col) == pytest.approx(
        1 - TVComplement.compute(real_col, other_col), abs=1e-9
    )


def test_total_variation_distance_counts_missing_as_a_category():
    real = pd.Series(["a", "a", None, None])
    synthetic = pd.Series(["a", "a", "a", "a"])
    # p = {a: .5, missing: .5}, q = {a: 1}: ½(|.5-1| + |.5-0|) = .5 (SDMetrics drops missing values and would say 0).
    assert metrics.total_variation_distance(real, synthetic) == pytest.approx(0.5)
    assert metrics.total_variation_distance(real, real) == 0.0
    assert metrics.total_variation_distance(pd.Series(["x"] * 5), pd.Series(["y"] * 5)) == 1.0


def test_correlation_delta_matches_sdmetrics_correlation_similarity(halves):
    real, other = halves
    synthetic = other.copy()
    synthetic["hours_per_week"] = synthetic["hours_per_week"].sample(frac=1, random_state=0).to_numpy()  # a shuffled column
    columns = ["age", "education_num", "hours_per_week"]
    ours = metrics.correlation_delta(real, synthetic, columns)
    deltas = []
    for i, a in enumerate(columns):
        for b in columns[i + 1:]:
            similarity = CorrelationSimilarity.compute(real[[a, b]], synthetic[[a, b]], coefficient="Pearson")
            deltas.append(2 * (1 - similarity))  # similarity = 1 - |Δρ| / 2
    assert ours["pairs"] == 3
    assert ours["mean"] == pytest.approx(np.mean(deltas), abs=1e-9)
    assert "hours_per_week" in ours["worst_pair"]
    assert metrics.correlation_delta(real, real, columns)["mean"] == 0.0


def test_exact_copy_rate_matches_sdmetrics_new_row_synthesis(halves):
    real, other = halves
    columns = ["age", "workclass", "education", "sex", "income"]
    real, other = real[columns].fillna("?"), other[columns].fillna("?")
    synthetic = pd.concat([real.iloc[:300], other.iloc[:700]], ignore_index=True)  # 300 copies, others may collide
    metadata = {"columns": {"age": {"sdtype": "numerical"}, **{c: {"sdtype": "categorical"} for c in columns[1:]}}}
    new_rows = NewRowSynthesis.compute(real, synthetic, metadata, numerical_match_tolerance=0.0)
    assert metrics.exact_copy_rate(synthetic, real) == pytest.approx(1 - new_rows, abs=1e-9)
    assert metrics.exact_copy_rate(synthetic, real) >= 0.3


def test_exact_copy_rate_known_cases(adult_small):
    assert metrics.exact_copy_rate(adult_small, adult_small) == 1.0
    disjoint = adult_small.assign(age=adult_small["age"] + 1000)
    assert metrics.exact_copy_rate(disjoint, adult_small) == 0.0
    # Missing matches missing; an integer equals the same value stored as a float.
    a = pd.DataFrame({"x": [1, 2], "c": ["u", None]})
    b = pd.DataFrame({"x": [1.0, 2.0], "c": ["u", None]})
    assert metrics.exact_copy_rate(b, a) == 1.0


def _brute_force_dcr(query, reference, numeric, categorical):
    span = {c: (reference[c].max() - reference[c].min()) or 1.0 for c in numeric}
    out = []
    for _, q in query.iterrows():
        best = np.inf
        for _, r in reference.iterrows():
            d = sum(min(abs(q[c] - r[c]) / span[c], 1.0) for c in numeric) + sum(q[c] != r[c] for c in categorical)
            best = min(best, d / (len(numeric) + len(categorical)))
        out.append(best)
    return np.array(out)


def test_distance_to_closest_record_matches_a_brute_force_definition(adult):
    numeric, categorical = ["age", "hours_per_week", "capital_gain"], ["sex", "race", "income"]
    reference = adult.iloc[:60][numeric + categorical]
    query = adult.iloc[100:125][numeric + categorical]
    space = distances.MixedSpace.fit(reference, numeric, categorical)
    ours = distances.distance_to_closest_record(space.transform(query), space.transform(reference), space.n_columns)
    np.testing.assert_allclose(ours, _brute_force_dcr(query, reference, numeric, categorical), rtol=1e-5, atol=1e-6)
    self_distance = distances.distance_to_closest_record(space.transform(reference), space.transform(reference), space.n_columns)
    assert np.all(self_distance == 0)


def test_membership_inference_auc_detects_copies_and_not_independent_samples(adult):
    numeric, categorical = ["age", "fnlwgt", "hours_per_week"], ["workclass", "occupation", "sex"]
    rows = adult.sample(3000, random_state=2)[numeric + categorical].reset_index(drop=True)
    training, holdout, independent = rows.iloc[:1000], rows.iloc[1000:2000], rows.iloc[2000:]
    space = distances.MixedSpace.fit(training, numeric, categorical)

    def auc(synthetic):
        reference = space.transform(synthetic)
        members = distances.distance_to_closest_record(space.transform(training), reference, space.n_columns)
        non_members = distances.distance_to_closest_record(space.transform(holdout), reference, space.n_columns)
        return metrics.membership_inference_auc(members, non_members)

    assert auc(training) > 0.95  # a copy of the training rows leaks membership
    assert abs(auc(independent) - 0.5) < 0.05  # fresh rows from the same population do not


def test_dcr_share_known_cases():
    assert metrics.dcr_share(np.array([0.0, 0.0]), np.array([1.0, 1.0])) == 1.0
    assert metrics.dcr_share(np.array([1.0, 0.2]), np.array([0.5, 0.2])) == 0.25
    assert metrics.dcr_share(np.array([0.3]), np.array([0.3])) == 0.5


def test_train_synthetic_test_real_on_real_rows_equals_train_real(adult):
    rows = adult.sample(3000, random_state=3).reset_index(drop=True)
    training, holdout = rows.iloc[:2000], rows.iloc[2000:]
    categorical = [c for c in rows.columns if rows[c].dtype == object]
    result = metrics.train_synthetic_test_real(training, training, holdout, "income", categorical)
    assert result["task"] == "classification"
    assert result["train_synthetic_test_real"] == result["train_real_test_real"]
    assert 0.7 < result["train_real_test_real"]["accuracy"] < 0.95
    shuffled = training.assign(income=training["income"].sample(frac=1, random_state=0).to_numpy())
    noise = metrics.train_synthetic_test_real(shuffled, training, holdout, "income", categorical)
    assert noise["train_synthetic_test_real"]["score"] < noise["train_real_test_real"]["score"] - 0.1
    regression = metrics.train_synthetic_test_real(training, training, holdout, "age", categorical)
    assert regression["task"] == "regression" and regression["score_name"] == "r2"


def test_detection_auc_known_cases(adult):
    rows = adult.sample(8000, random_state=5).reset_index(drop=True)
    real, other = rows.iloc[:4000].reset_index(drop=True), rows.iloc[4000:].reset_index(drop=True)
    categorical = [c for c in rows.columns if rows[c].dtype == object]
    # Two samples of one population cannot be told apart.
    assert abs(metrics.detection_auc(real, other, categorical) - 0.5) < 0.05
    # Every marginal kept (TVD of each column 0) but the sex/relationship link broken: a classifier sees it.
    shuffled = other.assign(sex=other["sex"].sample(frac=1, random_state=0).to_numpy())
    assert metrics.total_variation_distance(other["sex"], shuffled["sex"]) == 0.0
    assert metrics.detection_auc(real, shuffled, categorical) > 0.6
    # A shifted column gives every synthetic row away.
    assert metrics.detection_auc(real, other.assign(age=other["age"] + 50), categorical) > 0.99


def test_weighted_ks_equals_ks_of_the_resampled_rows(adult):
    rng = np.random.default_rng(0)
    real = adult["capital_gain"].iloc[:3000].astype(float).copy()
    real.iloc[::9] = np.nan
    synthetic = adult["capital_gain"].iloc[3000:5000] * 1.05
    weighted = metrics.WeightedKS(real, synthetic)
    for _ in range(5):
        r, s = rng.integers(0, len(real), len(real)), rng.integers(0, len(synthetic), len(synthetic))
        expected = metrics.ks_statistic(real.iloc[r], synthetic.iloc[s])
        got = weighted.statistic(np.bincount(r, minlength=len(real)).astype(float), np.bincount(s, minlength=len(synthetic)).astype(float))
        assert got == pytest.approx(expected, abs=1e-12)


def test_weighted_correlation_equals_pandas_on_the_resampled_rows(adult):
    rng = np.random.default_rng(1)
    frame = adult[["age", "education_num", "hours_per_week", "capital_loss"]].iloc[:2000].astype(float)
    for with_missing in (False, True):
        values = frame.copy()
        if with_missing:
            values.iloc[::11, 0] = np.nan
            values.iloc[::13, 2] = np.nan
        rows = rng.integers(0, len(values), len(values))
        expected = values.iloc[rows].corr().to_numpy()
        got = metrics.weighted_correlation(values.to_numpy(), np.bincount(rows, minlength=len(values)).astype(float))
        np.testing.assert_allclose(got, expected, atol=1e-9)


def test_rank_auc_equals_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    positive, negative = rng.integers(0, 5, 300).astype(float), rng.integers(0, 6, 250).astype(float)
    expected = roc_auc_score(np.r_[np.ones(300), np.zeros(250)], np.r_[positive, negative])
    assert metrics.rank_auc(positive, negative) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="at least one"):
        metrics.rank_auc(positive, np.array([]))


def test_exact_copy_rate_compares_numbers_given_as_text_as_numbers():
    training = pd.DataFrame({"code": ["1", "2", None], "when": pd.to_datetime(["2020-01-01", "2021-01-01", None])})
    synthetic = pd.DataFrame({"code": [1.0, 2.0, None, 3.0], "when": pd.to_datetime(["2020-01-01", "2021-01-02", None, "2020-01-01"])})
    # Rows 0 and 2 copy a training row (missing equals missing); row 1 differs by a day; row 3 has an unseen code.
    assert metrics.exact_copy_rate(synthetic, training) == 0.5


def test_bias_corrected_cramers_v_known_answers_and_size_independence(adult):
    # Perfect association stays 1 and independence stays 0 after Bergsma's correction.
    assert metrics.cramers_v(np.array([[10.0, 0.0], [0.0, 10.0]]), bias_corrected=True) == pytest.approx(1.0)
    assert metrics.cramers_v(np.array([[5.0, 5.0], [5.0, 5.0]]), bias_corrected=True) == 0.0
    # Hand-computed: [[20, 10], [5, 15]], n = 50: χ² = 8.333, φ² = 0.1667 - 1/49, r̃ = k̃ = 2 - 1/49.
    phi2 = (50 * (20 * 15 - 10 * 5) ** 2 / (30 * 20 * 25 * 25)) / 50 - 1 / 49
    assert metrics.cramers_v(np.array([[20.0, 10.0], [5.0, 15.0]]), bias_corrected=True) == pytest.approx(
        np.sqrt(phi2 / (1 - 1 / 49)), abs=1e-12)
    # Two samples of one population, 30,000 and 10,000 rows: the uncorrected V of a many-category pair differs by
    # size alone; the corrected one much less.
    rows = adult.sample(40000, random_state=7).reset_index(drop=True)
    big, small = rows.iloc[:30000], rows.iloc[30000:]
    gaps = {}
    for corrected in (False, True):
        values = []
        for frame in (big, small):
            a, _ = metrics.pair_codes(frame["age"], frame["age"], True)
            b, _ = metrics.pair_codes(frame["native_country"], frame["native_country"], False)
            values.append(metrics.cramers_v(_table(a, b), bias_corrected=corrected))
        gaps[corrected] = abs(values[0] - values[1])
    assert gaps[True] < gaps[False] / 2, gaps


def _table(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)
    return table


def test_detection_predictions_are_what_detection_auc_scores(adult):
    """The refactored detection AUC: its labels (real first) and out-of-fold probabilities, scored by sklearn."""
    from sklearn.metrics import roc_auc_score

    rows = adult.sample(2400, random_state=6).reset_index(drop=True)
    real, other = rows.iloc[:1200].reset_index(drop=True), rows.iloc[1200:].reset_index(drop=True)
    synthetic = other.assign(age=other["age"] + 3)
    categorical = [c for c in rows.columns if rows[c].dtype == object]
    labels, probabilities = metrics.detection_predictions(real, synthetic, categorical, max_rows=1000, seed=2)
    assert labels.tolist() == [0.0] * 1000 + [1.0] * 1000 and probabilities.shape == (2000,)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    expected = roc_auc_score(labels, probabilities)
    assert metrics.detection_auc(real, synthetic, categorical, max_rows=1000, seed=2) == expected
    assert metrics.detection_auc_of(labels, probabilities) == expected


def test_train_synthetic_test_real_keeps_its_predictions_apart_from_its_result(adult):
    """The predictions come back beside the JSON-ready result, never in it, and score what the result says."""
    import json

    rows = adult.sample(1500, random_state=7).reset_index(drop=True)
    training, holdout, synthetic = rows.iloc[:600], rows.iloc[600:1000], rows.iloc[1000:]
    categorical = [c for c in rows.columns if rows[c].dtype == object]
    for target, task in (("income", "classification"), ("age", "regression")):
        result, predictions = metrics.train_synthetic_test_real_with_predictions(
            synthetic, training, holdout, target, categorical)
        assert result == metrics.train_synthetic_test_real(synthetic, training, holdout, target, categorical)
        json.dumps(result)  # plain numbers and text only
        assert set(result) == {"target", "task", "score_name", "train_synthetic_test_real", "train_real_test_real",
                               "ratio", "target_classes_grouped"}
        assert set(result["train_synthetic_test_real"]) <= {"accuracy", "macro_f1", "r2", "score", "note"}
        assert predictions.task == task == result["task"] and len(predictions.truth) == len(holdout)
        for side, predicted in (("train_synthetic_test_real", predictions.synthetic_trained),
                                ("train_real_test_real", predictions.real_trained)):
            assert len(predicted) == len(holdout)
            assert metrics.holdout_score(task, predictions.truth, predicted) == result[side]["score"]
    # No feature to learn from: no score, so no predictions either.
    result, predictions = metrics.train_synthetic_test_real_with_predictions(
        synthetic[["income"]], training[["income"]], holdout[["income"]], "income", ["income"])
    assert result["train_synthetic_test_real"]["score"] is None
    assert predictions.synthetic_trained is None and predictions.real_trained is None


def test_macro_f1_of_codes_equals_scikit_learn_on_resampled_rows():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(4)
    # Four labels; label 3 is rare and label 2 never predicted, so resamples lose labels from either side.
    truth = rng.choice(4, 300, p=[0.5, 0.3, 0.18, 0.02])
    predicted = np.where(rng.random(300) < 0.7, truth, rng.choice(2, 300))
    predicted[predicted == 2] = 0
    for _ in range(20):
        rows = rng.integers(0, 300, 300)
        expected = f1_score(truth[rows], predicted[rows], average="macro", zero_division=0.0)
        assert metrics.macro_f1_of_codes(truth[rows], predicted[rows], 4) == pytest.approx(expected, abs=1e-12)
    assert metrics.macro_f1_of_codes(np.array([1, 1]), np.array([1, 1]), 3) == 1.0  # only label 1 present
