"""Missing values at the source's share in every column, by choosing which generated rows to keep.

A generator learns "missing" as one more category (or a missing-indicator column), and an under-trained one gets its
share wrong: Adult's occupation came back missing in 11 % of rows against 5.9 % in the source, and the contract
warned. Setting values missing (or filling them) at random would meet the share but break what the generator got
right: in Adult, occupation and workclass are missing in the same rows. So rows are never edited; instead a few more
rows than needed are drawn and a subset is kept whose missing shares match the source's:

1. Inclusion probabilities by raking (iterative proportional fitting, Deming & Stephan 1940) bounded at 1: start at
   count / drawn for every row; for each column in turn, rescale its missing rows' probabilities to sum to
   target × count and its present rows' to (1 − target) × count, none above 1; repeat until every expected share is
   within `RAKING_TOLERANCE` of its target.
2. Rows kept by systematic sampling with those probabilities (Madow 1949), visiting the rows grouped by which
   columns they miss: exactly `count` rows, each drawn row kept at most once, every kept row a whole generated row.

A column whose drawn rows are all missing (or none is, while the source has some) cannot be matched by choosing
rows, nor can one whose target conflicts with another's in the drawn rows (the source misses `b` only where it misses
`a`, the draw misses `b` more and `a` less): such a column is reported as unreachable and left to the other
columns' choice, never further from its target than the drawn rows were (in expectation). Pure logic: no Dagster here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

MATCH_TOLERANCE = 0.01  # shares within 1 point of the source's are left as generated (no extra rows drawn)
RAKING_TOLERANCE = 1e-4
RAKING_ITERATIONS = 200
MAX_POOL_FACTOR = 2.0  # never draw more than twice the rows asked for to match the shares
POOL_MARGIN = 1.1  # draw 10 % more than the least the worst column needs


@dataclass(frozen=True)
class MissingShareMatch:
    """The rows kept, and per column the source's missing share, the drawn rows' and the kept rows'."""

    frame: pd.DataFrame
    source: dict[str, float]
    drawn: dict[str, float]
    kept: dict[str, float]
    unreachable: tuple[str, ...] = field(default=())  # columns no choice of rows could match

    def describe(self) -> str:
        moved = [f"{c} {self.drawn[c]:.1%} -> {self.kept[c]:.1%} (source {self.source[c]:.1%})"
                 for c in self.source if abs(self.drawn[c] - self.source[c]) > MATCH_TOLERANCE]
        text = "missing shares " + ("; ".join(moved) if moved else "already within 1 point of the source")
        if self.unreachable:
            text += f"; not reachable by choosing rows (left as generated): {', '.join(self.unreachable)}"
        return text


def missing_shares(frame: pd.DataFrame, columns: list[str]) -> dict[str, float]:
    return {c: float(frame[c].isna().mean()) if len(frame) else 0.0 for c in columns}


def off_columns(frame: pd.DataFrame, targets: Mapping[str, float], tolerance: float = MATCH_TOLERANCE) -> list[str]:
    """The columns whose missing share is further than `tolerance` from its target."""
    shares = missing_shares(frame, list(targets))
    return [c for c, target in targets.items() if abs(shares[c] - target) > tolerance]


def pool_size(frame: pd.DataFrame, targets: Mapping[str, float], count: int) -> int:
    """How many drawn rows (at least `count`, at most `MAX_POOL_FACTOR` × `count`) a choice of `count` rows with
    the target shares needs, going by the shares `frame` (a draw of the same generator) shows: a column missing
    too often needs (1 − target) / (1 − share) × `count` rows to find enough present ones, one missing too rarely
    target / share × `count`; 10 % more for the draw's own noise."""
    factor = 1.0
    for column, share in missing_shares(frame, list(targets)).items():
        target = targets[column]
        if share > target and share < 1:
            factor = max(factor, (1 - target) / (1 - share))
        elif share < target and share > 0:
            factor = max(factor, target / share)
    return int(math.ceil(count * min(MAX_POOL_FACTOR, factor * POOL_MARGIN)))


def inclusion_probabilities(weights: np.ndarray, total: float) -> np.ndarray:
    """Probabilities proportional to `weights` summing to `total`, none above 1 (the excess of capped rows is
    shared out among the others in proportion). Rows of weight 0 stay at 0."""
    probabilities = np.zeros(len(weights))
    free = weights > 0
    remaining = float(total)
    while remaining > 1e-12 and free.any():
        share = remaining * weights[free] / weights[free].sum()
        over = share >= 1
        if not over.any():
            probabilities[free] = share
            break
        capped = np.flatnonzero(free)[over]
        probabilities[capped] = 1.0
        free[capped] = False
        remaining -= len(capped)
    return probabilities


