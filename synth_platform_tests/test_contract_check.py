"""The source's contract end to end: a patient table in real PostgreSQL (DATE and TIMESTAMP columns, keys, e-mails,
phone numbers, names, free text, an admission/discharge pair) through the whole graph with real ddpm training; then
the blocking contract check on corrupted synthetic tables."""

import copy
import dataclasses
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from synth_platform.assets import ALL_ASSETS, best_synthetic_table
from synth_platform.checks import ALL_CHECKS, synthetic_table_discloses_no_source_values, synthetic_table_meets_source_contract
from synth_platform.profiling.contract import MISSING_RATE_TOLERANCE
from synth_platform.resources import PlatformStorage, SourceDatabase
from synth_platform_tests.profiling.built_tables import patients

CONTRACT_CHECK = "synthetic_table_meets_source_contract"
DISCLOSURE_CHECK = "synthetic_table_discloses_no_source_values"
DROPPED = {"email", "phone", "full_name", "notes"}
RUN_CONFIG = {
    "ops": {
        "source_sample": {"config": {"table": "patients"}},
        "profiled_dataset": {"config": {"column_treatments": {"notes": "drop"}}},
        "tuned_hyperparameters": {"config": {"n_trials": 1, "trial_steps": 20, "tuning_rows": 300, "track_in_mlflow": False}},
        "synthetic_table": {"config": {"training_steps": 1500, "num_rows": 2000}},
        "privacy_utility_report": {"config": {"privacy_rows": 200}},
    }
}


@pytest.fixture(scope="module")
def source(pg_database_for_module):
    frame = patients(n=600)
    stored = frame.assign(
        admitted=pd.to_datetime(frame["admitted"]).dt.date, discharged=pd.to_datetime(frame["discharged"]).dt.date,
        seen_at=pd.to_datetime(frame["seen_at"]),
    )
    engine = sa.create_engine(pg_database_for_module)
    stored.to_sql("patients", engine, index=False, dtype={"admitted": sa.Date(), "discharged": sa.Date(), "seen_at": sa.DateTime()})
    engine.dispose()
    return pg_database_for_module, frame


@pytest.fixture(scope="module")
def run(source, tmp_path_factory):
    url, _ = source
    storage = PlatformStorage(root=str(tmp_path_factory.mktemp("platform")))
    resources = {"source_database": SourceDatabase(url=url), "platform_storage": storage}
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [a for a in ALL_ASSETS if a is not best_synthetic_table] + ALL_CHECKS, instance=instance,
            run_config=RUN_CONFIG, resources=resources, raise_on_error=False,
        )
        yield result, storage, resources, instance


def _output(result, node):
    return result.output_for_node(node)


def test_the_profile_is_saved_with_its_suite_and_shown_as_a_table(run):
    result = run[0]
    metadata = result.asset_materializations_for_node("profiled_dataset")[0].metadata
    assert Path(metadata["profile_path"].value).exists() and Path(metadata["expectation_suite_path"].value).exists()
    records = {r.data["column"]: r.data for r in metadata["profile"].records}
    assert records["patient_id"]["treatment"] == "surrogate" and records["email"]["treatment"] == "drop"
    assert records["admitted"]["semantic_type"] == "datetime" and records["zip_code"]["quasi_identifier"] is True
    assert metadata["orderings"].value == ["admitted ≤ discharged", "admitted ≤ seen_at"]  # seen hours after admission
    profiled = _output(result, "profiled_dataset")
    assert not set(profiled.encoded_training.columns) & (DROPPED | {"patient_id", "mrn", "sequence"})


def test_previews_never_show_identifiers_or_free_text(run, source):
    result = run[0]
    sample_metadata = result.asset_materializations_for_node("source_sample")[0].metadata
    assert "preview" not in sample_metadata  # no source rows in metadata: only the columns' names and types
    assert [r.data["column"] for r in sample_metadata["schema"].records] == list(source[1].columns)
    preview = result.asset_materializations_for_node("synthetic_table")[0].metadata["preview"].value
    for column in ("email", "phone", "full_name", "notes"):
        assert column not in preview
    assert "diagnosis" in preview and source[1].loc[0, "email"] not in preview


def test_synthetic_table_honours_the_contract(run, source):
    result = run[0]
    _, frame = source
    table = _output(result, "synthetic_table").frame
    assert list(table.columns) == [c for c in frame.columns if c not in DROPPED]
    for name in ("admitted", "discharged", "seen_at"):
        assert pd.api.types.is_datetime64_any_dtype(table[name].dtype)  # datetimes come back as datetimes
    assert (table["admitted"] == table["admitted"].dt.floor("D")).all()  # at the source's day resolution
    assert (table["admitted"] <= table["discharged"]).all()  # the ordering, after rejection
    assert table["patient_id"].is_unique and table["patient_id"].str.startswith("SYN-").all()
    source_ids = {str(v) for c in ("patient_id", "mrn", "sequence", "email", "phone", "full_name") for v in frame[c]}
    for name in table.select_dtypes(exclude="number").columns:  # a number (an age of 30) is no leak of row 30
        assert not set(table[name].astype(str)) & source_ids, name  # no source identifier value anywhere
    rate, synthetic_rate = frame["weight"].isna().mean(), table["weight"].isna().mean()
    assert abs(synthetic_rate - rate) <= MISSING_RATE_TOLERANCE, (rate, synthetic_rate)
    assert table["diagnosis"].isin(["I10", "E11", "J45", "K35"]).all() and len(table) == 2000
    metadata = result.asset_materializations_for_node("synthetic_table")[0].metadata
    assert metadata["regeneration_rounds"].value >= 1 and metadata["rows_short"].value == 0
    assert metadata["rejected_rows"].value == sum(metadata["rejected_by_rule"].value.values()) or metadata["rejected_rows"].value > 0


