import optuna
import pytest
from scipy.stats import ks_2samp

from synth_platform.profiling.profile import encode_for_generation, profile_dataframe
from synth_platform.tuning.study import TuningBudget, run_study, utility_distance


def test_utility_distance_is_zero_on_identical_tables_and_equals_a_hand_computed_damage(adult_small):
    profile = profile_dataframe(adult_small)
    assert utility_distance(adult_small, adult_small, profile) == 0.0
    # Shift age by 20 years and make everybody female: only those two column shapes change (a shift keeps every
    # Pearson correlation), so the distance is (KS of age + TVD of sex) / number of compared columns.
    damaged = adult_small.assign(age=adult_small["age"] + 20, sex="Female")
    expected_ks = ks_2samp(adult_small["age"], damaged["age"]).statistic
    expected_tvd = (adult_small["sex"] != "Female").mean()  # ½(|p_F - 1| + |p_M - 0|) = p_M
    n_columns = len(adult_small.columns)
    assert utility_distance(adult_small, damaged, profile) == pytest.approx((expected_ks + expected_tvd) / n_columns, abs=1e-12)


def test_study_is_persisted_and_resumed_in_sqlite(tmp_path, adult_small):
    profile = profile_dataframe(adult_small)
    encoded = encode_for_generation(adult_small, profile)
    storage = f"sqlite:///{tmp_path / 'optuna.sqlite3'}"
    budget = TuningBudget(n_trials=2, trial_steps=10, tuning_rows=200)
    kwargs = dict(plugin="ddpm", fingerprint="adult-test", storage=storage, budget=budget, workspace=tmp_path / "ws")
    first = run_study(encoded, adult_small, profile, **kwargs)
    assert first.study_name == "adult-test-ddpm"
    assert first.trials_this_run == 2 and first.trials_in_study == 2
    assert set(first.params) == {"lr", "batch_size"}
    second = run_study(encoded, adult_small, profile, **kwargs)
    assert second.trials_in_study == 4
    assert second.best_value <= first.best_value
    study = optuna.load_study(study_name="adult-test-ddpm", storage=storage)
    assert len(study.trials) == 4
    assert study.best_value == pytest.approx(second.best_value)
    assert all(t.user_attrs["budget"] == budget.signature for t in study.trials)


def test_failing_trials_are_recorded_not_fatal_and_all_failing_is_a_clear_error(tmp_path, adult_small):
    profile = profile_dataframe(adult_small)
    encoded = encode_for_generation(adult_small, profile)
    encoded.iloc[0, 0] = None  # a NaN makes every fit fail
    with pytest.raises(Exception, match="Every tuning trial of ddpm failed"):
        run_study(encoded, adult_small, profile, plugin="ddpm", fingerprint="broken", storage=f"sqlite:///{tmp_path / 'o.db'}",
                  budget=TuningBudget(n_trials=2, trial_steps=5, tuning_rows=800), workspace=tmp_path / "ws")
    study = optuna.load_study(study_name="broken-ddpm", storage=f"sqlite:///{tmp_path / 'o.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2


def test_budget_is_validated():
    with pytest.raises(ValueError, match="n_trials must be at least 1"):
        TuningBudget(n_trials=0).validate()
