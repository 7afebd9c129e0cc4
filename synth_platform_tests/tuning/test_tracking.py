"""MLflow tracking of Optuna studies against a real MLflow store (SQLite in tmp_path) and real Optuna studies.

Objectives are cheap functions (no generator training); processes are real: a spawned worker logging trials, a
child killed with SIGKILL, a Dagster run that fails. Every scenario ends by checking that no run in the store is
left RUNNING.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import optuna
import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from synth_platform.tuning.tracking import (
    DEFAULT_EXPERIMENT,
    StudyTracker,
    TrialLogger,
    fail_orphaned_runs,
    tracking_uri_for,
)

REPO = Path(__file__).resolve().parents[2]


# --- helpers ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite database with its schema created once (MLflow's migrations take seconds per new store)."""
    root = tmp_path_factory.mktemp("mlflow-template")
    MlflowClient(tracking_uri_for(root)).search_experiments()
    return root / "mlflow" / "mlflow.db"


@pytest.fixture
def tracking_uri(tmp_path, empty_store) -> str:
    """A fresh, real MLflow store of this test's own."""
    (tmp_path / "mlflow").mkdir()
    shutil.copy(empty_store, tmp_path / "mlflow" / "mlflow.db")
    return tracking_uri_for(tmp_path)


def all_runs(uri: str) -> list:
    client = MlflowClient(uri)
    experiment_ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(experiment_ids, run_view_type=ViewType.ALL, max_results=10_000)


def assert_no_run_left_running(uri: str) -> list:
    runs = all_runs(uri)
    assert runs, "the scenario logged no run at all"
    left = {r.info.run_name: r.info.status for r in runs if r.info.status not in ("FINISHED", "FAILED")}
    assert not left, f"runs not ended FINISHED or FAILED: {left}"
    return runs


def nested_runs(uri: str, parent_run_id: str) -> dict[int, object]:
    """The trial runs under a parent, by trial number."""
    runs = [r for r in all_runs(uri) if r.data.tags.get("mlflow.parentRunId") == parent_run_id]
    by_number = {int(r.data.tags["trial_number"]): r for r in runs}
    assert len(by_number) == len(runs), "a trial was logged twice"
    return by_number


def quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -1.0, 1.0)
    trial.suggest_categorical("plugin", ["ddpm", "ctgan"])
    trial.set_user_attr("ks_mean", abs(x) / 2)
    trial.set_user_attr("mia_auc", 0.5 + abs(x) / 10)
    trial.set_user_attr("budget", "steps=10,rows=100")
    return x * x


def new_study(**kwargs) -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0), **kwargs)


def milliseconds(moment) -> int:
    return int(moment.timestamp() * 1000)


# --- tracking URI ----------------------------------------------------------------------------------------------------


def test_local_store_is_sqlite_under_root_and_a_configured_uri_wins(tmp_path):
    assert tracking_uri_for(tmp_path) == f"sqlite:///{(tmp_path / 'mlflow' / 'mlflow.db').resolve().as_posix()}"
    assert tracking_uri_for(tmp_path, " http://mlflow.internal:5000 ") == "http://mlflow.internal:5000"
    assert tracking_uri_for(tmp_path, "postgresql+psycopg2://u@db/mlflow") == "postgresql+psycopg2://u@db/mlflow"


@pytest.mark.parametrize("configured", ["./mlruns", "file:///tmp/mlruns", "ftp://host/x"])
def test_file_store_and_unknown_schemes_are_refused_with_what_to_give_instead(tmp_path, configured):
    with pytest.raises(ValueError, match=r"sqlite:////abs/path/mlflow\.db.*migrate-filestore"):
        tracking_uri_for(tmp_path, configured)


# --- the experiment --------------------------------------------------------------------------------------------------


def test_experiment_is_created_as_classic_ml_and_an_existing_one_without_a_kind_gets_it(tracking_uri):
    # MLflow's own key and value for a "Machine learning" experiment (what its UI writes when one chooses that kind).
    kind = ("mlflow.experimentKind", "custom_model_development")
    with StudyTracker(tracking_uri, study_name="created") as tracker:
        pass
    client = MlflowClient(tracking_uri)
    assert tracker.problems == []
    assert kind in client.get_experiment(tracker.experiment_id).tags.items()

    existing = client.create_experiment("made-elsewhere")  # e.g. by an older version of this tracker
    assert "mlflow.experimentKind" not in client.get_experiment(existing).tags
    with StudyTracker(tracking_uri, experiment="made-elsewhere", study_name="tagged-later") as later:
        pass
    assert later.experiment_id == existing
    assert kind in client.get_experiment(existing).tags.items()

    chosen = client.create_experiment("chosen-kind", tags={"mlflow.experimentKind": "genai_development"})
    with StudyTracker(tracking_uri, experiment="chosen-kind", study_name="kept"):
        pass
    assert client.get_experiment(chosen).tags["mlflow.experimentKind"] == "genai_development"  # a choice is kept
    assert_no_run_left_running(tracking_uri)


