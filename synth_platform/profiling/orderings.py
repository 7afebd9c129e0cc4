"""Cross-column orderings (`low ≤ high` on every source row) worth holding a synthetic table to.

Pure logic: no Dagster here. An ordering is a rule only when the data could have broken it: two columns whose
values would, drawn independently, often come in the other order (admission and discharge dates, a loan and the
price of what it buys) and never do. Orderings the ranges imply (every `a` below every `b`) or that hold by
chance between unrelated columns (a wide table has thousands of pairs) are no rule, and each one kept rejects
generated rows, so: the chance the ordering holds on all rows if the two columns were independent must be tiny
after accounting for every pair tried; at most `MAX_PER_COLUMN` per column and `MAX_ORDERINGS` in all are kept,
the strongest first; and an ordering implied by two others through an always-present column is left out.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from synth_platform.profiling.columns import ColumnProfile, DatasetProfile, Ordering
from synth_platform.profiling.values import as_number

MIN_ROWS = 20  # fewer rows with both values than this prove nothing
FALSE_ALARM = 1e-3  # chance, over all pairs tried, that one ordering kept is a coincidence of independent columns
MAX_PER_COLUMN = 3
MAX_ORDERINGS = 25
PROBE_ROWS = 2_000  # pairs are first tried on these many rows: one broken row there rules a pair out cheaply


def comparable_form(column: ColumnProfile) -> tuple[str, ...]:
    """Columns whose synthetic values can be compared with each other (by pandas and Great Expectations)."""
    if column.kind == "datetime":
        form = column.datetime_form or "datetime64"
        return ("datetime", "datetime64" if form.startswith("datetime64") else form, str(column.datetime_timezone is not None))
    return ("numeric", "duration" if column.conversion == "timedelta" else "number")


def find_orderings(frame: pd.DataFrame, profile: DatasetProfile, min_rows: int = MIN_ROWS) -> list[Ordering]:
    """Pairs of modelled columns of the same kind and form with low ≤ high on every row where both are present
    (at least `min_rows` rows), that independent columns would break (see the module's doc), capped per column
    and in all, strongest first; in the columns' order."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for column in profile.columns:
        if column.modelled and column.kind in ("numeric", "datetime") and column.name in frame:
            groups.setdefault(comparable_form(column), []).append(column.name)
    tested = sum(len(names) * (len(names) - 1) for names in groups.values())
    if not tested:
        return []
    log_budget = math.log(FALSE_ALARM / tested)
    candidates: list[tuple[float, str, str]] = []  # (strength, low, high)
    numbers_of: dict[str, np.ndarray] = {}
    for names in groups.values():
        if len(names) < 2:
            continue
        matrix = np.column_stack([as_number(frame[name], profile.column(name).kind) for name in names])
        numbers_of.update({name: matrix[:, i] for i, name in enumerate(names)})
        for i, j in _holding_pairs(matrix, min_rows):
            strength = _strength(matrix[:, i], matrix[:, j], log_budget)
            if strength is not None:
                candidates.append((strength, names[i], names[j]))
    kept = _without_implied(candidates, numbers_of)
    chosen = _capped(kept)
    order = {column.name: position for position, column in enumerate(profile.columns)}
    return [Ordering(low, high) for low, high in sorted(chosen, key=lambda pair: (order[pair[0]], order[pair[1]]))]


def _holding_pairs(matrix: np.ndarray, min_rows: int) -> list[tuple[int, int]]:
    """(i, j) with column i ≤ column j on every row where both are present, on at least `min_rows` such rows,
    the columns not equal on all of them."""
    present = ~np.isnan(matrix)
    rows = np.arange(len(matrix))
    if len(rows) > PROBE_ROWS:
        probe = np.random.default_rng(0).choice(rows, PROBE_ROWS, replace=False)
        survivors = _pairs_on(matrix[probe], present[probe], min_rows=0, probing=True)
    else:
        survivors = None
    return _pairs_on(matrix, present, min_rows, survivors)


def _pairs_on(
    matrix: np.ndarray, present: np.ndarray, min_rows: int, only: list[tuple[int, int]] | None = None, probing: bool = False
) -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    width = matrix.shape[1]
    wanted: dict[int, list[int]] | None = None
    if only is not None:
        wanted = {}
        for i, j in only:
            wanted.setdefault(i, []).append(j)
    with np.errstate(invalid="ignore"):
        for i in range(width):
            others = np.array(wanted.get(i, []) if wanted is not None else [j for j in range(width) if j != i], dtype=int)
            if not len(others):
                continue
            both = present[:, [i]] & present[:, others]
            low, high = matrix[:, [i]], matrix[:, others]
            holds = ((low <= high) | ~both).all(axis=0)
            equal = ((low == high) | ~both).all(axis=0)
            counts = both.sum(axis=0)
            keep = holds if probing else holds & ~equal & (counts >= max(min_rows, 1))
            for j in others[keep]:
                pairs.append((i, int(j)))
    return pairs


def _strength(low: np.ndarray, high: np.ndarray, log_budget: float) -> float | None:
    """The share of (low, high) value pairs drawn independently that would break low ≤ high, when the ordering
    holding on all n rows is too unlikely for independent columns (p^n below the budget); None otherwise."""
    both = ~np.isnan(low) & ~np.isnan(high)
    x, y = low[both], np.sort(high[both])
    n = len(x)
    at_least = n - np.searchsorted(y, x, side="left")  # per x: how many y are ≥ x
    holds_by_chance = float(at_least.sum()) / (n * n)
    strength = 1.0 - holds_by_chance
    if strength <= 0:  # every low below every high: the ranges imply it
        return None
    if n * math.log(holds_by_chance) > log_budget:
        return None
    return strength


def _without_implied(candidates: list[tuple[float, str, str]], numbers: dict[str, np.ndarray]) -> list[tuple[float, str, str]]:
    """Leave out a ≤ c when a ≤ b and b ≤ c hold and b is present wherever a and c are (it then follows)."""
    pairs = {(low, high) for _, low, high in candidates}
    kept = []
    for strength, low, high in candidates:
        implied = False
        for middle in numbers:
            if middle in (low, high) or (low, middle) not in pairs or (middle, high) not in pairs:
                continue
            where = ~np.isnan(numbers[low]) & ~np.isnan(numbers[high])
            if not np.isnan(numbers[middle][where]).any():
                implied = True
                break
        if not implied:
            kept.append((strength, low, high))
    return kept


def _capped(candidates: list[tuple[float, str, str]]) -> list[tuple[str, str]]:
    per_column: dict[str, int] = {}
    chosen: list[tuple[str, str]] = []
    for _, low, high in sorted(candidates, key=lambda item: (-item[0], item[1], item[2])):
        if len(chosen) >= MAX_ORDERINGS:
            break
        if per_column.get(low, 0) >= MAX_PER_COLUMN or per_column.get(high, 0) >= MAX_PER_COLUMN:
            continue
        chosen.append((low, high))
        per_column[low] = per_column.get(low, 0) + 1
        per_column[high] = per_column.get(high, 0) + 1
    return chosen
