"""The documented PostgreSQL variant of dagster.yaml, against the PostgreSQL server on this machine."""

import shutil

import dagster as dg
import sqlalchemy as sa

from synth_platform.assets import ALL_ASSETS
from synth_platform.definitions import defs
from synth_platform_tests.conftest import REPO


def test_postgres_instance_stores_runs_and_materializations(tmp_path, pg_database, monkeypatch):
    url = sa.make_url(pg_database)
    monkeypatch.setenv("DAGSTER_PG_HOST", url.host)
    monkeypatch.setenv("DAGSTER_PG_USER", url.username)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", url.database)
    shutil.copy(REPO / "dagster.postgres.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = dg.materialize(
            ALL_ASSETS[:2], instance=instance, resources=defs.resources,
            run_config={"ops": {"source_sample": {"config": {"max_rows": 300}}}},
        )
        assert result.success
        assert instance.get_latest_materialization_event(dg.AssetKey("profiled_dataset")).run_id == result.run_id
    engine = sa.create_engine(pg_database)
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT run_id, status FROM runs").all()
    engine.dispose()
    assert stored == [(result.run_id, "SUCCESS")]
