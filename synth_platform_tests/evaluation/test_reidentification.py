"""Re-identification risks (anonymeter's singling out, linkability, inference) against hand counts, independent
brute-force re-implementations (pandas predicates, a naive mixed-type distance), statsmodels' Wilson interval,
the risk formula, and the known answers of the anonymeter paper: a copy of the training rows is high risk, fresh
rows of the same population are not."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.optimize import curve_fit
from statsmodels.stats.proportion import proportion_confint

from synth_platform.evaluation import reidentification as reid
from synth_platform.evaluation.reidentification import (
    fit_singling_out_model,
    inference_correct,
    inference_risk,
    linkability_risk,
    privacy_risk,
    reidentification_risks,
    singling_out_probability_integral,
    singling_out_risk,
    success_rate,
)
from synth_platform.evaluation.uncertainty import wilson_interval

SECRETS = [f"s{i}" for i in range(5)]


def population(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Mixed rows; `secret` depends on nothing; `income` and `weight` are continuous, so every row is unique on
    each of the halves (age, income, sex) and (weight, region, smoker)."""
    return pd.DataFrame({
        "age": rng.integers(18, 90, n),
        "income": np.round(rng.lognormal(10, 0.6, n), 2),
        "sex": rng.choice(["F", "M"], n),
        "weight": np.round(rng.normal(70, 12, n), 4),
        "region": rng.choice(list("ABCDEFG"), n),
        "smoker": rng.choice(np.array(["yes", "no", None], dtype=object), n, p=[0.2, 0.7, 0.1]),
        "secret": rng.choice(SECRETS, n),
    })


HALF_A, HALF_B = ["age", "income", "sex"], ["weight", "region", "smoker"]
AUX = HALF_A + HALF_B


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(2023)
    original, fresh, control = population(3000, rng), population(3000, rng), population(3000, rng)
    assert not original.duplicated(HALF_A).any() and not original.duplicated(HALF_B).any()
    return original, fresh, control


# --------------------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, derandomize=True)
@given(n=st.integers(1, 5000), data=st.data())
def test_success_rate_is_the_wilson_interval(n, data):
    k = data.draw(st.integers(0, n))
    rate, error = success_rate(k, n)
    expected = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert (max(0.0, rate - error), min(1.0, rate + error)) == pytest.approx(expected, abs=1e-9)
    assert (max(0.0, rate - error), min(1.0, rate + error)) == pytest.approx(wilson_interval(k, n), abs=1e-9)
    # anonymeter's point estimate is the Wilson centre, not k / n.
    assert rate == pytest.approx((k + 1.959963984540054**2 / 2) / (n + 1.959963984540054**2), abs=1e-12)


def test_risk_formula_and_its_propagated_interval():
    risk, (low, high) = privacy_risk((0.5, 0.02), (0.2, 0.01))
    assert risk == pytest.approx(0.3 / 0.8)
    error = np.hypot(0.02 / 0.8, 0.01 * (0.5 - 1) / 0.8**2)
    assert (low, high) == pytest.approx((0.375 - error, 0.375 + error))
    # clipped to [0, 1]: a control attack better than the main one is no risk, not a negative one.
    assert privacy_risk((0.1, 0.05), (0.3, 0.05)) == (0.0, (0.0, 0.0))
    assert privacy_risk((0.99, 0.05), (0.0, 0.0))[1] == (pytest.approx(0.94), 1.0)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(n=st.integers(1, 3000), data=st.data())
def test_risk_lies_in_its_interval_within_zero_and_one(n, data):
    main, control = data.draw(st.integers(0, n)), data.draw(st.integers(0, n))
    risk, (low, high) = privacy_risk(success_rate(main, n), success_rate(control, n))
    assert 0.0 <= low <= risk <= high <= 1.0


def test_singling_out_probability_integral_matches_numerical_integration():
    for n, w_min, w_max in [(1000, 0.0, 1e-3), (5000, 1e-5, 4e-4), (30, 0.1, 0.9)]:
        numeric, _ = integrate.quad(lambda w: n * w * (1 - w) ** (n - 1), w_min, w_max, epsabs=1e-13)
        assert singling_out_probability_integral(n, w_min, w_max) == pytest.approx(numeric, rel=1e-7)
    with pytest.raises(ValueError, match="w_max"):
        singling_out_probability_integral(10, 0.5, 0.2)


