"""One chain per tables.yaml entry: adding an entry adds a chain (keys, group, checks, jobs, schedule, sensor); an
entry's settings are checked when the code location loads and are what its runs use unless the run config says
otherwise; an entry's source comes from the environment variable it names."""

from __future__ import annotations

import importlib

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from synth_platform.resources import PlatformStorage, SourceDatabase
from synth_platform.table_chains import build_table_chains
from synth_platform.tables import DEFAULT_TABLES_FILE, TablesFileError, parse_tables

TEMPLATE_ASSETS = ["source_sample", "profiled_dataset", "tuned_hyperparameters", "synthetic_table", "privacy_utility_report",
                   "best_synthetic_table"]


def _with_entry(tmp_path, entry: dict) -> str:
    """The repository's tables.yaml with one more entry, written to a file of its own."""
    document = yaml.safe_load(DEFAULT_TABLES_FILE.read_text())
    document["tables"].append(entry)
    path = tmp_path / "tables.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_adding_an_entry_adds_a_whole_chain(tmp_path, monkeypatch):
    import synth_platform.definitions as definitions

    monkeypatch.setenv("SYNTH_TABLES_FILE", _with_entry(tmp_path, {"name": "patients", "table": "patients", "schedule": "15 4 * * *"}))
    try:
        defs = importlib.reload(definitions).defs
        dg.Definitions.validate_loadable(defs)
        graph = defs.resolve_asset_graph()
        keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
        assert keys == {f"{table}/{asset}" for table in ("adult", "patients") for asset in TEMPLATE_ASSETS}
        assert {graph.get(dg.AssetKey(["patients", a])).group_name for a in TEMPLATE_ASSETS} == {"patients"}
        # The chains do not touch: each table's report reads its own table's sample, profile and synthetic rows.
        assert {p.to_user_string() for p in graph.get(dg.AssetKey(["patients", "privacy_utility_report"])).parent_keys} == {
            "patients/source_sample", "patients/profiled_dataset", "patients/synthetic_table"}
        checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
        for table in ("adult", "patients"):
            assert {name for asset, name in checks if asset.startswith(f"{table}/")} == {
                name for asset, name in checks if asset.startswith("adult/")}
        assert len(checks) == 18
        # Every table has its jobs, its sensor over its own jobs, and its schedule on its own job.
        schedules = {s.name: s.job_name for s in defs.schedules}
        assert schedules == {"adult_synthesis_schedule": "adult_synthesis_job", "patients_synthesis_schedule": "patients_synthesis_job"}
        assert defs.resolve_schedule_def("patients_synthesis_schedule").cron_schedule == "15 4 * * *"
        sensor = defs.resolve_sensor_def("patients_auto_optimizer_sensor")
        assert {job.name for job in sensor.jobs} == {"patients_resynthesis_job", "patients_best_attempt_job"}
        job = defs.resolve_job_def("patients_synthesis_job")
        assert set(job.graph.node_names()) >= set(TEMPLATE_ASSETS)  # op names unchanged: the same run config for every table
        assert {k.path[0] for k in job.asset_layer.selected_asset_keys} == {"patients"}
        assert job.run_tags["synth_platform/table"] == "patients"
    finally:
        monkeypatch.delenv("SYNTH_TABLES_FILE")
        importlib.reload(definitions)


def test_an_entry_with_wrong_settings_stops_the_load_and_names_them():
    specs = parse_tables({"tables": [
        {"name": "a", "config": {"synthetic_table": {"num_rowz": 10}}},
        {"name": "b", "time_budget_minutes": "soon", "generator": "gan"},
        {"name": "c", "thresholds": {"mia_auc_max": 2.0}},
    ]})
    with pytest.raises(TablesFileError) as raised:
        build_table_chains(specs)
    text = str(raised.value)
    assert "table 'a': synthetic_table has no setting 'num_rowz'" in text
    assert "table 'b': synthetic_table.time_budget_minutes:" in text
    assert "table 'c': privacy_utility_report.mia_auc_max" in text


def _materialize_source(chain, storage_root, run_config=None) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        return dg.materialize(
            chain.assets, selection=[chain.key("source_sample")], instance=instance, run_config=run_config or {},
            resources={"platform_storage": PlatformStorage(root=str(storage_root)), "source_database": SourceDatabase()},
            raise_on_error=False,
        )


def _metadata(result, key) -> dict:
    (event,) = result.asset_materializations_for_node("source_sample")
    assert event.asset_key == key
    return {k: v.value for k, v in event.metadata.items()}