# --- studies ---------------------------------------------------------------------------------------------------------


def test_successful_study_finishes_parent_with_a_nested_run_per_trial(tracking_uri, tmp_path):
    def objective(trial: optuna.Trial) -> float:
        value = quadratic(trial)
        trial.set_user_attr("dcr_share[train]", 0.5)  # MLflow refuses brackets in keys
        trial.set_user_attr("note: origin", "defaults")
        if trial.number == 1:
            raise optuna.TrialPruned()
        return value

    study = new_study(study_name="adult-ddpm")
    with StudyTracker(tracking_uri, study_name="adult-ddpm", dagster_run_id="dagster-run-1",
                      tags={"plugin": "ddpm"}) as tracker:
        tracker.log_params({"n_trials": 3, "seed": 0})
        study.optimize(objective, n_trials=3, callbacks=[tracker.trial_logger()])

    assert tracker.problems == []
    runs = assert_no_run_left_running(tracking_uri)
    parent = MlflowClient(tracking_uri).get_run(tracker.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.info.run_name == "adult-ddpm"
    assert parent.data.tags["study_name"] == "adult-ddpm"
    assert parent.data.tags["dagster_run_id"] == "dagster-run-1"
    assert parent.data.tags["plugin"] == "ddpm"
    assert parent.data.tags["host"] == socket.gethostname()
    assert parent.data.tags["pid"] == str(os.getpid())
    assert parent.data.params == {"n_trials": "3", "seed": "0"}
    experiment = MlflowClient(tracking_uri).get_experiment(parent.info.experiment_id)
    assert experiment.name == DEFAULT_EXPERIMENT
    assert experiment.artifact_location == (tmp_path / "mlflow" / "artifacts").resolve().as_uri()

    trials = nested_runs(tracking_uri, tracker.parent_run_id)
    assert sorted(trials) == [0, 1, 2] and len(runs) == 4
    for trial in study.trials:
        run = trials[trial.number]
        assert run.info.run_name == f"trial-{trial.number}"
        assert run.info.status == "FINISHED"
        assert run.info.experiment_id == parent.info.experiment_id
        assert run.data.tags["trial_state"] == trial.state.name
        assert run.data.tags["study_name"] == "adult-ddpm"
        assert run.data.tags["user_attr.budget"] == "steps=10,rows=100"
        assert run.data.params == {"x": str(trial.params["x"]), "plugin": trial.params["plugin"]}
        assert run.data.metrics["ks_mean"] == pytest.approx(trial.user_attrs["ks_mean"])
        assert run.data.metrics["mia_auc"] == pytest.approx(trial.user_attrs["mia_auc"])
        assert run.data.metrics["dcr_share_train_"] == 0.5
        assert run.data.tags["user_attr.note_ origin"] == "defaults"
        assert run.info.start_time == milliseconds(trial.datetime_start)
        assert run.info.end_time == milliseconds(trial.datetime_complete)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                                               optuna.trial.TrialState.COMPLETE]
    assert trials[0].data.metrics["value"] == pytest.approx(study.trials[0].value)
    assert "value" not in trials[1].data.metrics  # a pruned trial has no objective value


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("metric_names", [None, ["utility_distance", "mia_auc"]])
def test_multi_objective_values_and_constraints_become_metrics(tracking_uri, metric_names):
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("constraints", [x - 0.5, -1.0])
        trial.set_user_attr("exact_copy_rate", 0.0)
        return x, 1.0 - x

    study = new_study(directions=["minimize", "minimize"])
    if metric_names:
        study.set_metric_names(metric_names)
    with StudyTracker(tracking_uri, study_name="multi") as tracker:
        study.optimize(objective, n_trials=2, callbacks=[tracker.trial_logger()])

    assert_no_run_left_running(tracking_uri)
    names = metric_names or ["value_0", "value_1"]
    for trial in study.trials:
        metrics = nested_runs(tracking_uri, tracker.parent_run_id)[trial.number].data.metrics
        assert metrics == pytest.approx({
            names[0]: trial.values[0], names[1]: trial.values[1],
            "constraint_0": trial.params["x"] - 0.5, "constraint_1": -1.0, "exact_copy_rate": 0.0,
        })


