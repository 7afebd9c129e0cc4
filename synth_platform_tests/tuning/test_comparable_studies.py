"""Issue 20: studies hold only comparable trials (same dataset, sample size, plugin, privacy policy and trial
budget), a trial is pruned only against trials of its own budget, a re-run never repeats a parameter set, and a
tuning step with no usable trial falls back to the best known parameters instead of failing."""

import math

import optuna
import pytest

from synth_platform.generation.generators import PrivacyPolicy
from synth_platform.profiling.profile import encode_for_generation, profile_dataframe
from synth_platform.tuning import strategy
from synth_platform.tuning.memory import TuningMemory, TuningMemoryEntry, meta_features
from synth_platform.tuning.search_space import default_params, search_space
from synth_platform.tuning.study import TuningBudget, run_study, same_params, select_best, study_name_for

NAMES = ("lr", "batch_size")  # ddpm's searched parameters


@pytest.fixture(scope="module")
def encoded_adult(adult_small):
    profile = profile_dataframe(adult_small)
    return encode_for_generation(adult_small, profile), adult_small, profile


def _run(tmp_path, encoded_adult, *, fingerprint="adult", n_trials=1, trial_steps=10, rows=None, **kwargs):
    encoded, frame, profile = encoded_adult
    if rows is not None:
        encoded, frame = encoded.iloc[:rows], frame.iloc[:rows]
    kwargs.setdefault("storage", f"sqlite:///{tmp_path / 'optuna.db'}")
    return run_study(encoded, frame, profile, plugin="ddpm", fingerprint=fingerprint, workspace=tmp_path / "ws",
                     budget=TuningBudget(n_trials=n_trials, trial_steps=trial_steps, tuning_rows=200), **kwargs)


def _trials(result, tmp_path):
    return optuna.load_study(study_name=result.study_name, storage=f"sqlite:///{tmp_path / 'optuna.db'}").trials


# ----------------------------------------------------------------------------------------------- 1: the pruner


