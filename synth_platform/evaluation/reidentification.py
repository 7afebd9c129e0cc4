"""Re-identification risks of a synthetic table: singling out, linkability and inference. Pure logic: no Dagster.

The three risks, their attacks and their statistics are those of the anonymeter framework:

    M. Giomi, F. Boenisch, C. Wehmeyer, B. Tasnádi, "A Unified Framework for Quantifying Privacy Risk in
    Synthetic Data", Proceedings on Privacy Enhancing Technologies (PETS) 2023(2), 312-328,
    https://doi.org/10.56553/popets-2023-0055 ; reference code: https://github.com/statice/anonymeter
    (BSD 3-Clause Clear; read, not imported: anonymeter 1.1.0 pins pyarrow<22, which this project's lock cannot
    satisfy). The code below is a re-implementation, vectorised with numpy.

Every attack is run three times (anonymeter's evaluators):

- *main*: the attacker uses the synthetic rows to attack the original rows (those the generator was trained on);
- *control*: the same attack, scored on control rows (a holdout the generator never saw);
- *baseline*: a naive attacker who guesses at random.

Success rates and risk (`anonymeter.stats.confidence`):

- rate of k successes in n attacks = the Wilson score point estimate (k + z²/2) / (n + z²), with error
  z / (n + z²) · sqrt(k (n - k) / n + z² / 4), z the normal quantile of the confidence level (95%): rate ± error is
  exactly the Wilson score interval (`success_rate`);
- risk = (main - control) / (1 - control) on those rates, its error propagated to first order,
  sqrt((e_main / (1 - control))² + (e_control (main - 1) / (1 - control)²)²) (`residual_success`); risk and
  interval clipped to [0, 1] (`bind_value`);
- a result is flagged not informative when the baseline rate is at least the main rate (anonymeter warns
  "Analysis results cannot be trusted").

Singling out (`singling_out_evaluator.py`). The three tables are first de-duplicated (`unique()`). A predicate
(query) is a conjunction of conditions on columns; it singles out a table when exactly one row satisfies it;
missing values satisfy only `is null`, never a comparison.

- multivariate (`multivariate_singling_out_queries`, `_query_from_record`): a random synthetic row and `n_cols`
  random columns; per column `col is null` if the row's value is missing, `col == value` for a non-numeric
  column, `col >= value` for a numeric value above the synthetic median, `col <= value` otherwise. Attempts (in
  batches of 1,000) are kept, in order and without repeats, when they single out the synthetic table, until
  `n_attacks` are found or `max_attempts` have been made;
- univariate (`univariate_singling_out_queries`): the pool `col is null` (exactly one missing), `col <= min` and
  `col >= max` (numeric columns), `col == v` for every value v seen once, shuffled; the first `n_attacks` that
  single out the synthetic table;
- main successes: queries that single out the original table; control successes: those that single out the
  control table, times anonymeter's size correction when control and original differ in size
  (`fit_correction_term`: the counts on random control subsets of 10 sizes from min(1000, m / 2) to m, 5 draws each,
  fitted by least squares with model(n) = norm · (1 - (n w_eff + 1)(1 - w_eff)^n) / (n + 1), norm times the
  integral over query weights w in [0, w_eff] of Cohen & Nissim's singling-out probability n w (1 - w)^(n - 1);
  the correction is model(n_original) / model(n_control));
- baseline (`_random_queries`): `n_attacks` queries of `n_cols` random columns (1 in univariate mode), each with a
  random value of the synthetic column and a random operator (==, != for non-numeric; ==, !=, >, <, >=, <= for
  numeric; a missing value gives `is null` for == and `is not null` otherwise), scored on the original table;
- all three rates are over `n_attacks` (anonymeter's denominator), even when fewer queries could be generated.

Linkability (`linkability_evaluator.py`): `n_attacks` original rows drawn without replacement; for each, its
`n_neighbors` nearest synthetic rows on the columns `aux_cols[0]` and, separately, on `aux_cols[1]`; success when
the two neighbour sets share a row. Control: targets drawn from the control rows. Baseline (`_random_links`): two
independent random sets of `n_neighbors` distinct synthetic rows per attack.

Inference (`inference_evaluator.py`): `n_attacks` original rows drawn without replacement; the guess is the secret
of the nearest synthetic row on `aux_cols` (`KNNInferencePredictor`); success when it equals the target's secret
(non-numeric secret) or, numeric secret, when |guess - secret| / |guess| <= 0.05 (`evaluate_inference_guesses`);
both missing counts as a success. Control: targets drawn from the control rows (min(n_attacks, rows) each).
Baseline: as many original targets, each guessed with the secret of a random synthetic row (drawn without
replacement).

Nearest neighbours (`neighbors/mixed_types_kneighbors.py`): anonymeter's Gower-like distance, the sum over the
columns of |x - y| / range for numeric columns (range over the synthetic rows and the targets together;
`mixed_types_transform`, a zero range counts as 1) and 0/1 for unequal non-numeric values; exhaustive over the
synthetic rows, in bounded memory (chunks of query rows, one thread per core).

Where this code deliberately differs from anonymeter 1.1.0:

- numeric missing values: anonymeter adds 1 when both values are missing but lets a missing value against a
  number turn the whole distance into NaN (the row is then never a neighbour); here any missing numeric value
  counts 1, its largest per-column distance. Non-numeric missing values are a category of their own, as in
  anonymeter (its label encoder gives them a code);
- ties between equally near synthetic rows are broken uniformly at random (seeded), independently for each target
  and each search; anonymeter takes numpy's unstable argsort order, the same for every target with the same
  distances, which can make both halves of a linkability attack pick the same tied row and count links that the
  data does not support;
- the numeric inference tolerance divides by |guess|: anonymeter divides by the signed guess, which counts every
  negative guess as a success;
- the inference evaluator's numeric/non-numeric choice follows the secret column's type (anonymeter's
  `regression=None`; its evaluator's default `regression=False` compares numbers for exact equality);
- booleans are compared by value in the baseline queries (anonymeter's random `==`/`!=` on a boolean ignores the
  drawn value and tests `col`/`not col`);
- the size model is fitted by exact least squares (the norm solved linearly for each w_eff, w_eff searched on a
  log grid, then refined): anonymeter's `curve_fit`, started at a norm hundreds of times too small, can stop at a
  model that decreases with n through increasing counts (3,000 original rows, 500 / 1,000 / 1,500 control rows:
  corrections m / n = 0.17 / 0.33 / 0.50 where the counts grow with n; here 1.8 / 1.7 / 1.0); where it
  converges the two agree. The model itself extrapolates poorly: on 30,000 original and 7,500 control rows of one
  population it scaled the control count by 1.3-1.9 where the truth was about 2, so the singling-out risk of a
  generator that saw nothing came out 0.02-0.09 instead of 0. A control as large as the original avoids it;
- the size correction's smallest control subset is min(1000, m / 2) rows, not min(1000, m): with m <= 1000
  control rows anonymeter fits its two-parameter model to ten copies of one size, and its extrapolation is
  arbitrary (unchanged for m >= 2000);
- every random draw comes from one seeded generator (anonymeter draws linkability baselines and the singling-out
  correction's subsets unseeded); the singling-out generation stops after `max_attempts` (default 200 per
  requested attack, at least 100,000) rather than anonymeter's 10,000,000, and reports how many queries it found;
- linkability and inference cap `n_attacks` at the rows available (anonymeter's inference evaluator does the same;
  its linkability evaluator fails instead); singling out keeps anonymeter's denominator `n_attacks`.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.spatial.distance import cdist
from scipy.stats import norm

CONFIDENCE = 0.95
MIN_ROWS = 20  # reidentification_risks refuses smaller tables
NUMERIC_TOLERANCE = 0.05  # anonymeter's relative tolerance for a numeric secret
_QUERY_BATCH = 1000  # anonymeter's batch of multivariate query attempts
_MISSING = np.int32(np.iinfo(np.int32).max)  # code of a missing value in the singling-out tables
_MAX_CODE = np.int32(_MISSING - 1)  # upper end of `>=` intervals: every present value, never a missing one
_CHUNK_ELEMENTS = 4_000_000  # cells of one (query rows x synthetic rows) distance block
_ONE_HOT_WIDTH = 256  # categorical levels compared by one matrix product; wider columns one by one

_OPERATORS = ("==", "!=", ">", "<", ">=", "<=")


# --------------------------------------------------------------------------------------------------------------
# Statistics: anonymeter.stats.confidence
# --------------------------------------------------------------------------------------------------------------


def success_rate(n_success: float, n_total: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(rate, error) of `n_success` successes in `n_total` attacks: anonymeter's `success_rate`, the Wilson score
    point estimate and half-width; rate ± error is the Wilson score interval. `n_success` may be fractional (the
    size-corrected singling-out control count)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}.")
    if n_total < 1:
        raise ValueError(f"A success rate needs at least one attack, got n_total={n_total}.")
    if not 0 <= n_success <= n_total:
        raise ValueError(f"n_success must lie in [0, n_total], got {n_success} of {n_total}.")
    z = float(norm.ppf(0.5 * (1.0 + confidence)))
    z2 = z * z
    denominator = n_total + z2
    rate = (n_success + 0.5 * z2) / denominator
    error = z / denominator * np.sqrt(n_success * (n_total - n_success) / n_total + 0.25 * z2)
    return float(rate), float(error)


def _bound(point: float, error: float) -> tuple[float, tuple[float, float]]:
    """anonymeter's `bind_value`: the point and point ± error, each clipped to [0, 1]."""
    clip = lambda x: float(min(max(x, 0.0), 1.0))  # noqa: E731
    return clip(point), (clip(point - error), clip(point + error))


