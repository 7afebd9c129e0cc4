import dagster as dg

from synth_platform.definitions import defs


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_lineage_is_one_chain_per_table_in_its_own_group():
    graph = defs.resolve_asset_graph()
    parents = {key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys} for key in graph.get_all_asset_keys()}
    assert parents == {
        "adult/source_sample": set(),
        "adult/profiled_dataset": {"adult/source_sample"},
        "adult/tuned_hyperparameters": {"adult/profiled_dataset"},
        "adult/synthetic_table": {"adult/profiled_dataset", "adult/tuned_hyperparameters"},
        "adult/privacy_utility_report": {"adult/source_sample", "adult/profiled_dataset", "adult/synthetic_table"},
        "adult/best_synthetic_table": {"adult/privacy_utility_report"},
    }
    assert {graph.get(key).group_name for key in graph.get_all_asset_keys()} == {"adult"}


def test_jobs_schedule_and_sensor():
    assert defs.resolve_job_def("adult_synthesis_job")
    assert defs.resolve_schedule_def("adult_synthesis_schedule").cron_schedule == "0 3 * * *"
    sensor = defs.resolve_sensor_def("adult_auto_optimizer_sensor")
    assert {job.name for job in sensor.jobs} == {"adult_resynthesis_job", "adult_best_attempt_job"}
    resynthesis = defs.resolve_job_def("adult_resynthesis_job")
    assert "source_sample" not in resynthesis.graph.node_names()
    assert set(defs.resolve_job_def("adult_best_attempt_job").graph.node_names()) == {"best_synthetic_table"}
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
    job = defs.resolve_job_def("adult_synthesis_job")
    assert dg.validate_run_config(job, {}) is not None  # every field has a default
    try:
        dg.validate_run_config(job, {"ops": {"privacy_utility_report": {"config": {"mia_auc_max": "high"}}}})
    except dg.DagsterInvalidConfigError as error:
        assert "mia_auc_max" in str(error) and "high" in str(error)
    else:
        raise AssertionError("a non-numeric threshold was accepted")