def test_failing_trial_is_a_failed_nested_run_and_the_study_goes_on(tracking_uri):
    def objective(trial: optuna.Trial) -> float:
        value = quadratic(trial)
        if trial.number == 1:
            error = RuntimeError("generator diverged: loss is NaN")
            trial.set_user_attr("error", repr(error))  # Optuna 5 keeps no fail reason of its own
            raise error
        return value

    study = new_study()
    with StudyTracker(tracking_uri, study_name="with-a-failure") as tracker:
        study.optimize(objective, n_trials=3, catch=(RuntimeError,), callbacks=[tracker.trial_logger()])

    assert_no_run_left_running(tracking_uri)
    assert MlflowClient(tracking_uri).get_run(tracker.parent_run_id).info.status == "FINISHED"
    trials = nested_runs(tracking_uri, tracker.parent_run_id)
    assert {n: r.info.status for n, r in trials.items()} == {0: "FINISHED", 1: "FAILED", 2: "FINISHED"}
    assert trials[1].data.tags["trial_state"] == "FAIL"
    assert trials[1].data.tags["user_attr.error"] == "RuntimeError('generator diverged: loss is NaN')"
    assert "value" not in trials[1].data.metrics
    assert trials[1].data.params["x"] == str(study.trials[1].params["x"])  # what was tried is kept


@pytest.mark.parametrize("interruption", [ValueError, KeyboardInterrupt])
def test_exception_escaping_the_block_fails_the_parent_and_propagates(tracking_uri, interruption):
    def objective(trial: optuna.Trial) -> float:
        value = quadratic(trial)
        if trial.number == 2:
            raise interruption("stop here")
        return value

    study = new_study()
    with pytest.raises(interruption, match="stop here"):
        with StudyTracker(tracking_uri, study_name="interrupted") as tracker:
            study.optimize(objective, n_trials=5, callbacks=[tracker.trial_logger()])

    assert_no_run_left_running(tracking_uri)
    parent = MlflowClient(tracking_uri).get_run(tracker.parent_run_id)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["failure"] == f"{interruption.__name__}: stop here"
    # Trials finished before the interruption are logged; the one it escaped from is Optuna's FAIL, not MLflow's.
    assert sorted(nested_runs(tracking_uri, tracker.parent_run_id)) == [0, 1]


def test_failing_dagster_asset_leaves_its_run_failed(tracking_uri):
    import dagster as dg

    @dg.asset
    def tuned_with_tracking(context) -> None:
        study = new_study()
        with StudyTracker(tracking_uri, study_name="dagster-study", dagster_run_id=context.run_id) as tracker:
            study.optimize(quadratic, n_trials=2, callbacks=[tracker.trial_logger()])
            raise RuntimeError("the generator exploded after tuning")

    with dg.instance_for_test() as instance:
        result = dg.materialize([tuned_with_tracking], instance=instance, raise_on_error=False)

    assert not result.success
    runs = assert_no_run_left_running(tracking_uri)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FAILED"
    assert parent.data.tags["dagster_run_id"] == result.run_id
    assert "the generator exploded after tuning" in parent.data.tags["failure"]
    trials = nested_runs(tracking_uri, parent.info.run_id)
    assert {n: r.info.status for n, r in trials.items()} == {0: "FINISHED", 1: "FINISHED"}


# --- other processes -------------------------------------------------------------------------------------------------


def optimize_in_worker(storage: str, study_name: str, trial_logger: TrialLogger, n_trials: int) -> int:
    """Runs in a spawned process that knows the parent run only through the pickled logger."""
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(quadratic, n_trials=n_trials, callbacks=[trial_logger])
    return os.getpid()


def test_trials_finished_in_a_spawned_worker_process_nest_under_the_parent(tracking_uri, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.sqlite3'}"
    study = optuna.create_study(study_name="shared", storage=storage)
    with StudyTracker(tracking_uri, study_name="shared") as tracker:
        trial_logger = tracker.trial_logger()
        study.optimize(quadratic, n_trials=1, callbacks=[trial_logger])
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            worker_pid = pool.submit(optimize_in_worker, storage, "shared", trial_logger, 2).result()

    assert worker_pid != os.getpid()
    assert_no_run_left_running(tracking_uri)
    assert MlflowClient(tracking_uri).get_run(tracker.parent_run_id).info.status == "FINISHED"
    trials = nested_runs(tracking_uri, tracker.parent_run_id)
    assert sorted(trials) == [0, 1, 2]
    assert [trials[n].data.tags["pid"] for n in (0, 1, 2)] == [str(os.getpid()), str(worker_pid), str(worker_pid)]
    finished = {t.number: t for t in optuna.load_study(study_name="shared", storage=storage).trials}
    for number, run in trials.items():
        assert run.info.status == "FINISHED"
        assert run.data.metrics["value"] == pytest.approx(finished[number].value)


KILLABLE_TRACKER = """
import sys, time
from synth_platform.tuning.tracking import StudyTracker
with StudyTracker(sys.argv[1], study_name="killed-study") as tracker:
    print(tracker.parent_run_id, flush=True)
    time.sleep(600)
"""


def process_state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2]


