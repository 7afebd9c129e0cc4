"""The report on tables like the held-out loans table: 55+ columns, a text column of thousands of categories (which
crashed scikit-learn's gradient boosting: "cardinality <= 255"), booleans, naive and tz-aware datetimes, constant and
empty columns; and each metric that changed for them against scikit-learn or a hand-computed value."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from synth_platform.evaluation import metrics
from synth_platform.evaluation.html_report import _tstr_bars, headline_png, render_html_report
from synth_platform.assets import metrics_table
from synth_platform.evaluation.report import build_report
from synth_platform.profiling.profile import apply_disclosure_control, profile_dataframe

EMPLOYERS = 10_000  # distinct employer names to draw from: 4,000 rows hold about 3,300 of them


def _employer_names() -> list[str]:
    """EMPLOYERS company-like names of two words ("Kotavi Logistics"): a category, not prose or a record number."""
    syllables = ["ka", "lo", "ri", "ta", "vi", "mo", "ne", "su", "do", "pe"]
    kinds = ["Logistics", "Foods", "Systems", "Motors", "Health", "Retail", "Energy", "Media", "Textiles", "Farms"]
    names = []
    for i in range(EMPLOYERS):
        digits = f"{i // 10:03d}"
        names.append("".join(syllables[int(d)] for d in digits).capitalize() + " " + kinds[i % 10])
    return names


def loans(n: int, seed: int) -> pd.DataFrame:
    """A loans-like table of 57 columns: employer (text, thousands of values), 20 floats, 6 integers, a nullable
    integer, 9 small categoricals, 2 booleans, 5 datetimes, a tz-aware datetime, a date as text, a constant number,
    a constant text, an empty column, a column 40% missing, zip3 (900 values), the term, a nullable boolean, a
    datetime 70% missing, a purpose, a grade, and the loan status (binary, depends on num1)."""
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {"employer": np.array(_employer_names())[rng.integers(0, EMPLOYERS, n)]}
    for i in range(20):
        columns[f"num{i}"] = rng.normal(i, 1 + i, n)
    for i in range(6):
        columns[f"int{i}"] = rng.integers(0, 50 * (i + 1), n)
    columns["nullable_int"] = pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 9, n)), dtype="Int64")
    for i in range(9):
        columns[f"cat{i}"] = rng.choice([f"c{j}" for j in range(2 + i * 3)], n)
    columns["flag"] = rng.random(n) < 0.3
    columns["autopay"] = rng.random(n) < 0.5
    for i in range(5):
        columns[f"date{i}"] = pd.to_datetime(1.0e9 + rng.uniform(0, 6e8, n), unit="s").round("s")
    columns["signed_at"] = pd.to_datetime(1.2e9 + rng.uniform(0, 3e8, n), unit="s", utc=True).round("s").tz_convert("Europe/Berlin")
    columns["day"] = pd.to_datetime(1.3e9 + rng.uniform(0, 3e8, n), unit="s").normalize().strftime("%Y-%m-%d")
    columns["constant_num"] = np.full(n, 7.0)
    columns["constant_text"] = "same"
    columns["empty"] = np.full(n, np.nan)
    columns["often_missing"] = np.where(rng.random(n) < 0.4, np.nan, rng.normal(size=n))
    columns["zip3"] = np.array([f"{i:03d}xx" for i in range(900)])[rng.integers(0, 900, n)]
    columns["term"] = rng.choice([36, 60], n)
    columns["verified"] = pd.array(np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.6), dtype="boolean")
    columns["closed_at"] = pd.to_datetime(1.4e9 + rng.uniform(0, 2e8, n), unit="s").round("s").where(rng.random(n) < 0.3)
    columns["purpose"] = rng.choice([f"purpose {j}" for j in range(14)], n)
    columns["grade"] = rng.choice(list("ABCDEFG"), n)
    columns["status"] = np.where(columns["num1"] + rng.normal(0, 2, n) > 1, "paid", "default")
    return pd.DataFrame(columns)


@pytest.fixture(scope="module")
def loans_report():
    """4,000 training and 1,000 holdout rows; the 'synthetic' side is 2,000 other rows of the same population,
    perturbed (num1 shifted, grade shuffled). rare_value_k=1 (coding off) so the employer column keeps its 3,000+
    categories, as a table without rare-value coding reaches the report."""
    rows = loans(5000, seed=1)
    profile = profile_dataframe(rows.iloc[:4000], rare_value_k=1)
    training, holdout = (apply_disclosure_control(part.reset_index(drop=True), profile)
                         for part in (rows.iloc[:4000], rows.iloc[4000:]))  # as the asset hands them over
    synthetic = loans(2000, seed=2)
    synthetic["num1"] = synthetic["num1"] + 1.0
    synthetic["grade"] = synthetic["grade"].sample(frac=1, random_state=0).to_numpy()
    start = time.perf_counter()
    report = build_report(training, holdout, synthetic, profile, privacy_rows=500, bootstrap_resamples=50, risk_attacks=300)
    page = render_html_report(report, training, synthetic, profile)
    print(f"report and page of {training.shape[1]} columns in {time.perf_counter() - start:.1f} s")  # measured, not judged
    return report, page, training, synthetic, profile


def test_the_report_on_a_57_column_table_with_3000_categories_completes_and_renders(loans_report):
    report, page, training, synthetic, profile = loans_report
    assert training.shape[1] == 57 and training["employer"].nunique() > 3000
    compared = profile.by_kind("numeric", "datetime", "categorical")
    assert "employer" in profile.by_kind("categorical") and profile.column("signed_at").kind == "datetime"
    # Every metric is computed (none skipped for this table) and finite; the report is strict JSON.
    assert all(value is not None and np.isfinite(value) for value in report["metrics"].values()), report["metrics"]
    json.dumps(report, allow_nan=False)
    utility = report["train_synthetic_test_real"]
    assert utility["target"] == "status" and utility["target_classes_grouped"] == 0
    assert 0.5 < utility["train_real_test_real"]["score"] <= 1.0
    assert 0.0 <= report["metrics"]["detection_auc"] <= 1.0
    assert {row["column"] for row in report["per_column"]} == set(compared)
    assert report["verdicts"] and "detection_auc" in {record.data["metric"] for record in metrics_table(report).value.records}
    # One marginal plot per compared column; the prediction and verdict plots are there.
    assert len(re.findall(r'data-plot="marginals"', page)) == len(compared)
    assert 'data-plot="tstr"' in page and 'data-plot="verdicts"' in page
    assert headline_png(report).startswith(b"\x89PNG")


def test_category_levels_keep_the_most_frequent_and_group_the_rest():
    values = pd.Series(["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 3 + ["e"] + [None] * 2)
    # At most 4 levels: the 3 most frequent (c before d on a tie of counts: by label) and "(other)".
    assert metrics.category_levels(values, max_levels=4) == sorted(["a", "b", "c", metrics.OTHER_LEVEL])
    assert metrics.category_levels(values, max_levels=6) == sorted(["a", "b", "c", "d", "e", metrics.MISSING])
    grouped = metrics._design_matrix(values.to_frame("x"), ["x"], {"x": metrics.category_levels(values, 4)})["x"]
    assert list(grouped.cat.categories) == sorted(["a", "b", "c", metrics.OTHER_LEVEL])
    assert grouped.astype(str).tolist() == ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + [metrics.OTHER_LEVEL] * 6
    # A category that is itself called "(other)" shares the group's level: still at most max_levels.
    clash = pd.Series(["(other)"] * 9 + ["a"] * 5 + ["b", "c", "d"])
    assert metrics.category_levels(clash, max_levels=3) == ["(other)", "a"]


def _code_frames(seed: int = 0):
    """Real and 'synthetic' rows with a 401-category column `code`: 254 common codes k000-k253 (3 rows each per
    side) and 147 rare ones (one row, on one side only); the synthetic side's x is shifted."""
    rng = np.random.default_rng(seed)
    common = [f"k{i:03d}" for i in range(254)] * 3
    real = pd.DataFrame({"code": common + [f"r{i:03d}" for i in range(74)]})
    synthetic = pd.DataFrame({"code": common + [f"s{i:03d}" for i in range(73)]})
    real["x"] = rng.normal(0, 1, len(real))
    synthetic["x"] = rng.normal(0.4, 1, len(synthetic))
    return real, synthetic


