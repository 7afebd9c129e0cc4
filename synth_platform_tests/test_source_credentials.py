"""The source database password never reaches Dagster: not the event log, run config, tags, metadata, compute logs,
error messages, nor the audit table. Real runs on a real Dagster instance against the real PostgreSQL."""

import urllib.parse
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from synth_platform.assets import source_sample
from synth_platform.resources import PlatformStorage, SourceDatabase
from synth_platform.sampling.audit import read_records

PASSWORD = "pw@Hosp#2026-x9"  # trust auth ignores it; its URL-escaped form is searched for too
FORMS = (PASSWORD, urllib.parse.quote(PASSWORD, safe=""), urllib.parse.quote_plus(PASSWORD))


def _everything_dagster_stored(instance: dg.DagsterInstance, home: Path) -> str:
    """Every event of every run, the runs themselves (config, tags), and every file under the instance's home
    (event-log and run databases, compute logs), as one string."""
    parts = []
    for run in instance.get_runs():
        parts.append(dg.serialize_value(run))
        parts.extend(dg.serialize_value(event) for event in instance.all_logs(run.run_id))
    for path in home.rglob("*"):
        if path.is_file():
            parts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


@pytest.fixture()
def patients_database(pg_database, adult_small):
    engine = sa.create_engine(pg_database)
    adult_small.to_sql("patients", engine, index=False)
    engine.dispose()
    return pg_database


@pytest.mark.parametrize("password_in", ["url", "separate variable"])
def test_the_password_never_reaches_the_event_log_metadata_or_audit(patients_database, tmp_path, monkeypatch, password_in):
    url_with_password = sa.make_url(patients_database).set(password=PASSWORD).render_as_string(hide_password=False)
    if password_in == "url":
        monkeypatch.setenv("SYNTH_SOURCE_URL", url_with_password)
        database = SourceDatabase(url=dg.EnvVar("SYNTH_SOURCE_URL"))
    else:
        monkeypatch.setenv("SYNTH_SOURCE_URL", patients_database)
        monkeypatch.setenv("SYNTH_SOURCE_PASSWORD", PASSWORD)
        database = SourceDatabase(url=dg.EnvVar("SYNTH_SOURCE_URL"), password=dg.EnvVar("SYNTH_SOURCE_PASSWORD"))

    monkeypatch.setenv("SYNTH_TEST_RACE", "Other")
    home = tmp_path / "dagster_home"
    home.mkdir()
    storage = PlatformStorage(root=str(tmp_path / "platform"))
    resources = {"source_database": database, "platform_storage": storage}
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        ok = dg.materialize(
            [source_sample], instance=instance, resources=resources,
            run_config={"ops": {"source_sample": {"config": {"table": "patients", "max_rows": 100, "sensitive_columns": ["race"],
                                                              "filters": [{"column": "race", "op": "!=", "value_env": "SYNTH_TEST_RACE"}]}}}},
        )
        refused = dg.materialize(
            [source_sample], instance=instance, resources=resources, raise_on_error=False,
            run_config={"ops": {"source_sample": {"config": {"table": "patients", "columns": ["age", "password"]}}}},
        )
        broken_storage = PlatformStorage(root=str(tmp_path / "platform2"))
        failed = dg.materialize(  # a connection that fails: the driver's error text goes into the event log
            [source_sample], instance=instance, raise_on_error=False,
            resources={
                "source_database": SourceDatabase(url=sa.make_url(url_with_password).set(port=1).render_as_string(hide_password=False)),
                "platform_storage": broken_storage,
            },
            run_config={"ops": {"source_sample": {"config": {"table": "patients"}}}},
        )
        assert ok.success and not refused.success and not failed.success
        failure = refused.get_step_failure_events()[0].event_specific_data.error.to_string()
        assert "do not exist" in failure
        assert "Cannot connect" in failed.get_step_failure_events()[0].event_specific_data.error.to_string()
        metadata = ok.asset_materializations_for_node("source_sample")[0].metadata
        assert metadata["audit_record"].data["outcome"] == "ok" and metadata["rows_returned"].value == 100
        stored = _everything_dagster_stored(instance, home)

    assert "patients" in stored and "Cannot connect" in stored  # the scan does see what the runs wrote
    audit_rows = str(read_records(storage.audit_database_url())) + str(read_records(broken_storage.audit_database_url()))
    assert "refused" in audit_rows and "failed" in audit_rows
    for form in FORMS:
        assert form not in stored, f"the password ({form!r}) leaked into Dagster's storage"
        assert form not in audit_rows, f"the password ({form!r}) leaked into the audit table"
