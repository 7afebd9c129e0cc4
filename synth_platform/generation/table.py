"""Draw the synthetic table from a fitted generator: decode to the source's schema, reject and regenerate rows that
break the source's contract (or copy a training row), and number the surrogate keys. Pure logic: no Dagster here."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from synth_platform.generation import generators
from synth_platform.generation.missing_shares import match_missing_shares, off_columns, pool_size
from synth_platform.generation.rejection import DEFAULT_MAX_ROUNDS, generate_accepted
from synth_platform.profiling.contract import row_violations
from synth_platform.profiling.profile import DatasetProfile, decode_from_generation, renumber_surrogate_keys

TRAINING_COPY_RULE = "copy of a training row"


@dataclass
class GeneratedTable:
    frame: pd.DataFrame
    rejected_by_rule: dict[str, int] = field(default_factory=dict)  # rows rejected per rule (a row can break several)
    rejected_rows: int = 0
    rounds: int = 1
    short_by: int = 0  # rows still missing after the last round
    missing_shares: dict[str, dict[str, float]] = field(default_factory=dict)  # column → source / drawn / kept share (when matched)


def generate_table(
    fitted: generators.FittedGenerator,
    count: int,
    profile: DatasetProfile,
    *,
    seed: int,
    enforce_contract: bool = True,
    copies_of: Callable[[pd.DataFrame], np.ndarray] | None = None,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    sampling_steps: int = generators.DEFAULT_SAMPLING_STEPS,
    chunk_rows: int = generators.SAMPLE_CHUNK_ROWS,
    log: Callable[[str], None] = lambda message: None,
) -> GeneratedTable:
    """`count` source-shaped rows. With `enforce_contract`, rows that break a row rule of the contract (range,
    allowed values, required value, ordering) are rejected; with `copies_of` (rows → mask), rows it flags too.
    Rejected rows are replaced by fresh draws, at most `max_rounds` draws in all. With `enforce_contract`, a column
    whose missing share is more than a point off the source's is matched too (the contract's missing-rate
    expectation): a few more rows are drawn and whole rows kept by `missing_shares.match_missing_shares`."""
    def draw(rows: int, draw_seed: int) -> pd.DataFrame:
        chunks = generators.iter_sample(fitted, rows, seed=draw_seed, log=log, sampling_steps=sampling_steps, chunk_rows=chunk_rows)
        return pd.concat([decode_from_generation(chunk, profile) for chunk in chunks], ignore_index=True)

    if not enforce_contract and copies_of is None:
        return GeneratedTable(renumber_surrogate_keys(draw(count, seed), profile))
    counts: Counter[str] = Counter()

    def reject(rows: pd.DataFrame) -> np.ndarray:
        mask = np.zeros(len(rows), dtype=bool)
        if enforce_contract:
            broken = row_violations(rows, profile)
            counts.update({rule: int(n) for rule, n in broken.sum().items() if n})
            mask |= broken.any(axis=1).to_numpy()
        if copies_of is not None:
            copies = np.asarray(copies_of(rows), dtype=bool)
            counts[TRAINING_COPY_RULE] += int(copies.sum())
            mask |= copies
        return mask

    accepted = generate_accepted(draw, count, reject, seed=seed, max_rounds=max_rounds, log=log)
    frame, rejected, rounds, shares = accepted.frame, accepted.rejected, accepted.rounds, {}
    targets = {c.name: float(c.missing_fraction) for c in profile.columns if c.modelled and c.name in frame.columns}
    if enforce_contract and not accepted.short_by and off_columns(frame, targets):
        extra = pool_size(frame, targets, count) - len(frame)
        more = generate_accepted(draw, extra, reject, seed=seed + 7919, max_rounds=max_rounds, log=log)
        matched = match_missing_shares(pd.concat([frame, more.frame], ignore_index=True), targets, count, seed=seed)
        log(f"drew {len(more.frame)} more rows and kept {count} of {len(frame) + len(more.frame)}: {matched.describe()}")
        frame, rejected, rounds = matched.frame, rejected + more.rejected, rounds + more.rounds
        shares = {c: {"source": round(matched.source[c], 4), "drawn": round(matched.drawn[c], 4), "kept": round(matched.kept[c], 4)}
                  for c in off_columns(accepted.frame, targets)}
    table = GeneratedTable(
        renumber_surrogate_keys(frame, profile), {rule: n for rule, n in counts.items() if n},
        rejected, rounds, accepted.short_by, shares,
    )
    if table.rejected_rows:
        log(f"rejected and regenerated {table.rejected_rows} rows in {table.rounds} draw(s): {table.rejected_by_rule}")
    if table.short_by:
        log(
            f"{table.short_by} of {count} rows are missing after {table.rounds} draws: the generator mostly produces "
            "rejected rows; raise max_regeneration_rounds or fix the generator (train longer; fewer steps or a DP "
            "plugin if it copies training rows)."
        )
    return table