def test_grouped_detection_auc_equals_scikit_learns_on_the_manually_grouped_frame():
    """401 categories (before the fix: scikit-learn's "cardinality <= 255" error). The reference: the same rows,
    the rare codes replaced by hand with one "(other)" category, scikit-learn's gradient boosting, out-of-fold."""
    real, synthetic = _code_frames()
    ours = metrics.detection_auc(real, synthetic, ["code"], seed=3)
    n = min(len(real), len(synthetic))
    rng = np.random.default_rng(3)  # the rows detection_auc draws: n of each side, real first
    rows = pd.concat([real.iloc[rng.choice(len(real), n, replace=False)],
                      synthetic.iloc[rng.choice(len(synthetic), n, replace=False)]], ignore_index=True)
    grouped = rows["code"].where(rows["code"].str.startswith("k"), "(other)")
    design = pd.DataFrame({"code": pd.Categorical(grouped, categories=sorted(set(grouped))), "x": rows["x"]})
    assert len(design["code"].cat.categories) == 255
    labels = np.r_[np.zeros(n), np.ones(n)]
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=3, max_iter=100)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=3)
    reference = roc_auc_score(labels, cross_val_predict(model, design, labels, cv=folds, method="predict_proba")[:, 1])
    assert ours == pytest.approx(reference, abs=1e-12)
    assert 0.55 < ours < 1.0  # the shifted x is seen


