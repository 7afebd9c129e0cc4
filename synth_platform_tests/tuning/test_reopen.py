"""Re-opening a study under stricter privacy constraints: which earlier trials carry over."""

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from synth_platform.tuning.study import PrivacyConstraints, reopened_trials


def _trial(lr, utility, mia, copies, state=TrialState.COMPLETE):
    return create_trial(
        params={"lr": lr}, distributions={"lr": FloatDistribution(1e-5, 1e-1, log=True)},
        value=utility if state == TrialState.COMPLETE else None, state=state,
        user_attrs={"utility_distance": utility, "membership_inference_auc": mia, "exact_copy_rate": copies},
    )


def test_only_trials_that_meet_the_stricter_limits_carry_over_best_utility_first(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.sqlite3'}"
    study = optuna.create_study(study_name="adult-ddpm-none-mia0.6-copy0.05", storage=storage)
    study.add_trials([
        _trial(1e-3, 0.10, 0.58, 0.00),  # meets 0.6, not 0.55
        _trial(2e-3, 0.20, 0.54, 0.00),  # meets both
        _trial(3e-3, 0.15, 0.52, 0.00),  # meets both, better utility
        _trial(4e-3, 0.05, 0.50, 0.20),  # copies too many
        _trial(5e-3, 0.01, 0.50, 0.00, state=TrialState.FAIL),
    ])
    carried = reopened_trials(storage, study.study_name, PrivacyConstraints(mia_auc_max=0.55, exact_copy_rate_max=0.05))
    assert [c["lr"] for c in carried] == [3e-3, 2e-3]
    assert carried[0]["origin"] == f"re-opened from {study.study_name} trial 2"
    assert len(reopened_trials(storage, study.study_name, PrivacyConstraints(0.60, 0.05), limit=1)) == 1
    assert reopened_trials(storage, "no-such-study", PrivacyConstraints()) == []
