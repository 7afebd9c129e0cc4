"""The whole graph in-process on a real Dagster instance with real (tiny) synthcity training, then the
auto-optimizer sensor reading the real failed check evaluations it produced."""

import copy
import json
import re

import dagster as dg
import pytest

from synth_platform.assets import ALL_ASSETS
from synth_platform.attempt_chain import ATTEMPT_TAG, CHAIN_TAG, CHANGE_TAG, PARENT_RUN_TAG, RULE_TAG, STOP_TAG
from synth_platform.checks import ALL_CHECKS, THRESHOLD_CHECKS
from synth_platform.definitions import CHAINS, defs
from synth_platform.optimizer.policy import DEFAULT_MAX_ATTEMPTS as MAX_ATTEMPTS
from synth_platform_tests.conftest import TINY_RUN_CONFIG
from synth_platform_tests.helpers.sensor_ticks import optimizer_tick

ADULT = next(chain for chain in CHAINS if chain.spec.name == "adult")  # the repository's tables.yaml
ASSET_KEYS = {ADULT.key(a.key.path[-1]) for a in ALL_ASSETS}
BEST = ADULT.key("best_synthetic_table")


def _failing_ks_config():
    """Tiny training, and a KS threshold of 0 that no real generator meets: a real, deterministic check failure,
    the only one (the other thresholds at 1.0)."""
    config = copy.deepcopy(TINY_RUN_CONFIG)
    config["ops"]["privacy_utility_report"]["config"].update(
        ks_mean_max=0.0, correlation_delta_max=1.0, mia_auc_max=1.0, exact_copy_rate_max=1.0)
    return config


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="module")
def failed_run(instance):
    job = defs.resolve_job_def("adult_synthesis_job")
    return job.execute_in_process(run_config=_failing_ks_config(), instance=instance, raise_on_error=False)


def test_whole_graph_materializes_and_every_check_runs(failed_run, instance):
    materialized = {event.asset_key for event in failed_run.get_asset_materialization_events()}
    assert materialized == ASSET_KEYS - {BEST}  # the failed blocking checks stop the run before the best-attempt choice
    evaluations = {e.check_name: e.passed for e in failed_run.get_asset_check_evaluations()}
    assert set(evaluations) == {spec.name for check in ALL_CHECKS for spec in check.check_specs}
    (contract,) = [e for e in failed_run.get_asset_check_evaluations() if e.check_name == "synthetic_table_meets_source_contract"]
    assert contract.metadata["failed_critical"].value == 0  # 30 training steps: missing-value rates may only warn
    assert evaluations["ks_mean_within_threshold"] is False
    assert not failed_run.success  # a failed blocking check fails the run
    report_path = instance.root_directory + "/synth_platform/reports/latest.json"
    report = json.loads(open(report_path).read())
    assert report["run_id"] == failed_run.run_id and report["all_green"] is False
    page = open(instance.root_directory + "/synth_platform/reports/latest.html").read()
    assert failed_run.run_id in page and "Not green" in page


def test_materialize_with_default_thresholds_gives_metadata():
    with dg.instance_for_test() as own_instance:  # its failed checks must not reach the sensor tests' instance
        result = dg.materialize(ALL_ASSETS + ALL_CHECKS, instance=own_instance, run_config=TINY_RUN_CONFIG,
                                resources=defs.resources, raise_on_error=False)
    metadata = result.asset_materializations_for_node("privacy_utility_report")[0].metadata
    # Every metric in a table (shown inline; a long markdown table would sit behind a click), judged ones with their
    # threshold; the worst-matched columns in a short line.
    summary = {record.data["metric"]: record.data for record in metadata["summary"].value.records}
    report = result.output_for_node("privacy_utility_report")
    assert set(summary) == set(report["metrics"])
    assert summary["ks_mean"]["threshold"].startswith("≤ ") and summary["ks_mean"]["value"] == pytest.approx(report["metrics"]["ks_mean"], abs=1e-4)
    assert summary["tstr_ratio"]["threshold"].startswith("≥ ")
    assert metadata["worst_columns"].value.startswith("`")
    assert {"verdicts", "headline_plot", "report_html"} <= set(metadata)
    # ddpm is not differentially private: its chosen parameters carry no epsilon that would suggest otherwise.
    best_params = result.asset_materializations_for_node("tuned_hyperparameters")[0].metadata["best_params"].value
    assert best_params and "epsilon" not in best_params
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len(ALL_CHECKS)
    for evaluation in evaluations:
        expected = {
            "synthetic_table_meets_source_contract": {"failed_expectations", "data_docs"},
            "synthetic_table_discloses_no_source_values": {"cells_found", "identifier_values", "rare_values"},
        }.get(evaluation.check_name, {"value", "threshold", "margin"})
        assert expected <= set(evaluation.metadata)


def _tick(instance, cursor=None):
    return optimizer_tick(instance, cursor)


