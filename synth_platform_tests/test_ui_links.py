"""Links to the MLflow run and the Optuna study of a tuning session (hand-made cases; the links opening against
real servers: test_tuning_fan_out.py)."""

from synth_platform.ui_links import mlflow_run_link, optuna_study_link


def test_links_only_where_a_server_is_configured(monkeypatch):
    monkeypatch.delenv("SYNTH_MLFLOW_URL", raising=False)
    monkeypatch.delenv("SYNTH_OPTUNA_DASHBOARD_URL", raising=False)
    assert mlflow_run_link("3", "abc") is None and optuna_study_link(7) is None
    monkeypatch.setenv("SYNTH_MLFLOW_URL", "http://127.0.0.1:5001/")
    monkeypatch.setenv("SYNTH_OPTUNA_DASHBOARD_URL", "http://127.0.0.1:8081")
    assert mlflow_run_link("3", "abc") == "http://127.0.0.1:5001/#/experiments/3/runs/abc"
    assert optuna_study_link(7) == "http://127.0.0.1:8081/dashboard/studies/7"


def test_no_link_without_the_ids():
    base = "http://127.0.0.1:5000"
    assert mlflow_run_link(None, "abc", base) is None and mlflow_run_link("3", None, base) is None
    assert optuna_study_link(None, base) is None and optuna_study_link(-1, base) is None
