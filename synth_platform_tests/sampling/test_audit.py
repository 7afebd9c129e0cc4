import pytest
import sqlalchemy as sa

from synth_platform.sampling.audit import AUDIT_TABLE, AuditRecord, ddl_path, read_records, write_record

EXPECTED_COLUMNS = {
    "id", "occurred_at", "actor", "run_id", "source", "table_name", "columns", "filters", "sample_fraction",
    "max_rows", "seed", "stratify_by", "rows_returned", "epsilon_spent", "query_hash", "query_shape", "outcome", "error",
    "read_as",
}


def _record(**more):
    fields = dict(
        actor="alice", source="postgresql+psycopg2://bob:***@db/h", table_name="ward.patients", outcome="ok",
        run_id="r1", columns=["age", "sex"], filters=[{"column": "sex", "op": "=", "value": "<redacted>"}],
        sample_fraction=0.5, max_rows=100, seed=3, stratify_by="sex", rows_returned=100, query_hash="ab" * 32,
        query_shape="SELECT ... LIMIT ?",
    )
    fields.update(more)
    return AuditRecord(**fields)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_ddl_files_define_the_same_columns(dialect):
    text = ddl_path(dialect).read_text()
    assert f"CREATE TABLE IF NOT EXISTS {AUDIT_TABLE}" in text
    for column in EXPECTED_COLUMNS:
        assert f"\n    {column} " in text, column


def test_an_audit_table_of_an_earlier_version_gains_the_read_as_column(tmp_path):
    """Deployments keep their audit table across upgrades: the role column is added, earlier records kept."""
    audit_url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    engine = sa.create_engine(audit_url)
    old_ddl = ddl_path("sqlite").read_text().replace("error          TEXT,", "error          TEXT").split("    read_as")[0] + ");"
    with engine.begin() as conn:
        conn.exec_driver_sql(old_ddl.split("CREATE TABLE", 1)[0] + "CREATE TABLE" + old_ddl.split("CREATE TABLE", 1)[1])
        conn.exec_driver_sql(f"INSERT INTO {AUDIT_TABLE} (actor, source, table_name, columns, filters, outcome) "
                             "VALUES ('old', 'sqlite://', 't', '[]', '[]', 'ok')")
    engine.dispose()
    new = write_record(audit_url, _record(read_as="reader"))
    old, written = read_records(audit_url)
    assert old["actor"] == "old" and old["read_as"] is None
    assert written["id"] == new and written["read_as"] == "reader"


def _check_round_trip(audit_url):
    first = write_record(audit_url, _record())
    second = write_record(audit_url, _record(outcome="refused", rows_returned=None, error="Columns ['x'] do not exist"))
    assert second > first
    engine = sa.create_engine(audit_url)
    assert {column["name"] for column in sa.inspect(engine).get_columns(AUDIT_TABLE)} == EXPECTED_COLUMNS
    engine.dispose()
    ok, refused = read_records(audit_url)
    assert ok["id"] == first and ok["actor"] == "alice" and ok["run_id"] == "r1" and ok["columns"] == ["age", "sex"]
    assert ok["filters"] == [{"column": "sex", "op": "=", "value": "<redacted>"}]
    assert (ok["sample_fraction"], ok["max_rows"], ok["seed"], ok["rows_returned"]) == (0.5, 100, 3, 100)
    assert ok["epsilon_spent"] is None and ok["occurred_at"] is not None and ok["error"] is None
    assert refused["outcome"] == "refused" and refused["error"] == "Columns ['x'] do not exist"


def test_records_round_trip_in_sqlite(tmp_path):
    _check_round_trip(f"sqlite:///{tmp_path / 'audit.sqlite3'}")


def test_records_round_trip_in_postgresql(pg_database):
    _check_round_trip(pg_database)


def test_passwords_of_the_given_urls_never_reach_a_record(tmp_path):
    audit_url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    source = "postgresql+psycopg2://bob:s3cret@db/h"
    write_record(audit_url, _record(error=f"could not connect to {source}: password s3cret rejected"), secrets=[source])
    (record,) = read_records(audit_url)
    assert "s3cret" not in str(record)


def test_unknown_outcome_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="outcome must be one of"):
        write_record(f"sqlite:///{tmp_path / 'audit.sqlite3'}", _record(outcome="maybe"))