def privacy_risk(main: tuple[float, float], control: tuple[float, float]) -> tuple[float, tuple[float, float]]:
    """(risk, (low, high)) from the (rate, error) of the main and control attacks: anonymeter's
    `residual_success` (risk = (main - control) / (1 - control), error propagated to first order) followed by
    `bind_value` (clip to [0, 1])."""
    main_rate, main_error = main
    control_rate, control_error = control
    if control_rate >= 1:
        raise ValueError("The control attack succeeded every time: the residual risk cannot be measured.")
    residual = (main_rate - control_rate) / (1.0 - control_rate)
    d_main = 1.0 / abs(1.0 - control_rate)
    d_control = (main_rate - 1.0) / (1.0 - control_rate) ** 2
    error = float(np.sqrt((main_error * d_main) ** 2 + (control_error * d_control) ** 2))
    return _bound(residual, error)


def _rate_fields(prefix: str, successes: float, n: int, confidence: float) -> dict:
    rate, error = success_rate(successes, n, confidence)
    _, interval = _bound(rate, error)
    return {f"{prefix}_successes": successes, f"n_{prefix}_attacks": n, f"{prefix}_rate": rate,
            f"{prefix}_error": error, f"{prefix}_interval": interval}


def _evaluation(main: tuple[float, int], control: tuple[float, int], baseline: tuple[float, int], confidence: float,
                notes: list[str]) -> dict:
    """The common fields of a result: three rates, the risk and the informative flag (anonymeter's
    `EvaluationResults`)."""
    fields = {**_rate_fields("main", *main, confidence), **_rate_fields("control", *control, confidence),
              **_rate_fields("baseline", *baseline, confidence)}
    risk, interval = privacy_risk((fields["main_rate"], fields["main_error"]),
                                  (fields["control_rate"], fields["control_error"]))
    informative = fields["baseline_rate"] < fields["main_rate"]
    if not informative:
        notes.append("The attack did no better than random guessing (baseline rate >= main rate): "
                     "the risk estimate cannot be trusted (anonymeter's warning).")
    return {"risk": risk, "risk_interval": interval, "informative": informative, "confidence": confidence,
            "notes": tuple(notes), **fields}


# --------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return round(value, 6) if np.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


@dataclass(frozen=True)
class _RiskFields:
    risk: float
    risk_interval: tuple[float, float]
    main_rate: float
    main_interval: tuple[float, float]
    main_error: float
    main_successes: float
    n_main_attacks: int
    control_rate: float
    control_interval: tuple[float, float]
    control_error: float
    control_successes: float
    n_control_attacks: int
    baseline_rate: float
    baseline_interval: tuple[float, float]
    baseline_error: float
    baseline_successes: float
    n_baseline_attacks: int
    informative: bool
    confidence: float
    notes: tuple[str, ...]

    @property
    def n_attacks(self) -> int:
        """Attacks of the main run (control and baseline may differ: see n_control_attacks, n_baseline_attacks)."""
        return self.n_main_attacks

    def _common_dict(self) -> dict:
        rate = lambda p: {"rate": getattr(self, f"{p}_rate"), "interval": getattr(self, f"{p}_interval"),  # noqa: E731
                          "successes": getattr(self, f"{p}_successes"), "attacks": getattr(self, f"n_{p}_attacks")}
        return {"risk": self.risk, "risk_interval": self.risk_interval, "main": rate("main"),
                "control": rate("control"), "baseline": rate("baseline"), "n_attacks": self.n_attacks,
                "informative": self.informative, "confidence": self.confidence, "notes": list(self.notes)}


@dataclass(frozen=True)
class SinglingOutRisk(_RiskFields):
    """Singling-out risk. `queries`: the main attack's predicates, each a tuple of (column, operator, value)
    conditions joined by AND (operator one of ==, >=, <=, is null)."""

    mode: str
    n_cols: int
    columns: tuple[str, ...]
    n_queries: int
    n_attempts: int
    control_correction: float
    control_uncorrected: int
    queries: tuple[tuple[tuple[str, str, Any], ...], ...]

    def to_dict(self) -> dict:
        return _json({"attack": f"singling_out_{self.mode}", **self._common_dict(), "n_cols": self.n_cols,
                      "columns": self.columns, "n_queries": self.n_queries,
                      "control_correction": self.control_correction,
                      "control_uncorrected": self.control_uncorrected})


@dataclass(frozen=True)
class LinkabilityRisk(_RiskFields):
    """Linkability risk of re-joining `aux_cols[0]` and `aux_cols[1]` of the same person through the synthetic
    rows."""

    aux_cols: tuple[tuple[str, ...], tuple[str, ...]]
    n_neighbors: int

    def to_dict(self) -> dict:
        return _json({"attack": "linkability", **self._common_dict(), "aux_cols": self.aux_cols,
                      "n_neighbors": self.n_neighbors})