def test_tstr_with_a_high_cardinality_feature_equals_scikit_learn_on_the_manually_grouped_frames():
    real, synthetic = _code_frames(seed=1)
    # The synthetic rows hold the real rows' codes, rare ones included: 300+ distinct codes to train on.
    synthetic["code"] = real["code"].sample(frac=1, random_state=0).to_numpy()[: len(synthetic)]
    assert synthetic["code"].nunique() > 300
    for frame in (real, synthetic):
        frame["y"] = np.where(frame["x"] > 0.2, "high", "low")
    training, holdout = real.iloc[::2].reset_index(drop=True), real.iloc[1::2].reset_index(drop=True)
    result = metrics.train_synthetic_test_real(synthetic, training, holdout, "y", ["code", "y"], seed=0)
    # By hand: levels from the real rows (training and holdout): the 254 common codes, the rest "(other)".
    def design(frame):
        grouped = frame["code"].where(frame["code"].str.startswith("k"), "(other)")
        return pd.DataFrame({"code": pd.Categorical(grouped, categories=sorted({f"k{i:03d}" for i in range(254)} | {"(other)"})),
                             "x": frame["x"]})
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0, max_iter=200)
    predicted = model.fit(design(synthetic), synthetic["y"]).predict(design(holdout))
    assert result["train_synthetic_test_real"]["macro_f1"] == pytest.approx(f1_score(holdout["y"], predicted, average="macro"), abs=1e-12)
    assert result["train_synthetic_test_real"]["score"] > 0.9  # y is a threshold on x


def test_tstr_of_single_class_absent_class_missing_and_many_class_targets():
    rng = np.random.default_rng(4)
    n = 300
    real = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])})
    training, holdout = real.iloc[:200].reset_index(drop=True), real.iloc[200:].reset_index(drop=True)
    truth = holdout["g"]
    # One class in the synthetic rows: the model predicts it everywhere, scored as any prediction.
    one = metrics.train_synthetic_test_real(training.assign(g="a"), training, holdout, "g", ["g"])["train_synthetic_test_real"]
    assert one["macro_f1"] == pytest.approx(f1_score(truth, ["a"] * len(truth), average="macro", zero_division=0.0))
    assert one["accuracy"] == pytest.approx((truth == "a").mean()) and "only one class" in one["note"]
    # A class absent from the synthetic rows costs its share of the macro F1 (its F1 is 0), and nothing crashes.
    absent = metrics.train_synthetic_test_real(training[training["g"] != "c"], training, holdout, "g", ["g"])
    assert 0.0 < absent["train_synthetic_test_real"]["score"] <= 2 / 3 + 1e-12
    # A target with no value: no score (None, with a note), not 0 and not a crash; regression as classification.
    empty = metrics.train_synthetic_test_real(training.assign(x=np.nan), training, holdout, "x", ["g"])
    assert empty["train_synthetic_test_real"]["score"] is None and "no row with a value" in empty["train_synthetic_test_real"]["note"]
    assert empty["ratio"] is None and empty["train_real_test_real"]["score"] is not None
    # 60 classes: the 19 most frequent kept, the other 41 grouped into "(other)".
    many = real.assign(g=[f"g{i % 60:02d}" for i in range(n)])
    grouped = metrics.train_synthetic_test_real(many.iloc[:200], many.iloc[:200], many.iloc[200:], "g", ["g"])
    assert grouped["target_classes_grouped"] == 60 - (metrics.MAX_TARGET_CLASSES - 1)
    assert np.isfinite(grouped["train_synthetic_test_real"]["score"])


def test_an_empty_numeric_column_changes_nothing_in_the_models():
    """scikit-learn's gradient boosting fails on a feature without any value ("window shape cannot be larger than
    input array shape"): such a column carries nothing, so the metrics equal those of the table without it."""
    real, synthetic = _code_frames(seed=2)
    real, synthetic = real.assign(code=real["code"].str[:2]), synthetic.assign(code=synthetic["code"].str[:2])
    with_empty = metrics.detection_auc(real.assign(empty=np.nan), synthetic.assign(empty=np.inf), ["code"], seed=0)
    assert with_empty == metrics.detection_auc(real, synthetic, ["code"], seed=0)
    for frame in (real, synthetic):
        frame["y"] = np.where(frame["x"] > 0, "p", "n")
    training, holdout = real.iloc[::2], real.iloc[1::2]
    plain = metrics.train_synthetic_test_real(synthetic, training, holdout, "y", ["code", "y"])
    empty = metrics.train_synthetic_test_real(synthetic.assign(z=np.nan), training.assign(z=1.0), holdout.assign(z=2.0),
                                              "y", ["code", "y"])
    assert empty["train_synthetic_test_real"] == plain["train_synthetic_test_real"]


