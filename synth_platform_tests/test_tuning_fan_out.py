"""Tuning trials fanned out as Dagster steps (`tuned_hyperparameters` is a graph: open_study_step → one
run_trials_step per share → choose_parameters_step) on the multiprocess executor, sharing one PostgreSQL study."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import optuna
import pytest

from synth_platform_tests.helpers.cdp import free_port
from synth_platform_tests.helpers.fan_out_job import step_times, tuning_job

SHARES = ("tuned_hyperparameters.run_trials_step[share_0]", "tuned_hyperparameters.run_trials_step[share_1]")



@pytest.fixture(scope="module")
def fanned_out(tmp_path_factory, pg_database_for_module):
    """One run: 4 trials over 2 steps on a PostgreSQL Optuna storage (the steps' processes read it from the
    environment, as a deployment's would)."""
    with pytest.MonkeyPatch.context() as patch, dg.instance_for_test(temp_dir=str(tmp_path_factory.mktemp("home"))) as instance:
        patch.setenv("SYNTH_OPTUNA_STORAGE", pg_database_for_module)
        ports = {"mlflow": free_port(), "dashboard": free_port()}  # where `make mlflow` / `make dashboard` would serve
        patch.setenv("SYNTH_MLFLOW_URL", f"http://127.0.0.1:{ports['mlflow']}")
        patch.setenv("SYNTH_OPTUNA_DASHBOARD_URL", f"http://127.0.0.1:{ports['dashboard']}")
        run_config = {"ops": {"source_sample": {"config": {"max_rows": 600}},
                              "tuned_hyperparameters": {"config": {"n_trials": 4, "fan_out": 2, "trial_steps": 20, "tuning_rows": 300}}}}
        with dg.execute_job(dg.reconstructable(tuning_job), instance, run_config=run_config) as result:
            assert result.success
            (materialization,) = [e.materialization for e in result.get_asset_materialization_events()
                                  if e.asset_key.path[-1] == "tuned_hyperparameters"]
            yield instance, result.run_id, materialization.metadata, ports


def test_the_trials_run_as_concurrent_steps_of_the_run(fanned_out):
    instance, run_id, _, _ = fanned_out
    times = step_times(instance, run_id)
    assert set(SHARES) <= set(times) and "tuned_hyperparameters.choose_parameters_step" in times
    (first, second) = (times[s] for s in SHARES)
    # the two shares ran at once: each started before the other ended
    assert first["STEP_START"] < second["STEP_SUCCESS"] and second["STEP_START"] < first["STEP_SUCCESS"]
    choice = times["tuned_hyperparameters.choose_parameters_step"]["STEP_START"]
    assert choice >= max(first["STEP_SUCCESS"], second["STEP_SUCCESS"])  # the choice waits for every share


def test_the_steps_share_one_postgresql_study_and_the_choice_counts_every_trial(fanned_out, pg_database_for_module):
    _, _, metadata, _ = fanned_out
    study_name = metadata["study_name"].value
    study = optuna.load_study(study_name=study_name, storage=pg_database_for_module)
    assert len(study.trials) == 4 and {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}
    assert len({t.user_attrs["worker_pid"] for t in study.trials}) == 2  # two step processes
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 4
    assert metadata["trials_this_run"].value == 4 and metadata["optuna_storage"].value.startswith("postgresql")
    workers = metadata["workers"].data
    assert sorted(w["n_trials_asked"] for w in workers) == [2, 2] and len({w["sampler_seed"] for w in workers}) == 2


def test_the_session_is_one_mlflow_run_ended_by_the_choice(fanned_out):
    from mlflow.tracking import MlflowClient

    instance, _, metadata, _ = fanned_out
    uri = f"sqlite:///{instance.root_directory}/synth_platform/mlflow/mlflow.db"
    client = MlflowClient(uri)
    parent = client.get_run(metadata["mlflow_run_id"].value)
    assert parent.info.status == "FINISHED" and parent.data.params["fan_out"] == "2"
    nested = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(nested) == 4 and {r.info.status for r in nested} == {"FINISHED"}


def _serving(command: list[str], url: str, env: dict | None = None):
    """Start a local UI server (its own process group) and wait until `url` answers; returns the process."""
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    _stop(process)
    raise AssertionError(f"{command[0]} did not answer at {url} within 90 s")


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_the_tuning_metadata_links_open_the_mlflow_run_and_the_optuna_study(fanned_out, pg_database_for_module):
    """Under `make ui` (SYNTH_MLFLOW_URL, SYNTH_OPTUNA_DASHBOARD_URL) the tuning asset links to its MLflow run and its
    study, served by the commands of `make mlflow` and `make dashboard`: the ids in the links are the ones those
    servers know."""
    instance, _, metadata, ports = fanned_out
    venv = Path(sys.executable).parent  # the project's environment: its mlflow and optuna-dashboard
    mlflow_base, dashboard_base = (f"http://127.0.0.1:{ports[name]}" for name in ("mlflow", "dashboard"))
    run_id = metadata["mlflow_run_id"].value
    link = metadata["mlflow_run"].value
    assert link.startswith(f"{mlflow_base}/#/experiments/") and link.endswith(f"/runs/{run_id}")
    experiment_id = link.split("/#/experiments/")[1].split("/")[0]
    study_link = metadata["optuna_study"].value
    assert study_link.startswith(f"{dashboard_base}/dashboard/studies/")
    study_id = int(study_link.rsplit("/", 1)[1])

    store = f"sqlite:///{instance.root_directory}/synth_platform/mlflow/mlflow.db"
    mlflow = _serving([str(venv / "mlflow"), "ui", "--backend-store-uri", store, "--host", "127.0.0.1",
                       "--port", str(ports["mlflow"]), "--workers", "1"], f"{mlflow_base}/",
                      env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    try:
        run = _json(f"{mlflow_base}/api/2.0/mlflow/runs/get?run_id={run_id}")["run"]
        assert run["info"]["experiment_id"] == experiment_id and run["info"]["status"] == "FINISHED"
    finally:
        _stop(mlflow)
    dashboard = _serving([str(venv / "optuna-dashboard"), pg_database_for_module, "--host", "127.0.0.1",
                          "--port", str(ports["dashboard"])], f"{dashboard_base}/api/meta")
    try:
        study = _json(f"{dashboard_base}/api/studies/{study_id}")
        assert study["name"] == metadata["study_name"].value and len(study["trials"]) == 4
        with urllib.request.urlopen(study_link, timeout=10) as page:  # the SPA's page of that study
            assert page.status == 200
    finally:
        _stop(dashboard)