@dataclass(frozen=True)
class InferenceRisk(_RiskFields):
    """Inference risk of guessing `secret` from `aux_cols` with the synthetic rows."""

    aux_cols: tuple[str, ...]
    secret: str
    regression: bool
    tolerance: float

    def to_dict(self) -> dict:
        return _json({"attack": "inference", **self._common_dict(), "aux_cols": self.aux_cols,
                      "secret": self.secret, "regression": self.regression,
                      "tolerance": self.tolerance if self.regression else None})


# --------------------------------------------------------------------------------------------------------------
# Input checks and encodings
# --------------------------------------------------------------------------------------------------------------


def _frames(original: pd.DataFrame, synthetic: pd.DataFrame, control: pd.DataFrame) -> None:
    for name, frame in (("original", original), ("synthetic", synthetic), ("control", control)):
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"The {name} rows must be a pandas DataFrame, got {type(frame).__name__}.")
        if len(frame) < 1:
            raise ValueError(f"The {name} table has no rows.")


def _check_columns(columns: Iterable[str], frames: dict[str, pd.DataFrame], what: str) -> list[str]:
    columns = list(columns)
    if not columns:
        raise ValueError(f"{what}: no columns given.")
    if len(set(columns)) != len(columns):
        raise ValueError(f"{what}: repeated columns in {columns}.")
    for name, frame in frames.items():
        unknown = [c for c in columns if c not in frame.columns]
        if unknown:
            raise ValueError(f"{what}: unknown column(s) {unknown} (not in the {name} table).")
    return columns


def _check_attacks(n_attacks: int) -> int:
    if isinstance(n_attacks, bool) or not isinstance(n_attacks, (int, np.integer)) or n_attacks < 1:
        raise ValueError(f"n_attacks must be a positive integer, got {n_attacks!r}.")
    return int(n_attacks)


def _is_numeric_dtype(series: pd.Series) -> bool:
    dtype = series.dtype
    return (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)) or \
        pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype)


def _numeric_set(frame: pd.DataFrame, columns: Sequence[str], numeric_columns: Iterable[str] | None) -> set[str]:
    """The numeric columns among `columns`: those given, else those of a numeric (not boolean) or datetime dtype in
    `frame` (anonymeter's `detect_col_types`)."""
    if numeric_columns is None:
        return {c for c in columns if _is_numeric_dtype(frame[c])}
    given = set(numeric_columns)
    unknown = given - set(frame.columns)
    if unknown:
        raise ValueError(f"numeric_columns: unknown column(s) {sorted(unknown)}.")
    return given & set(columns)


def _numbers(series: pd.Series, column: str) -> np.ndarray:
    """A column as floats (datetimes as seconds since 1970, timedeltas as seconds); missing and ±inf as NaN."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        values = (series - pd.Timestamp(0)).dt.total_seconds()
    elif pd.api.types.is_timedelta64_dtype(series.dtype):
        values = series.dt.total_seconds()
    else:
        values = pd.to_numeric(series, errors="coerce")
        if bool((values.isna() & series.notna()).any()):
            raise ValueError(f"Column {column!r} is declared numeric but holds non-numeric values.")
    values = np.asarray(values, dtype=float)
    return np.where(np.isfinite(values), values, np.nan)


def _joint_codes(columns_of_frames: Sequence[pd.Series]) -> tuple[list[np.ndarray], np.ndarray]:
    """Integer codes of one non-numeric column in several frames, consistent across them; missing -> -1."""
    joined = pd.concat([s.astype(object) for s in columns_of_frames], ignore_index=True)
    codes, uniques = pd.factorize(joined, use_na_sentinel=True)
    out, start = [], 0
    for s in columns_of_frames:
        out.append(codes[start:start + len(s)].astype(np.int64))
        start += len(s)
    return out, np.asarray(uniques, dtype=object)


def _derive_rngs(seed: int | None, n: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def _n_jobs(n_jobs: int | None) -> int:
    if n_jobs is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)
    return max(1, int(n_jobs))


# --------------------------------------------------------------------------------------------------------------
# Singling out
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Coded:
    """Tables as int32 codes per column: numeric values as dense ranks over all tables, others as category codes;
    missing as `_MISSING`. Equality and order of codes are those of the values, so every condition is an
    interval [lo, hi] of codes."""

    rows: list[np.ndarray]  # per table (rows, columns), row-major
    numeric: np.ndarray  # (columns,) bool
    decode: list[np.ndarray]  # per column: value of each code
    synthetic_values: np.ndarray  # (synthetic rows, columns) float: numeric values (NaN elsewhere)


def _code_tables(frames: Sequence[pd.DataFrame], columns: list[str], numeric: set[str]) -> _Coded:
    rows = [np.empty((len(f), len(columns)), dtype=np.int32) for f in frames]
    synthetic_values = np.full((len(frames[1]), len(columns)), np.nan)
    decode = []
    for j, column in enumerate(columns):
        if column in numeric:
            values = [_numbers(f[column], column) for f in frames]
            joined = np.concatenate(values)
            levels = np.unique(joined[~np.isnan(joined)])
            for table, v in zip(rows, values):
                codes = np.searchsorted(levels, np.nan_to_num(v)).astype(np.int32)
                table[:, j] = np.where(np.isnan(v), _MISSING, codes)
            synthetic_values[:, j] = values[1]
            integral = pd.api.types.is_integer_dtype(frames[0][column].dtype) and np.all(levels == np.round(levels))
            decode.append(levels.astype(np.int64) if integral else levels)
        else:
            codes, uniques = _joint_codes([f[column] for f in frames])
            for table, c in zip(rows, codes):
                table[:, j] = np.where(c < 0, _MISSING, c).astype(np.int32)
            decode.append(uniques)
    numeric_mask = np.array([c in numeric for c in columns], dtype=bool)
    return _Coded(rows, numeric_mask, decode, synthetic_values)


def _unique_rows(table: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each distinct row, in table order (polars' unique(maintain_order))."""
    if len(table) == 0:
        return np.arange(0)
    _, first = np.unique(table, axis=0, return_index=True)
    return np.sort(first)


def _match(columns_major: np.ndarray, cols: np.ndarray, lo: np.ndarray, hi: np.ndarray,
           negate: np.ndarray | None = None) -> np.ndarray:
    """(queries, rows) bool: rows satisfying every condition `lo <= value <= hi` of each query (a negated
    condition: value outside [lo, hi] and not missing)."""
    matched = None
    for j in range(cols.shape[1]):
        values = columns_major[cols[:, j]]
        condition = (values >= lo[:, j, None]) & (values <= hi[:, j, None])
        if negate is not None and negate[:, j].any():
            flip = negate[:, j, None]
            condition = np.where(flip, ~condition & (values != _MISSING), condition)
        if matched is None:
            matched = condition
        else:
            matched &= condition
    return matched


