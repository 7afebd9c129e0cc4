"""Worker processes sharing one Optuna study on the real PostgreSQL: spawned processes, real SIGKILLs, the real CLI.

The objectives (worker_objectives.py) are cheap stand-ins for generator training; the distribution mechanics under
test do not depend on what a trial computes.
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from synth_platform.tuning.workers import (
    WorkerSpec,
    WorkersFailedError,
    derive_seed,
    ensure_study,
    main,
    make_sampler,
    run_worker,
    run_workers,
    storage_for,
    trials_per_worker,
)

REPO = Path(__file__).resolve().parents[2]
OBJECTIVES = "synth_platform_tests.tuning.worker_objectives"
HEARTBEAT_S, GRACE_S = 1, 2


def spec_for(url: str, objective: str, **overrides) -> WorkerSpec:
    fields = dict(storage_url=url, study_name="shared", objective=objective if ":" in objective else f"{OBJECTIVES}:{objective}",
                  heartbeat_interval_s=HEARTBEAT_S, grace_period_s=GRACE_S, max_retry=2)
    fields.update(overrides)
    return WorkerSpec(**fields)


def trials_of(url: str, study_name: str = "shared"):
    storage = storage_for(url, heartbeat_interval_s=HEARTBEAT_S, grace_period_s=GRACE_S)  # safe on a fresh database
    try:
        return optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
    finally:
        storage.engine.dispose()


def retried_number(trial) -> int | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)


def kill_when_blocking(url: str, killed: list, stop: threading.Event) -> None:
    """SIGKILL the worker process of the first RUNNING trial that marked itself `blocking` (never this process)."""
    while not stop.is_set():
        try:
            trials = trials_of(url)
        except KeyError:  # run_workers has not created the study yet
            trials = []
        for trial in trials:
            if trial.state == TrialState.RUNNING and trial.user_attrs.get("blocking"):
                pid = trial.user_attrs["worker_pid"]
                assert pid != os.getpid(), "the blocking trial ran in the test process; nothing to kill safely"
                os.kill(pid, signal.SIGKILL)
                killed.append((trial.number, pid))
                return
        stop.wait(0.1)


def test_two_worker_processes_share_one_study_with_distinct_parameters_and_no_lost_trials(pg_database):
    spec = spec_for(pg_database, "quadratic", objective_kwargs={"sleep_s": 0.1}, n_trials=5, base_seed=7)
    summaries = run_workers(spec, n_workers=2)

    assert [s.worker_index for s in summaries] == [0, 1]
    assert all(s.ok and s.exitcode == 0 and s.states == {"COMPLETE": 5} for s in summaries)
    assert len({s.pid for s in summaries} | {os.getpid()}) == 3  # two processes, neither the test's
    assert summaries[0].sampler_seed != summaries[1].sampler_seed
    trials = trials_of(pg_database)
    assert len(trials) == 10 and all(t.state == TrialState.COMPLETE for t in trials)
    numbers = [set(s.trial_numbers) for s in summaries]
    assert numbers[0].isdisjoint(numbers[1]) and numbers[0] | numbers[1] == {t.number for t in trials}
    assert len({(t.params["x"], t.params["y"]) for t in trials}) == 10
    by_pid = {s.pid: s for s in summaries}
    for trial in trials:
        worker = by_pid[trial.user_attrs["worker_pid"]]
        assert trial.number in worker.trial_numbers
        assert trial.user_attrs["sampler_seed"] == worker.sampler_seed


def test_a_killed_workers_trial_is_failed_by_the_heartbeat_and_retried_with_the_same_parameters(pg_database, tmp_path):
    spec = spec_for(pg_database, "blocks_first_trial", objective_kwargs={"marker_path": str(tmp_path / "marker"), "block_s": 30}, n_trials=1)
    storage = storage_for(pg_database, heartbeat_interval_s=HEARTBEAT_S, grace_period_s=GRACE_S)
    ensure_study(storage, "shared", ("minimize",))
    storage.engine.dispose()
    worker = multiprocessing.get_context("spawn").Process(target=run_worker, args=(spec,))
    worker.start()
    killed, stop = [], threading.Event()
    try:
        kill_when_blocking(pg_database, killed, stop)
    finally:
        worker.join(timeout=60)
    assert worker.exitcode == -signal.SIGKILL
    [(killed_number, _)] = killed
    assert trials_of(pg_database)[killed_number].state == TrialState.RUNNING  # nobody has noticed yet

    time.sleep(GRACE_S + HEARTBEAT_S + 0.5)  # let its last heartbeat age past the grace period (a wait, not a check)
    survivor = run_worker(replace(spec, worker_index=1, n_trials=1))

    trials = trials_of(pg_database)
    stale, retry = trials[killed_number], trials[-1]
    assert stale.state == TrialState.FAIL and "error" not in stale.user_attrs  # failed by the heartbeat check
    assert retried_number(retry) == killed_number
    assert retry.state == TrialState.COMPLETE and retry.params == stale.params
    assert survivor.trial_numbers == [retry.number] and retry.user_attrs["worker_pid"] == os.getpid()


def test_run_workers_reports_a_killed_worker_and_recovers_its_trial_and_budget(pg_database, tmp_path):
    spec = spec_for(pg_database, "blocks_first_trial", objective_kwargs={"marker_path": str(tmp_path / "marker"), "block_s": 30},
                    n_trials=3, base_seed=3)
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=kill_when_blocking, args=(pg_database, killed, stop))
    killer.start()
    try:
        summaries = run_workers(spec, n_workers=2)
    finally:
        stop.set()
        killer.join()

    [(killed_number, killed_pid)] = killed
    dead = [s for s in summaries if s.pid == killed_pid]
    assert len(dead) == 1 and dead[0].died and dead[0].exitcode == -signal.SIGKILL
    assert "killed by signal SIGKILL" in dead[0].error and killed_number in dead[0].trial_numbers
    assert [s.recovery for s in summaries] == [False, False, True] and summaries[2].ok
    trials = trials_of(pg_database)
    assert trials[killed_number].state == TrialState.FAIL
    [retry] = [t for t in trials if retried_number(t) == killed_number]
    assert retry.state == TrialState.COMPLETE and retry.params == trials[killed_number].params
    # No lost trials: the two workers' 6 trials all completed, the killed one through its retry.
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 6
    assert [t.number for t in trials if t.state == TrialState.FAIL] == [killed_number]


def test_a_raising_objective_gives_a_failed_trial_with_its_error_and_the_worker_goes_on(pg_database):
    spec = spec_for(pg_database, "quadratic", objective_kwargs={"fail_on_trials": [1]}, n_trials=4)
    [summary] = run_workers(spec, n_workers=1)

    assert summary.exitcode is None and summary.pid == os.getpid()  # one worker runs in this process
    assert summary.ok and summary.states == {"COMPLETE": 3, "FAIL": 1} and summary.trial_numbers == [0, 1, 2, 3]
    failed = trials_of(pg_database)[1]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["error"] == "RuntimeError: planned failure of trial 1"


def test_constraints_reach_the_sampler_and_steer_it_to_feasible_parameters(pg_database):
    runs = {}
    for constrained in (True, False):
        name = f"constrained-{constrained}"
        spec = spec_for(pg_database, "constrained_quadratic", study_name=name, n_trials=25, base_seed=1,
                        constraints=constrained)
        run_workers(spec, n_workers=1)
        runs[constrained] = (optuna.load_study(study_name=name, storage=pg_database), trials_of(pg_database, name))

    study, trials = runs[True]
    assert all(t.constraints == {"0": t.params["x"]} for t in trials)  # where Optuna 5's samplers read them
    assert study.best_trial.params["x"] <= 0  # unconstrained optimum: x = 2
    _, unconstrained = runs[False]
    assert all(t.constraints == {} for t in unconstrained)
    # TPE starts with 10 random trials; after that the constrained run should keep to x <= 0 far more often.
    feasible_after_startup = {c: sum(t.params["x"] <= 0 for t in runs[c][1][10:]) for c in runs}
    assert feasible_after_startup[True] > 2 * feasible_after_startup[False]


def test_a_trial_without_its_constraints_fails_with_instructions(pg_database):
    spec = spec_for(pg_database, "constrained_quadratic", objective_kwargs={"store_constraints": False},
                    n_trials=1, constraints=True)
    [summary] = run_workers(spec, n_workers=1)
    assert summary.states == {"FAIL": 1}
    assert "trial.set_user_attr('constraints'" in trials_of(pg_database)[0].user_attrs["error"]


def test_two_objectives_run_with_tpe_and_cmaes_refuses_them(pg_database):
    spec = spec_for(pg_database, "two_objectives", n_trials=6, directions=("minimize", "minimize"))
    run_workers(spec, n_workers=1)
    study = optuna.load_study(study_name="shared", storage=pg_database)
    assert len(study.trials) == 6 and study.best_trials
    with pytest.raises(ValueError, match="already exists with directions"):
        run_workers(replace(spec, directions=("minimize",)), n_workers=1)
    with pytest.raises((ValueError, ImportError), match="use 'tpe' or 'gp'|pip install cmaes"):
        replace(spec, sampler="cmaes").validate()


def test_the_cli_runs_one_worker_against_the_shared_study(pg_database, tmp_path):
    ensure_study(pg_database, "shared", ("minimize",))
    run_workers(spec_for(pg_database, "quadratic", n_trials=2), n_workers=1)
    kwargs_file = tmp_path / "kwargs.json"
    kwargs_file.write_text(json.dumps({"sleep_s": 0.0}))
    command = [sys.executable, "-m", "synth_platform.tuning.workers", "--storage", pg_database, "--study", "shared",
               "--objective", f"{OBJECTIVES}:quadratic", "--kwargs-file", str(kwargs_file), "--trials", "3",
               "--seed", "11", "--heartbeat-interval", "1", "--grace-period", "2"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["states"] == {"COMPLETE": 3} and summary["trial_numbers"] == [2, 3, 4]
    trials = trials_of(pg_database)
    assert len(trials) == 5
    assert {t.user_attrs["worker_pid"] for t in trials[2:]} == {summary["pid"]} != {os.getpid()}

    with pytest.raises(KeyError, match="pass --directions to the CLI"):
        main([*command[3:6], "no-such-study", *command[7:]])


def test_a_missing_objective_module_is_a_clear_error(pg_database):
    spec = spec_for(pg_database, "no_such_module:factory")
    with pytest.raises(ImportError, match="Cannot import the objective module 'no_such_module'"):
        run_workers(spec, n_workers=1)
    with pytest.raises(WorkersFailedError, match="Cannot import the objective module"):
        run_workers(spec, n_workers=2)


def test_several_workers_on_sqlite_are_refused(tmp_path):
    spec = WorkerSpec(storage_url=f"sqlite:///{tmp_path / 'optuna.sqlite3'}", study_name="s",
                      objective=f"{OBJECTIVES}:quadratic", n_trials=2)
    with pytest.raises(ValueError, match="use a PostgreSQL storage URL"):
        run_workers(spec, n_workers=2)
    [summary] = run_workers(spec, n_workers=1)
    assert summary.states == {"COMPLETE": 2}


def test_workers_opening_a_fresh_database_at_once_do_not_collide_on_optunas_tables(pg_database):
    # Optuna's CREATE TYPE / CREATE TABLE have no IF NOT EXISTS: measured, 5 of 6 plain RDBStorage openings at once
    # fail with a duplicate key on pg_type; storage_for retries them.
    start, errors = threading.Barrier(6), []

    def open_storage():
        start.wait()
        try:
            storage_for(pg_database).engine.dispose()
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=open_storage) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_seeds_budgets_samplers_and_heartbeat_settings():
    seeds = {derive_seed(0, i) for i in range(100)}
    assert len(seeds) == 100 and derive_seed(0, 3) == derive_seed(0, 3) != derive_seed(1, 3)
    assert trials_per_worker(10, 3) == [4, 3, 3] and trials_per_worker(2, 4) == [1, 1, 0, 0]
    assert isinstance(make_sampler("gp", 1), optuna.samplers.GPSampler)
    assert isinstance(make_sampler("random", 1), optuna.samplers.RandomSampler)
    if importlib.util.find_spec("cmaes") is None:
        with pytest.raises(ImportError, match="pip install cmaes"):
            make_sampler("cmaes", 1)
    else:
        assert isinstance(make_sampler("cmaes", 1), optuna.samplers.CmaEsSampler)
    with pytest.raises(ValueError, match="choose one of tpe, random, cmaes, gp"):
        make_sampler("bohb", 1)
    with pytest.raises(ValueError, match="must exceed heartbeat_interval_s"):
        storage_for("sqlite://", heartbeat_interval_s=5, grace_period_s=5)
    with pytest.raises(ValueError, match="whole number of seconds"):
        storage_for("sqlite://", heartbeat_interval_s=0.5)