def test_sensor_turns_a_failed_evaluation_into_a_valid_run_request_once(failed_run, instance):
    result = _tick(instance)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    job = defs.resolve_job_def("adult_resynthesis_job")
    dg.validate_run_config(job, request.run_config)
    assert request.tags[ATTEMPT_TAG] == "1"
    assert request.tags[PARENT_RUN_TAG] == failed_run.run_id
    assert request.tags[CHAIN_TAG] == failed_run.run_id
    assert request.tags[RULE_TAG] == "train_longer" and "train longer" in request.tags[CHANGE_TAG]
    assert request.run_config["ops"]["synthetic_table"]["config"]["training_steps"] == 60  # doubled
    assert request.run_config["ops"]["privacy_utility_report"]["config"]["ks_mean_max"] == 0.0  # policy kept

    again = _tick(instance, cursor=result.cursor)
    assert again.run_requests == [] and "no new failed check" in again.skip_reason.skip_message


def test_requested_run_executes_and_the_chain_stops_at_the_attempt_cap(failed_run, instance):
    job = defs.resolve_job_def("adult_resynthesis_job")
    first_tick = _tick(instance)
    cursor = first_tick.cursor
    # Follow the chain the sensor would launch: attempt 1, 2, 3 each fail the (impossible) KS threshold.
    (first,) = [r for r in first_tick.run_requests if r.tags[PARENT_RUN_TAG] == failed_run.run_id]
    run_config, tags = first.run_config, first.tags
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert tags[ATTEMPT_TAG] == str(attempt)
        run = job.execute_in_process(run_config=run_config, instance=instance, tags=tags, raise_on_error=False)
        assert not run.success
        result = _tick(instance, cursor=cursor)
        cursor = result.cursor
        if attempt < MAX_ATTEMPTS:
            (request,) = result.run_requests
            # The next attempt starts from this run's config, or (when this run made its target worse) from the
            # config of the run it came from, and says so.
            if request.tags[CHANGE_TAG].startswith("reverted to attempt"):
                assert request.tags[PARENT_RUN_TAG] == tags[PARENT_RUN_TAG]
            else:
                assert request.tags[PARENT_RUN_TAG] == run.run_id
            assert request.tags[ATTEMPT_TAG] == str(attempt + 1)
            run_config, tags = request.run_config, request.tags
        else:  # the chain ends: its best attempt is chosen
            (best,) = result.run_requests
            assert best.job_name == "adult_best_attempt_job" and "attempt cap 3 reached" in best.tags[STOP_TAG]
            chosen = defs.resolve_job_def("adult_best_attempt_job").execute_in_process(
                run_config=best.run_config, instance=instance, tags=best.tags)
            metadata = chosen.asset_materializations_for_node("best_synthetic_table")[0].metadata
            assert metadata["all_green"].value is False and metadata["attempts"].value == MAX_ATTEMPTS + 1
            assert len(metadata["history"].records) == MAX_ATTEMPTS + 1
            assert _tick(instance, cursor=cursor).run_requests == []


def _error_text(error) -> str:
    """A failure's message with the messages of its causes (Dagster wraps the user error)."""
    parts = []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)


@pytest.mark.parametrize(
    ("setup_sql", "config", "message"),
    [
        ("CREATE TABLE visits (age INTEGER)", {"table": "patients"}, "Table 'patients' not found"),
        ("CREATE TABLE visits (age INTEGER)", {"table": "visits"}, "is empty"),
        ("CREATE TABLE visits (age INTEGER); INSERT INTO visits VALUES (1)", {"table": "visits", "columns": ["age", "bmi"]},
         r"Columns \['bmi'\] do not exist"),
    ],
)
def test_bad_input_fails_clearly_and_keeps_the_previous_good_materialization(failed_run, instance, tmp_path, setup_sql, config, message):
    import sqlalchemy as sa

    from synth_platform.resources import PlatformStorage, SourceDatabase

    url = f"sqlite:///{tmp_path / 'bad.sqlite'}"
    with sa.create_engine(url).begin() as conn:
        for statement in setup_sql.split(";"):
            conn.exec_driver_sql(statement)
    key = ADULT.key("source_sample")
    before = instance.get_latest_materialization_event(key)
    result = dg.materialize(
        ADULT.assets, selection=[key, ADULT.key("profiled_dataset")], instance=instance, raise_on_error=False,
        run_config={"ops": {"source_sample": {"config": config}}},
        resources={"source_database": SourceDatabase(url=url), "platform_storage": PlatformStorage()},
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert re.search(message, _error_text(failure.step_failure_data.error))
    assert instance.get_latest_materialization_event(key).run_id == before.run_id
    assert result.get_asset_materialization_events() == []


def test_two_failed_runs_between_ticks_are_both_handled(failed_run, instance, monkeypatch):
    """Two runs fail between sensor ticks: each gets its own request (the latest evaluation alone would hide one).
    With a storage page of one record, reading them also has to page back through the history."""
    import synth_platform.attempt_chain as attempt_chain

    monkeypatch.setattr(attempt_chain, "HISTORY_PAGE", 1)
    cursor = _tick(instance).cursor  # everything so far handled
    checks_only = dg.AssetSelection.checks_for_assets(ADULT.key("privacy_utility_report"))
    runs = [
        dg.materialize(ADULT.assets + ADULT.checks, selection=checks_only, instance=instance,
                       resources=defs.resources, raise_on_error=False)
        for _ in range(2)
    ]
    assert all(not run.success for run in runs)  # re-checking the stored report fails KS again
    result = _tick(instance, cursor=cursor)
    assert sorted(r.tags[PARENT_RUN_TAG] for r in result.run_requests) == sorted(run.run_id for run in runs)
    assert _tick(instance, cursor=result.cursor).run_requests == []