def test_size_model_fit_recovers_a_noise_free_curve():
    sizes = np.repeat(np.linspace(1000, 7500, 10).astype(int), 5).astype(float)
    truth = 3000 * singling_out_probability_integral(sizes, 0.0, 2e-4)
    w_eff, norm = fit_singling_out_model(sizes, truth)
    fitted = lambda n: norm * singling_out_probability_integral(n, 0.0, w_eff)  # noqa: E731
    assert fitted(sizes) == pytest.approx(truth, rel=1e-4)
    assert fitted(30000.0) == pytest.approx(3000 * singling_out_probability_integral(30000, 0.0, 2e-4), rel=1e-3)


# --------------------------------------------------------------------------------------------------------------
# Singling out: hand counts
# --------------------------------------------------------------------------------------------------------------


def test_univariate_singling_out_counts_by_hand():
    synthetic = pd.DataFrame({"x": [1, 2, 2, 3, 5], "c": ["a", "a", "b", "b", "c"]})
    # Predicates singling out the synthetic rows: x <= 1, x >= 5, x == 1, x == 3, x == 5, c == 'c' (2 and 'a', 'b'
    # are seen twice).
    original = pd.DataFrame({"x": [1, 3, 3, 5, 6], "c": ["a", "c", "c", "b", "a"]})
    # De-duplicated: (1,a) (3,c) (5,b) (6,a): x <= 1 yes, x >= 5 no (5 and 6), x == 1, x == 3, x == 5, c == 'c' yes.
    control = pd.DataFrame({"x": [2, 5, 7, 0], "c": ["c", "b", "b", "c"]})
    # x <= 1 yes (0), x >= 5 no, x == 1 no, x == 3 no, x == 5 yes, c == 'c' no (two rows).
    result = singling_out_risk(original, synthetic, control, mode="univariate", n_attacks=6, seed=1)
    assert set(result.queries) == {(("x", "<=", 1),), (("x", ">=", 5),), (("x", "==", 1),), (("x", "==", 3),),
                                   (("x", "==", 5),), (("c", "==", "c"),)}
    assert (result.main_successes, result.control_successes, result.n_attacks) == (5, 2, 6)
    assert result.control_correction == 1.0  # de-duplicated original and control both have 4 rows
    assert (result.main_rate, result.main_error) == pytest.approx(success_rate(5, 6))
    assert result.risk == pytest.approx(max(0.0, (success_rate(5, 6)[0] - success_rate(2, 6)[0])
                                            / (1 - success_rate(2, 6)[0])))


def test_multivariate_singling_out_counts_by_hand():
    # Synthetic median of x is 3: values above it give `x >= v`, the others `x <= v`; c gives `c == v`.
    synthetic = pd.DataFrame({"x": [1, 2, 3, 4, 5], "c": ["a", "a", "b", "b", "a"]})
    # Row queries: x<=1&a (only row 0), x<=2&a (rows 0, 1: no), x<=3&b (row 2), x>=4&b (row 3), x>=5&a (row 4).
    original = pd.DataFrame({"x": [0, 1, 3, 2, 6, 7], "c": ["a", "b", "b", "b", "a", "b"]})
    # x<=1&a: 1 yes; x<=3&b: 3 no; x>=4&b: 1 yes (7b); x>=5&a: 1 yes (6a)
    control = pd.DataFrame({"x": [1, 2, 3, 9, 8, 4], "c": ["a", "a", "b", "a", "a", "c"]})
    # x<=1&a: yes; x<=3&b: yes; x>=4&b: 0; x>=5&a: 2 (9a, 8a)
    result = singling_out_risk(original, synthetic, control, mode="multivariate", n_cols=2, n_attacks=4, seed=0)
    assert set(result.queries) == {(("x", "<=", 1), ("c", "==", "a")), (("x", "<=", 3), ("c", "==", "b")),
                                   (("x", ">=", 4), ("c", "==", "b")), (("x", ">=", 5), ("c", "==", "a"))}
    assert (result.main_successes, result.control_successes) == (3, 2)
    # Asking for more attacks than predicates exist: rates stay over n_attacks (anonymeter), with a note.
    more = singling_out_risk(original, synthetic, control, n_cols=2, n_attacks=10, max_attempts=3000, seed=0)
    assert (more.n_queries, more.main_successes, more.n_attacks, more.n_attempts) == (4, 3, 10, 3000)
    assert more.main_rate == pytest.approx(success_rate(3, 10)[0])
    assert any("Only 4 predicates" in note for note in more.notes)


