"""Nearest-record distances in SDMetrics' mixed-type space, exact, on all cores, in bounded memory.

Pure logic: no Dagster here. The distance between two rows is SDMetrics' `calculate_dcr` distance: the mean over
columns of a per-column distance in [0, 1]:

- numeric and datetime: |x - y| / range, capped at 1 (the range of the column in the frame the space was fitted
  on; a column with zero range counts 0 for equal values and 1 otherwise); missing vs a number is 1, missing vs
  missing is 0;
- categorical: 0 if equal, 1 otherwise (missing is a category of its own).

`k_nearest_distances` scans the *whole* reference set for every query row (no subsampling of the reference side,
which would hide memorisation: SDMetrics#934) with a compiled kernel parallel over query rows. It keeps only the k
best distances per query row, so memory is O(query + reference) whatever the sizes (SDMetrics builds the cross
product in pandas chunks and runs out of memory around 32k rows, SDMetrics#760).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd

MISSING = "__missing__"


def as_category(series: pd.Series) -> pd.Series:
    """A column as strings with missing values as their own category (`MISSING`)."""
    return series.astype(object).where(series.notna(), MISSING).astype(str)


def numbers(series: pd.Series) -> pd.Series:
    """A numeric or datetime column as floats (datetimes as seconds since 1970); anything else becomes NaN."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return (series - pd.Timestamp(0)).dt.total_seconds()
    return pd.to_numeric(series, errors="coerce").astype(float)


def numeric_frame(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({column: numbers(frame[column]) for column in columns}, index=frame.index)


@dataclass
class EncodedRows:
    """Rows in a `MixedSpace`: numeric columns as floats scaled by 1/range (NaN kept), categoricals as codes."""

    numeric: np.ndarray  # (rows, numeric columns) float64, C-contiguous
    categorical: np.ndarray  # (rows, categorical columns) int64, C-contiguous
    constant: np.ndarray  # per numeric column: zero range in the fitted frame, compared by equality

    def __len__(self) -> int:
        return len(self.numeric)

    def take(self, index: np.ndarray) -> EncodedRows:
        return EncodedRows(np.ascontiguousarray(self.numeric[index]), np.ascontiguousarray(self.categorical[index]), self.constant)


@dataclass
class MixedSpace:
    """SDMetrics' per-column distance space, fitted on one frame (its numeric ranges) and applied to any other."""

    numeric_columns: list[str]
    categorical_columns: list[str]
    low: np.ndarray
    span: np.ndarray
    constant: np.ndarray  # numeric columns with zero range in the fitted frame: compared by equality
    categories: list[dict] = field(default_factory=list)

    @classmethod
    def fit(cls, frame: pd.DataFrame, numeric_columns: list[str], categorical_columns: list[str]) -> MixedSpace:
        values = numeric_frame(frame, numeric_columns).to_numpy(dtype=float) if numeric_columns else np.zeros((len(frame), 0))
        with np.errstate(all="ignore"):
            low = np.nanmin(values, axis=0) if len(frame) else np.zeros(values.shape[1])
            high = np.nanmax(values, axis=0) if len(frame) else np.zeros(values.shape[1])
        low, high = np.nan_to_num(low), np.nan_to_num(high)
        constant = ~((high - low) > 0)
        span = np.where(constant, 1.0, high - low)
        categories = [{value: code for code, value in enumerate(as_category(frame[c]).unique())} for c in categorical_columns]
        return cls(list(numeric_columns), list(categorical_columns), low, span, constant, categories)

    def transform(self, frame: pd.DataFrame) -> EncodedRows:
        """Encode rows; a category the fitted frame never had gets a new code of its own (never equal to another)."""
        missing = [c for c in self.numeric_columns + self.categorical_columns if c not in frame.columns]
        if missing:
            raise ValueError(f"Columns {missing} are missing from the frame to encode.")
        if self.numeric_columns:
            values = numeric_frame(frame, self.numeric_columns).to_numpy(dtype=float)
            scaled = np.where(self.constant, values, (values - self.low) / self.span)
        else:
            scaled = np.zeros((len(frame), 0))
        codes = np.empty((len(frame), len(self.categorical_columns)), dtype=np.int64)
        for j, (column, mapping) in enumerate(zip(self.categorical_columns, self.categories)):
            labels = as_category(frame[column])
            for value in labels.unique():
                mapping.setdefault(value, len(mapping))
            codes[:, j] = labels.map(mapping).to_numpy(dtype=np.int64)
        return EncodedRows(np.ascontiguousarray(scaled, dtype=np.float64), np.ascontiguousarray(codes),
                           np.ascontiguousarray(self.constant, dtype=np.bool_))

    @property
    def n_columns(self) -> int:
        return len(self.numeric_columns) + len(self.categorical_columns)


@numba.njit(parallel=True, cache=True)
def _k_nearest_kernel(q_num, q_cat, r_num, r_cat, constant, k, out):  # pragma: no cover - compiled
    n_query, n_reference = q_num.shape[0], r_num.shape[0]
    n_numeric, n_categorical = q_num.shape[1], q_cat.shape[1]
    for i in numba.prange(n_query):
        best = np.full(k, np.inf)
        for r in range(n_reference):
            # Categorical mismatches first: cheap, and often enough to rule the row out before any float work.
            total = 0.0
            for j in range(n_categorical):
                if q_cat[i, j] != r_cat[r, j]:
                    total += 1.0
            if total >= best[k - 1]:
                continue
            for j in range(n_numeric):
                x = q_num[i, j]
                y = r_num[r, j]
                x_missing = math.isnan(x)
                y_missing = math.isnan(y)
                if x_missing or y_missing:
                    if x_missing != y_missing:
                        total += 1.0
                elif constant[j]:
                    if x != y:
                        total += 1.0
                else:
                    d = abs(x - y)
                    total += d if d < 1.0 else 1.0
                if total >= best[k - 1]:
                    break
            if total < best[k - 1]:
                position = k - 1
                while position > 0 and best[position - 1] > total:
                    best[position] = best[position - 1]
                    position -= 1
                best[position] = total
        for position in range(k):
            out[i, position] = best[position]


def k_nearest_distances(query: EncodedRows, reference: EncodedRows, n_columns: int, k: int = 1) -> np.ndarray:
    """(query rows, k) array: for each query row the distances to its k closest reference rows, ascending,
    over the whole reference set."""
    if len(reference) < k:
        raise ValueError(f"Need at least {k} reference row(s) for {k} nearest distances, got {len(reference)}.")
    if query.numeric.shape[1] != reference.numeric.shape[1] or query.categorical.shape[1] != reference.categorical.shape[1]:
        raise ValueError("Query and reference rows were encoded with different columns.")
    if not np.array_equal(query.constant, reference.constant):
        raise ValueError("Query and reference rows were encoded in different spaces.")
    out = np.empty((len(query), k), dtype=np.float64)
    if len(query):
        _k_nearest_kernel(query.numeric, query.categorical, reference.numeric, reference.categorical,
                          query.constant, k, out)
    return out / max(n_columns, 1)


def distance_to_closest_record(query: EncodedRows, reference: EncodedRows, n_columns: int) -> np.ndarray:
    """For each query row, the distance to its closest reference row (all reference rows considered)."""
    return k_nearest_distances(query, reference, n_columns, k=1)[:, 0]
