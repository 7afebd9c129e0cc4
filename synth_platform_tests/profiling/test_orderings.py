"""Orderings are rules only where the data could have broken them: none between unrelated columns of a wide table
(where pairs holding by chance once rejected every generated row), none implied by disjoint ranges, at most a few
per column; real ones (admission ≤ discharge, minimum ≤ maximum) are still found."""

import time

import numpy as np
import pandas as pd

from synth_platform.profiling.profile import Ordering, apply_disclosure_control, find_orderings, profile_dataframe
from synth_platform_tests.profiling.built_tables import patients, wide_independent


def test_a_wide_table_of_independent_columns_has_no_orderings():
    frame = wide_independent(n=500, columns=300)
    profile = profile_dataframe(frame, detect_orderings=False)
    controlled = apply_disclosure_control(frame, profile)
    values = controlled.to_numpy()
    lows, highs = values.min(axis=0), values.max(axis=0)
    old_rule = 0  # pairs the old rule kept: low ≤ high on every row and the ranges overlapping at all
    for i in range(values.shape[1]):
        holds = (values[:, [i]] <= values).all(axis=0) & (highs[i] > lows)
        holds[i] = False
        old_rule += int(holds.sum())
    assert old_rule > 100  # the table offers many chance orderings
    started = time.perf_counter()
    found = find_orderings(controlled, profile)
    elapsed = time.perf_counter() - started
    assert found == [], [str(o) for o in found]
    assert elapsed < 30, elapsed  # 300 columns (89,700 ordered pairs) in seconds: measured about 1 s on 2 cores


def test_orderings_the_ranges_imply_or_almost_imply_make_no_rule():
    rng = np.random.default_rng(0)
    small = rng.uniform(0, 10, 400)
    frame = pd.DataFrame({
        "small": small,
        "large": rng.uniform(20, 30, 400),  # disjoint: small ≤ large says nothing the ranges do not
        "touching": np.maximum(rng.uniform(9.5, 40, 400), small),  # ranges overlap by a sliver; ≤ holds on every row
    })
    profile = profile_dataframe(frame, rare_value_k=1)
    assert profile.orderings == []


def test_real_orderings_are_found_min_max_pairs_and_dates():
    rng = np.random.default_rng(1)
    n = 300
    low = rng.normal(100, 20, n)
    frame = pd.DataFrame({
        "price_min": low.round(2), "price_max": (low + rng.gamma(2, 5, n)).round(2),
        "noise": rng.normal(100, 20, n),
    })
    profile = profile_dataframe(frame)
    assert profile.orderings == [Ordering("price_min", "price_max")]
    patient_profile = profile_dataframe(patients(), column_treatments={"notes": "drop"})
    assert patient_profile.orderings == [Ordering("admitted", "discharged"), Ordering("admitted", "seen_at")]


def test_a_chain_keeps_only_its_links_and_each_column_at_most_the_cap():
    from synth_platform.profiling.orderings import MAX_ORDERINGS, MAX_PER_COLUMN

    rng = np.random.default_rng(2)
    n = 400
    start = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    waits = rng.integers(0, 5, (4, n)).cumsum(axis=0)
    steps = {f"step{i}": start + pd.to_timedelta(waits[i], unit="D") for i in range(4)}
    frame = pd.DataFrame({"start": start, **steps})
    profile = profile_dataframe(frame, rare_value_k=1)
    # start ≤ step0 ≤ step1 ≤ … holds, and so does every pair further apart: only the links are rules
    assert profile.orderings == [
        Ordering("start", "step0"), Ordering("step0", "step1"), Ordering("step1", "step2"), Ordering("step2", "step3"),
    ]
    base = rng.normal(0, 10, n)
    many = pd.DataFrame({"base": base, **{f"above{i}": base + rng.gamma(1 + i, 3, n) for i in range(8)}})
    orderings = profile_dataframe(many).orderings
    per_column = pd.Series([name for o in orderings for name in (o.low, o.high)]).value_counts()
    assert per_column.max() <= MAX_PER_COLUMN and len(orderings) <= MAX_ORDERINGS
    assert sum(o.low == "base" for o in orderings) == MAX_PER_COLUMN  # base ≤ each of 8: the strongest 3 kept
