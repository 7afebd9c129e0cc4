import dagster as dg

from synth_platform.definitions import defs


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_lineage_is_one_chain_in_one_group():
    graph = defs.resolve_asset_graph()
    parents = {key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys} for key in graph.get_all_asset_keys()}
    assert parents == {
        "source_sample": set(),
        "profiled_dataset": {"source_sample"},
        "tuned_hyperparameters": {"profiled_dataset"},
        "synthetic_table": {"profiled_dataset", "tuned_hyperparameters"},
        "privacy_utility_report": {"source_sample", "profiled_dataset", "synthetic_table"},
        "best_synthetic_table": {"privacy_utility_report"},
    }
    assert {graph.get(key).group_name for key in graph.get_all_asset_keys()} == {"synthesis"}


def test_jobs_schedule_and_sensor():
    assert defs.resolve_job_def("synthesis_job")
    assert defs.resolve_schedule_def("daily_synthesis_schedule").cron_schedule == "0 3 * * *"
    sensor = defs.resolve_sensor_def("auto_optimizer_sensor")
    assert {job.name for job in sensor.jobs} == {"resynthesis_job", "best_attempt_job"}
    resynthesis = defs.resolve_job_def("resynthesis_job")
    assert "source_sample" not in resynthesis.graph.node_names()
    assert set(defs.resolve_job_def("best_attempt_job").graph.node_names()) == {"best_synthetic_table"}
    assert defs.resolve_job_def("optimize_run_job").graph.node_names() == ["plan_optimizer_step"]


def test_attempt_cap_comes_from_the_environment(monkeypatch):
    from synth_platform.resources import auto_optimizer_from_env

    assert auto_optimizer_from_env().max_attempts == 3
    monkeypatch.setenv("SYNTH_OPTIMIZER_MAX_ATTEMPTS", "5")
    assert auto_optimizer_from_env().max_attempts == 5
    monkeypatch.setenv("SYNTH_OPTIMIZER_MAX_ATTEMPTS", "many")
    try:
        auto_optimizer_from_env()
    except ValueError as error:
        assert "whole number" in str(error)
    else:
        raise AssertionError("a non-numeric attempt cap was accepted")


def test_non_numeric_threshold_is_rejected_by_config_validation():
    job = defs.resolve_job_def("synthesis_job")
    assert dg.validate_run_config(job, {}) is not None  # every field has a default
    try:
        dg.validate_run_config(job, {"ops": {"privacy_utility_report": {"config": {"mia_auc_max": "high"}}}})
    except dg.DagsterInvalidConfigError as error:
        assert "mia_auc_max" in str(error) and "high" in str(error)
    else:
        raise AssertionError("a non-numeric threshold was accepted")
