import math
from pathlib import Path

import optuna
import pytest
from scipy.stats import ks_2samp

from synth_platform.profiling.profile import encode_for_generation, profile_dataframe
from synth_platform.tuning.memory import TuningMemory
from synth_platform.tuning.study import (
    TRIAL_SCORES,
    PrivacyConstraints,
    SearchSettings,
    TuningBudget,
    abandon_study,
    checkpoint_epochs,
    close_study,
    open_study,
    pareto_front,
    run_study,
    run_trials,
    select_best,
    trial_scores,
    utility_distance,
)


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
    assert first.study_name == f"adult-test-ddpm-none-mia0.6-copy0.05-rows{len(adult_small)}-steps10x200v0.25"
    assert first.trials_this_run == 2 and first.trials_in_study == 2
    assert set(first.params) == {"lr", "batch_size"}
    second = run_study(encoded, adult_small, profile, **kwargs)
    assert second.trials_in_study == 4
    assert second.best_value <= first.best_value
    study = optuna.load_study(study_name=first.study_name, storage=storage)
    assert len(study.trials) == 4
    assert min(t.value for t in study.trials if t.user_attrs.get("constraints") and max(t.user_attrs["constraints"]) <= 0) == pytest.approx(second.best_value)
    assert all(t.user_attrs["budget"] == budget.for_sample(len(adult_small)).signature for t in study.trials)


