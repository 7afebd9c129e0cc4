"""Links from the Dagster UI to the other local UIs: a tuning session's MLflow run (`make mlflow`) and its Optuna
study (`make dashboard`). Pure: no Dagster here.

`make ui` sets `SYNTH_MLFLOW_URL` and `SYNTH_OPTUNA_DASHBOARD_URL` to where those two commands serve
(127.0.0.1:$MLFLOW_PORT and :$DASHBOARD_PORT); without them there is no link, only the ids (a link to a server
nobody configured would open nothing)."""

from __future__ import annotations

import os
from urllib.parse import quote

MLFLOW_URL_ENV = "SYNTH_MLFLOW_URL"
OPTUNA_DASHBOARD_URL_ENV = "SYNTH_OPTUNA_DASHBOARD_URL"


def _base(env: str, base_url: str | None) -> str:
    return (base_url if base_url is not None else os.environ.get(env, "")).strip().rstrip("/")


def mlflow_run_link(experiment_id: str | None, run_id: str | None, base_url: str | None = None) -> str | None:
    """The MLflow UI's page of run `run_id` in experiment `experiment_id` (MLflow 3's hash route)."""
    base = _base(MLFLOW_URL_ENV, base_url)
    if not (base and experiment_id and run_id):
        return None
    return f"{base}/#/experiments/{quote(str(experiment_id))}/runs/{quote(str(run_id))}"


def optuna_study_link(study_id: int | None, base_url: str | None = None) -> str | None:
    """optuna-dashboard's page of the study with storage id `study_id` (its route /dashboard/studies/<id>)."""
    base = _base(OPTUNA_DASHBOARD_URL_ENV, base_url)
    if not base or study_id is None or study_id < 0:
        return None
    return f"{base}/dashboard/studies/{int(study_id)}"
