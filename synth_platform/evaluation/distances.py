"""Nearest-record distances in SDMetrics' mixed-type space, exact, on all cores, in bounded memory.

Pure logic: no Dagster here. The distance between two rows is SDMetrics' `calculate_dcr` distance: the mean over
columns of a per-column distance in [0, 1]:

- numeric and datetime: |x - y| / range, capped at 1 (the range of the column's *regular* values in the frame the
  space was fitted on; a column with zero range counts 0 for equal values and 1 otherwise); missing vs a number is
  1, missing vs missing is 0;
- special values of a numeric or datetime column are states of their own, like missing: +inf, -inf and each
  sentinel date (9999-12-31, 0001-01-01, …: `MixedSpace.fit`'s `sentinels`, the profile's special values) count 0
  against the same state and 1 against anything else, and never enter the range (one 9999-12-31 or +inf would
  otherwise stretch it so far that every regular value sits at distance 0). Huge finite values (1e300) are regular
  values: the range is computed without overflow (halved), and two equal values are at distance 0 whatever their
  size;
- categorical: 0 if equal, 1 otherwise (missing is a category of its own, never equal to any text, '__missing__'
  included).

Datetimes are seconds since 1970 (UTC) whatever their form: datetime64 of any unit or zone, Python dates and
datetimes (any year, 9999-12-31 included), ISO text.

`k_nearest_distances` scans the *whole* reference set for every query row (no subsampling of the reference side,
which would hide memorisation: SDMetrics#934) with a compiled kernel parallel over query rows. It keeps only the k
best distances per query row, so memory is O(query + reference) whatever the sizes (SDMetrics builds the cross
product in pandas chunks and runs out of memory around 32k rows, SDMetrics#760).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numba
import numpy as np
import pandas as pd

from synth_platform.profiling.values import datetime_seconds

MISSING = "__missing__"  # the usual missing category; `missing_token` picks another where a column holds this text

# States of a numeric or datetime value in a `MixedSpace` (sentinels follow from SENTINEL_STATE on).
REGULAR_STATE, MISSING_STATE, POSITIVE_INFINITY_STATE, NEGATIVE_INFINITY_STATE, SENTINEL_STATE = 0, 1, 2, 3, 4


def missing_token(*columns: pd.Series, preferred: str = MISSING) -> str:
    """A label for missing values that is none of the values (as text) of any of `columns`: `preferred` (the
    profile's `missing_token` of the column, or MISSING), else `__missing_2__`, `__missing_3__`…, so a NULL never
    equals a real text '__missing__'."""
    labels: set[str] = set()
    for column in columns:
        labels |= set(column.dropna().astype(str).unique())
    token, number = preferred, 1
    while token in labels:
        number += 1
        token = f"__missing_{number}__"
    return token


def as_category(series: pd.Series, token: str | None = None) -> pd.Series:
    """A column as strings with missing values as their own category: `token`, or when not given one chosen by
    `missing_token` so that it is none of the column's values. Compare two columns with one token
    (`missing_token(a, b)`)."""
    token = missing_token(series) if token is None else token
    return series.astype(object).where(series.notna(), token).astype(str)


def holds_datetimes(series: pd.Series) -> bool:
    first = series.dropna().head(1)
    return bool(len(first)) and isinstance(first.iloc[0], (dt.date, np.datetime64))


def numbers(series: pd.Series) -> pd.Series:
    """A numeric or datetime column as floats; anything else becomes NaN. Datetimes are seconds since 1970 (UTC for
    zoned values) whatever their form: datetime64 of any unit (us, s: years 1-9999) or zone, or Python date /
    datetime objects in an object column (9999-12-31 included: a far value, not a missing one). ±inf stay ±inf."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype) or (series.dtype == object and holds_datetimes(series)):
        return pd.Series(datetime_seconds(series), index=series.index, dtype=float)
    if pd.api.types.is_bool_dtype(series.dtype):
        series = series.astype("Float64")
    return pd.to_numeric(series, errors="coerce").astype(float)


def value_states(values: np.ndarray, sentinels: np.ndarray | list[float] = ()) -> np.ndarray:
    """Per value its state: REGULAR_STATE (a finite value, not a sentinel), MISSING_STATE (NaN), the two infinities,
    or SENTINEL_STATE + i for the i-th of `sentinels` (seconds, compared to the whole second as the profile does)."""
    states = np.full(values.shape, REGULAR_STATE, dtype=np.int64)
    states[np.isnan(values)] = MISSING_STATE
    states[values == np.inf] = POSITIVE_INFINITY_STATE
    states[values == -np.inf] = NEGATIVE_INFINITY_STATE
    with np.errstate(invalid="ignore"):
        for i, seconds in enumerate(sentinels):
            states[np.floor(values) == np.floor(seconds)] = SENTINEL_STATE + i
    return states


def numeric_frame(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({column: numbers(frame[column]) for column in columns}, index=frame.index)


@dataclass
class EncodedRows:
    """Rows in a `MixedSpace`: numeric columns as floats scaled by 1/range with each value's state (regular, missing,
    ±inf, a sentinel: `value_states`), categoricals as codes (missing a code of its own)."""

    numeric: np.ndarray  # (rows, numeric columns) float64, C-contiguous; only meaningful where state is regular
    categorical: np.ndarray  # (rows, categorical columns) int64, C-contiguous
    constant: np.ndarray  # per numeric column: zero range in the fitted frame, compared by equality
    state: np.ndarray | None = None  # (rows, numeric columns) int64: `value_states`; None: from NaN alone

    def __post_init__(self):
        if self.state is None:
            self.state = np.ascontiguousarray(value_states(np.asarray(self.numeric, dtype=float)))

    def __len__(self) -> int:
        return len(self.numeric)

    def take(self, index: np.ndarray) -> EncodedRows:
        return EncodedRows(np.ascontiguousarray(self.numeric[index]), np.ascontiguousarray(self.categorical[index]),
                           self.constant, np.ascontiguousarray(self.state[index]))


@dataclass
class MixedSpace:
    """SDMetrics' per-column distance space, fitted on one frame (its numeric ranges) and applied to any other."""

    numeric_columns: list[str]
    categorical_columns: list[str]
    low: np.ndarray
    span: np.ndarray
    constant: np.ndarray  # numeric columns with zero range in the fitted frame: compared by equality
    categories: list[dict] = field(default_factory=list)
    sentinels: list[list[float]] = field(default_factory=list)  # per numeric column: sentinel values (seconds)

    @classmethod
    def fit(cls, frame: pd.DataFrame, numeric_columns: list[str], categorical_columns: list[str],
            sentinels: dict[str, list[float]] | None = None) -> MixedSpace:
        """The space of `frame`: numeric ranges over the regular values (not ±inf, not `sentinels`: per column the
        seconds of its sentinel dates, e.g. from the profile's special values) and the categories seen."""
        sentinel_lists = [[float(v) for v in (sentinels or {}).get(c, [])] for c in numeric_columns]
        values = numeric_frame(frame, numeric_columns).to_numpy(dtype=float) if numeric_columns else np.zeros((len(frame), 0))
        regular = np.column_stack([value_states(values[:, j], sentinel_lists[j]) == REGULAR_STATE
                                   for j in range(values.shape[1])]) if values.shape[1] else np.zeros(values.shape, bool)
        values = np.where(regular, values, np.nan)
        with np.errstate(all="ignore"):
            low = np.nanmin(values, axis=0) if len(frame) else np.zeros(values.shape[1])
            high = np.nanmax(values, axis=0) if len(frame) else np.zeros(values.shape[1])
        low, high = np.nan_to_num(low, nan=0.0), np.nan_to_num(high, nan=0.0)
        half_span = high / 2 - low / 2  # halved: high - low overflows for values near ±1.8e308
        constant = ~(half_span > 0)
        span = np.where(constant, 1.0, half_span)
        categories = [{value: code for code, value in enumerate(pd.unique(_labels(frame[c])))} for c in categorical_columns]
        return cls(list(numeric_columns), list(categorical_columns), low, span, constant, categories, sentinel_lists)

    def transform(self, frame: pd.DataFrame) -> EncodedRows:
        """Encode rows; a category the fitted frame never had gets a new code of its own (never equal to another)."""
        missing = [c for c in self.numeric_columns + self.categorical_columns if c not in frame.columns]
        if missing:
            raise ValueError(f"Columns {missing} are missing from the frame to encode.")
        if self.numeric_columns:
            values = numeric_frame(frame, self.numeric_columns).to_numpy(dtype=float)
            sentinels = self.sentinels or [[] for _ in self.numeric_columns]
            state = np.column_stack([value_states(values[:, j], sentinels[j]) for j in range(values.shape[1])])
            values = np.where(state == REGULAR_STATE, values, np.nan)
            with np.errstate(all="ignore"):  # halved as the span; beyond ±inf only far outside the fitted range
                scaled = np.where(self.constant, values, (values / 2 - self.low / 2) / self.span)
        else:
            scaled, state = np.zeros((len(frame), 0)), np.zeros((len(frame), 0), dtype=np.int64)
        codes = np.empty((len(frame), len(self.categorical_columns)), dtype=np.int64)
        for j, (column, mapping) in enumerate(zip(self.categorical_columns, self.categories)):
            labels = _labels(frame[column])
            for value in pd.unique(labels):
                mapping.setdefault(value, len(mapping))
            codes[:, j] = np.fromiter((mapping[value] for value in labels), dtype=np.int64, count=len(labels))
        return EncodedRows(np.ascontiguousarray(scaled, dtype=np.float64), np.ascontiguousarray(codes),
                           np.ascontiguousarray(self.constant, dtype=np.bool_), np.ascontiguousarray(state, dtype=np.int64))

    @property
    def n_columns(self) -> int:
        return len(self.numeric_columns) + len(self.categorical_columns)


class _Missing:
    """The label of a missing categorical value in a `MixedSpace`: equal only to itself, never to any text."""

    def __repr__(self) -> str:
        return "<missing>"

    def __eq__(self, other: object) -> bool:  # by class, so a pickled space still knows its missing label
        return isinstance(other, _Missing)

    def __hash__(self) -> int:
        return hash(_Missing)


_MISSING_LABEL = _Missing()


def _labels(series: pd.Series) -> np.ndarray:
    """Category labels: values as text (1 and '1' alike), missing values `_MISSING_LABEL` (not a text: a real
    '__missing__' stays a category of its own)."""
    present = series.notna().to_numpy()
    out = np.empty(len(series), dtype=object)
    out[:] = _MISSING_LABEL
    out[present] = series[present].astype(str).to_numpy()
    return out


@numba.njit(parallel=True, cache=True)
def _k_nearest_kernel(q_num, q_state, q_cat, r_num, r_state, r_cat, constant, k, out):  # pragma: no cover - compiled
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
                x_state = q_state[i, j]
                y_state = r_state[r, j]
                if x_state != 0 or y_state != 0:  # missing, ±inf, a sentinel: 0 for the same state, else 1
                    if x_state != y_state:
                        total += 1.0
                elif x == y:
                    pass
                elif constant[j]:
                    total += 1.0
                else:
                    d = abs(x - y)
                    total += d if d < 1.0 else 1.0  # NaN (inf - inf: far beyond the range) counts 1
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
        _k_nearest_kernel(query.numeric, query.state, query.categorical, reference.numeric, reference.state,
                          reference.categorical, query.constant, k, out)
    return out / max(n_columns, 1)


def distance_to_closest_record(query: EncodedRows, reference: EncodedRows, n_columns: int) -> np.ndarray:
    """For each query row, the distance to its closest reference row (all reference rows considered)."""
    return k_nearest_distances(query, reference, n_columns, k=1)[:, 0]