def test_singling_out_missing_values_only_match_is_null():
    synthetic = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0], "c": ["a", None, "b", "b"]})
    original = pd.DataFrame({"x": [np.nan, 1.0, 2.0], "c": [None, None, "b"]})
    result = singling_out_risk(original, synthetic, original, mode="univariate", n_attacks=20, seed=0)
    queries = set(result.queries)
    assert (("x", "is null", None),) in queries and (("c", "is null", None),) in queries
    assert (("x", "<=", 1.0),) in queries and (("c", "==", "a"),) in queries


def test_singling_out_baseline_known_answers():
    # One categorical column, constant 'a' in the synthetic rows: the baseline draws `c == 'a'` or `c != 'a'`.
    synthetic = pd.DataFrame({"c": ["a"] * 30})
    both_single = singling_out_risk(pd.DataFrame({"c": ["a", "b", "a"]}), synthetic, pd.DataFrame({"c": ["b"]}),
                                    mode="univariate", n_attacks=500, seed=3)
    assert both_single.baseline_successes == 500  # de-duplicated {a, b}: == a and != a each match one row
    never = singling_out_risk(pd.DataFrame({"c": ["b", "c"]}), synthetic, pd.DataFrame({"c": ["b"]}),
                              mode="univariate", n_attacks=500, seed=3)
    assert never.baseline_successes == 0  # == a matches none, != a matches two
    # Numeric constant 5, original {5, 7, missing}: ==, !=, >, <= single out; <, >= do not -> 4 of 6 operators.
    numeric = singling_out_risk(pd.DataFrame({"x": [5.0, 7.0, np.nan]}), pd.DataFrame({"x": [5.0] * 30}),
                                pd.DataFrame({"x": [1.0]}), mode="univariate", n_attacks=3000, seed=4)
    assert numeric.baseline_successes / 3000 == pytest.approx(4 / 6, abs=0.04)


def _single_out_mask(frame: pd.DataFrame, query) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for column, operator, value in query:
        series = frame[column]
        if operator == "is null":
            mask &= series.isna()
        elif operator == "==":
            mask &= series.notna() & (series == value)
        elif operator == ">=":
            mask &= series.notna() & (series >= value)
        else:
            assert operator == "<="
            mask &= series.notna() & (series <= value)
    return mask


small_frames = st.integers(3, 25).flatmap(lambda n: st.tuples(
    st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=n, max_size=n),
    st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c"])), min_size=n, max_size=n),
    st.lists(st.floats(-2, 2, allow_nan=False).map(lambda v: round(v, 1)), min_size=n, max_size=n),
)).map(lambda t: pd.DataFrame({"i": pd.array(t[0], dtype="Float64").astype(float), "c": t[1], "f": t[2]}))


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(original=small_frames, synthetic=small_frames, control=small_frames, mode=st.sampled_from(["univariate", "multivariate"]),
       n_cols=st.integers(1, 3), seed=st.integers(0, 1000))
