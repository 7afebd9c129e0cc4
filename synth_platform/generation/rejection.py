"""Reject generated rows that break a rule and generate replacements, in a bounded number of rounds.

Pure logic: no Dagster here. The auto-optimizer's de-duplication step uses it to drop rows that copy a training row;
any other row-level rule (a range, an ordering) can be a `reject` function too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

DEFAULT_MAX_ROUNDS = 5
OVERSAMPLING = 1.2  # replacement rounds draw this much more than the expected need


@dataclass(frozen=True)
class Accepted:
    frame: pd.DataFrame
    rejected: int  # rows drawn and dropped, over all rounds
    rounds: int  # draws made (1 when the first draw was clean)
    short_by: int  # rows still missing after the last round (0 when the count was reached)


def generate_accepted(
    draw: Callable[[int, int], pd.DataFrame],
    count: int,
    reject: Callable[[pd.DataFrame], np.ndarray],
    *,
    seed: int,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    log: Callable[[str], None] = lambda message: None,
) -> Accepted:
    """`count` rows from `draw(n, seed)` with the rows `reject` flags removed and replaced.

    The first round draws `count`; each later round draws what is missing divided by the acceptance rate seen so
    far (×`OVERSAMPLING`), with its own seed. Stops after `max_rounds` draws, returning fewer rows (`short_by`)
    rather than drawing without end from a generator that mostly produces rejected rows."""
    if count < 1:
        raise ValueError(f"Asked for {count} rows; ask for at least one.")
    seeds = np.random.SeedSequence(seed).generate_state(max_rounds).tolist()
    kept: list[pd.DataFrame] = []
    have = drawn = rejected = rounds = 0
    while have < count and rounds < max_rounds:
        missing = count - have
        acceptance = (drawn - rejected) / drawn if drawn else 1.0
        ask = missing if rounds == 0 else math.ceil(missing / max(acceptance, 0.05) * OVERSAMPLING)
        batch = draw(ask, int(seeds[rounds]))
        rounds += 1
        drop = np.asarray(reject(batch), dtype=bool)
        drawn, rejected = drawn + len(batch), rejected + int(drop.sum())
        good = batch.loc[~drop]
        kept.append(good)
        have += len(good)
        if drop.any():
            log(f"round {rounds}: rejected {int(drop.sum())} of {len(batch)} rows; {min(have, count)}/{count} kept")
    frame = pd.concat(kept, ignore_index=True).head(count) if kept else pd.DataFrame()
    return Accepted(frame.reset_index(drop=True), rejected, rounds, max(0, count - len(frame)))