def raked_inclusion_probabilities(missing: np.ndarray, targets: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Inclusion probabilities (each ≤ 1, summing to `count`) under which each column's expected missing share among
    the kept rows is its target (rows × columns boolean `missing`): raking with the cap at 1 kept at every step
    (for each column in turn, its missing rows are rescaled to sum to target × count and its present rows to
    (1 − target) × count, each by `inclusion_probabilities`), repeated until every share is within
    `RAKING_TOLERANCE`. Also which columns could take part (a column all or never missing cannot move)."""
    rows = missing.shape[0]
    probabilities = np.full(rows, count / rows)
    counts = missing.sum(axis=0)
    reachable = ~(((counts == 0) & (targets > 0)) | ((counts == rows) & (targets < 1)))
    for _ in range(RAKING_ITERATIONS):
        worst = 0.0
        for j in np.flatnonzero(reachable):
            column, target = missing[:, j], float(targets[j])
            worst = max(worst, abs(probabilities[column].sum() / count - target))
            for group, wanted in ((column, target * count), (~column, (1 - target) * count)):
                if group.any():
                    probabilities[group] = inclusion_probabilities(probabilities[group], wanted)
        if worst <= RAKING_TOLERANCE:
            break
    # Groups too small for their targets leave the total short of `count`: the rest goes to every row in proportion
    # (a row raked to 0 gets a share too, so the count is always reached).
    return inclusion_probabilities(np.maximum(probabilities, 1e-9), count), reachable


def systematic_sample(probabilities: np.ndarray, rng: np.random.Generator, groups: np.ndarray | None = None) -> np.ndarray:
    """Row positions chosen by systematic sampling (one random start): row i is chosen with probability
    `probabilities[i]` (each ≤ 1), exactly round(Σ probabilities) rows, none twice. Sorted.

    Rows are visited in random order, sorted by the rows of `groups` (rows × flags, e.g. which columns are missing),
    first flag first: the rows of each group are then contiguous, so each group gets its expected count to within
    one row (the first flag's rows exactly so; implicit stratification)."""
    order = rng.permutation(len(probabilities))
    if groups is not None and groups.size:
        order = order[np.lexsort(groups[order].T[::-1])]
    cumulative = np.cumsum(probabilities[order])
    count = int(round(cumulative[-1])) if len(cumulative) else 0
    if count == 0:
        return np.array([], dtype=int)
    cumulative *= count / cumulative[-1]  # float sums end exactly at the count: the last point always lands
    points = rng.uniform() + np.arange(count)
    picked = order[np.searchsorted(cumulative, points, side="right")]
    return np.sort(picked)


def match_missing_shares(pool: pd.DataFrame, targets: Mapping[str, float], count: int, *, seed: int) -> MissingShareMatch:
    """`count` whole rows of `pool` whose missing share in each column of `targets` is the target's (as near as the
    pool allows; module docstring). Raises ValueError when the pool has fewer than `count` rows or a target is not
    a share in [0, 1]."""
    if count > len(pool):
        raise ValueError(f"Cannot keep {count} rows of a pool of {len(pool)}.")
    bad = {c: t for c, t in targets.items() if not 0 <= float(t) <= 1}
    if bad:
        raise ValueError(f"Missing shares must be in [0, 1]; got {bad}.")
    columns = list(targets)
    drawn = missing_shares(pool, columns)
    if not columns or count == 0:
        frame = pool.iloc[:count]
        return MissingShareMatch(frame.reset_index(drop=True), dict(targets), drawn, missing_shares(frame, columns))
    missing = pool[columns].isna().to_numpy()
    targets_array = np.array([float(targets[c]) for c in columns])
    drawn_off = np.abs(missing.mean(axis=0) - targets_array)
    def rake(active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probabilities, reachable = raked_inclusion_probabilities(missing[:, active], targets_array[active], count)
        worse = np.abs(probabilities @ missing / count - targets_array) > drawn_off + RAKING_TOLERANCE
        return probabilities, reachable, worse

    # Columns whose targets conflict with the others' are left out, one at a time, until no column ends further off
    # than drawn: a worse column that was raked goes first, else the one whose leaving out leaves fewest worse.
    active = np.ones(len(columns), dtype=bool)
    probabilities, reachable, worse = rake(active)
    while worse.any():
        if (worse & active).any():
            active &= ~worse
        else:
            def without(j: int) -> np.ndarray:
                trial = active.copy()
                trial[j] = False
                return trial
            active = min((without(j) for j in np.flatnonzero(active)), key=lambda trial: int(rake(trial)[2].sum()))
        if not active.any():
            probabilities, reachable, worse = np.full(len(pool), count / len(pool)), np.zeros(0, dtype=bool), active
            break
        probabilities, reachable, worse = rake(active)
    matched = np.zeros(len(columns), dtype=bool)
    matched[np.flatnonzero(active)[reachable]] = True
    chosen = systematic_sample(probabilities, np.random.default_rng(seed), groups=missing)
    frame = pool.iloc[chosen].reset_index(drop=True)
    unreachable = tuple(c for c, ok in zip(columns, matched) if not ok and abs(drawn[c] - targets[c]) > MATCH_TOLERANCE)
    return MissingShareMatch(frame, {c: float(t) for c, t in targets.items()}, drawn, missing_shares(frame, columns), unreachable)
