"""Query-level noise for sensitive numeric columns: the bounded Laplace mechanism applied to each value as it is read.

Pure logic: no Dagster here.

Mechanism (for a read with budget `epsilon` over k noised columns, each with a stated bound [lower, upper]):

1. every value is clipped into its bound, so one value can move by at most `upper - lower` (its sensitivity);
2. Laplace noise with scale `b = (upper - lower) * k / epsilon` is added (epsilon / k per column: basic composition);
3. the result is clipped into the bound again and, for integer columns, rounded (post-processing: costs no epsilon).

What it guarantees: the noised values of one row, taken together, are epsilon-locally differentially private with
respect to that row's true values of those columns: whatever they were, the probability of any released output
changes by at most a factor e^epsilon.

What it does not protect (say so to whoever relies on it):

* the other columns, released exactly; a row can still be re-identified through them;
* which rows were sampled and which values are missing (NULLs stay NULL);
* repeated reads: every read spends its epsilon again. The audit log records `epsilon_spent` per read, so the total
  spent on a table is the sum over its records;
* it is not the guarantee of a DP-trained generator (dpgan, pategan, aim), which bounds what the *synthetic table*
  reveals about any training row; noise here only perturbs the training data the generator sees;
* floating-point Laplace sampling leaks in theory through the least significant bits (Mironov, CCS 2012); values
  are clipped and rounded afterwards, which does not formally close that gap.

The noise comes from the operating system's entropy (`secrets`), never from the sampling seed: noise that anyone
holding the (audited) seed could regenerate could also be subtracted. So a noised read is not repeatable, by design.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MECHANISM = "bounded Laplace, per value (local DP), epsilon split evenly over the noised columns"


class NoiseError(ValueError):
    """A noise request that cannot be served; the message says what to change."""


@dataclass(frozen=True)
class NoiseBound:
    """The stated range of one sensitive numeric column: values outside it are clipped before noise is added."""

    column: str
    lower: float
    upper: float

    def validate(self) -> None:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (self.lower, self.upper)):
            raise NoiseError(f"Noise bounds of {self.column!r} must be finite numbers, got [{self.lower!r}, {self.upper!r}].")
        if not self.lower < self.upper:
            raise NoiseError(f"Noise bounds of {self.column!r} need lower < upper, got [{self.lower}, {self.upper}].")
        if not math.isfinite(self.upper - self.lower):
            raise NoiseError(
                f"Noise bounds of {self.column!r} are [{self.lower:g}, {self.upper:g}]: their width overflows a float "
                "(every noised value would be infinite). State the range the column's values really lie in."
            )


@dataclass(frozen=True)
class NoisePlan:
    """What a noised read will do: per column its bound and Laplace scale, and the epsilon the read spends."""

    epsilon: float
    bounds: tuple[NoiseBound, ...]

    def validate(self) -> None:
        if not self.bounds:
            raise NoiseError("A noise budget was given without bounds: list each sensitive numeric column with [lower, upper].")
        if not isinstance(self.epsilon, (int, float)) or isinstance(self.epsilon, bool) or not math.isfinite(self.epsilon) or self.epsilon <= 0:
            raise NoiseError(f"The noise epsilon must be a positive number, got {self.epsilon!r}.")
        columns = [b.column for b in self.bounds]
        if len(set(columns)) != len(columns):
            raise NoiseError(f"Noise bounds list a column twice: {columns}.")
        for bound in self.bounds:
            bound.validate()
            if not math.isfinite(self.scale(bound)):
                raise NoiseError(f"The Laplace scale of {bound.column!r} overflows with epsilon {self.epsilon!r}: raise epsilon or narrow the bounds.")

    def check_integer_limits(self, limits: dict[str, int]) -> None:
        """Integer columns (name → largest magnitude their type holds exactly) must have bounds inside that range:
        noised values are rounded and stored as integers, and a bound beyond it would wrap to the type's minimum."""
        for bound in self.bounds:
            limit = limits.get(bound.column)
            if limit is not None and max(abs(bound.lower), abs(bound.upper)) > limit:
                raise NoiseError(
                    f"Noise bounds of integer column {bound.column!r} are [{bound.lower:g}, {bound.upper:g}], beyond what "
                    f"the column holds (±{limit:g}); state bounds inside the column's range."
                )

    @property
    def columns(self) -> list[str]:
        return [b.column for b in self.bounds]

    def scale(self, bound: NoiseBound) -> float:
        """Laplace scale b = sensitivity / (epsilon per column)."""
        return (bound.upper - bound.lower) * len(self.bounds) / self.epsilon

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"column": b.column, "lower": b.lower, "upper": b.upper, "laplace_scale": self.scale(b),
             "epsilon": self.epsilon / len(self.bounds)}
            for b in self.bounds
        ]


def fresh_rng() -> np.random.Generator:
    """A generator seeded from the operating system's entropy (never from the sampling seed)."""
    return np.random.default_rng(secrets.randbits(128))


def apply_noise(
    frame: pd.DataFrame, plan: NoisePlan, integer_columns: frozenset[str] | set[str] = frozenset(),
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """A copy of `frame` with each planned column clipped, Laplace-noised, clipped again and rounded when the column
    is an integer one (by its dtype or as listed in `integer_columns`, e.g. from the database schema). Missing
    values stay missing. `rng` is for tests; reads use `fresh_rng()`."""
    plan.validate()
    rng = rng if rng is not None else fresh_rng()
    out = frame.copy()
    for bound in plan.bounds:
        if bound.column not in out.columns:
            raise NoiseError(f"Noise column {bound.column!r} is not among the columns read: {list(out.columns)}.")
        values = pd.to_numeric(out[bound.column], errors="coerce")
        if values.notna().sum() < out[bound.column].notna().sum():
            raise NoiseError(f"Noise column {bound.column!r} holds non-numeric values; noise applies to numeric columns only.")
        present = values.notna().to_numpy()
        clipped = np.clip(values.to_numpy(dtype=float)[present], bound.lower, bound.upper)
        noised = np.clip(clipped + rng.laplace(0.0, plan.scale(bound), size=clipped.shape), bound.lower, bound.upper)
        integer = bound.column in integer_columns or pd.api.types.is_integer_dtype(frame[bound.column].dtype)
        if integer:
            noised = np.round(noised)
        result = np.full(len(present), np.nan)
        result[present] = noised
        out[bound.column] = result.astype(np.int64) if integer and present.all() else result
    return out
