"""Reject and regenerate: exact counts, bounded rounds, and the copy rule on real Adult rows."""

import numpy as np
import pandas as pd
import pytest

from synth_platform.evaluation.report import copies_of_training
from synth_platform.generation.rejection import generate_accepted
from synth_platform.profiling.profile import profile_dataframe


def draw_from(pool: pd.DataFrame):
    """Rows drawn with replacement from `pool`, reproducible by seed (the shape a generator's sampler has)."""
    def draw(n: int, seed: int) -> pd.DataFrame:
        return pool.sample(n, replace=True, random_state=seed).reset_index(drop=True)
    return draw


def test_copies_are_removed_and_replaced_to_the_exact_count(adult):
    rows = adult.sample(3000, random_state=2).reset_index(drop=True)
    training, fresh = rows.iloc[:1000].reset_index(drop=True), rows.iloc[1000:].reset_index(drop=True)
    profile = profile_dataframe(training)
    pool = pd.concat([training.iloc[:300], fresh], ignore_index=True)  # 300 of 2,300 pool rows copy training rows
    reject = lambda frame: copies_of_training(frame, training, profile)  # noqa: E731
    accepted = generate_accepted(draw_from(pool), 800, reject, seed=0)
    assert len(accepted.frame) == 800 and accepted.short_by == 0
    assert not copies_of_training(accepted.frame, training, profile).any()
    assert accepted.rejected > 0 and accepted.rounds >= 2
    assert list(accepted.frame.columns) == list(training.columns)
    again = generate_accepted(draw_from(pool), 800, reject, seed=0)
    pd.testing.assert_frame_equal(accepted.frame, again.frame)  # same seed, same rows


def test_copy_mask_agrees_with_a_pandas_join(adult):
    training = adult.iloc[:500].reset_index(drop=True)
    synthetic = pd.concat([training.iloc[:50], adult.iloc[500:650]], ignore_index=True)
    profile = profile_dataframe(training)
    mask = copies_of_training(synthetic, training, profile)
    compared = profile.by_kind("numeric", "datetime", "categorical")
    joined = synthetic[compared].merge(training[compared].drop_duplicates(), how="left", indicator=True)
    np.testing.assert_array_equal(mask, (joined["_merge"] == "both").to_numpy())
    assert mask[:50].all()


def test_rounds_are_bounded_when_almost_everything_is_rejected():
    pool = pd.DataFrame({"x": np.arange(1000)})
    accepted = generate_accepted(draw_from(pool), 100, lambda frame: frame["x"].to_numpy() >= 5, seed=1, max_rounds=3)
    assert accepted.rounds == 3 and accepted.short_by > 0 and len(accepted.frame) == 100 - accepted.short_by
    assert (accepted.frame["x"] < 5).all()


def test_a_clean_first_draw_is_one_round():
    pool = pd.DataFrame({"x": np.arange(10)})
    accepted = generate_accepted(draw_from(pool), 30, lambda frame: np.zeros(len(frame), bool), seed=0)
    assert (accepted.rounds, accepted.rejected, len(accepted.frame)) == (1, 0, 30)
    with pytest.raises(ValueError, match="at least one"):
        generate_accepted(draw_from(pool), 0, lambda frame: np.zeros(len(frame), bool), seed=0)
