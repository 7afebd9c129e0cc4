"""The sampler's security properties on a hospital-like PostgreSQL database (and the embedded SQLite): transport
security, identifier hygiene, primary-key sampling, query-level noise, and secrets kept out of every record."""

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from scipy import stats

from synth_platform.sampling import audit
from synth_platform.sampling.noise import NoiseBound, NoisePlan, apply_noise
from synth_platform.sampling.source import (
    Filter,
    SampleRequest,
    SourceError,
    SourceReadFailed,
    check_transport_security,
    read_sample,
)

from .conftest import CANARY, PG_PASSWORD

# ------------------------------------------------------------------------------------------ transport security


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("sqlite:////tmp/x.sqlite", True),
        ("postgresql+psycopg2://u:pw@127.0.0.1:5432/db", True),
        ("postgresql+psycopg2://u:pw@localhost/db", True),
        ("postgresql+psycopg2://u:pw@[::1]:5432/db", True),
        ("postgresql+psycopg2://u:pw@/db", True),  # Unix socket
        ("postgresql+psycopg2://u:pw@/db?host=/var/run/postgresql", True),
        ("postgresql+psycopg2://u:pw@db.hospital.example/db", False),
        ("postgresql+psycopg2://u:pw@10.0.0.7/db?sslmode=prefer", False),
        ("postgresql+psycopg2://u:pw@10.0.0.7/db?sslmode=disable", False),
        ("postgresql+psycopg2://u:pw@10.0.0.7/db?sslmode=require", True),
        ("postgresql+psycopg2://u:pw@db.hospital.example/db?sslmode=verify-full", True),
        ("postgresql+psycopg2://u:pw@/db?host=db.hospital.example", False),
        ("postgresql+psycopg2://u:pw@/db?host=127.0.0.1,db.hospital.example", False),
        ("mysql+pymysql://u:pw@db.hospital.example/db", False),
        ("mysql+pymysql://u:pw@db.hospital.example/db?ssl_ca=/etc/ssl/ca.pem", True),
        ("mysql+mysqldb://u:pw@db.hospital.example/db?ssl_mode=VERIFY_IDENTITY", True),
        ("mssql+pyodbc://u:pw@db.hospital.example/db", False),
    ],
)
def test_plain_text_connections_to_other_machines_are_refused(url, allowed, monkeypatch):
    monkeypatch.delenv("PGSSLMODE", raising=False)
    if allowed:
        check_transport_security(url)
    else:
        with pytest.raises(SourceError, match="not local") as refused:
            check_transport_security(url)
        assert "pw" not in str(refused.value).replace("password", "")
        check_transport_security(url, require_tls=False)  # an explicit opt-out is honoured


def test_pgsslmode_from_the_environment_counts(monkeypatch):
    url = "postgresql+psycopg2://u:pw@db.hospital.example/db"
    monkeypatch.setenv("PGSSLMODE", "verify-full")
    check_transport_security(url)
    monkeypatch.setenv("PGSSLMODE", "allow")
    with pytest.raises(SourceError, match="sslmode=allow"):
        check_transport_security(url)


def test_a_refused_plain_text_read_is_audited_before_any_connection(audit_url, monkeypatch):
    monkeypatch.delenv("PGSSLMODE", raising=False)
    url = f"postgresql+psycopg2://reader:{PG_PASSWORD}@db.hospital.example:5432/emr"
    connects = []

    def record_connect(dbapi_connection, connection_record):
        connects.append(dbapi_connection)

    sa.event.listen(sa.engine.Engine, "connect", record_connect)
    try:
        with pytest.raises(SourceError, match="sslmode=verify-full") as refused:
            read_sample(url, SampleRequest(table="hospital.patients"), audit_url=audit_url)
    finally:
        sa.event.remove(sa.engine.Engine, "connect", record_connect)
    # the audit database only (intent, then outcome): the source was never contacted
    assert {type(c).__module__ for c in connects} == {"sqlite3"}
    (record,) = audit.read_records(audit_url)
    assert record["outcome"] == "refused" and "not local" in record["error"]
    assert PG_PASSWORD not in str(record) and PG_PASSWORD not in str(refused.value)