def _counts(table: np.ndarray, cols, lo, hi, negate=None) -> np.ndarray:
    """How many rows of `table` satisfy each query (chunks of queries, bounded memory)."""
    columns_major = np.ascontiguousarray(table.T)
    n_rows = max(1, table.shape[0])
    step = max(1, _CHUNK_ELEMENTS // n_rows)
    out = np.zeros(len(cols), dtype=np.int64)
    for start in range(0, len(cols), step):
        part = slice(start, start + step)
        out[part] = _match(columns_major, cols[part], lo[part], hi[part],
                           None if negate is None else negate[part]).sum(axis=1)
    return out


def _matching_rows(table: np.ndarray, cols, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """(query of each match, row of each match) for every row of `table` satisfying each query."""
    columns_major = np.ascontiguousarray(table.T)
    step = max(1, _CHUNK_ELEMENTS // max(1, table.shape[0]))
    queries, rows = [], []
    for start in range(0, len(cols), step):
        part = slice(start, start + step)
        q, r = np.nonzero(_match(columns_major, cols[part], lo[part], hi[part]))
        queries.append(q + start)
        rows.append(r)
    if not queries:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(queries), np.concatenate(rows)


class _SinglesOut:
    """Exact test of 'this query, built from synthetic row r, matches no other synthetic row', fast on the usual
    case of a query matching many rows: the rows are split (random order) into blocks of growing size, and a
    query is dropped at the first block with another matching row. Every row is checked once."""

    def __init__(self, table: np.ndarray, rng: np.random.Generator):
        n = len(table)
        order = rng.permutation(n)
        self.position = np.empty(n, dtype=np.int64)
        self.position[order] = np.arange(n)
        self.blocks = []
        start, size = 0, 128
        while start < n:
            stop = min(n, start + size)
            self.blocks.append((start, stop, np.ascontiguousarray(table[order[start:stop]].T)))
            start, size = stop, size * 8

    def __call__(self, rows: np.ndarray, cols: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        alive = np.arange(len(rows))
        for start, stop, block in self.blocks:
            if alive.size == 0:
                break
            step = max(1, _CHUNK_ELEMENTS // block.shape[1])
            keep = []
            for s in range(0, alive.size, step):
                part = alive[s:s + step]
                matched = _match(block, cols[part], lo[part], hi[part])
                own = self.position[rows[part]]
                inside = (own >= start) & (own < stop)
                matched[np.nonzero(inside)[0], own[inside] - start] = False
                keep.append(part[~matched.any(axis=1)])
            alive = np.concatenate(keep)
        singles = np.zeros(len(rows), dtype=bool)
        singles[alive] = True
        return singles


def _multivariate_queries(coded: _Coded, syn: np.ndarray, syn_values: np.ndarray, n_queries: int, n_cols: int,
                          max_attempts: int, rng: np.random.Generator, check_rng: np.random.Generator):
    n_rows, n_columns = syn.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing column: median NaN, never compared
        medians = np.nanmedian(syn_values, axis=0) if len(syn_values) else np.full(n_columns, np.nan)
    singles_out = _SinglesOut(syn, check_rng)
    seen: set[bytes] = set()
    found_cols, found_lo, found_hi = [], [], []
    n_found, attempts = 0, 0
    batch = min(_QUERY_BATCH, max_attempts)
    while n_found < n_queries and attempts < max_attempts:
        size = min(batch, max_attempts - attempts)
        rows = rng.integers(0, n_rows, size=size)
        cols = np.sort(np.argsort(rng.random((size, n_columns)), axis=1)[:, :n_cols], axis=1)
        codes = syn[rows[:, None], cols]
        values = syn_values[rows[:, None], cols]
        missing = codes == _MISSING
        numeric = coded.numeric[cols]
        with np.errstate(invalid="ignore"):
            above = values > medians[cols]
        lo = np.where(missing, _MISSING, np.where(numeric & ~above, -1, codes)).astype(np.int32)
        hi = np.where(missing, _MISSING, np.where(numeric & above, _MAX_CODE, codes)).astype(np.int32)
        attempts += size
        for i in np.nonzero(singles_out(rows, cols, lo, hi))[0]:
            key = cols[i].tobytes() + lo[i].tobytes() + hi[i].tobytes()
            if key in seen:
                continue
            seen.add(key)
            found_cols.append(cols[i])
            found_lo.append(lo[i])
            found_hi.append(hi[i])
            n_found += 1
            if n_found >= n_queries:
                break
    shape = (-1, n_cols)
    return (np.array(found_cols, dtype=np.int64).reshape(shape), np.array(found_lo, dtype=np.int32).reshape(shape),
            np.array(found_hi, dtype=np.int32).reshape(shape), attempts)


def _univariate_queries(coded: _Coded, syn: np.ndarray, n_queries: int, rng: np.random.Generator):
    cols, lo, hi = [], [], []
    for j in range(syn.shape[1]):
        column = syn[:, j]
        missing = column == _MISSING
        if int(missing.sum()) == 1:
            cols.append([j]), lo.append([_MISSING]), hi.append([_MISSING])
        present = column[~missing]
        if coded.numeric[j] and present.size:
            cols += [[j], [j]]
            lo += [[-1], [present.max()]]
            hi += [[present.min()], [_MAX_CODE]]
        levels, counts = np.unique(present, return_counts=True)
        rare = levels[counts == 1]
        cols += [[j]] * len(rare)
        lo += [[v] for v in rare]
        hi += [[v] for v in rare]
    cols = np.array(cols, dtype=np.int64).reshape(-1, 1)
    lo = np.array(lo, dtype=np.int32).reshape(-1, 1)
    hi = np.array(hi, dtype=np.int32).reshape(-1, 1)
    order = rng.permutation(len(cols))
    cols, lo, hi = cols[order], lo[order], hi[order]
    # Exact count of each one-column interval in the synthetic table, by binary search in the sorted column.
    sorted_columns = np.sort(syn, axis=0)
    counts = np.empty(len(cols), dtype=np.int64)
    for j in np.unique(cols[:, 0]):
        at = cols[:, 0] == j
        column = sorted_columns[:, j]
        counts[at] = np.searchsorted(column, hi[at, 0], side="right") - np.searchsorted(column, lo[at, 0], side="left")
    keep = np.nonzero(counts == 1)[0]
    keys = np.stack([cols[keep, 0], lo[keep, 0].astype(np.int64), hi[keep, 0].astype(np.int64)], axis=1)
    _, first = np.unique(keys, axis=0, return_index=True) if len(keys) else (None, np.arange(0))
    keep = keep[np.sort(first)][:n_queries]
    return cols[keep], lo[keep], hi[keep], len(cols)


def _random_queries(syn: np.ndarray, numeric: np.ndarray, n_queries: int, n_cols: int, rng: np.random.Generator):
    """anonymeter's `_random_queries`: random columns, a random synthetic value and a random operator each, as
    intervals of codes (with a negate flag for !=)."""
    n_columns = syn.shape[1]
    levels = [np.unique(syn[:, j]) for j in range(n_columns)]
    cols = np.empty((n_queries, n_cols), dtype=np.int64)
    lo = np.empty((n_queries, n_cols), dtype=np.int32)
    hi = np.empty((n_queries, n_cols), dtype=np.int32)
    negate = np.zeros((n_queries, n_cols), dtype=bool)
    for q in range(n_queries):
        chosen = np.sort(rng.choice(n_columns, size=n_cols, replace=False))
        for k, j in enumerate(chosen):
            value = int(rng.choice(levels[j]))
            operator = _OPERATORS[int(rng.integers(0, 6 if numeric[j] else 2))]
            cols[q, k] = j
            if value == _MISSING:
                lo[q, k], hi[q, k] = ((_MISSING, _MISSING) if operator == "==" else (-1, _MAX_CODE))
                continue
            lo[q, k], hi[q, k] = {"==": (value, value), "!=": (value, value), ">": (value + 1, _MAX_CODE),
                                  "<": (-1, value - 1), ">=": (value, _MAX_CODE), "<=": (-1, value)}[operator]
            negate[q, k] = operator == "!="
    return cols, lo, hi, negate


def singling_out_probability_integral(n: Any, w_min: float, w_max: float) -> Any:
    """Integral over query weights w in [w_min, w_max] of P(w, n) = n w (1 - w)^(n - 1), the chance that a query
    matching a random row with probability w singles out one row of n (Cohen & Nissim 2020; anonymeter)."""
    if not 0 <= w_min <= 1:
        raise ValueError(f"w_min must lie in [0, 1], got {w_min}.")
    if not w_min <= w_max <= 1:
        raise ValueError(f"w_max must lie in [w_min, 1], got {w_max}.")
    return ((n * w_min + 1) * (1 - w_min) ** n - (n * w_max + 1) * (1 - w_max) ** n) / (n + 1)


def _correction_model(x, w_eff, norm_):
    return norm_ * singling_out_probability_integral(x, 0.0, w_eff)


def fit_singling_out_model(sizes: np.ndarray, successes: np.ndarray) -> tuple[float, float] | None:
    """Least-squares fit of anonymeter's model successes(n) = norm * integral_0^w_eff n w (1 - w)^(n - 1) dw
    (`_fit_model`; w_eff in (0, 1], norm >= 0): (w_eff, norm), or None without a usable fit.

    anonymeter calls `curve_fit` from w_eff = 1 / max(n) and the norm that makes the model 1 there, hundreds of
    times below typical counts; from there the optimiser often stops far from the optimum (a fit decreasing in n
    through increasing counts). Here the same least squares are solved globally: for a given w_eff the best norm
    is linear least squares, and w_eff is searched on a log grid over (1e-4 / max(n), 1], then refined."""
    sizes, successes = np.asarray(sizes, dtype=float), np.asarray(successes, dtype=float)
    if sizes.size == 0 or not np.all(np.isfinite(successes)) or successes.max() <= 0:
        return None

    def best_norm(log_w: float) -> tuple[float, float]:
        g = singling_out_probability_integral(sizes, 0.0, float(np.exp(log_w)))
        gg = float(g @ g)
        norm_ = max(0.0, float(g @ successes) / gg) if gg > 0 else 0.0
        return float(((norm_ * g - successes) ** 2).sum()), norm_

    grid = np.linspace(np.log(1e-4 / sizes.max()), 0.0, 241)
    errors = np.array([best_norm(x)[0] for x in grid])
    i = int(np.argmin(errors))
    low, high = grid[max(0, i - 1)], grid[min(len(grid) - 1, i + 1)]
    refined = minimize_scalar(lambda x: best_norm(x)[0], bounds=(low, high), method="bounded",
                              options={"xatol": 1e-10})
    log_w = float(refined.x) if refined.success and refined.fun <= errors[i] else float(grid[i])
    _, norm_ = best_norm(log_w)
    if norm_ <= 0:
        return None
    return float(np.exp(log_w)), norm_


def _control_size_correction(control: np.ndarray, cols, lo, hi, n_original: int, rng: np.random.Generator):
    """anonymeter's `fit_correction_term`: how the number of queries singling out a table of n rows grows with n,
    fitted on random subsets of the control rows; returns model(n_original) / model(n_control), or None when the
    fit fails."""
    n = len(control)
    query_of, row_of = _matching_rows(control, cols, lo, hi)
    sizes, successes = [], []
    for size in np.linspace(min(1000, n // 2), n, 10).astype(int):
        for _ in range(5):
            chosen = np.zeros(n, dtype=bool)
            chosen[rng.choice(n, size=size, replace=False)] = True
            counts = np.bincount(query_of, weights=chosen[row_of], minlength=len(cols))
            successes.append(int((counts == 1).sum()))
            sizes.append(size)
    parameters = fit_singling_out_model(np.array(sizes), np.array(successes))
    if parameters is None:
        return None
    at_control = _correction_model(float(n), *parameters)
    if not np.isfinite(at_control) or at_control <= 0:
        return None
    correction = _correction_model(float(n_original), *parameters) / at_control
    return float(correction) if np.isfinite(correction) else None


def _describe(coded: _Coded, columns: list[str], cols, lo, hi) -> tuple:
    out = []
    for c_row, l_row, h_row in zip(cols, lo, hi):
        conditions = []
        for j, low, high in zip(c_row, l_row, h_row):
            name, decode = columns[int(j)], coded.decode[int(j)]
            value = lambda code: _python(decode[int(code)])  # noqa: E731
            if low == _MISSING:
                conditions.append((name, "is null", None))
            elif low == high:
                conditions.append((name, "==", value(low)))
            elif high == _MAX_CODE:
                conditions.append((name, ">=", value(low)))
            else:
                conditions.append((name, "<=", value(high)))
        out.append(tuple(conditions))
    return tuple(out)


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def singling_out_risk(
    original: pd.DataFrame,
    synthetic: pd.DataFrame,
    control: pd.DataFrame,
    *,
    mode: str = "multivariate",
    n_attacks: int = 500,
    n_cols: int = 3,
    columns: Sequence[str] | None = None,
    numeric_columns: Iterable[str] | None = None,
    max_attempts: int | None = None,
    seed: int | None = None,
    confidence: float = CONFIDENCE,
) -> SinglingOutRisk:
    """Singling-out risk (anonymeter's `SinglingOutEvaluator(...).evaluate(mode)`), see the module docstring.

    `columns`: the columns predicates may use (default: all columns of `original`). `max_attempts`: multivariate
    query attempts before giving up (default max(100,000, 200 * n_attacks)). All three rates are over `n_attacks`
    (anonymeter's denominator), even when fewer predicates single out a synthetic row (`n_queries`; see `notes`)."""
    _frames(original, synthetic, control)
    if mode not in ("multivariate", "univariate"):
        raise ValueError(f"mode must be 'multivariate' or 'univariate', got {mode!r}.")
    frames = {"original": original, "synthetic": synthetic, "control": control}
    columns = _check_columns(original.columns if columns is None else columns, frames, "singling out")
    requested = _check_attacks(n_attacks)
    if mode == "multivariate" and not 1 <= n_cols <= len(columns):
        raise ValueError(f"n_cols must lie in [1, {len(columns)}] (the number of columns), got {n_cols}.")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError(f"max_attempts must be a positive integer, got {max_attempts}.")
    numeric = _numeric_set(original, columns, numeric_columns)
    query_rng, baseline_rng, correction_rng, check_rng = _derive_rngs(seed, 4)

    coded = _code_tables([original, synthetic, control], columns, numeric)
    keep = [_unique_rows(t) for t in coded.rows]
    ori, syn, ctl = (t[k] for t, k in zip(coded.rows, keep))
    syn_values = coded.synthetic_values[keep[1]]
    notes = []
    n_attacks = requested

    if mode == "multivariate":
        attempts_cap = max_attempts if max_attempts is not None else max(100_000, 200 * n_attacks)
        cols, lo, hi, attempts = _multivariate_queries(coded, syn, syn_values, n_attacks, n_cols, attempts_cap,
                                                       query_rng, check_rng)
        baseline_cols = n_cols
    else:
        cols, lo, hi, attempts = _univariate_queries(coded, syn, n_attacks, query_rng)
        baseline_cols = 1
    if len(cols) < n_attacks:
        notes.append(f"Only {len(cols)} predicates singling out one synthetic row were found for {n_attacks} "
                     f"attacks (anonymeter's warning: the risk is probably underestimated).")

    main_successes = int((_counts(ori, cols, lo, hi) == 1).sum())
    control_raw = int((_counts(ctl, cols, lo, hi) == 1).sum())
    correction = 1.0
    if len(ctl) != len(ori) and control_raw > 0:
        fitted = _control_size_correction(ctl, cols, lo, hi, len(ori), correction_rng)
        if fitted is None:
            notes.append("The control-size correction could not be fitted; the control count is uncorrected.")
        else:
            correction = fitted
            notes.append(f"Control count scaled by {correction:.3g}, anonymeter's fitted model of the number of "
                         f"singled-out rows from {len(ctl)} control to {len(ori)} original rows: an extrapolation, "
                         f"imprecise when the sizes differ much (a control as large as the original avoids it).")
    control_successes = control_raw * correction
    if control_successes > n_attacks:
        control_successes = float(n_attacks)
        notes.append("The size-corrected control count exceeded n_attacks and was capped at n_attacks.")

    b_cols, b_lo, b_hi, b_negate = _random_queries(syn, coded.numeric, n_attacks, baseline_cols, baseline_rng)
    baseline_successes = int((_counts(ori, b_cols, b_lo, b_hi, b_negate) == 1).sum())

    fields = _evaluation((main_successes, n_attacks), (control_successes, n_attacks),
                         (baseline_successes, n_attacks), confidence, notes)
    return SinglingOutRisk(
        **fields, mode=mode, n_cols=n_cols if mode == "multivariate" else 1, columns=tuple(columns),
        n_queries=len(cols), n_attempts=int(attempts), control_correction=float(correction),
        control_uncorrected=control_raw,
        queries=_describe(coded, columns, cols, lo, hi))


# --------------------------------------------------------------------------------------------------------------
# Nearest neighbours in anonymeter's mixed-type space
# --------------------------------------------------------------------------------------------------------------


@dataclass
class _Space:
    """Synthetic (candidate) and target (query) rows in anonymeter's space: numeric columns divided by their range
    over both (NaN kept), non-numeric columns as joint codes (missing its own code)."""

    cand_num: np.ndarray
    query_num: np.ndarray
    cand_cat: np.ndarray
    query_cat: np.ndarray
    levels: np.ndarray  # codes per non-numeric column


def _space(candidates: pd.DataFrame, queries: pd.DataFrame, columns: list[str], numeric: set[str]) -> _Space:
    num_cols = [c for c in columns if c in numeric]
    cat_cols = [c for c in columns if c not in numeric]
    cand_num = np.empty((len(candidates), len(num_cols)))
    query_num = np.empty((len(queries), len(num_cols)))
    for j, column in enumerate(num_cols):
        x, y = _numbers(candidates[column], column), _numbers(queries[column], column)
        both = np.concatenate([x, y])
        if np.isnan(both).all():
            low, span = 0.0, 1.0
        else:
            low, high = np.nanmin(both), np.nanmax(both)
            span = high - low if high > low else 1.0
        cand_num[:, j], query_num[:, j] = (x - low) / span, (y - low) / span
    cand_cat = np.empty((len(candidates), len(cat_cols)), dtype=np.int64)
    query_cat = np.empty((len(queries), len(cat_cols)), dtype=np.int64)
    levels = np.empty(len(cat_cols), dtype=np.int64)
    for j, column in enumerate(cat_cols):
        (x, y), uniques = _joint_codes([candidates[column], queries[column]])
        missing_code = len(uniques)
        cand_cat[:, j] = np.where(x < 0, missing_code, x)
        query_cat[:, j] = np.where(y < 0, missing_code, y)
        levels[j] = missing_code + 1
    return _Space(cand_num, query_num, cand_cat, query_cat, levels)


def _one_hot(codes: np.ndarray, levels: np.ndarray) -> np.ndarray:
    offsets = np.concatenate([[0], np.cumsum(levels)[:-1]]).astype(np.int64)
    out = np.zeros((len(codes), int(levels.sum())), dtype=np.float32)
    if codes.size:
        out[np.arange(len(codes))[:, None], codes + offsets] = 1.0
    return out


def _nearest(space: _Space, k: int, rng: np.random.Generator, n_jobs: int | None = None) -> np.ndarray:
    """(query rows, k) positions of the k nearest candidate rows of each query row (nearest first), exhaustive;
    ties (equal distances) broken uniformly at random for each query row, reproducibly for a given `rng`."""
    n_cand = len(space.cand_num)
    k = min(k, n_cand)
    cand_num, cand_cat = space.cand_num, space.cand_cat
    query_num, query_cat = space.query_num, space.query_cat

    has_missing = np.isnan(cand_num).any(axis=0) | np.isnan(query_num).any(axis=0)
    clean = np.nonzero(~has_missing)[0]
    dirty = np.nonzero(has_missing)[0]
    cand_clean = np.ascontiguousarray(cand_num[:, clean])
    query_clean = np.ascontiguousarray(query_num[:, clean])
    # Non-numeric columns: narrow ones by one product of one-hot matrices (matches per pair), wide ones one by one.
    narrow = np.nonzero(np.cumsum(space.levels) <= _ONE_HOT_WIDTH)[0]
    wide = np.setdiff1d(np.arange(len(space.levels)), narrow)
    cand_hot = _one_hot(cand_cat[:, narrow], space.levels[narrow]).T.copy() if narrow.size else None
    query_hot = _one_hot(query_cat[:, narrow], space.levels[narrow]) if narrow.size else None

    def block(start: int, stop: int, seed: int) -> np.ndarray:
        if clean.size:
            distance = cdist(query_clean[start:stop], cand_clean, "cityblock")
        else:
            distance = np.zeros((stop - start, n_cand))
        for j in dirty:
            difference = np.abs(query_num[start:stop, j, None] - cand_num[None, :, j])
            distance += np.where(np.isnan(difference), 1.0, difference)
        if cand_hot is not None:
            distance += narrow.size - query_hot[start:stop] @ cand_hot
        for j in wide:
            distance += query_cat[start:stop, j, None] != cand_cat[None, :, j]
        tie_rng = np.random.default_rng(seed)
        rows = np.arange(stop - start)
        if k == 1:
            nearest = np.argmin(distance, axis=1)[:, None]
            kth = distance[rows, nearest[:, 0]]
        else:
            nearest = np.argpartition(distance, k - 1, axis=1)[:, :k]
            kth = np.take_along_axis(distance, nearest, axis=1).max(axis=1)
        at_most = (distance <= kth[:, None]).sum(axis=1)
        for row in np.nonzero(at_most > k)[0]:  # more rows than k within the k-th distance: a tie to break
            below = np.flatnonzero(distance[row] < kth[row])
            tied = np.flatnonzero(distance[row] == kth[row])
            nearest[row] = np.concatenate([below, tie_rng.choice(tied, size=k - len(below), replace=False)])
        if k > 1:
            by_distance = np.argsort(np.take_along_axis(distance, nearest, axis=1), axis=1, kind="stable")
            nearest = np.take_along_axis(nearest, by_distance, axis=1)
        return nearest

    n_query = len(query_num)
    step = max(1, _CHUNK_ELEMENTS // max(1, n_cand))
    starts = range(0, n_query, step)
    # One seed per chunk, drawn up front: the result does not depend on the threads' order.
    bounds = [(s, min(n_query, s + step), int(seed)) for s, seed in
              zip(starts, rng.integers(0, 2**63 - 1, size=len(starts)))]
    workers = min(_n_jobs(n_jobs), len(bounds))
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda b: block(*b), bounds))
    else:
        parts = [block(*b) for b in bounds]
    return np.concatenate(parts) if parts else np.zeros((0, k), dtype=np.int64)


# --------------------------------------------------------------------------------------------------------------
# Linkability
# --------------------------------------------------------------------------------------------------------------


def _links(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per row: do the two neighbour sets share an index?"""
    return (first[:, :, None] == second[:, None, :]).any(axis=(1, 2))


def linkability_risk(
    original: pd.DataFrame,
    synthetic: pd.DataFrame,
    control: pd.DataFrame,
    *,
    aux_cols: tuple[Sequence[str], Sequence[str]],
    n_attacks: int = 500,
    n_neighbors: int = 1,
    numeric_columns: Iterable[str] | None = None,
    seed: int | None = None,
    confidence: float = CONFIDENCE,
    n_jobs: int | None = None,
) -> LinkabilityRisk:
    """Linkability risk (anonymeter's `LinkabilityEvaluator`), see the module docstring. `n_attacks` is capped at
    the original and, separately, the control rows; the baseline makes as many attacks as the main run."""
    _frames(original, synthetic, control)
    frames = {"original": original, "synthetic": synthetic, "control": control}
    if not isinstance(aux_cols, (tuple, list)) or len(aux_cols) != 2 or isinstance(aux_cols[0], str) \
            or isinstance(aux_cols[1], str):
        raise ValueError("aux_cols must be a pair (columns_a, columns_b) of column lists.")
    cols_a = _check_columns(aux_cols[0], frames, "linkability aux_cols[0]")
    cols_b = _check_columns(aux_cols[1], frames, "linkability aux_cols[1]")
    requested = _check_attacks(n_attacks)
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 1:
        raise ValueError(f"n_neighbors must be a positive integer, got {n_neighbors!r}.")
    numeric = _numeric_set(original, cols_a + cols_b, numeric_columns)
    k = min(int(n_neighbors), len(synthetic))
    notes = []
    if k < n_neighbors:
        notes.append(f"n_neighbors reduced to {k}, the number of synthetic rows.")
    n_main, n_control = min(requested, len(original)), min(requested, len(control))
    for name, n in (("original", n_main), ("control", n_control)):
        if n < requested:
            notes.append(f"{name} attacks capped at {n}, the number of {name} rows ({requested} requested).")
    baseline_rng, main_rng, control_rng = _derive_rngs(seed, 3)

    def attack(targets_frame: pd.DataFrame, n: int, rng: np.random.Generator) -> int:
        targets = targets_frame.iloc[rng.choice(len(targets_frame), size=n, replace=False)]
        first = _nearest(_space(synthetic, targets, cols_a, numeric), k, rng, n_jobs)
        second = _nearest(_space(synthetic, targets, cols_b, numeric), k, rng, n_jobs)
        return int(_links(first, second).sum())

    n_syn = len(synthetic)
    random_first = np.array([baseline_rng.choice(n_syn, size=k, replace=False) for _ in range(n_main)])
    random_second = np.array([baseline_rng.choice(n_syn, size=k, replace=False) for _ in range(n_main)])
    baseline_successes = int(_links(random_first.reshape(n_main, k), random_second.reshape(n_main, k)).sum())
    fields = _evaluation((attack(original, n_main, main_rng), n_main),
                         (attack(control, n_control, control_rng), n_control),
                         (baseline_successes, n_main), confidence, notes)
    return LinkabilityRisk(**fields, aux_cols=(tuple(cols_a), tuple(cols_b)), n_neighbors=k)


# --------------------------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------------------------


def _secret_values(frames: Sequence[pd.Series], regression: bool, column: str) -> list[np.ndarray]:
    if regression:
        return [_numbers(s, column) for s in frames]
    codes, _ = _joint_codes(list(frames))
    return [np.where(c < 0, np.nan, c.astype(float)) for c in codes]


def inference_correct(guesses: np.ndarray, secrets: np.ndarray, regression: bool,
                      tolerance: float = NUMERIC_TOLERANCE) -> np.ndarray:
    """anonymeter's `evaluate_inference_guesses` (float arrays, NaN = missing): a numeric guess is correct when
    |guess - secret| / |guess| <= tolerance, another when equal; both missing counts as correct."""
    guesses, secrets = np.asarray(guesses, dtype=float), np.asarray(secrets, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        if regression:
            match = np.abs(guesses - secrets) / (np.abs(guesses) + 1e-12) <= tolerance
        else:
            match = guesses == secrets
    return match | (np.isnan(guesses) & np.isnan(secrets))


def inference_risk(
    original: pd.DataFrame,
    synthetic: pd.DataFrame,
    control: pd.DataFrame,
    *,
    aux_cols: Sequence[str],
    secret: str,
    n_attacks: int = 500,
    regression: bool | None = None,
    tolerance: float = NUMERIC_TOLERANCE,
    numeric_columns: Iterable[str] | None = None,
    seed: int | None = None,
    confidence: float = CONFIDENCE,
    n_jobs: int | None = None,
) -> InferenceRisk:
    """Inference risk of `secret` given `aux_cols` (anonymeter's `InferenceEvaluator` with its default
    nearest-neighbour predictor), see the module docstring. `regression`: compare guesses with the relative
    `tolerance` (default: when `secret` is numeric) rather than for equality."""
    _frames(original, synthetic, control)
    frames = {"original": original, "synthetic": synthetic, "control": control}
    if isinstance(aux_cols, str):
        raise ValueError("aux_cols must be a list of column names, not one string.")
    aux = _check_columns(aux_cols, frames, "inference aux_cols")
    if not isinstance(secret, str):
        raise ValueError("secret must be a single column name.")
    _check_columns([secret], frames, "inference secret")
    if secret in aux:
        raise ValueError(f"The secret column {secret!r} cannot also be an auxiliary column.")
    requested = _check_attacks(n_attacks)
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be non-negative, got {tolerance}.")
    numeric = _numeric_set(original, aux + [secret], numeric_columns)
    regression = (secret in numeric) if regression is None else bool(regression)
    n_main = min(requested, len(original))
    n_baseline = min(len(synthetic), n_main)
    n_control = min(requested, len(control))
    notes = []
    for name, n, available in (("original", n_main, len(original)), ("control", n_control, len(control)),
                               ("baseline", n_baseline, len(synthetic))):
        if n < requested:
            notes.append(f"{name} attacks capped at {n} ({available} rows available, {requested} requested).")
    ori_secret, syn_secret, ctl_secret = _secret_values(
        [original[secret], synthetic[secret], control[secret]], regression, secret)
    baseline_rng, main_rng, control_rng = _derive_rngs(seed, 3)

    def attack(targets_frame: pd.DataFrame, target_secret: np.ndarray, n: int, rng: np.random.Generator) -> int:
        chosen = rng.choice(len(targets_frame), size=n, replace=False)
        nearest = _nearest(_space(synthetic, targets_frame.iloc[chosen], aux, numeric), 1, rng, n_jobs)[:, 0]
        return int(inference_correct(syn_secret[nearest], target_secret[chosen], regression, tolerance).sum())

    targets = baseline_rng.choice(len(original), size=n_baseline, replace=False)
    guesses = baseline_rng.choice(len(synthetic), size=n_baseline, replace=False)
    baseline_successes = int(inference_correct(syn_secret[guesses], ori_secret[targets], regression, tolerance).sum())
    fields = _evaluation((attack(original, ori_secret, n_main, main_rng), n_main),
                         (attack(control, ctl_secret, n_control, control_rng), n_control),
                         (baseline_successes, n_baseline), confidence, notes)
    return InferenceRisk(**fields, aux_cols=tuple(aux), secret=secret, regression=regression,
                         tolerance=float(tolerance))


# --------------------------------------------------------------------------------------------------------------
# All three, for a report
# --------------------------------------------------------------------------------------------------------------

MEANINGS = {
    "singling_out": "Share of predicates built from the synthetic rows that isolate exactly one training person, "
                    "beyond the share that isolates one person of the holdout (0: no more than for people "
                    "never trained on; 1: every such predicate isolates a training person).",
    "linkability": "Share of training people whose two halves of columns {a} and {b} are re-joined through the "
                   "same nearest synthetic row(s), beyond the holdout's share (0: no more than for people never "
                   "trained on).",
    "inference": "Share of training people whose {secret!r} is guessed from {aux} via the nearest synthetic row, "
                 "beyond the holdout's share (0: the synthetic rows reveal nothing about the training rows "
                 "that they do not reveal about anyone).",
}


def _halves(columns: Sequence[str]) -> tuple[list[str], list[str]]:
    middle = (len(columns) + 1) // 2
    return list(columns[:middle]), list(columns[middle:])


def reidentification_risks(
    original: pd.DataFrame,
    synthetic: pd.DataFrame,
    control: pd.DataFrame,
    *,
    quasi_identifiers: Sequence[str],
    secret: str,
    n_attacks: int = 2000,
    seed: int = 0,
    columns: Sequence[str] | None = None,
    numeric_columns: Iterable[str] | None = None,
    n_cols: int = 3,
    n_neighbors: int = 1,
    univariate: bool = True,
    confidence: float = CONFIDENCE,
    n_jobs: int | None = None,
) -> dict:
    """The three anonymeter risks with sensible defaults, as a JSON-ready dict keyed by risk.

    - singling out, multivariate (`n_cols` columns per predicate, at most the number of columns) and, with
      `univariate`, univariate, over `columns` (default: the columns of `original`);
    - linkability between the first and second half of `quasi_identifiers` (with fewer than two of them: the first
      and second half of `columns`), `n_neighbors` nearest synthetic rows;
    - inference of `secret` from the quasi-identifiers other than `secret` (all other columns when none is left).

    Raises ValueError on bad input: fewer than MIN_ROWS rows in a table, an unknown column, n_attacks < 1.
    n_attacks is capped at the rows available; each risk's `notes` say so.
    """
    for name, frame in (("original", original), ("synthetic", synthetic), ("control", control)):
        if not isinstance(frame, pd.DataFrame):
            raise ValueError(f"The {name} rows must be a pandas DataFrame, got {type(frame).__name__}.")
        if len(frame) < MIN_ROWS:
            raise ValueError(f"The {name} table has {len(frame)} rows; re-identification risks need at least "
                             f"{MIN_ROWS}.")
    frames = {"original": original, "synthetic": synthetic, "control": control}
    requested = _check_attacks(n_attacks)
    columns = _check_columns(original.columns if columns is None else columns, frames, "columns")
    if isinstance(quasi_identifiers, str):
        raise ValueError("quasi_identifiers must be a list of column names, not one string.")
    quasi = _check_columns(quasi_identifiers, frames, "quasi_identifiers") if len(quasi_identifiers) else []
    if not isinstance(secret, str):
        raise ValueError("secret must be a single column name.")
    _check_columns([secret], frames, "secret")
    if len(columns) < 2:
        raise ValueError("Re-identification risks need at least two columns.")
    seeds = np.random.SeedSequence(seed).generate_state(4)
    common = dict(numeric_columns=numeric_columns, confidence=confidence)
    out: dict[str, Any] = {}

    so_cols = min(n_cols, len(columns))
    modes = ["multivariate"] + (["univariate"] if univariate else [])
    for i, mode in enumerate(modes):
        result = singling_out_risk(original, synthetic, control, mode=mode, n_attacks=requested, n_cols=so_cols,
                                   columns=columns, seed=int(seeds[i]), **common)
        entry = result.to_dict()
        entry["meaning"] = MEANINGS["singling_out"]
        if mode == "multivariate" and so_cols < n_cols:
            entry["notes"].append(f"n_cols reduced to {so_cols}, the number of columns.")
        out[f"singling_out_{mode}"] = entry

    link_source = quasi if len(quasi) >= 2 else columns
    cols_a, cols_b = _halves(link_source)
    link = linkability_risk(original, synthetic, control, aux_cols=(cols_a, cols_b), n_attacks=requested,
                            n_neighbors=n_neighbors, seed=int(seeds[2]), n_jobs=n_jobs, **common)
    entry = link.to_dict()
    entry["meaning"] = MEANINGS["linkability"].format(a=cols_a, b=cols_b)
    if len(quasi) < 2:
        entry["notes"].append("Fewer than two quasi-identifiers: linkability splits all columns in two halves.")
    out["linkability"] = entry

    aux = [c for c in quasi if c != secret]
    if not aux:
        aux = [c for c in columns if c != secret]
    inference = inference_risk(original, synthetic, control, aux_cols=aux, secret=secret, n_attacks=requested,
                               seed=int(seeds[3]), n_jobs=n_jobs, **common)
    entry = inference.to_dict()
    entry["meaning"] = MEANINGS["inference"].format(secret=secret, aux=aux)
    out["inference"] = entry
    for entry in out.values():
        entry["n_attacks_requested"] = requested
    return out