def test_singling_out_agrees_with_pandas_predicates(original, synthetic, control, mode, n_cols, seed):
    result = singling_out_risk(original, synthetic, control, mode=mode, n_cols=n_cols, n_attacks=15,
                               max_attempts=2000, seed=seed)
    unique = {name: frame.drop_duplicates() for name, frame in
              (("original", original), ("synthetic", synthetic), ("control", control))}
    assert len(set(result.queries)) == len(result.queries) == result.n_queries <= 15
    for query in result.queries:
        assert len(query) == (n_cols if mode == "multivariate" else 1)
        assert _single_out_mask(unique["synthetic"], query).sum() == 1, query
    singles = lambda name: sum(int(_single_out_mask(unique[name], q).sum() == 1) for q in result.queries)  # noqa: E731
    assert result.main_successes == singles("original")
    assert result.control_uncorrected == singles("control")
    if len(unique["control"]) == len(unique["original"]):
        assert result.control_successes == result.control_uncorrected
    if mode == "univariate":
        # The whole pool: is null (one missing), <= min / >= max (numeric), == v (v seen once), if it singles out.
        frame = unique["synthetic"]
        pool = set()
        for column in frame.columns:
            series = frame[column]
            if series.isna().sum() == 1:
                pool.add(((column, "is null", None),))
            present = series.dropna()
            if column != "c" and len(present):
                pool |= {((column, "<=", present.min()),), ((column, ">=", present.max()),)}
            counts = present.value_counts()
            pool |= {((column, "==", value),) for value in counts.index[counts == 1]}
        pool = {q for q in pool if _single_out_mask(frame, q).sum() == 1}
        if len(pool) <= 15:
            assert set(result.queries) == pool


# --------------------------------------------------------------------------------------------------------------
# Nearest neighbours: anonymeter's mixed-type distance, brute force
# --------------------------------------------------------------------------------------------------------------


def _naive_distances(candidates: pd.DataFrame, queries: pd.DataFrame, numeric: list[str], categorical: list[str]):
    out = np.zeros((len(queries), len(candidates)))
    for column in numeric:
        both = pd.concat([candidates[column], queries[column]]).astype(float)
        span = both.max() - both.min() if both.notna().any() and both.max() > both.min() else 1.0
        for i, x in enumerate(queries[column].astype(float)):
            for j, y in enumerate(candidates[column].astype(float)):
                out[i, j] += 1.0 if (np.isnan(x) or np.isnan(y)) else abs(x - y) / span
    for column in categorical:
        for i, x in enumerate(queries[column]):
            for j, y in enumerate(candidates[column]):
                out[i, j] += 0.0 if (pd.isna(x) and pd.isna(y)) or (not pd.isna(x) and not pd.isna(y) and x == y) else 1.0
    return out


mixed_rows = st.integers(1, 30).flatmap(lambda n: st.tuples(
    st.lists(st.one_of(st.none(), st.floats(-100, 100, allow_nan=False)), min_size=n, max_size=n),
    st.lists(st.integers(0, 3), min_size=n, max_size=n),
    st.lists(st.one_of(st.none(), st.sampled_from(["p", "q", "r"])), min_size=n, max_size=n),
)).map(lambda t: pd.DataFrame({"u": pd.array(t[0], dtype="Float64").astype(float), "v": t[1], "w": t[2]}))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(candidates=mixed_rows, queries=mixed_rows, k=st.integers(1, 4), seed=st.integers(0, 100))
def test_nearest_neighbours_are_the_brute_force_nearest(candidates, queries, k, seed):
    numeric, categorical = ["u", "v"], ["w"]
    space = reid._space(candidates, queries, numeric + categorical, set(numeric))
    found = reid._nearest(space, k, np.random.default_rng(seed), n_jobs=2)
    distances = _naive_distances(candidates, queries, numeric, categorical)
    k = min(k, len(candidates))
    assert found.shape == (len(queries), k)
    for row, chosen in enumerate(found):
        assert len(set(chosen)) == k
        assert distances[row, chosen] == pytest.approx(np.sort(distances[row])[:k], abs=1e-9)


def test_distance_ties_are_broken_at_random():
    candidates = pd.DataFrame({"w": ["p"] * 50})
    space = reid._space(candidates, pd.DataFrame({"w": ["p"] * 200}), ["w"], set())
    picks = reid._nearest(space, 1, np.random.default_rng(0))[:, 0]
    assert len(set(picks)) > 1  # not always the first of the tied rows
    again = reid._nearest(space, 1, np.random.default_rng(0))[:, 0]
    assert np.array_equal(picks, again)


# --------------------------------------------------------------------------------------------------------------
# Linkability and inference: hand counts
# --------------------------------------------------------------------------------------------------------------