def test_sslmode_require_is_enforced_by_the_driver_not_downgraded(pg_hospital, audit_url):
    """The local server runs without TLS: a URL that requires TLS must fail to connect rather than fall back."""
    url, _ = pg_hospital
    tls_url = sa.make_url(url).update_query_dict({"sslmode": "require"}).render_as_string(hide_password=False)
    with pytest.raises(SourceReadFailed, match="(?i)ssl") as failed:
        read_sample(tls_url, SampleRequest(table="hospital.patients", max_rows=100), audit_url=audit_url)
    assert PG_PASSWORD not in str(failed.value)
    (record,) = audit.read_records(audit_url)
    assert record["outcome"] == "failed" and PG_PASSWORD not in str(record)


# ------------------------------------------------------------------------------------------ identifier hygiene


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (SampleRequest(table="pg_catalog.pg_authid"), "system catalog"),
        (SampleRequest(table="information_schema.tables"), "system catalog"),
        (SampleRequest(table="pg_shadow"), "system catalog"),
        (SampleRequest(table="sqlite_master"), "system catalog"),
        (SampleRequest(table="adult\x00"), "control character U\\+0000"),
        (SampleRequest(table="adult", columns=("age\u202e",)), "control character U\\+202E"),
        (SampleRequest(table="a" * 300), "at most 255"),
        (SampleRequest(table="adult", filters=(Filter("workclass", "=", "x" * 10_001),)), "at most 10000"),
        (SampleRequest(table="adult", filters=(Filter("workclass", "=", "Private\x00"),)), "NUL character"),
        (SampleRequest(table="adult", filters=(Filter("workclass", "in", ["a"] * 10_001),)), "at most 10000 are accepted"),
        (SampleRequest(table="adult", filters=(Filter("workclass", ["="], "a"),)), "is not one of"),
        (SampleRequest(table="adult", stratify_by=""), "non-empty name"),
    ],
)
def test_malformed_identifiers_and_values_are_refused_before_reading(embedded_url, audit_url, request_, message):
    with pytest.raises(SourceError, match=message):
        read_sample(embedded_url, request_, audit_url=audit_url)
    (record,) = audit.read_records(audit_url)
    assert record["outcome"] == "refused"


# ------------------------------------------------------------------------------------- the hospital database


def test_hospital_sampling_by_limit_fraction_filter_and_stratum(pg_hospital, audit_url):
    url, tables = pg_hospital
    patients = tables["patients"]

    def read(**fields):
        return read_sample(url, SampleRequest(table="hospital.patients", **fields), audit_url=audit_url)

    limited = read(max_rows=2_000, seed=11)
    rows = pd.concat([limited.training, limited.holdout])
    assert len(rows) == 2_000 and rows["patient_id"].is_unique
    assert set(rows["patient_id"]) <= set(patients["patient_id"])
    assert abs(rows["age"].mean() - patients["age"].mean()) < 4 * patients["age"].std() / np.sqrt(2_000)

    fraction = read(sample_fraction=0.05, seed=11)
    expected = 0.05 * len(patients)
    assert abs(fraction.rows_returned - expected) < 5 * np.sqrt(expected)  # Bernoulli(5%) of 48,842 rows

    filtered = read(filters=(Filter("age", ">=", 65), Filter("race", "in", ["Black", "Asian-Pac-Islander"])), max_rows=500)
    truth = patients[(patients["age"] >= 65) & patients["race"].isin(["Black", "Asian-Pac-Islander"])]
    got = pd.concat([filtered.training, filtered.holdout])
    assert filtered.rows_matched == len(truth) and len(got) == min(500, len(truth))
    assert set(got["patient_id"]) <= set(truth["patient_id"])

    strat = read(stratify_by="income", max_rows=1_000, seed=5)
    shares = pd.concat([strat.training, strat.holdout])["income"].value_counts()
    for value, count in patients["income"].value_counts().items():
        assert abs(shares[value] - 1_000 * count / len(patients)) <= 1

    admissions = read_sample(url, SampleRequest(table="hospital.admissions", max_rows=300, seed=2), audit_url=audit_url)
    got = pd.concat([admissions.training, admissions.holdout])
    assert (pd.to_datetime(got["discharged_on"]) >= pd.to_datetime(got["admitted_on"])).all()
    assert [r["outcome"] for r in audit.read_records(audit_url)] == ["ok"] * 5


