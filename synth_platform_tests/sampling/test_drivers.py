"""Database URLs without a driver (`postgresql://`, `postgres://`) get the installed one (psycopg2): SQLAlchemy 2.1
would load psycopg 3, which the lock does not install. Explicit drivers that are not installed are refused clearly."""

import pytest
import sqlalchemy as sa

from synth_platform.resources import PlatformStorage
from synth_platform.sampling import audit
from synth_platform.sampling.drivers import installed_postgresql_drivers, with_installed_driver
from synth_platform.sampling.source import SampleRequest, SourceError, read_sample

from .conftest import PG_PASSWORD


def test_psycopg2_is_the_installed_postgresql_driver():
    assert installed_postgresql_drivers()[0] == "psycopg2"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://reader@db.example/emr", "postgresql+psycopg2://reader@db.example/emr"),
        ("postgres://reader@db.example/emr", "postgresql+psycopg2://reader@db.example/emr"),
        ("postgres+psycopg2://reader@db.example/emr", "postgresql+psycopg2://reader@db.example/emr"),
        # only the scheme changes: an encoded password, a query, several hosts stay exactly as written
        ("postgresql://reader:pa%40ss%2Fword@127.0.0.1:5433/emr?sslmode=require&application_name=x",
         "postgresql+psycopg2://reader:pa%40ss%2Fword@127.0.0.1:5433/emr?sslmode=require&application_name=x"),
        ("postgres://u@/db?host=/var/run/postgresql", "postgresql+psycopg2://u@/db?host=/var/run/postgresql"),
        ("postgresql+psycopg2://reader@db/emr", "postgresql+psycopg2://reader@db/emr"),  # explicit and installed: kept
        ("sqlite:///tmp/x.sqlite", "sqlite:///tmp/x.sqlite"),
        ("sqlite://", "sqlite://"),
        ("not a url", "not a url"),  # left for the caller's own error
    ],
)
def test_driverless_postgresql_urls_get_the_installed_driver(url, expected):
    assert with_installed_driver(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://reader:hunter2@db/emr", r"driver 'psycopg', which is not installed\. Installed: postgresql\+psycopg2://"),
        ("postgresql+pg8000://reader:hunter2@db/emr", r"driver 'pg8000', which is not installed\. Installed: postgresql\+psycopg2://"),
        ("postgresql+asyncpg://reader:hunter2@db/emr", r"asynchronous driver 'asyncpg'.*postgresql\+psycopg2://"),
        ("mysql+pymysql://reader:hunter2@db/emr", r"driver module 'pymysql' for the URL scheme 'mysql\+pymysql://' is not installed"),
        ("nosuchdb://reader:hunter2@db/emr", r"scheme 'nosuchdb://' is not one SQLAlchemy knows"),
    ],
)
def test_a_driver_that_is_not_installed_is_refused_naming_the_installed_one(url, message):
    with pytest.raises(SourceError, match=message) as refused:
        with_installed_driver(url)
    assert "hunter2" not in str(refused.value)


def _as(url: str, scheme: str) -> str:
    """`url` (a psycopg2 URL of the local test database) written with another scheme."""
    return scheme + "://" + url.split("://", 1)[1]


def test_driverless_urls_read_from_the_local_postgresql(pg_database, adult_small, audit_url):
    engine = sa.create_engine(pg_database)
    adult_small.to_sql("patients", engine, index=False)
    engine.dispose()
    request = SampleRequest(table="patients", max_rows=100, seed=4)
    expected = read_sample(pg_database, request, audit_url=audit_url)
    with_password = sa.make_url(pg_database).set(password=PG_PASSWORD).render_as_string(hide_password=False)
    for scheme in ("postgresql", "postgres"):
        url = _as(with_password, scheme)
        # the audit store may be written without a driver too: it gets the same mapping
        audit_in_pg = _as(pg_database, scheme)
        sample = read_sample(url, request, audit_url=audit_in_pg)
        assert sample.rows_returned == 100 and sample.training.equals(expected.training)
        assert sample.source.startswith(f"{scheme}://") and PG_PASSWORD not in sample.source
    records = audit.read_records(pg_database)
    assert [r["outcome"] for r in records] == ["ok", "ok"] and all(PG_PASSWORD not in str(r) for r in records)


def test_a_source_url_naming_a_missing_driver_is_refused_and_audited(pg_database, audit_url):
    url = _as(pg_database, "postgresql+psycopg")
    with pytest.raises(SourceError, match=r"'psycopg', which is not installed\. Installed: postgresql\+psycopg2://"):
        read_sample(url, SampleRequest(table="patients"), audit_url=audit_url)
    (record,) = audit.read_records(audit_url)
    assert record["outcome"] == "refused" and "not installed" in record["error"]


def test_platform_store_urls_get_the_installed_driver(tmp_path):
    storage = PlatformStorage(
        root=str(tmp_path), optuna_storage="postgres://optuna@127.0.0.1/studies",
        audit_url="postgresql://auditor:s%40fe@127.0.0.1:5432/audit?sslmode=disable",
        tuning_memory_url="postgresql+psycopg2://memory@127.0.0.1/memory",
    )
    assert storage.optuna_url() == "postgresql+psycopg2://optuna@127.0.0.1/studies"
    assert storage.audit_database_url() == "postgresql+psycopg2://auditor:s%40fe@127.0.0.1:5432/audit?sslmode=disable"
    assert storage.tuning_memory_database_url() == "postgresql+psycopg2://memory@127.0.0.1/memory"
    defaults = PlatformStorage(root=str(tmp_path))
    assert defaults.optuna_url() == f"sqlite:///{tmp_path / 'optuna.sqlite3'}"
    assert defaults.audit_database_url() == f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    with pytest.raises(SourceError, match=r"postgresql\+psycopg2://"):
        PlatformStorage(root=str(tmp_path), optuna_storage="postgresql+psycopg://o@127.0.0.1/s").optuna_url()