def test_linkability_counts_by_hand():
    synthetic = pd.DataFrame({"a": [0.0, 10.0, 20.0, 30.0], "b": ["p", "q", "r", "s"]})
    # nearest on a / on b:  (1, p): 0/0 link; (11, r): 1/2 no; (29, s): 3/3 link; (19, q): 2/1 no; (21, r): 2/2 link
    original = pd.DataFrame({"a": [1.0, 11.0, 29.0, 19.0, 21.0], "b": ["p", "r", "s", "q", "r"]})
    # (2, q): 0/1 no; (12, q): 1/1 link; (28, p): 3/0 no; (-5, p): 0/0 link; (16, s): 2/3 no
    control = pd.DataFrame({"a": [2.0, 12.0, 28.0, -5.0, 16.0], "b": ["q", "q", "p", "p", "s"]})
    result = linkability_risk(original, synthetic, control, aux_cols=(["a"], ["b"]), n_attacks=5, seed=0)
    assert (result.main_successes, result.control_successes, result.n_attacks) == (3, 2, 5)
    assert result.n_baseline_attacks == 5
    # With every synthetic row as a neighbour, every pair of neighbour sets meets (baseline included).
    everything = linkability_risk(original, synthetic, control, aux_cols=(["a"], ["b"]), n_attacks=5,
                                  n_neighbors=4, seed=0)
    assert (everything.main_successes, everything.control_successes, everything.baseline_successes) == (5, 5, 5)
    assert not everything.informative


def test_linkability_baseline_links_at_chance():
    synthetic = pd.DataFrame({"a": np.arange(10.0), "b": np.arange(10.0)})
    original = pd.DataFrame({"a": np.arange(4000.0), "b": np.arange(4000.0)})
    result = linkability_risk(original, synthetic, original, aux_cols=(["a"], ["b"]), n_attacks=4000, seed=5)
    assert result.baseline_successes / 4000 == pytest.approx(0.1, abs=0.015)  # two random picks of 10 agree
    two = linkability_risk(original, synthetic, original, aux_cols=(["a"], ["b"]), n_attacks=4000, n_neighbors=2,
                           seed=5)
    assert two.baseline_successes / 4000 == pytest.approx(1 - (8 * 7) / (10 * 9), abs=0.02)


def test_inference_counts_by_hand():
    synthetic = pd.DataFrame({"a": [0.0, 10.0, 20.0, 30.0], "s": ["x", "y", "x", "z"]})
    # nearest: 1 -> x (x: yes), 12 -> y (x: no), 18 -> x (x: yes), 29 -> z (z: yes), 31 -> z (y: no)
    original = pd.DataFrame({"a": [1.0, 12.0, 18.0, 29.0, 31.0], "s": ["x", "x", "x", "z", "y"]})
    # 9 -> y (y: yes), 21 -> x (y: no), 2 -> x (y: no), 33 -> z (z: yes)
    control = pd.DataFrame({"a": [9.0, 21.0, 2.0, 33.0], "s": ["y", "y", "y", "z"]})
    result = inference_risk(original, synthetic, control, aux_cols=["a"], secret="s", n_attacks=5, seed=0)
    assert (result.main_successes, result.n_main_attacks) == (3, 5)
    assert (result.control_successes, result.n_control_attacks) == (2, 4)  # capped at the 4 control rows
    assert result.n_baseline_attacks == 4  # anonymeter: min(synthetic rows, main attacks)
    assert not result.regression
    assert any("control attacks capped at 4" in note for note in result.notes)


def test_inference_of_a_numeric_secret_uses_the_relative_tolerance():
    synthetic = pd.DataFrame({"a": [0.0, 10.0, 20.0, 30.0], "s": [100.0, -50.0, 0.0, 7.0]})
    # guesses 100 (104: |4|/100 <= 5%), -50 (-52: yes; 50: no, anonymeter's signed denominator would say yes),
    # 0 (0: yes), 7 (7.5: no, 0.5/7 > 5%)
    original = pd.DataFrame({"a": [1.0, 9.0, 11.0, 21.0, 29.0], "s": [104.0, -52.0, 50.0, 0.0, 7.5]})
    result = inference_risk(original, synthetic, original, aux_cols=["a"], secret="s", n_attacks=5, seed=0)
    assert result.regression and result.main_successes == 3
    exact = inference_risk(original, synthetic, original, aux_cols=["a"], secret="s", n_attacks=5, seed=0,
                           regression=False)
    assert exact.main_successes == 1  # only 0 == 0