def test_run_of_a_sigkilled_process_is_failed_by_the_next_tracker(tracking_uri):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", KILLABLE_TRACKER, tracking_uri], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed_run_id = child.stdout.readline().strip()
        assert killed_run_id, f"the child tracker did not start: {child.communicate(timeout=60)[1][-3000:]}"
        client = MlflowClient(tracking_uri)
        assert fail_orphaned_runs(tracking_uri) == []  # its process is alive: not an orphan
        assert client.get_run(killed_run_id).info.status == "RUNNING"

        child.send_signal(signal.SIGKILL)
        while process_state(child.pid) != "Z":  # dead but not reaped: a zombie still answers os.kill(pid, 0)
            time.sleep(0.05)
        assert client.get_run(killed_run_id).info.status == "RUNNING"  # nothing in the child could end it
        with StudyTracker(tracking_uri, study_name="next-study") as tracker:
            assert tracker.orphans_failed == [killed_run_id]
            assert fail_orphaned_runs(tracking_uri) == []  # the live tracker's own run is not an orphan
    finally:
        child.kill()
        child.communicate()

    assert_no_run_left_running(tracking_uri)
    killed = client.get_run(killed_run_id)
    assert killed.info.status == "FAILED"
    assert f"process {child.pid}" in killed.data.tags["orphaned"]
    assert client.get_run(tracker.parent_run_id).info.status == "FINISHED"


def test_sweep_judges_by_host_and_process_start_so_a_reused_pid_is_no_alibi(tracking_uri):
    with StudyTracker(tracking_uri, study_name="live") as tracker:
        client = MlflowClient(tracking_uri)
        own = client.get_run(tracker.parent_run_id).data.tags
        reused_pid = client.create_run(tracker.experiment_id, run_name="reused-pid", tags={
            "host": own["host"], "pid": own["pid"], "pid_start": str(int(own["pid_start"]) - 1)})
        other_host = client.create_run(tracker.experiment_id, run_name="other-host", tags={
            "host": own["host"] + "-elsewhere", "pid": "999999999", "pid_start": "1"})

        assert fail_orphaned_runs(tracking_uri) == [reused_pid.info.run_id]
        assert client.get_run(other_host.info.run_id).info.status == "RUNNING"  # cannot be judged from here
        client.set_terminated(other_host.info.run_id, "FINISHED")

    statuses = {r.info.run_name: r.info.status for r in assert_no_run_left_running(tracking_uri)}
    assert statuses == {"live": "FINISHED", "reused-pid": "FAILED", "other-host": "FINISHED"}


# --- the final choice ------------------------------------------------------------------------------------------------


