"""Sources for the sampling tests: the embedded SQLite and a PostgreSQL database holding a copy of UCI Adult."""

import io

import numpy as np
import pandas as pd
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
    copy_frame(engine, "ward.patients", adult)
    engine.dispose()
    return sa.make_url(pg_database).set(password=PG_PASSWORD).render_as_string(hide_password=False)


# --------------------------------------------------------------------------------- a hospital-like source database

CANARY = "canary-credential-7f3e9a"  # a value only the staff table holds: no read of another table may return it
HOSPITAL_DDL = """
CREATE SCHEMA hospital;
CREATE TABLE hospital.patients (
    patient_id     BIGINT PRIMARY KEY,
    mrn            TEXT NOT NULL UNIQUE,          -- medical record number: a direct identifier
    age            INTEGER NOT NULL,
    sex            TEXT NOT NULL,
    race           TEXT NOT NULL,
    marital_status TEXT NOT NULL,
    education      TEXT NOT NULL,
    occupation     TEXT,
    native_country TEXT,
    hours_per_week INTEGER NOT NULL,
    income         TEXT NOT NULL
);
CREATE TABLE hospital.admissions (
    admission_id   BIGINT PRIMARY KEY,
    patient_id     BIGINT NOT NULL REFERENCES hospital.patients (patient_id),
    ward           TEXT NOT NULL,
    admitted_on    DATE NOT NULL,
    discharged_on  DATE NOT NULL CHECK (discharged_on >= admitted_on),
    total_charge   NUMERIC(12, 2) NOT NULL
);
-- No primary key: sampling orders such a table by its physical row id (ctid).
CREATE TABLE hospital.billing_accounts (
    status TEXT, seniority INTEGER, home TEXT, time INTEGER, age INTEGER, marital TEXT, records TEXT, job TEXT,
    expenses INTEGER, income DOUBLE PRECISION, assets DOUBLE PRECISION, debt DOUBLE PRECISION, amount INTEGER,
    price INTEGER
);
CREATE TABLE hospital.staff_credentials (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL);
"""
HOSPITAL_WARDS = ("cardiology", "oncology", "maternity", "orthopaedics", "general medicine")


def copy_frame(engine: sa.Engine, table: str, frame: pd.DataFrame) -> None:
    """Bulk-load `frame` into an existing PostgreSQL table with COPY."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.copy_expert(f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv)", buffer)
        raw.commit()
    finally:
        raw.close()


def hospital_tables(adult: pd.DataFrame, credit: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The hospital's tables, built deterministically from UCI Adult (patients, admissions) and credit_data
    (billing accounts, which have no primary key)."""
    rng = np.random.default_rng(2026)
    n = len(adult)
    ids = rng.permutation(np.arange(100_000, 100_000 + n))  # ids not in table order
    patients = adult[
        ["age", "sex", "race", "marital_status", "education", "occupation", "native_country", "hours_per_week", "income"]
    ].copy()
    patients.insert(0, "mrn", [f"MRN{v:08d}" for v in rng.choice(10**8, size=n, replace=False)])
    patients.insert(0, "patient_id", ids)
    chosen = rng.choice(n, size=min(20_000, n // 2), replace=False)
    admitted = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, size=len(chosen)), unit="D")
    stay = rng.geometric(0.25, size=len(chosen)) - 1
    admissions = pd.DataFrame({
        "admission_id": np.arange(1, len(chosen) + 1),
        "patient_id": ids[chosen],
        "ward": rng.choice(HOSPITAL_WARDS, size=len(chosen)),
        "admitted_on": admitted.date,
        "discharged_on": (admitted + pd.to_timedelta(stay, unit="D")).date,
        "total_charge": np.round(rng.lognormal(8.0, 0.8, size=len(chosen)), 2),
    })
    billing = credit.rename(columns=str.lower)
    staff = pd.DataFrame({"username": ["admin", "dr_house"], "password_hash": [CANARY, CANARY + "-2"]})
    return {"patients": patients, "admissions": admissions, "billing_accounts": billing, "staff_credentials": staff}


def seed_hospital(url: str, adult: pd.DataFrame, credit: pd.DataFrame) -> dict[str, pd.DataFrame]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in HOSPITAL_DDL.split(";"):
                if statement.strip():
                    conn.exec_driver_sql(statement)
        tables = hospital_tables(adult, credit)
        for name, frame in tables.items():
            copy_frame(engine, f"hospital.{name}", frame)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    return tables


@pytest.fixture(scope="module")
def pg_hospital(pg_database_for_module, adult, credit):
    """A PostgreSQL database with schema `hospital` (patients, admissions, billing_accounts, staff_credentials),
    seeded from ../shared/datasets. Yields (URL with a password component, the seeded frames)."""
    tables = seed_hospital(pg_database_for_module, adult, credit)
    url = sa.make_url(pg_database_for_module).set(password=PG_PASSWORD).render_as_string(hide_password=False)
    yield url, tables