def test_failing_trials_are_recorded_not_fatal_and_all_failing_falls_back_to_the_defaults_saying_why(tmp_path, adult_small):
    from synth_platform.tuning.search_space import default_params, search_space

    profile = profile_dataframe(adult_small)
    encoded = encode_for_generation(adult_small, profile)
    encoded.iloc[0, 0] = None  # a NaN makes every fit fail
    result = run_study(encoded, adult_small, profile, plugin="ddpm", fingerprint="broken", storage=f"sqlite:///{tmp_path / 'o.db'}",
                       budget=TuningBudget(n_trials=2, trial_steps=5, tuning_rows=800), workspace=tmp_path / "ws")
    assert "every tuning trial of ddpm this run failed or was pruned: GenerationError" in result.fallback
    assert result.fallback.endswith("using the plugin defaults") and result.params == default_params("ddpm", search_space("ddpm"))
    assert not result.feasible and result.best_trial_number == -1 and math.isnan(result.best_value)
    study = optuna.load_study(study_name=result.study_name, storage=f"sqlite:///{tmp_path / 'o.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2


def test_budget_is_validated():
    TuningBudget(n_trials=0).validate()  # no new trials: choose from the study's existing ones
    with pytest.raises(ValueError, match="n_trials must be at least 0"):
        TuningBudget(n_trials=-1).validate()


# ----------------------------------------------------------------------------------- constraints, limits, failures


def _frozen(number, value, constraints, **attrs):
    return optuna.trial.create_trial(
        params={"x": float(number)}, distributions={"x": optuna.distributions.FloatDistribution(0, 100)},
        value=value, user_attrs={"constraints": constraints, **attrs},
    )


def test_an_infeasible_trial_loses_to_a_worse_feasible_one():
    infeasible = _frozen(0, 0.05, [0.08, -0.01])  # best utility, but MIA AUC 0.08 above its limit
    feasible = _frozen(1, 0.20, [-0.05, -0.04])
    best, is_feasible = select_best([infeasible, feasible])
    assert best is feasible and is_feasible
    closest = _frozen(2, 0.50, [0.01, -0.01])
    best, is_feasible = select_best([infeasible, closest])  # nothing feasible: the smallest violation, flagged
    assert best is closest and not is_feasible


def test_pareto_front_keeps_the_feasible_undominated_trials():
    trials = [
        _frozen(0, 0.10, [-0.01, -0.01], utility_distance=0.10, membership_inference_auc=0.59),
        _frozen(1, 0.20, [-0.10, -0.01], utility_distance=0.20, membership_inference_auc=0.50),
        _frozen(2, 0.25, [-0.05, -0.01], utility_distance=0.25, membership_inference_auc=0.55),  # dominated by 1
        _frozen(3, 0.05, [0.10, -0.01], utility_distance=0.05, membership_inference_auc=0.70),  # infeasible
    ]
    assert [t.params["x"] for t in pareto_front(trials)] == [0.0, 1.0]


@pytest.fixture(scope="module")
def encoded_adult(adult_small):
    profile = profile_dataframe(adult_small)
    return encode_for_generation(adult_small, profile), adult_small, profile


def test_trials_record_privacy_scores_and_constraints_and_impossible_constraints_are_flagged(tmp_path, encoded_adult):
    encoded, frame, profile = encoded_adult
    kwargs = dict(plugin="ddpm", storage=f"sqlite:///{tmp_path / 'o.db'}", budget=TuningBudget(n_trials=2, trial_steps=20, tuning_rows=400),
                  workspace=tmp_path / "ws")
    result = run_study(encoded, frame, profile, fingerprint="adult-open", **kwargs)
    for trial in optuna.load_study(study_name=result.study_name, storage=kwargs["storage"]).trials:
        scores = trial.user_attrs
        assert 0.0 <= scores["membership_inference_auc"] <= 1.0 and 0.0 <= scores["exact_copy_rate"] <= 1.0
        assert scores["constraints"] == pytest.approx([scores["membership_inference_auc"] - 0.6, scores["exact_copy_rate"] - 0.05])
    impossible = run_study(encoded, frame, profile, fingerprint="adult-closed", constraints=PrivacyConstraints(mia_auc_max=0.0), **kwargs)
    assert "-none-mia0-copy0.05-" in impossible.study_name and not impossible.feasible
    assert "smallest total constraint violation" in impossible.selection_rule


def test_a_diverging_configuration_is_recovered_or_fails_its_trial_and_the_study_goes_on(tmp_path, encoded_adult):
    # lr = 50 diverges; ddpm's DivergenceGuard puts the last good weights back with half the rate, so the trial
    # now completes with finite scores. Should recovery ever be impossible, the trial fails with the divergence as
    # its error; either way the study goes on to the next trial.
    encoded, frame, profile = encoded_adult
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    result = run_study(
        encoded, frame, profile, plugin="ddpm", fingerprint="adult", storage=storage, workspace=tmp_path / "ws",
        budget=TuningBudget(n_trials=3, trial_steps=20, tuning_rows=400),
        warm_start=[{"lr": 50.0, "batch_size": 256, "origin": "a learning rate that diverges"}],
    )
    trials = optuna.load_study(study_name=result.study_name, storage=storage).trials
    assert trials[0].state.name == "COMPLETE"  # defaults first, then the enqueued lr = 50
    assert trials[1].params["lr"] == 50.0 and trials[1].user_attrs["origin"] == "a learning rate that diverges"
    if trials[1].state.name == "COMPLETE":  # recovered: scored like any trial, with finite scores
        assert all(math.isfinite(trials[1].user_attrs[name]) for name in TRIAL_SCORES)
        assert result.failed_trials_this_run == 0
    else:
        assert trials[1].state.name == "FAIL"
        error = trials[1].user_attrs["error"]
        assert "FloatingPointError" in error or "nan" in error.lower() or "diverg" in error.lower()
        assert result.failed_trials_this_run == 1 and result.best_trial_number != 1
    assert trials[2].state.name == "COMPLETE" and len(trials) == 3


def test_the_time_budget_returns_the_best_so_far_and_a_trial_past_its_limit_fails(tmp_path, encoded_adult):
    encoded, frame, profile = encoded_adult
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    partial = run_study(
        encoded, frame, profile, plugin="ddpm", fingerprint="adult", storage=storage, workspace=tmp_path / "ws",
        budget=TuningBudget(n_trials=50, trial_steps=20, tuning_rows=400, timeout_s=0.5),
    )
    assert partial.timed_out and 1 <= partial.trials_this_run < 50
    assert len(optuna.load_study(study_name=partial.study_name, storage=storage).trials) == partial.trials_this_run
    slow = run_study(encoded, frame, profile, plugin="ddpm", fingerprint="slow", storage=storage, workspace=tmp_path / "ws",
                     budget=TuningBudget(n_trials=1, trial_steps=200, tuning_rows=400, trial_timeout_s=0.01))
    assert "every tuning trial of ddpm this run failed or was pruned: TrialTimedOut: trial 0 passed its 0.01 s limit" in slow.fallback


def test_ddpm_reports_its_loss_per_epoch_and_a_hopeless_trial_is_pruned(tmp_path, encoded_adult):
    encoded, frame, profile = encoded_adult
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    result = run_study(
        encoded, frame, profile, plugin="ddpm", fingerprint="adult", storage=storage, workspace=tmp_path / "ws",
        budget=TuningBudget(n_trials=3, trial_steps=40, tuning_rows=400),
        warm_start=[{"lr": 2e-3, "batch_size": 256}, {"lr": 1e-5, "batch_size": 256, "origin": "too small a learning rate"}],
    )
    trials = optuna.load_study(study_name=result.study_name, storage=storage).trials
    completed = [t for t in trials if t.state.name == "COMPLETE"]
    assert all(len(t.intermediate_values) >= 5 for t in completed)  # 300 fit rows / batch 256: 2 steps an epoch
    assert trials[2].params["lr"] == 1e-5 and trials[2].state.name == "PRUNED"  # after two trials, above their median


def test_checkpoint_epochs_fall_at_shares_of_the_training_before_its_last_epoch():
    assert checkpoint_epochs(12) == {3: 25, 6: 50, 9: 75}
    assert checkpoint_epochs(10) == {3: 25, 5: 50, 8: 75}  # the first epoch at or past each share
    assert checkpoint_epochs(2) == {1: 50}  # the first of two epochs is past 25% and 50%: named by the larger
    assert checkpoint_epochs(3) == {1: 25, 2: 50}  # epoch 2 is 67%: compared with others' 50%, never their 75%
    assert checkpoint_epochs(1) == {}  # the only epoch is the last: the trial's final score covers it


def test_tvae_trials_report_utility_at_checkpoints_and_a_hopeless_trial_is_pruned(tmp_path, encoded_adult):
    """tvae's loss does not compare across trials: rows sampled at 25/50/75% of each trial's training are scored
    with the tuning objective, and the median pruner stops a trial that is far behind."""
    encoded, frame, profile = encoded_adult
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    result = run_study(
        encoded, frame, profile, plugin="tvae", fingerprint="adult", storage=storage, workspace=tmp_path / "ws",
        budget=TuningBudget(n_trials=3, trial_steps=60, tuning_rows=400),
        warm_start=[
            {"lr": 1e-3, "batch_size": 64},
            {"lr": 1e-4, "batch_size": 512, "decoder_n_layers_hidden": 1, "decoder_n_units_hidden": 50,
             "origin": "60 steps at the smallest learning rate: barely trained"},
        ],
    )
    trials = optuna.load_study(study_name=result.study_name, storage=storage).trials
    for t in trials[:2]:
        assert t.state.name == "COMPLETE" and set(t.intermediate_values) == {25, 50, 75}
    hopeless = trials[2]
    assert hopeless.params["lr"] == 1e-4 and hopeless.state.name == "PRUNED"
    assert list(hopeless.intermediate_values) == [25]  # stopped at its first checkpoint
    assert hopeless.intermediate_values[25] > max(t.intermediate_values[25] for t in trials[:2])


def test_multi_objective_records_the_pareto_front_and_picks_by_the_stated_rule(tmp_path, encoded_adult):
    encoded, frame, profile = encoded_adult
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    result = run_study(
        encoded, frame, profile, plugin="ddpm", fingerprint="adult", storage=storage, workspace=tmp_path / "ws",
        budget=TuningBudget(n_trials=3, trial_steps=20, tuning_rows=400), search=SearchSettings(sampler="tpe", objective="multi"),
    )
    study = optuna.load_study(study_name=result.study_name, storage=storage)
    assert len(study.directions) == 2
    feasible = [t for t in study.trials if t.state.name == "COMPLETE" and max(t.user_attrs["constraints"]) <= 0]
    assert result.best_value == min(t.values[0] for t in feasible)
    front = {p["number"] for p in result.pareto_front}
    assert result.best_trial_number in front and front <= {t.number for t in feasible}


def test_the_fidelity_objective_is_one_value_in_a_study_of_its_own(tmp_path, encoded_adult):
    from synth_platform.tuning.study import fidelity_objective

    encoded, frame, profile = encoded_adult
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    common = dict(plugin="tvae", fingerprint="adult", storage=storage, workspace=tmp_path / "ws",
                  budget=TuningBudget(n_trials=1, trial_steps=20, tuning_rows=400))
    result = run_study(encoded, frame, profile, search=SearchSettings(objective="fidelity"), **common)
    plain = run_study(encoded, frame, profile, search=SearchSettings(), **common)
    assert result.study_name == plain.study_name + "-fidelity"  # values under another objective are other numbers
    (trial,) = optuna.load_study(study_name=result.study_name, storage=storage).trials
    assert len(trial.values) == 1 and 0.5 <= trial.user_attrs["detection_auc"] <= 1
    assert trial.values[0] == pytest.approx(fidelity_objective(trial.user_attrs))


# ------------------------------------------------------------------------- memory, MLflow and workers, end to end


def test_a_new_study_is_warm_started_from_the_memory_of_the_most_similar_past_study(tmp_path, encoded_adult):
    encoded, frame, profile = encoded_adult
    common = dict(plugin="ddpm", storage=f"sqlite:///{tmp_path / 'o.db'}", workspace=tmp_path / "ws",
                  memory_url=f"sqlite:///{tmp_path / 'memory.db'}", budget=TuningBudget(n_trials=2, trial_steps=20, tuning_rows=400))
    first = run_study(encoded, frame, profile, fingerprint="adult-first", run_id="run-first", **common)
    assert first.memory_record_id is not None and first.warm_start["warm_start_trials"] == 0
    (entry,) = TuningMemory(common["memory_url"]).entries(plugin="ddpm")
    assert entry.run_id == "run-first" and entry.best_params == first.params and entry.study_name == first.study_name

    # The first study's best may be its plugin-defaults trial, which a new study runs anyway (a duplicate is not
    # enqueued twice): the second study warm-starts from a recorded past study whose best differs from the defaults.
    import dataclasses

    from synth_platform.tuning.search_space import default_params, search_space

    past = {**default_params("ddpm", search_space("ddpm")), "lr": 0.0005}
    assert past != default_params("ddpm", search_space("ddpm"))
    TuningMemory(common["memory_url"]).record(dataclasses.replace(
        entry, id=None, created_at=None, dataset_fingerprint="adult-past", best_params=past, study_name="past", run_id="run-past"))
    second = run_study(encoded, frame, profile, fingerprint="adult-second", run_id="run-second", **common)
    trials = optuna.load_study(study_name=second.study_name, storage=common["storage"]).trials
    assert trials[0].user_attrs["origin"] == "plugin defaults"
    assert trials[1].user_attrs["origin"].startswith("warm start from") and trials[1].params in (first.params, past)
    assert any(t.params == past and t.user_attrs.get("origin", "").startswith("warm start from") for t in trials)
    warm = [t.user_attrs["origin"] for t in trials if t.user_attrs.get("origin", "").startswith("warm start from")]
    assert second.warm_start["warm_start_trials"] == len(warm) >= 1 and second.warm_start["sources"] == warm
    assert second.warm_start["warm_start_won"] in (True, False)  # measured either way; None only without a cold trial


def test_the_study_is_an_mlflow_run_with_a_nested_run_per_trial_finished_or_failed(tmp_path, encoded_adult):
    from mlflow.tracking import MlflowClient

    encoded, frame, profile = encoded_adult
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    kwargs = dict(plugin="ddpm", storage=f"sqlite:///{tmp_path / 'o.db'}", workspace=tmp_path / "ws", tracking_uri=uri)
    result = run_study(encoded, frame, profile, fingerprint="adult", budget=TuningBudget(n_trials=2, trial_steps=20, tuning_rows=400),
                       warm_start=[{"lr": 50.0, "batch_size": 256, "origin": "diverges"}], **kwargs)
    client = MlflowClient(uri)
    parent = client.get_run(result.mlflow_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["chosen_trial"] == str(result.best_trial_number)
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    # The diverging trial (lr = 50) is recovered by ddpm's DivergenceGuard and finishes; were it not, it would
    # end FAILED (a failing run is checked below with a fit that cannot succeed).
    assert sorted(c.info.status for c in children) in (["FAILED", "FINISHED"], ["FINISHED", "FINISHED"])
    for finished in (c for c in children if c.info.status == "FINISHED"):
        assert {"membership_inference_auc", "exact_copy_rate", "utility_distance"} <= set(finished.data.metrics)

    broken = encoded.copy()
    broken.iloc[0, 0] = None  # every fit fails: the study falls back to the defaults; its trial's MLflow run ends FAILED
    fallback = run_study(broken, frame, profile, fingerprint="broken", budget=TuningBudget(n_trials=1, trial_steps=5, tuning_rows=800), **kwargs)
    assert fallback.fallback and client.get_run(fallback.mlflow_run_id).data.metrics["best.fallback"] == 1.0
    statuses = {r.info.run_name: r.info.status for r in client.search_runs([parent.info.experiment_id])}
    assert "RUNNING" not in statuses.values()
    assert [s for name, s in statuses.items() if name.startswith("broken")] == ["FINISHED"]  # a fallback, not a failure
    (failed_trial,) = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{fallback.mlflow_run_id}'")
    assert failed_trial.info.status == "FAILED"


def test_two_worker_processes_share_one_postgresql_study_with_real_training(tmp_path, encoded_adult, pg_database):
    encoded, frame, profile = encoded_adult
    result = run_study(
        encoded, frame, profile, plugin="ddpm", fingerprint="adult", storage=pg_database, workspace=tmp_path / "ws",
        budget=TuningBudget(n_trials=4, trial_steps=20, tuning_rows=400), n_workers=2,
    )
    study = optuna.load_study(study_name=result.study_name, storage=pg_database)
    assert len(study.trials) == 4 and {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}  # none lost or failed
    assert len({t.user_attrs["worker_pid"] for t in study.trials}) == 2
    assert len({t.user_attrs["sampler_seed"] for t in study.trials}) == 2
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 4  # distinct parameter sets
    assert [w["n_trials_asked"] for w in result.workers] == [2, 2]


def test_trial_scores_compare_datetimes_stored_as_text():
    """A source read from SQLite holds dates as text; the trial must still compare them (as the report does)."""
    import pandas as pd

    from synth_platform.profiling.profile import decode_from_generation
    from synth_platform_tests.profiling.built_tables import patients

    frame = patients()
    profile = profile_dataframe(frame, column_treatments={"notes": "drop"})
    fit_rows, validation = frame.iloc[:200], frame.iloc[200:]
    synthetic = decode_from_generation(encode_for_generation(validation, profile), profile)
    same = trial_scores(fit_rows, validation, synthetic, profile)
    shifted = synthetic.assign(admitted=synthetic["admitted"] + pd.Timedelta(days=120))
    moved = trial_scores(fit_rows, validation, shifted, profile)
    assert same["utility_distance"] < moved["utility_distance"]  # a shifted date column is seen
    assert same["membership_inference_auc"] == same["membership_inference_auc"]  # not NaN


def test_a_checkpoint_scores_sampled_rows_as_the_final_score_does_datetimes_stored_as_text_included(tmp_path, monkeypatch):
    """A checkpoint's value is the tuning objective on the rows sampled there, compared as `trial_scores` compares:
    dates held as text (a SQLite source) are parsed first, so a date column neither breaks nor skews the pruner."""
    from synth_platform.generation import generators, training_hooks
    from synth_platform.profiling.profile import align_for_comparison, decode_from_generation
    from synth_platform.tuning.study import PrivacyConstraints, prepare_setup
    from synth_platform_tests.profiling.built_tables import patients

    frame = patients()
    profile = profile_dataframe(frame, column_treatments={"notes": "drop"})
    dates = profile.by_kind("datetime")
    assert dates and all(frame[c].dtype == object for c in dates)  # text, as SQLite returns them
    encoded = encode_for_generation(frame, profile)
    budget = TuningBudget(n_trials=1, trial_steps=40, tuning_rows=400)
    sampled = []  # the rows each checkpoint sampled (a spy: sampling itself runs as usual)
    sample_while_training = training_hooks.sample_while_training

    def recording(model, count, seed):
        sampled.append(sample_while_training(model, count, seed))
        return sampled[-1]

    monkeypatch.setattr(training_hooks, "sample_while_training", recording)

    storage = f"sqlite:///{tmp_path / 'o.db'}"
    result = run_study(encoded, frame, profile, plugin="tvae", fingerprint="patients", storage=storage,
                       workspace=tmp_path / "ws", budget=budget)
    (trial,) = optuna.load_study(study_name=result.study_name, storage=storage).trials
    assert trial.state.name == "COMPLETE", trial.user_attrs.get("error")
    validation = prepare_setup(encoded, frame, profile, plugin="tvae", budget=budget, search=SearchSettings(),
                               privacy=generators.PrivacyPolicy(), constraints=PrivacyConstraints(), seed=0,
                               workspace=tmp_path / "unused").validation
    expected = [
        utility_distance(align_for_comparison(validation, profile), align_for_comparison(decode_from_generation(rows, profile), profile), profile)
        for rows in sampled
    ]
    assert [trial.intermediate_values[p] for p in (25, 50, 75)] == pytest.approx(expected, abs=1e-12)


def test_a_tuning_result_never_holds_the_storage_password_nor_leaves_the_setup_behind(tmp_path, adult_small, pg_database):
    """The result is persisted (the asset's value): its storage URL is masked, and the trial setup (training rows)
    is gone from the workspace when the study ends. The local server's trust auth ignores the password."""
    import pickle

    import sqlalchemy as sa

    profile = profile_dataframe(adult_small)
    encoded = encode_for_generation(adult_small, profile)
    password = "optuna-pw-5"
    storage = sa.make_url(pg_database).set(password=password).render_as_string(hide_password=False)
    result = run_study(encoded, adult_small, profile, plugin="ddpm", fingerprint="adult-pw", storage=storage,
                       budget=TuningBudget(n_trials=1, trial_steps=10, tuning_rows=200), workspace=tmp_path / "ws")
    assert password not in result.storage and "***" in result.storage
    assert password.encode() not in pickle.dumps(result)
    assert not list((tmp_path / "ws").rglob("trial_setup.pkl"))


def _run_share(opened, storage, share, shares, tracking_uri):
    """One share of a session's trials in a process of its own, as a fanned-out Dagster step runs it."""
    return run_trials(opened, storage, share=share, shares=shares, tracking_uri=tracking_uri)


def test_a_session_opened_once_runs_its_trials_as_shares_in_other_processes_and_is_closed_once(tmp_path, encoded_adult, pg_database):
    """The phases of `run_study` as the tuning asset's steps run them: `open_study` here, two shares of `run_trials`
    in two spawned processes at once (each with the OpenedStudy pickled, as Dagster hands a dynamic output to a
    step), `close_study` here. One study, one MLflow session, every trial counted once, the setup file gone."""
    import multiprocessing
    import pickle
    from concurrent.futures import ProcessPoolExecutor

    from mlflow.tracking import MlflowClient

    encoded, frame, profile = encoded_adult
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    opened = open_study(encoded, frame, profile, plugin="ddpm", fingerprint="adult", storage=pg_database,
                        workspace=tmp_path / "ws", tracking_uri=uri, budget=TuningBudget(n_trials=3, trial_steps=20, tuning_rows=400))
    assert opened == pickle.loads(pickle.dumps(opened)) and pg_database.split("@")[0] not in repr(opened)
    assert [opened.trials_of_share(i, 2) for i in (0, 1)] == [2, 1]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        shares = list(pool.map(_run_share, [opened] * 2, [pg_database] * 2, [0, 1], [2, 2], [uri] * 2))
    summaries = [summary for share in shares for summary in share]
    assert [s.n_trials_asked for s in summaries] == [2, 1] and len({s.pid for s in summaries}) == 2
    assert len({s.sampler_seed for s in summaries}) == 2  # each share draws with seeds of its own

    result = close_study(opened, pg_database, summaries, tracking_uri=uri)
    study = optuna.load_study(study_name=result.study_name, storage=pg_database)
    assert result.trials_this_run == len(study.trials) == 3 and len({t.user_attrs["worker_pid"] for t in study.trials}) == 2
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 3
    assert not Path(opened.setup_path).exists()  # the training rows are not left behind
    client = MlflowClient(uri)
    parent = client.get_run(result.mlflow_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["chosen_trial"] == str(result.best_trial_number)
    nested = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(int(r.data.tags["trial_number"]) for r in nested) == [0, 1, 2]  # one nested run per trial, from both shares


def test_a_session_whose_trials_failed_to_run_is_abandoned_its_mlflow_run_failed_and_its_rows_removed(tmp_path, encoded_adult):
    from mlflow.tracking import MlflowClient

    encoded, frame, profile = encoded_adult
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    opened = open_study(encoded, frame, profile, plugin="ddpm", fingerprint="adult", storage=f"sqlite:///{tmp_path / 'o.db'}",
                        workspace=tmp_path / "ws", tracking_uri=uri, budget=TuningBudget(n_trials=1, trial_steps=5, tuning_rows=200))
    assert Path(opened.setup_path).exists()
    abandon_study(opened, uri, RuntimeError("the trial step's machine was lost"))
    run = MlflowClient(uri).get_run(opened.mlflow_parent_run_id)
    assert run.info.status == "FAILED" and "machine was lost" in run.data.tags["failure"]
    assert not Path(opened.setup_path).exists()