def test_the_blocking_contract_check_passes_and_links_data_docs(run):
    result = run[0]
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == CONTRACT_CHECK]
    # Every critical expectation is met. A missing share just outside ±3 points of 480 training rows (weight:
    # 17.1% in the source, 14–15% generated across samplers and seeds) may warn; warnings never block.
    assert evaluation.metadata["failed_critical"].value == 0, evaluation.metadata["summary"].value
    if not evaluation.passed:
        assert evaluation.severity == dg.AssetCheckSeverity.WARN
        assert {r.data["rule"] for r in evaluation.metadata["failed_expectations"].records} == {"missing_rate"}
    docs = Path(evaluation.metadata["data_docs"].value)
    assert docs.exists() and docs.name == "index.html"
    (disclosure,) = [e for e in result.get_asset_check_evaluations() if e.check_name == DISCLOSURE_CHECK]
    assert disclosure.passed and disclosure.metadata["cells_found"].value == 0
    assert result.asset_materializations_for_node("privacy_utility_report")  # not blocked


def _check(run, synthetic):
    result, resources = run[0], run[2]
    # Closed here, not when garbage-collected: a direct-invocation context enters an ephemeral Dagster instance, and
    # closing it late would put back a ContextVar value from this module's (by then disposed) instance.
    context = dg.build_asset_check_context(resources={"platform_storage": resources["platform_storage"]})
    with context.op_execution_context:  # the check context closes through the op context it wraps
        return synthetic_table_meets_source_contract(
            context, synthetic_table=synthetic, profiled_dataset=_output(result, "profiled_dataset"),
        )


def test_the_check_fails_on_a_corrupted_table_naming_the_expectation(run, source):
    result = run[0]
    synthetic = _output(result, "synthetic_table")
    bad = synthetic.frame.copy()
    bad.loc[0, "age"] = -3
    bad.loc[1, "diagnosis"] = "X00"
    bad.loc[2, "discharged"] = bad.loc[2, "admitted"] - pd.Timedelta(days=1)
    bad.loc[3, "patient_id"] = str(source[1].loc[0, "patient_id"])
    outcome = _check(run, dataclasses.replace(synthetic, frame=bad))
    assert not outcome.passed and outcome.severity == dg.AssetCheckSeverity.ERROR
    failed = {(r.data["rule"], r.data["columns"]): r.data for r in outcome.metadata["failed_expectations"].records}
    assert ("range", "age") in failed and "-3" in failed[("range", "age")]["examples"]
    assert ("allowed_values", "diagnosis") in failed and "X00" in failed[("allowed_values", "diagnosis")]["examples"]
    assert ("ordering", "discharged, admitted") in failed
    assert "admitted ≤ discharged" in outcome.metadata["summary"].value
    context = dg.build_asset_check_context()
    with context.op_execution_context:
        disclosure = synthetic_table_discloses_no_source_values(
            context, synthetic_table=dataclasses.replace(synthetic, frame=bad),
            profiled_dataset=_output(result, "profiled_dataset"), source_sample=_output(result, "source_sample"),
        )
    assert not disclosure.passed and disclosure.severity == dg.AssetCheckSeverity.ERROR
    assert disclosure.metadata["identifier_values"].value == {"patient_id": 1}
    assert disclosure.metadata["beyond_coded_range"].value == {"age": 1}
    assert str(source[1].loc[0, "patient_id"]) not in str(disclosure.metadata)  # counts, never the value


def test_a_missing_rate_off_only_warns_and_does_not_block(run):
    result = run[0]
    synthetic = _output(result, "synthetic_table")
    outcome = _check(run, dataclasses.replace(synthetic, frame=synthetic.frame.assign(weight=70.0)))
    assert not outcome.passed and outcome.severity == dg.AssetCheckSeverity.WARN
    assert outcome.metadata["failed_critical"].value == 0 and outcome.metadata["failed_warnings"].value == 1


def test_the_best_attempt_keeps_the_types(run):
    result, _, resources, instance = run
    chosen = dg.materialize([best_synthetic_table], instance=instance, resources=resources,
                            run_config={"ops": {"best_synthetic_table": {"config": {"chain": result.run_id}}}})
    frame = chosen.output_for_node("best_synthetic_table")
    assert pd.api.types.is_datetime64_any_dtype(frame["discharged"].dtype)  # not text read back from a CSV
    pd.testing.assert_frame_equal(frame, _output(result, "synthetic_table").frame)
