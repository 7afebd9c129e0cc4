"""Sources for the sampling tests: the embedded SQLite and a PostgreSQL database holding a copy of UCI Adult."""

import io

import pytest
import sqlalchemy as sa

from synth_platform.sampling.source import ensure_embedded_source

PG_PASSWORD = "s3cret"  # trust auth ignores it; it must never show up in an audit record, a message or metadata


@pytest.fixture(scope="session")
def embedded_url(tmp_path_factory):
    return ensure_embedded_source(tmp_path_factory.mktemp("src") / "embedded.sqlite")


@pytest.fixture()
def audit_url(tmp_path):
    return f"sqlite:///{tmp_path / 'audit.sqlite3'}"


@pytest.fixture()
def pg_adult(pg_database, adult):
    """The full Adult table (48,842 rows) in a fresh PostgreSQL database, as schema ward, table patients; the URL
    carries a password-like component."""
    engine = sa.create_engine(pg_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA ward")
    adult.head(0).to_sql("patients", engine, schema="ward", index=False)
    buffer = io.StringIO()
    adult.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.copy_expert("COPY ward.patients FROM STDIN WITH (FORMAT csv)", buffer)
        raw.commit()
    finally:
        raw.close()
    engine.dispose()
    return sa.make_url(pg_database).set(password=PG_PASSWORD).render_as_string(hide_password=False)
