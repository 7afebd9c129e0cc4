"""Trial scores on values the profiler passes through (±inf, Python dates with sentinels)."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from synth_platform.profiling.profile import profile_dataframe
from synth_platform.tuning.study import trial_scores


def _rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(40, 10, n)
    x[:30], x[30:60] = np.inf, -np.inf  # enough rows (≥ k) to be modelled special values
    dates = pd.Series([dt.date(2000, 1, 1) + dt.timedelta(days=int(v)) for v in rng.integers(0, 3000, n)], dtype=object)
    dates[12:18] = dt.date(9999, 12, 31)
    return pd.DataFrame({"x": x, "d": dates})


def test_the_membership_auc_with_infinities_is_the_attack_s_not_zero():
    fit_rows, validation = _rows(120, 1), _rows(120, 2)
    profile = profile_dataframe(fit_rows)
    # Synthetic rows that copy every fit row: each member is at distance 0. Non-members are further away, except the
    # 6 validation rows 12-17 (+inf, 9999-12-31), which equal fit rows 12-17 and tie with the members at 0:
    # AUC = P(member closer) + ½ P(tie) = 1 - ½ · 6/120. (±inf were NaN-like before: AUC 0.5.)
    scores = trial_scores(fit_rows, validation, fit_rows.copy(), profile, privacy_rows=120)
    assert scores["membership_inference_auc"] == pytest.approx(1 - 0.5 * 6 / 120)
    assert scores["exact_copy_rate"] == 1.0
    # Synthetic rows drawn like the validation rows: no leakage to see, an AUC near 0.5.
    fresh = trial_scores(fit_rows, validation, _rows(120, 3), profile, privacy_rows=120)
    assert 0.4 < fresh["membership_inference_auc"] < 0.6
    assert all(np.isfinite(v) for v in fresh.values())


def test_the_fidelity_objective_adds_how_far_a_classifier_tells_the_rows_apart():
    from synth_platform.tuning.study import fidelity_objective

    rng = np.random.default_rng(0)
    real = pd.DataFrame({"a": rng.normal(0, 1, 600), "b": rng.choice(["x", "y"], 600)})
    real["c"] = real["a"] * 2 + rng.normal(0, 0.1, 600)
    fit_rows, validation = real.iloc[:300].reset_index(drop=True), real.iloc[300:].reset_index(drop=True)
    profile = profile_dataframe(fit_rows)
    # Rows like the validation rows: a classifier cannot tell them apart; c independent of a: it can.
    alike = trial_scores(fit_rows, validation, fit_rows.copy(), profile, detection=True)
    broken = fit_rows.copy()
    broken["c"] = rng.permutation(broken["c"].to_numpy())
    apart = trial_scores(fit_rows, validation, broken, profile, detection=True)
    assert abs(alike["detection_auc"] - 0.5) < 0.1 and apart["detection_auc"] > 0.8
    assert fidelity_objective(apart) == pytest.approx(apart["utility_distance"] + apart["detection_auc"] - 0.5)
    assert fidelity_objective({"utility_distance": 0.1, "detection_auc": 0.3}) == 0.1  # below chance adds nothing
    assert "detection_auc" not in trial_scores(fit_rows, validation, broken, profile)  # only when asked for