def test_inference_correct_definition():
    guesses = np.array([100.0, 100.0, -50.0, -50.0, 0.0, np.nan, np.nan, 3.0])
    secrets = np.array([105.0, 105.1, -52.0, 50.0, 0.0, np.nan, 1.0, np.nan])
    assert inference_correct(guesses, secrets, regression=True).tolist() == [True, False, True, False, True, True,
                                                                              False, False]
    assert inference_correct(guesses, secrets, regression=False).tolist() == [False, False, False, False, True, True,
                                                                               False, False]


# --------------------------------------------------------------------------------------------------------------
# Known answers: a copy of the training rows, fresh rows of the same population
# --------------------------------------------------------------------------------------------------------------


def test_a_copy_of_the_training_rows_is_high_risk(tables):
    original, _, control = tables
    synthetic = original.sample(frac=1.0, random_state=0).reset_index(drop=True)
    multi = singling_out_risk(original, synthetic, control, n_attacks=500, seed=0)
    assert multi.main_successes == multi.n_queries == 500  # every predicate singles out its own training row
    assert multi.main_rate - multi.control_rate > 0.3 and multi.risk_interval[0] > 0.3
    uni = singling_out_risk(original, synthetic, control, mode="univariate", n_attacks=500, seed=0)
    assert uni.main_successes == uni.n_queries == 500 and uni.risk_interval[0] > 0.9
    link = linkability_risk(original, synthetic, control, aux_cols=(HALF_A, HALF_B), n_attacks=1000, seed=0)
    assert link.main_successes == 1000 and link.risk > 0.99 and link.informative
    inference = inference_risk(original, synthetic, control, aux_cols=AUX, secret="secret", n_attacks=1000, seed=0)
    assert inference.main_successes == 1000
    assert inference.control_rate == pytest.approx(0.2, abs=0.05)  # the secret depends on nothing: 1 in 5
    assert inference.risk > 0.95 and inference.risk_interval[0] > 0.9


def test_fresh_rows_of_the_same_population_are_no_risk(tables):
    original, fresh, control = tables
    results = [
        singling_out_risk(original, fresh, control, n_attacks=1000, seed=1),
        singling_out_risk(original, fresh, control, mode="univariate", n_attacks=1000, seed=1),
        linkability_risk(original, fresh, control, aux_cols=(HALF_A, HALF_B), n_attacks=1000, seed=1),
        inference_risk(original, fresh, control, aux_cols=AUX, secret="secret", n_attacks=1000, seed=1),
    ]
    for result in results:
        assert result.risk_interval[0] == 0.0, result
        assert abs(result.main_rate - result.control_rate) < 0.05, result
    # ... and inference of an unrelated secret is no better than random guessing.
    assert results[3].main_rate == pytest.approx(0.2, abs=0.05)


def test_a_smaller_control_is_scaled_to_the_original_size(tables):
    original, fresh, control = tables
    result = singling_out_risk(original, fresh, control.iloc[:1000], n_attacks=1000, seed=2)
    # Predicates that single out one of 3,000 synthetic rows match a row with chance ~1/3,000: in 1,000 rows they
    # find their one row less often than in 3,000 (anonymeter's curve_fit, from its starting point, returned 0.33).
    assert 1.0 < result.control_correction < 3.0
    assert result.control_successes == pytest.approx(result.control_uncorrected * result.control_correction)
    assert any("scaled by" in note for note in result.notes)
    same_size = singling_out_risk(original, fresh, control, n_attacks=1000, seed=2)
    assert same_size.control_correction == 1.0 and not any("scaled by" in note for note in same_size.notes)


