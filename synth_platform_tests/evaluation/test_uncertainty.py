"""Intervals against references nobody here wrote: statsmodels' Wilson interval and SciPy's bootstrap."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from synth_platform.evaluation.uncertainty import bootstrap_interval, resample_indices, wilson_interval


@pytest.mark.parametrize(("successes", "n"), [(0, 50), (3, 100), (50, 50), (17, 40), (1, 10_000), (2500, 10_000)])
def test_wilson_interval_matches_statsmodels(successes, n):
    expected = proportion_confint(successes, n, alpha=0.05, method="wilson")
    assert wilson_interval(successes, n) == pytest.approx(expected, abs=1e-12)


def test_wilson_interval_refuses_impossible_counts():
    with pytest.raises(ValueError, match="at least one trial"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match=r"must lie in \[0, n\]"):
        wilson_interval(11, 10)


def test_bootstrap_interval_of_a_mean_matches_scipy_percentile_bootstrap():
    sample = np.random.default_rng(7).normal(loc=3.0, scale=2.0, size=2000)

    def mean_of_resample(rng):
        return float(sample[resample_indices(rng, len(sample))].mean())

    ours = bootstrap_interval(mean_of_resample, n_resamples=4000, seed=1)
    reference = stats.bootstrap((sample,), np.mean, n_resamples=4000, method="percentile", random_state=2).confidence_interval
    # Both are Monte Carlo estimates of the same percentiles: they agree to well within the interval's width (0.18).
    assert ours == pytest.approx((reference.low, reference.high), abs=0.01)
    # ... and with the textbook normal interval mean ± 1.96 σ/√n.
    half_width = 1.96 * sample.std(ddof=1) / np.sqrt(len(sample))
    assert ours == pytest.approx((sample.mean() - half_width, sample.mean() + half_width), abs=0.01)


def test_bootstrap_interval_is_seeded_and_validates_its_input():
    sample = np.arange(100.0)

    def statistic(rng):
        return float(sample[resample_indices(rng, 100)].mean())

    assert bootstrap_interval(statistic, seed=3) == bootstrap_interval(statistic, seed=3)
    assert bootstrap_interval(statistic, seed=3) != bootstrap_interval(statistic, seed=4)
    with pytest.raises(ValueError, match="n_resamples must be at least 2"):
        bootstrap_interval(statistic, n_resamples=1)
    with pytest.raises(ValueError, match="not finite"):
        bootstrap_interval(lambda rng: float("nan"), n_resamples=5)


def test_bias_corrected_interval_of_a_distance_between_two_samples_of_one_population_contains_it(adult):
    """Resampling inflates the mean KS statistic of two samples of one population (here Adult's numeric columns):
    uncorrected, its interval lies above the measured value; shifted by the bootstrap bias, it contains it."""
    columns = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    rows = adult[columns].sample(6000, random_state=11).to_numpy(dtype=float)
    a, b = rows[:3000], rows[3000:]

    def ks_mean(first, second):
        return float(np.mean([stats.ks_2samp(first[:, j], second[:, j]).statistic for j in range(len(columns))]))

    point = ks_mean(a, b)

    def resampled(rng):
        return ks_mean(a[resample_indices(rng, len(a))], b[resample_indices(rng, len(b))])

    uncorrected = bootstrap_interval(resampled, n_resamples=200, seed=0)
    corrected = bootstrap_interval(resampled, point=point, bounds=(0.0, 1.0), n_resamples=200, seed=0)
    assert uncorrected[0] > point  # the bias this corrects
    assert 0.0 <= corrected[0] <= point <= corrected[1] <= 1.0
    assert corrected[1] - corrected[0] == pytest.approx(uncorrected[1] - uncorrected[0], rel=1e-9)  # shifted, not widened