def test_a_run_takes_the_entry_settings_unless_its_config_gives_its_own(tmp_path):
    (chain,) = build_table_chains(parse_tables({"tables": [{
        "name": "small", "table": "adult", "config": {"source_sample": {"max_rows": 300, "holdout_fraction": 0.5}}}]}))
    from_entry = _metadata(_materialize_source(chain, tmp_path), chain.key("source_sample"))
    assert (from_entry["training_rows"], from_entry["holdout_rows"]) == (150, 150)
    overridden = _metadata(_materialize_source(chain, tmp_path, {"ops": {"source_sample": {"config": {"max_rows": 200}}}}),
                           chain.key("source_sample"))
    assert (overridden["training_rows"], overridden["holdout_rows"]) == (100, 100)  # max_rows from the run, the share from the entry


def test_an_entry_reads_its_source_from_the_variable_it_names(tmp_path, pg_database, monkeypatch):
    engine = sa.create_engine(pg_database)
    pd.DataFrame({"ward": ["a", "b", "c", "d"] * 30, "age": range(120)}).to_sql("admissions", engine, index=False)
    engine.dispose()
    (chain,) = build_table_chains(parse_tables({"tables": [{
        "name": "admissions", "table": "admissions", "source_url_env": "SYNTH_TEST_ADMISSIONS_URL",
        "config": {"source_sample": {"holdout_fraction": 0.25}}}]}))
    monkeypatch.delenv("SYNTH_TEST_ADMISSIONS_URL", raising=False)
    unset = _materialize_source(chain, tmp_path)
    assert not unset.success
    message = unset.get_step_failure_events()[0].event_specific_data.error.message
    assert "SYNTH_TEST_ADMISSIONS_URL" in message and "not set" in message and "Traceback" not in message
    monkeypatch.setenv("SYNTH_TEST_ADMISSIONS_URL", pg_database)
    metadata = _metadata(_materialize_source(chain, tmp_path), chain.key("source_sample"))
    assert (metadata["training_rows"], metadata["holdout_rows"]) == (90, 30)
    assert metadata["source"].startswith("postgresql") and metadata["columns"] == ["ward", "age"]


def test_a_run_belongs_to_the_table_its_tag_or_its_assets_name():
    from synth_platform.attempt_chain import TABLE_TAG, table_of_run

    def run(tags=None, keys=()):
        return dg.DagsterRun(job_name="__ASSET_JOB", run_id="r", tags=tags or {},
                             asset_selection=frozenset(dg.AssetKey(k) for k in keys) or None)

    assert table_of_run(run({TABLE_TAG: "census"}, [["adult", "source_sample"]])) == "census"  # the job's tag decides
    assert table_of_run(run(keys=[["adult", "source_sample"], ["adult", "synthetic_table"]])) == "adult"  # asset materialize
    assert table_of_run(run(keys=[["adult", "source_sample"], ["census", "source_sample"]])) == ""  # two tables: no answer
    assert table_of_run(run(keys=[["source_sample"]])) == "" and table_of_run(None) == ""  # the template chain, no run


def test_an_entry_may_not_write_a_sensitive_filter_value():
    """A literal filter value on a sensitive (or noised) column would be shown in the UI as the chain's settings: the
    load is refused, without repeating the value; the same filter through value_env loads."""
    literal = {"name": "patients", "table": "patients", "config": {"source_sample": {
        "sensitive_columns": ["diagnosis"], "filters": [{"column": "diagnosis", "op": "=", "value": "HIV-positive"}]}}}
    with pytest.raises(TablesFileError) as raised:
        build_table_chains(parse_tables({"tables": [literal]}))
    assert "filter on sensitive column 'diagnosis' has its value in tables.yaml" in str(raised.value)
    assert "HIV-positive" not in str(raised.value)
    noised = {"name": "ages", "table": "adult", "config": {"source_sample": {
        "noise_epsilon": 1.0, "noise_bounds": [{"column": "age", "lower": 17, "upper": 90}],
        "filters": [{"column": "age", "op": ">", "value": 40}]}}}
    with pytest.raises(TablesFileError, match="sensitive column 'age'"):
        build_table_chains(parse_tables({"tables": [noised]}))
    from_env = {"name": "patients", "table": "patients", "config": {"source_sample": {
        "sensitive_columns": ["diagnosis"], "filters": [{"column": "diagnosis", "op": "=", "value_env": "SYNTH_DX"}]}}}
    (chain,) = build_table_chains(parse_tables({"tables": [from_env]}))
    assert chain.spec.name == "patients"