def test_primary_key_sampling_survives_a_physical_rewrite_ctid_sampling_does_not(pg_hospital, audit_url):
    """Tables with a primary key are sampled by md5(key | seed): the same rows come back after the table is
    rewritten (UPDATE / VACUUM FULL move rows). A table without one is ordered by ctid, which such a rewrite changes."""
    url, _ = pg_hospital
    keyed = SampleRequest(table="hospital.patients", columns=("patient_id", "age"), max_rows=300, seed=9)
    unkeyed = SampleRequest(table="hospital.billing_accounts", max_rows=300, seed=9)
    before_keyed = read_sample(url, keyed, audit_url=audit_url)
    before_unkeyed = read_sample(url, unkeyed, audit_url=audit_url)
    assert "concat_ws" in before_keyed.query_shape and "ctid" in before_unkeyed.query_shape

    engine = sa.create_engine(url)  # the test's own connection, not the sampler's: rewrite both tables physically
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE hospital.patients SET age = age WHERE mod(patient_id, 2) = 0")
        conn.exec_driver_sql("UPDATE hospital.billing_accounts SET age = age WHERE mod(seniority, 2) = 0")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM FULL hospital.patients")
        conn.exec_driver_sql("VACUUM FULL hospital.billing_accounts")
    engine.dispose()

    after_keyed = read_sample(url, keyed, audit_url=audit_url)
    pd.testing.assert_frame_equal(before_keyed.training, after_keyed.training)
    after_unkeyed = read_sample(url, unkeyed, audit_url=audit_url)
    assert not before_unkeyed.training.equals(after_unkeyed.training)


def test_no_read_returns_another_tables_values(pg_hospital, audit_url):
    url, _ = pg_hospital
    for table in ("hospital.patients", "hospital.admissions", "hospital.billing_accounts"):
        sample = read_sample(url, SampleRequest(table=table, max_rows=1_000), audit_url=audit_url)
        frame = pd.concat([sample.training, sample.holdout])
        assert not frame.astype(str).apply(lambda c: c.str.contains(CANARY, regex=False)).any().any()


# ---------------------------------------------------------------------------------------- query-level noise


def test_laplace_scale_follows_the_bound_the_budget_and_the_column_count():
    one = NoisePlan(1.0, (NoiseBound("age", 0, 100),))
    two = NoisePlan(1.0, (NoiseBound("age", 0, 100), NoiseBound("charge", 0, 50)))
    assert one.scale(one.bounds[0]) == 100.0
    assert NoisePlan(2.0, one.bounds).scale(one.bounds[0]) == 50.0
    assert [two.scale(b) for b in two.bounds] == [200.0, 100.0]  # epsilon split evenly: 0.5 per column
    assert [d["epsilon"] for d in two.describe()] == [0.5, 0.5]


def test_added_noise_is_laplace_with_the_planned_scale():
    """With a bound far wider than the noise, clipping never binds and the added noise must be Laplace(0, b)."""
    plan = NoisePlan(1_000.0, (NoiseBound("x", -5_000.0, 5_000.0),))  # b = 10
    frame = pd.DataFrame({"x": np.zeros(20_000)})
    noise = apply_noise(frame, plan, rng=np.random.default_rng(0))["x"].to_numpy()
    assert stats.kstest(noise, stats.laplace(scale=10.0).cdf).pvalue > 0.01
    assert stats.kstest(noise, stats.laplace(scale=12.0).cdf).pvalue < 1e-6  # the test can tell a wrong scale


def test_noised_values_stay_in_bounds_keep_missing_values_and_integer_types():
    frame = pd.DataFrame({"age": [17, 40, 90, 120], "charge": [10.5, np.nan, 99.0, -3.0], "ward": list("abcd")})
    plan = NoisePlan(1.0, (NoiseBound("age", 17, 90), NoiseBound("charge", 0.0, 100.0)))
    out = apply_noise(frame, plan, rng=np.random.default_rng(1))
    assert out["age"].dtype == np.int64 and out["age"].between(17, 90).all()
    assert out["charge"].isna().tolist() == [False, True, False, False]
    assert out["charge"].dropna().between(0.0, 100.0).all()
    assert out["ward"].tolist() == list("abcd") and frame["age"].tolist() == [17, 40, 90, 120]  # input untouched


