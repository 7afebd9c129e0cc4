"""Confidence intervals for the report's verdict-bearing metrics. Pure logic: no Dagster here.

- `wilson_interval`: Wilson score interval of a proportion (exact-copy rate), as anonymeter reports its risks.
- `bootstrap_interval`: percentile bootstrap of any statistic of resampled rows (KS mean, correlation delta,
  membership-inference AUC), bias-corrected when given the point value: the statistic is recomputed on
  `n_resamples` resamples drawn with replacement.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of `successes` out of `n` (valid at 0 and at n, unlike the normal approximation)."""
    if n <= 0:
        raise ValueError(f"wilson_interval needs at least one trial, got n={n}.")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n], got {successes} of {n}.")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half_width = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half_width)
    high = 1.0 if successes == n else min(1.0, centre + half_width)
    return float(low), float(high)


def bootstrap_interval(
    statistic: Callable[[np.random.Generator], float],
    *,
    point: float | None = None,
    bounds: tuple[float | None, float | None] = (None, None),
    n_resamples: int = 200,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Percentile interval of `statistic(rng)`, called once per resample; `statistic` draws its own resample
    (indices with replacement, one draw per table it compares) from the generator it is given.

    With `point` (the statistic on the original rows), the interval is bias-corrected: shifted by the bootstrap's
    bias, mean(resampled values) - point. Distances between two tables (KS, |Δρ|) are inflated by resampling, most
    of all when the tables are close: uncorrected, the interval of two samples of one population can lie entirely
    above the value measured on them. `bounds` clip the result to the statistic's range.
    """
    if n_resamples < 2:
        raise ValueError(f"n_resamples must be at least 2, got {n_resamples}.")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng) for _ in range(n_resamples)], dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        raise ValueError("The statistic was not finite on any bootstrap resample.")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    if point is not None:
        bias = float(values.mean()) - float(point)
        low, high = low - bias, high - bias
    lower_bound, upper_bound = bounds
    if lower_bound is not None:
        low, high = max(low, lower_bound), max(high, lower_bound)
    if upper_bound is not None:
        low, high = min(low, upper_bound), min(high, upper_bound)
    return float(low), float(high)


def resample_indices(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` row positions drawn with replacement: one bootstrap resample of a table of `n` rows."""
    return rng.integers(0, n, size=n)