def test_size_model_fit_finds_the_least_squares_optimum():
    # Counts measured on control subsets of 250-500 rows (5 draws per size in the evaluator; one here).
    sizes = np.linspace(250, 500, 10).astype(int).astype(float)
    counts = np.array([42, 52, 58, 62, 81, 79, 86, 83, 72, 87], dtype=float)
    model = lambda n, w, norm: norm * singling_out_probability_integral(n, 0.0, w)  # noqa: E731
    sse = lambda w, norm: float(((model(sizes, w, norm) - counts) ** 2).sum())  # noqa: E731
    w_eff, norm = fit_singling_out_model(sizes, counts)
    assert model(500.0, w_eff, norm) > model(250.0, w_eff, norm)  # increasing, like the counts
    # anonymeter's call: curve_fit from w = 1/max(n) and the norm making the model 1 there.
    w0 = 1 / sizes.max()
    (w_a, norm_a), _ = curve_fit(model, sizes, counts, bounds=(0, (1, np.inf)),
                                 p0=(w0, 1 / singling_out_probability_integral(sizes.max(), 0.0, w0)))
    assert sse(w_eff, norm) <= sse(w_a, norm_a) + 1e-6
    # No better w on a fine grid (the norm solved exactly for each).
    for w in np.geomspace(1e-6, 1.0, 400):
        g = singling_out_probability_integral(sizes, 0.0, w)
        best = max(0.0, float(g @ counts) / float(g @ g))
        assert sse(w_eff, norm) <= sse(w, best) + 1e-6


# --------------------------------------------------------------------------------------------------------------
# The report entry point
# --------------------------------------------------------------------------------------------------------------


def test_reidentification_risks_report(tables):
    original, fresh, control = tables
    report = reidentification_risks(original.iloc[:400], fresh.iloc[:400], control.iloc[:300],
                                    quasi_identifiers=["age", "sex", "region", "income"], secret="secret",
                                    n_attacks=500, seed=7)
    assert set(report) == {"singling_out_multivariate", "singling_out_univariate", "linkability", "inference"}
    for entry in report.values():
        assert {"risk", "risk_interval", "main", "control", "baseline", "meaning", "notes"} <= set(entry)
        assert 0 <= entry["risk_interval"][0] <= entry["risk"] <= entry["risk_interval"][1] <= 1
        assert entry["n_attacks_requested"] == 500
    assert report["linkability"]["aux_cols"] == [["age", "sex"], ["region", "income"]]
    assert report["linkability"]["main"]["attacks"] == 400 and report["linkability"]["control"]["attacks"] == 300
    assert any("capped at 300" in note for note in report["linkability"]["notes"])
    assert report["inference"]["aux_cols"] == ["age", "sex", "region", "income"]
    assert report["inference"]["secret"] == "secret"
    import json
    json.dumps(report)  # JSON-ready
    # Fewer than two quasi-identifiers: linkability splits all columns; inference uses all other columns.
    fallback = reidentification_risks(original.iloc[:100], fresh.iloc[:100], control.iloc[:100],
                                      quasi_identifiers=["age"], secret="secret", n_attacks=50, seed=7,
                                      univariate=False)
    assert fallback["linkability"]["aux_cols"] == [["age", "income", "sex", "weight"], ["region", "smoker", "secret"]]
    assert fallback["inference"]["aux_cols"] == ["age"]


def test_results_are_reproducible_with_a_seed(tables):
    original, fresh, control = tables
    run = lambda seed: reidentification_risks(original.iloc[:500], fresh.iloc[:500], control.iloc[:500],  # noqa: E731
                                              quasi_identifiers=HALF_A + HALF_B, secret="secret", n_attacks=300,
                                              seed=seed)
    assert run(11) == run(11)
    assert run(11) != run(12)
    a = singling_out_risk(original, fresh, control, n_attacks=100, seed=5)
    assert a.queries == singling_out_risk(original, fresh, control, n_attacks=100, seed=5).queries
    assert a.queries != singling_out_risk(original, fresh, control, n_attacks=100, seed=6).queries