def test_noised_read_is_audited_with_its_epsilon_and_noise_is_fresh_each_read(pg_hospital, audit_url):
    url, tables = pg_hospital
    request = SampleRequest(
        table="hospital.admissions", columns=("admission_id", "ward", "total_charge"), max_rows=2_000, seed=4,
        noise_epsilon=2.0, noise_bounds=(NoiseBound("total_charge", 0.0, 20_000.0),),
    )
    first, second = read_sample(url, request, audit_url=audit_url), read_sample(url, request, audit_url=audit_url)
    a, b = (pd.concat([s.training, s.holdout]).sort_values("admission_id").reset_index(drop=True) for s in (first, second))
    assert a["admission_id"].tolist() == b["admission_id"].tolist()  # the seed fixes which rows …
    inside = a["total_charge"].between(0, 20_000, inclusive="neither") & b["total_charge"].between(0, 20_000, inclusive="neither")
    assert inside.sum() > 500 and (a["total_charge"] != b["total_charge"])[inside].all()  # … but not the noise
    truth = tables["admissions"].set_index("admission_id").loc[a["admission_id"], "total_charge"].to_numpy(dtype=float)
    deviation = np.abs(a["total_charge"].to_numpy() - truth)
    assert deviation.mean() > 1_000  # b = 10,000: noise was really added
    assert first.epsilon_spent == 2.0 and first.noise[0]["laplace_scale"] == 10_000.0
    records = audit.read_records(audit_url)
    assert [r["epsilon_spent"] for r in records] == [2.0, 2.0]  # two reads spend the budget twice


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"noise_epsilon": 1.0}, "without bounds"),
        ({"noise_bounds": (NoiseBound("age", 0, 100),)}, "epsilon must be a positive number"),
        ({"noise_epsilon": 0.0, "noise_bounds": (NoiseBound("age", 0, 100),)}, "epsilon must be a positive number"),
        ({"noise_epsilon": 1.0, "noise_bounds": (NoiseBound("age", 100, 0),)}, "lower < upper"),
        ({"noise_epsilon": 1.0, "noise_bounds": (NoiseBound("workclass", 0, 1),)}, "is not numeric"),
        ({"noise_epsilon": 1.0, "noise_bounds": (NoiseBound("salary", 0, 1),)}, r"Noise columns \['salary'\] do not exist"),
        ({"noise_epsilon": 1.0, "noise_bounds": (NoiseBound("age", 0, 100),), "columns": ("sex",)}, "not among the columns read"),
        ({"noise_epsilon": 1.0, "noise_bounds": (NoiseBound("age", 0, 100),), "filters": (Filter("age", ">", 30),)}, "cannot be filtered on"),
        ({"noise_epsilon": 1.0, "noise_bounds": (NoiseBound("age", 0, 100),), "stratify_by": "age"}, "cannot be the stratify column"),
    ],
)
def test_bad_noise_requests_are_refused(embedded_url, audit_url, fields, message):
    with pytest.raises(SourceError, match=message):
        read_sample(embedded_url, SampleRequest(table="adult", **fields), audit_url=audit_url)
    (record,) = audit.read_records(audit_url)
    assert record["outcome"] == "refused" and record["epsilon_spent"] is None


def test_noised_columns_count_as_sensitive(embedded_url, audit_url):
    request = SampleRequest(
        table="adult", max_rows=200, filters=(Filter("workclass", "=", "Private"),),
        noise_epsilon=1.0, noise_bounds=(NoiseBound("hours_per_week", 1, 99),),
    )
    assert request.all_sensitive_columns == {"hours_per_week"}
    sample = read_sample(embedded_url, request, audit_url=audit_url)
    assert sample.training["hours_per_week"].between(1, 99).all()
    assert sample.training["hours_per_week"].dtype == np.int64