@pytest.mark.parametrize("pruner", ["median", "successive_halving"])
def test_a_trial_of_a_new_budget_is_never_pruned_against_trials_of_another_budget(pruner):
    """Issue 20, problem 1: the only trial of a new trial_steps was pruned against the older budget's trials."""
    plan = {0: ("steps=50", 0.1), 1: ("steps=50", 0.2), 2: ("steps=200", 5.0), 3: ("steps=50", 5.0)}

    def objective(trial):
        budget, level = plan[trial.number]
        trial.set_user_attr(strategy.BUDGET_ATTR, budget)  # before the first report, as make_objective does
        for step in range(6):
            trial.report(level + step / 100, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return level

    study = optuna.create_study(pruner=strategy.make_pruner(pruner))
    study.optimize(objective, n_trials=len(plan))
    states = [t.state.name for t in study.trials]
    assert states[2] == "COMPLETE"  # the new budget has no complete trial of its own: nothing to compare with
    assert states[3] == "PRUNED"  # a hopeless trial of the older budget is still pruned against its peers
    assert strategy.MIN_COMPLETE_TRIALS_TO_PRUNE in (2, 3)


def test_pruning_waits_for_enough_complete_trials_of_the_same_budget():
    levels = [0.1, 5.0]  # the second is far worse, but only one trial of its budget is complete

    def objective(trial):
        trial.set_user_attr(strategy.BUDGET_ATTR, "b")
        for step in range(6):
            trial.report(levels[trial.number] + step / 100, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return levels[trial.number]

    study = optuna.create_study(pruner=strategy.make_pruner("median"))
    study.optimize(objective, n_trials=2)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]


def test_a_new_trial_budget_opens_a_study_of_its_own_and_its_only_trial_is_chosen(tmp_path, encoded_adult):
    first = _run(tmp_path, encoded_adult, n_trials=2, trial_steps=10)
    second = _run(tmp_path, encoded_adult, n_trials=1, trial_steps=30)
    assert second.study_name != first.study_name
    assert first.study_name.endswith("-steps10x200v0.25") and second.study_name.endswith("-steps30x200v0.25")
    assert second.trials_in_study == 1 and second.best_trial_number == 0 and second.fallback == ""
    assert [t.state.name for t in _trials(second, tmp_path)] == ["COMPLETE"]


# ------------------------------------------------------------------------------------ 2: no repeated parameters


def test_a_continued_study_draws_new_parameters_each_run(tmp_path, encoded_adult):
    """Issue 20, problem 2: every re-run re-seeded the sampler alike and tried the same parameters."""
    _run(tmp_path, encoded_adult, n_trials=2)  # the plugin defaults, then one sampled point
    result = _run(tmp_path, encoded_adult, n_trials=1)
    trials = _trials(result, tmp_path)
    assert len(trials) == 3
    assert trials[1].user_attrs["sampler_seed"] != trials[2].user_attrs["sampler_seed"]
    assert not same_params(trials[1].params, trials[2].params, NAMES)


def test_avoided_and_already_evaluated_sets_are_never_enqueued(tmp_path, encoded_adult):
    defaults = default_params("ddpm", search_space("ddpm"))
    given = {"lr": 1e-3, "batch_size": 512}
    result = _run(
        tmp_path, encoded_adult, n_trials=2,
        avoid_params=[{**defaults, "epsilon": 1.0}],  # as a chosen TuningResult.params carries it
        warm_start=[
            {**defaults, "lr": defaults["lr"] * (1 + 1e-12), "origin": "the defaults again, up to rounding"},
            {**given, "origin": "given"},
            {**given, "lr": given["lr"] * (1 + 1e-12), "origin": "given again"},
        ],
    )
    trials = _trials(result, tmp_path)
    assert trials[0].user_attrs["origin"] == "given" and same_params(trials[0].params, given, NAMES)
    assert [t.user_attrs.get("origin") for t in trials].count("given again") == 0
    assert not any(same_params(t.params, defaults, NAMES) for t in trials)
    assert len(trials) == 2 and result.avoided == 0


def test_avoided_sets_are_passed_over_when_choosing_and_all_avoided_falls_back(tmp_path, encoded_adult):
    first = _run(tmp_path, encoded_adult, n_trials=3)
    comparable = [t for t in _trials(first, tmp_path) if t.state.name == "COMPLETE"]
    assert len(comparable) >= 2 and first.best_trial_number == select_best(comparable)[0].number
    again = _run(tmp_path, encoded_adult, n_trials=0, avoid_params=[{**first.params, "epsilon": 1.0}])
    runner_up = select_best([t for t in comparable if t.number != first.best_trial_number])[0]
    assert again.avoided == 1 and again.fallback == ""
    assert again.best_trial_number == runner_up.number and same_params(again.params, runner_up.params, NAMES)

    every = _run(tmp_path, encoded_adult, n_trials=0, avoid_params=[t.params for t in comparable])
    assert every.avoided == len(comparable) and every.best_trial_number == -1 and not every.feasible
    assert "earlier attempt already fitted" in every.fallback and "plugin defaults" in every.fallback


# --------------------------------------------------------------------------------------- 3: sample sizes apart


def test_a_smaller_sample_of_the_same_table_gets_its_own_study(tmp_path, encoded_adult):
    """Issue 20, problem 3: a 5,000-row sample used the same study as the 39,000-row runs of the same table."""
    full = _run(tmp_path, encoded_adult)
    small = _run(tmp_path, encoded_adult, rows=300)
    n_rows = len(encoded_adult[0])
    assert f"-rows{n_rows}-" in full.study_name and "-rows300-" in small.study_name
    assert small.study_name != full.study_name and small.trials_in_study == 1
    assert _trials(small, tmp_path)[0].user_attrs["budget"].endswith(",train=300")


def test_study_names_carry_every_part_that_makes_trials_comparable():
    budget = TuningBudget(trial_steps=1000, tuning_rows=5000, validation_fraction=0.25)
    name = study_name_for("fp", "ddpm", "none-mia0.6-copy0.05", budget, 39073)
    assert name == "fp-ddpm-none-mia0.6-copy0.05-rows39073-steps1000x5000v0.25"
    assert study_name_for("fp", "ddpm", "none-mia0.6-copy0.05", budget, 3000).endswith("-rows3000-steps1000x3000v0.25")
    assert budget.for_sample(39073).signature == "steps=1000,rows=5000,val=0.25,train=39073"
    assert budget.for_sample(39073).signature != budget.for_sample(5000).signature


# ------------------------------------------------------------------------------------ n_trials = 0, fallbacks


def test_zero_trials_chooses_from_the_existing_trials_and_a_new_study_falls_back_to_the_defaults(tmp_path, encoded_adult):
    first = _run(tmp_path, encoded_adult, n_trials=2)
    again = _run(tmp_path, encoded_adult, n_trials=0)
    assert (again.study_name, again.best_trial_number, again.params) == (first.study_name, first.best_trial_number, first.params)
    assert again.trials_this_run == 0 and again.trials_in_study == 2 and again.workers == [] and again.fallback == ""

    messages = []
    new = _run(tmp_path, encoded_adult, n_trials=0, fingerprint="never-tuned", log=messages.append)
    assert new.params == default_params("ddpm", search_space("ddpm"))
    assert not new.feasible and math.isnan(new.best_value) and new.best_trial_number == -1
    assert "no trial ran" in new.fallback and new.fallback.endswith("using the plugin defaults")
    assert any(m.startswith("warning:") and "plugin defaults" in m for m in messages)
    assert new.trials_in_study == 0  # nothing was enqueued for a later run to find unasked


def test_when_every_trial_fails_the_best_parameters_the_memory_holds_for_the_dataset_are_used(tmp_path, encoded_adult):
    encoded, frame, profile = encoded_adult
    memory_url = f"sqlite:///{tmp_path / 'memory.db'}"
    memory = TuningMemory(memory_url)
    features = meta_features(frame, profile)

    def entry(fingerprint, params, value):
        return TuningMemoryEntry(plugin="ddpm", privacy_policy="none", dataset_fingerprint=fingerprint, meta_features=features,
                                 best_params=params, best_value=value, study_name=f"{fingerprint}-study", best_trial_number=4,
                                 metrics={"feasible": True}, budget="steps=10,rows=200,val=0.25,train=1")

    memory.record(entry("broken", {"lr": 2e-4, "batch_size": 1024}, 0.30))
    memory.record(entry("broken", {"lr": 7e-4, "batch_size": 512}, 0.20))  # the best for this dataset
    memory.record(entry("another-table", {"lr": 1e-4, "batch_size": 256}, 0.05))  # better, but another dataset
    broken = encoded.copy()
    broken.iloc[0, 0] = None  # a NaN makes every fit fail
    result = run_study(broken, frame, profile, plugin="ddpm", fingerprint="broken", storage=f"sqlite:///{tmp_path / 'o.db'}",
                       budget=TuningBudget(n_trials=1, trial_steps=5, tuning_rows=800), workspace=tmp_path / "ws",
                       memory_url=memory_url, privacy=PrivacyPolicy())
    assert result.params == {"lr": 7e-4, "batch_size": 512}
    assert "tuning memory" in result.fallback and "broken-study trial 4" in result.fallback
    assert "failed or was pruned" in result.fallback and result.failed_trials_this_run == 1
    assert not result.feasible and result.best_trial_number == -1 and result.memory_record_id is None
    assert len(memory.entries()) == 3  # a fallback is not recorded as a tuning result