def test_pairwise_correlation_with_datetime_offsets_and_constant_stretches_equals_pandas():
    """The bootstrap's weighted correlation (pairwise-complete, all pairs at once) against pandas on the resampled
    rows: datetime-sized values (1.6e9 s), missing values, a column constant where another is present."""
    rng = np.random.default_rng(5)
    n = 1500
    frame = pd.DataFrame({
        "signed": 1.6e9 + rng.normal(0, 1e5, n),
        "paid": 1.6e9 + rng.normal(0, 1e5, n),
        "amount": rng.lognormal(8, 1, n),
        "rate": rng.normal(size=n),
    })
    frame["paid"] += frame["signed"] - 1.6e9  # correlated
    frame.loc[rng.random(n) < 0.2, "signed"] = np.nan
    frame.loc[rng.random(n) < 0.3, "amount"] = np.nan
    frame.loc[frame["amount"].notna(), "rate"] = 0.25  # constant wherever amount is present
    values = frame.to_numpy()
    for _ in range(3):
        rows = rng.integers(0, n, n)
        expected = np.nan_to_num(frame.iloc[rows].corr().to_numpy())
        got = metrics.weighted_correlation(values, np.bincount(rows, minlength=n).astype(float))
        np.fill_diagonal(expected, 1.0)
        np.testing.assert_allclose(got, expected, atol=1e-9)
    assert abs(got[0, 1]) > 0.5 and got[2, 3] == 0.0


def test_the_default_target_skips_constant_and_high_cardinality_columns_and_a_bad_target_is_named():
    rows = loans(600, seed=3)
    profile = profile_dataframe(rows.iloc[:400], rare_value_k=1)
    training, holdout = rows.iloc[:400].reset_index(drop=True), rows.iloc[400:].reset_index(drop=True)
    synthetic = loans(300, seed=4)
    narrow = ["employer", "num1", "num2", "status", "constant_text"]
    small = profile_dataframe(training[narrow], rare_value_k=1)
    report = build_report(training[narrow], holdout[narrow], synthetic[narrow], small, privacy_rows=100,
                          bootstrap_resamples=10, risk_attacks=50)
    assert report["train_synthetic_test_real"]["target"] == "status"  # not the constant text, not the employers
    no_status = [c for c in narrow if c != "status"]
    report = build_report(training[no_status], holdout[no_status], synthetic[no_status],
                          profile_dataframe(training[no_status], rare_value_k=1), privacy_rows=100,
                          bootstrap_resamples=10, risk_attacks=50)
    assert report["train_synthetic_test_real"]["target"] == "num2"  # the last numeric column, not 300+ employers
    with pytest.raises(ValueError, match=r"target_column 'loan_id' cannot be predicted in the report: the table has no "
                                         r"such column\. Set target_column to one of the compared columns"):
        build_report(training, holdout, synthetic, profile, target="loan_id", privacy_rows=100, bootstrap_resamples=10)


def test_an_undefined_prediction_score_is_drawn_as_n_a_not_as_zero():
    """A synthetic table whose target column is empty has no TSTR score (None, with its note); the page says n/a
    where it drew a bar labelled 0.000 (as if the model predicted nothing right)."""
    rows = loans(500, seed=6)[["num1", "num2", "grade", "status"]]
    training, holdout = rows.iloc[:300].reset_index(drop=True), rows.iloc[300:].reset_index(drop=True)
    synthetic = loans(200, seed=7)[["num1", "num2", "grade", "status"]].assign(status=None)
    profile = profile_dataframe(training)
    report = build_report(training, holdout, synthetic, profile, target="status", privacy_rows=100,
                          bootstrap_resamples=10, risk_attacks=50)
    utility = report["train_synthetic_test_real"]
    assert utility["train_synthetic_test_real"]["score"] is None and report["metrics"]["tstr_score"] is None
    real = utility["train_real_test_real"]["score"]
    assert _tstr_bars(utility) == [(0.0, "n/a"), (real, f"{real:.3f}")]
    page = render_html_report(report, training, synthetic, profile)
    assert "no row with a value of the target &#x27;status&#x27; to train on" in page
    assert "trained on synthetic n/a" in page  # the plot's alt text