def test_bad_input_raises_a_clear_error(tables):
    original, fresh, control = tables
    ok = dict(quasi_identifiers=["age", "sex"], secret="secret", n_attacks=100)
    with pytest.raises(ValueError, match="control table has 10 rows"):
        reidentification_risks(original, fresh, control.iloc[:10], **ok)
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['postcode'\]"):
        reidentification_risks(original, fresh, control, **{**ok, "quasi_identifiers": ["age", "postcode"]})
    with pytest.raises(ValueError, match="unknown column.*'diagnosis'"):
        reidentification_risks(original, fresh, control, **{**ok, "secret": "diagnosis"})
    with pytest.raises(ValueError, match="n_attacks must be a positive integer"):
        reidentification_risks(original, fresh, control, **{**ok, "n_attacks": 0})
    with pytest.raises(ValueError, match="not in the synthetic table"):
        reidentification_risks(original, fresh.drop(columns="sex"), control, **ok)
    with pytest.raises(ValueError, match="secret column 'secret' cannot also be an auxiliary"):
        inference_risk(original, fresh, control, aux_cols=["age", "secret"], secret="secret")
    with pytest.raises(ValueError, match="pair"):
        linkability_risk(original, fresh, control, aux_cols=["age", "sex"])
    with pytest.raises(ValueError, match="mode"):
        singling_out_risk(original, fresh, control, mode="bivariate")
    with pytest.raises(ValueError, match="n_cols"):
        singling_out_risk(original, fresh, control, n_cols=8)
    with pytest.raises(ValueError, match="declared numeric but holds non-numeric"):
        linkability_risk(original, fresh, control, aux_cols=(["age"], ["sex"]), numeric_columns=["sex"])


def test_datetimes_and_missing_values_do_not_break_the_attacks():
    rng = np.random.default_rng(9)

    def frame(n):
        out = pd.DataFrame({"when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 10**8, n), "s"),
                            "x": rng.normal(size=n), "c": rng.choice(np.array(["a", "b", None], dtype=object), n),
                            "flag": rng.choice([True, False], n), "s": rng.choice(["u", "v"], n)})
        out.loc[rng.random(n) < 0.2, "x"] = np.nan
        out.loc[rng.random(n) < 0.2, "when"] = pd.NaT
        return out

    report = reidentification_risks(frame(200), frame(200), frame(100), quasi_identifiers=["when", "x", "c", "flag"],
                                    secret="s", n_attacks=100, seed=0)
    for entry in report.values():
        assert np.isfinite(entry["risk"])


def test_timing_at_platform_scale():
    """Not an assertion: the wall time of the report on 30,000 original, 30,000 synthetic and 7,500 control rows of
    15 mixed columns, 2,000 attacks (run with -s to see it)."""
    rng = np.random.default_rng(0)

    def frame(n):
        return pd.DataFrame({
            "age": rng.integers(18, 90, n), "income": np.round(rng.lognormal(10, 0.5, n), 2),
            "height": np.round(rng.normal(170, 10, n), 1), "weight": np.round(rng.normal(70, 12, n), 1),
            "visits": rng.poisson(3, n), "score": rng.random(n), "admitted": rng.normal(1.6e9, 3e7, n).round(),
            "zip": rng.integers(100, 999, n).astype(str), "sex": rng.choice(["F", "M"], n),
            "region": rng.choice(list("ABCDEFGH"), n), "smoker": rng.choice(np.array(["y", "n", None], dtype=object), n),
            "blood": rng.choice(["A", "B", "AB", "O"], n), "plan": rng.choice([f"p{i}" for i in range(30)], n),
            "married": rng.choice([True, False], n), "diagnosis": rng.choice([f"d{i}" for i in range(12)], n),
        })

    original, synthetic, control = frame(30_000), frame(30_000), frame(7_500)
    start = time.perf_counter()
    report = reidentification_risks(original, synthetic, control, quasi_identifiers=["age", "sex", "zip", "region"],
                                    secret="diagnosis", n_attacks=2000, seed=0)
    print(f"\nreidentification_risks, 30,000/30,000/7,500 rows x 15 columns, 2,000 attacks: "
          f"{time.perf_counter() - start:.1f} s")
    assert set(report) == {"singling_out_multivariate", "singling_out_univariate", "linkability", "inference"}
