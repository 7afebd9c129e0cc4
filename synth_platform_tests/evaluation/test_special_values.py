"""The report on values the profiler now passes through: ±inf and huge numbers, Python dates with sentinels
(9999-12-31), datetime64[us] with and without a zone, nullable booleans, text '__missing__' next to NULLs. Each
metric's treatment of them is checked against a hand-computed case."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from synth_platform.evaluation import distances, metrics
from synth_platform.evaluation.report import build_report, copies_of_training, sentinel_seconds
from synth_platform.profiling.profile import profile_dataframe


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(40, 10, n)
    x[:3], x[3:6], x[6:12] = np.inf, -np.inf, 1e300
    dates = [dt.date(2000, 1, 1) + dt.timedelta(days=int(v)) for v in rng.integers(0, 3000, n)]
    dates[:8] = [dt.date(9999, 12, 31)] * 8
    stamps = pd.Series(pd.date_range("2020-01-01", periods=n, freq="h")).astype("datetime64[us]")
    flags = pd.array(rng.integers(0, 2, n).astype(bool), dtype="boolean")
    flags[0] = pd.NA
    text = pd.Series(rng.choice(["a", "b", "__missing__"], n), dtype=object)
    text[:10] = None
    return pd.DataFrame({"x": x, "y": rng.normal(0, 1, n), "d": pd.Series(dates, dtype=object), "t": stamps,
                         "tz": stamps.dt.tz_localize("UTC"), "b": flags, "s": text})


def test_the_report_handles_infinities_huge_values_python_dates_and_the_missing_text():
    training, holdout, synthetic = _frame(200, 1), _frame(200, 2), _frame(200, 3)
    profile = profile_dataframe(training)
    report = build_report(training, holdout, synthetic, profile, privacy_rows=200, bootstrap_resamples=20, risk_attacks=50)
    for name, value in report["metrics"].items():
        assert value is None or np.isfinite(value), name
    assert report["correlation"]["finite_share_real"] == pytest.approx(194 / 200)
    # Same generating process on both sides: the date column is compared, not all missing.
    by_column = {row["column"]: row for row in report["per_column"]}
    assert by_column["d"]["missing_real"] == 0.0 and by_column["d"]["value"] < 0.2


def test_ks_ranks_infinities_as_the_extreme_values():
    real = pd.Series([1.0, 2.0, 3.0, np.inf])
    # Synthetic with +inf where the real one has it: identical; +inf replaced by 4: the CDFs part at 4 by 1/4.
    assert metrics.ks_statistic(real, real.copy()) == 0.0
    assert metrics.ks_statistic(real, pd.Series([1.0, 2.0, 3.0, 4.0])) == pytest.approx(0.25)
    assert metrics.ks_statistic(pd.Series([-np.inf, 1e300]), pd.Series([0.0, 1e300])) == pytest.approx(0.5)


def test_correlation_is_of_the_finite_part_with_its_share_stated_and_huge_values_do_not_overflow():
    real = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, np.inf], "y": [2.0, 4.0, 6.0, 8.0, 100.0]})
    synthetic = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0], "y": [8.0, 6.0, 4.0, 2.0, 0.0]})
    result = metrics.correlation_delta(real, synthetic, ["x", "y"])
    # ρ over the four finite rows of the real table is 1, the synthetic one is -1.
    assert result["real_matrix"][0][1] == pytest.approx(1.0)
    assert result["mean"] == pytest.approx(2.0)
    assert result["finite_share_real"] == pytest.approx(0.8) and result["finite_share_synthetic"] == 1.0
    huge = real.assign(x=real["x"] * 1e300, y=real["y"] * 1e300)
    assert metrics.correlation_delta(huge, synthetic, ["x", "y"])["mean"] == pytest.approx(2.0)
    # The bootstrap recomputes from the same matrix: with every row once it gives the point value.
    values = metrics.numeric_matrix(huge, ["x", "y"])
    assert metrics.weighted_correlation(values, np.ones(5))[0, 1] == pytest.approx(1.0)


def test_pair_codes_give_infinities_and_sentinels_states_of_their_own():
    real = pd.Series([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, np.nan, np.inf, -np.inf, 1e9])
    codes, other = metrics.pair_codes(real, pd.Series([np.inf, 4.5, 1e9]), True, bins=10, special=[1e9])
    # Bins of the regular values 0..9 (width 0.9): 0 -> 1, 9 -> 10; then missing 11, +inf 12, -inf 13, 1e9 14.
    assert codes.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert other.tolist() == [12, 6, 14]
    dates = pd.Series([dt.date(2000, 1, 1), dt.date(2000, 1, 11), dt.date(9999, 12, 31)], dtype=object)
    sentinel = [(dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days * 86_400.0]
    assert metrics.pair_codes(dates, dates, True, bins=10, special=sentinel)[0].tolist() == [1, 10, 14]


def test_python_dates_are_seconds_and_a_sentinel_is_a_state_not_the_end_of_the_range():
    dates = pd.Series([dt.date(2000, 1, 1), dt.date(2000, 1, 11), dt.date(9999, 12, 31), None], dtype=object)
    seconds = distances.numbers(dates)
    assert seconds.iloc[0] == (dt.date(2000, 1, 1) - dt.date(1970, 1, 1)).days * 86_400.0
    assert np.isfinite(seconds.iloc[:3]).all() and np.isnan(seconds.iloc[3])
    training = pd.DataFrame({"d": dates})
    sentinel = {"d": [float(seconds.iloc[2])]}
    space = distances.MixedSpace.fit(training, ["d"], [], sentinel)
    query = pd.DataFrame({"d": pd.Series([dt.date(2000, 1, 6), dt.date(9999, 12, 31), None], dtype=object)})
    nearest = distances.k_nearest_distances(space.transform(query), space.transform(training), 1, k=2)
    # Range of the regular dates: 10 days. 2000-01-06 is 5 days from either: 0.5, 0.5. The sentinel equals the
    # sentinel (0) and is 1 from anything else; missing equals missing.
    assert nearest.tolist() == [[0.5, 0.5], [0.0, 1.0], [0.0, 1.0]]


def test_a_copy_of_a_training_row_with_python_dates_is_an_exact_copy_at_distance_zero():
    training = _frame(40, 1)[["x", "y", "d", "s"]]
    profile = profile_dataframe(training)
    synthetic = training.iloc[[8, 0]].reset_index(drop=True)  # row 8: a regular date; row 0: 9999-12-31 and +inf
    synthetic.loc[1, "y"] = synthetic.loc[0, "y"]  # row 1: training row 0 but for y, so no longer a copy
    assert copies_of_training(synthetic, training, profile).tolist() == [True, False]
    numeric, categorical = profile.by_kind("numeric", "datetime"), profile.by_kind("categorical")
    space = distances.MixedSpace.fit(training, numeric, categorical, sentinel_seconds(profile))
    dcr = distances.distance_to_closest_record(space.transform(synthetic), space.transform(training), space.n_columns)
    assert dcr[0] == 0.0 and 0.0 < dcr[1] < 1.0 and np.isfinite(dcr).all()
    moved = training.iloc[[8]].reset_index(drop=True)
    moved.loc[0, "d"] = moved.loc[0, "d"] + dt.timedelta(days=1)
    assert distances.distance_to_closest_record(space.transform(moved), space.transform(training), space.n_columns)[0] > 0


def test_the_text_missing_is_not_a_null():
    training = pd.DataFrame({"s": pd.Series([None, "a"], dtype=object), "n": [1.0, 2.0]})
    synthetic = pd.DataFrame({"s": pd.Series(["__missing__", None], dtype=object), "n": [1.0, 1.0]})
    assert metrics.training_copy_mask(synthetic, training).tolist() == [False, True]
    assert metrics.total_variation_distance(training["s"], synthetic["s"]) == pytest.approx(0.5)
    space = distances.MixedSpace.fit(training, ["n"], ["s"])
    dcr = distances.distance_to_closest_record(space.transform(synthetic), space.transform(training), 2)
    assert dcr.tolist() == [0.5, 0.0]
    assert distances.as_category(pd.Series(["__missing__", None])).tolist() == ["__missing__", "__missing_2__"]