def test_final_choice_names_study_trial_and_its_run_even_from_an_earlier_session(tracking_uri, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.sqlite3'}"
    study = optuna.create_study(study_name="persisted", storage=storage, sampler=optuna.samplers.TPESampler(seed=0))
    study.enqueue_trial({"x": 0.0, "plugin": "ddpm"})  # the best trial, found in the first session
    with StudyTracker(tracking_uri, study_name="persisted") as first:
        study.optimize(quadratic, n_trials=2, callbacks=[first.trial_logger()])
    with StudyTracker(tracking_uri, study_name="persisted") as second:
        study.optimize(quadratic, n_trials=2, callbacks=[second.trial_logger()])
        best = study.best_trial
        second.log_choice("persisted", best.number, best.params, {"utility_distance": best.value, "mia_auc": 0.51})

    assert_no_run_left_running(tracking_uri)
    assert best.number == 0
    parent = MlflowClient(tracking_uri).get_run(second.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["chosen_study"] == "persisted"
    assert parent.data.tags["chosen_trial"] == "0"
    assert parent.data.tags["chosen_trial_run_id"] == nested_runs(tracking_uri, first.parent_run_id)[0].info.run_id
    assert parent.data.params == {"best.x": "0.0", "best.plugin": "ddpm"}
    assert parent.data.metrics == {"best.utility_distance": 0.0, "best.mia_auc": 0.51}
    assert sorted(nested_runs(tracking_uri, second.parent_run_id)) == [2, 3]


# --- outages ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def unreachable_server(monkeypatch) -> str:
    """A tracking server URL nobody listens on; MLflow told not to retry (its default retries take minutes)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def tracking_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "synth_platform.tuning.tracking" and r.levelno == logging.WARNING]


def test_unreachable_tracking_server_warns_and_tuning_goes_on(unreachable_server, caplog):
    study = new_study()
    with caplog.at_level(logging.WARNING, logger="synth_platform.tuning.tracking"):
        with StudyTracker(unreachable_server, study_name="offline") as tracker:
            study.optimize(quadratic, n_trials=3, callbacks=[tracker.trial_logger()])
            tracker.log_choice("offline", study.best_trial.number, study.best_params, {"value": study.best_value})

    assert len(study.trials) == 3
    assert tracker.parent_run_id is None
    (problem,) = tracker.problems  # starting the parent run; nothing is tried after that
    assert f"starting the parent run for study 'offline' at {unreachable_server}" in problem
    assert "tuning goes on" in problem and "Check that the tracking store is reachable" in problem
    assert tracking_warnings(caplog) == tracker.problems


def test_trial_logging_outage_mid_study_warns_once_and_the_parent_still_finishes(
    tracking_uri, unreachable_server, caplog
):
    study = new_study()
    with caplog.at_level(logging.WARNING, logger="synth_platform.tuning.tracking"):
        with StudyTracker(tracking_uri, study_name="flaky") as tracker:
            trial_logger = TrialLogger(unreachable_server, tracker.parent_run_id, tracker.experiment_id)
            study.optimize(quadratic, n_trials=3, callbacks=[trial_logger])

    assert len(study.trials) == 3
    (warning,) = tracking_warnings(caplog)  # trial 0's; later trials are not tried
    assert f"trial 0 of study {study.study_name!r} failed" in warning
    assert f"this process logs no more trials to {unreachable_server}" in warning
    runs = assert_no_run_left_running(tracking_uri)
    assert [(r.info.run_name, r.info.status) for r in runs] == [("flaky", "FINISHED")]


# --- make mlflow -----------------------------------------------------------------------------------------------------


def _process_group(pgid: int) -> list[str]:
    """The command lines of the live processes in process group `pgid`."""
    members = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:  # state, parent, group: the fields after the command name, which may hold spaces
            stat = Path(f"/proc/{pid}/stat").read_text()
            state, _, group = stat[stat.rfind(")") + 2 :].split()[:3]
            if group == str(pgid) and state not in ("Z", "X"):
                members.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, ValueError):  # gone meanwhile
            continue
    return members


def test_make_mlflow_serves_the_store_from_one_worker_without_the_job_runner(tracking_uri, tmp_path):
    import json
    import urllib.request

    with StudyTracker(tracking_uri, study_name="browsed"):
        pass
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "mlflow-ui.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    with log.open("w") as out:  # a session of its own, as a terminal's foreground job: Ctrl-C reaches every process
        make = subprocess.Popen(["make", "mlflow", f"MLFLOW_PORT={port}"], cwd=REPO, env=env, start_new_session=True,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search", method="POST",
                                         data=b'{"max_results": 10}', headers={"Content-Type": "application/json"})
        while True:
            try:
                experiments = json.load(urllib.request.urlopen(request, timeout=5))["experiments"]
                break
            except OSError:
                assert make.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "make mlflow did not answer in 180 s:\n" + log.read_text()[-3000:]
                time.sleep(0.5)
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).status == 200
        (ours,) = [e for e in experiments if e["name"] == DEFAULT_EXPERIMENT]
        assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in ours["tags"]

        processes = _process_group(make.pid)
        assert not [p for p in processes if "huey" in p or "_job_runner" in p], processes  # no job runner
        servers = [p for p in processes if "-m uvicorn" in p or "multiprocessing" in p]
        assert len(servers) == 1 and "--workers 1" in servers[0], processes  # one worker, in the uvicorn process
    finally:
        os.killpg(make.pid, signal.SIGINT)
        try:
            make.wait(timeout=60)
        finally:
            if make.poll() is None:
                os.killpg(make.pid, signal.SIGKILL)
                make.wait()
    for _ in range(20):  # Ctrl-C stops the server too; its last process may take a moment to be reaped
        left = _process_group(make.pid)
        if not left:
            break
        time.sleep(0.5)
    assert not left, left
    assert f"http://127.0.0.1:{port}" in log.read_text()
