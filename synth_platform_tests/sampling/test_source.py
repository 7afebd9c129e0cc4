import re
import sqlite3

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from synth_platform.sampling import audit
from synth_platform.sampling import source as source_module
from synth_platform.sampling.source import (
    EMBEDDED_TABLE,
    Filter,
    SampleRequest,
    SourceError,
    SourceReadFailed,
    build_queries,
    ensure_embedded_source,
    mask_url,
    proportional_quotas,
    read_only_connection,
    read_sample,
    reflect_table,
)

from .conftest import PG_PASSWORD, copy_frame

INJECTION = "x'; DROP TABLE adult; --"


def _row_count(url, table="adult", schema=None):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(sa.table(table, schema=schema))).scalar_one()
    finally:
        engine.dispose()


class _Statements:
    """Records every statement a SQLAlchemy engine sends to its driver (a listener, not a mock)."""

    def __init__(self):
        self.seen: list[str] = []

    def __enter__(self):
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        self.seen.append(statement)

    def data_queries(self, table):
        # reads are schema-qualified on PostgreSQL (the name resolved through the search_path): FROM public.big
        pattern = re.compile(rf"FROM (\w+\.)?{re.escape(table)}\b")
        return [s for s in self.seen if pattern.search(s) and "sqlite_master" not in s and "pg_catalog" not in s]


def test_embedded_source_is_built_once_from_the_bundled_adult_data(tmp_path, adult):
    path = tmp_path / "embedded.sqlite"
    url = ensure_embedded_source(path)
    assert url == f"sqlite:///{path}"
    with sqlite3.connect(path) as conn:
        assert conn.execute(f"SELECT count(*) FROM {EMBEDDED_TABLE}").fetchone()[0] == len(adult) == 48_842
    mtime = path.stat().st_mtime_ns
    ensure_embedded_source(path)
    assert path.stat().st_mtime_ns == mtime
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".embedded-")]


def test_split_is_seeded_disjoint_and_complete(embedded_url, audit_url):
    request = SampleRequest(table="adult", max_rows=1000, holdout_fraction=0.25, seed=7)
    first, again = read_sample(embedded_url, request, audit_url=audit_url), read_sample(embedded_url, request, audit_url=audit_url)
    assert (len(first.training), len(first.holdout)) == (750, 250)
    pd.testing.assert_frame_equal(first.training, again.training)
    pd.testing.assert_frame_equal(first.holdout, again.holdout)
    other = read_sample(embedded_url, SampleRequest(table="adult", max_rows=1000, holdout_fraction=0.25, seed=8), audit_url=audit_url)
    assert not first.training.equals(other.training)
    assert first.rows_in_table == 48_842
    assert first.fingerprint.startswith("adult-")


def test_holdout_rows_are_not_in_training(tmp_path, audit_url):
    frame = pd.DataFrame({"row": range(200), "value": [i % 7 for i in range(200)]})
    url = f"sqlite:///{tmp_path / 'numbers.sqlite'}"
    frame.to_sql("numbers", sa.create_engine(url), index=False)
    sample = read_sample(url, SampleRequest(table="numbers", seed=1), audit_url=audit_url)
    assert set(sample.training["row"]).isdisjoint(sample.holdout["row"])
    assert set(sample.training["row"]) | set(sample.holdout["row"]) == set(range(200))


def test_selected_columns_only(embedded_url, audit_url):
    sample = read_sample(embedded_url, SampleRequest(table="adult", columns=("age", "income"), max_rows=100), audit_url=audit_url)
    assert sample.columns == ["age", "income"]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (SampleRequest(table="patients"), r"Table 'patients' not found .* Available tables: \['adult'\]"),
        (SampleRequest(table="adult", columns=("age", "salary")), r"Columns \['salary'\] do not exist in table 'adult'"),
        (SampleRequest(table="adult", filters=(Filter("salary", ">", 3),)), r"Filter columns \['salary'\] do not exist"),
        (SampleRequest(table="adult", stratify_by="salary"), r"Stratify column \['salary'\] do not exist"),
        (SampleRequest(table="adult", sensitive_columns=("ssn",)), r"Sensitive columns \['ssn'\] do not exist"),
        (SampleRequest(table="adult; DROP TABLE adult"), r"not found .* Available tables: \['adult'\]"),
        (SampleRequest(table="adult", columns=("age FROM adult; --",)), "do not exist in table 'adult'"),
        (SampleRequest(table="adult", filters=(Filter("age", "like", 3),)), "Filter operator 'like' on 'age' is not one of"),
        (SampleRequest(table="adult", filters=(Filter("age", "in", 3),)), "needs a non-empty list"),
        (SampleRequest(table="adult", filters=(Filter("age", "between", [1]),)), r"needs a \[low, high\] pair"),
        (SampleRequest(table="adult", filters=(Filter("age", "is null", 3),)), "takes no value"),
        (SampleRequest(table="adult", filters=(Filter("age", "=", None),)), "needs one plain value"),
        (SampleRequest(table="adult", filters=(Filter("age", "=", INJECTION),)), r"Filter on 'age' \(\w+\) takes numbers"),
        (SampleRequest(table="adult", holdout_fraction=1.5), "holdout_fraction must lie strictly between 0 and 1"),
        (SampleRequest(table="adult", max_rows=5), "max_rows must be at least 20"),
        (SampleRequest(table="adult", max_rows=5000, row_cap=1000), "max_rows=5000 exceeds the row cap of 1000"),
        (SampleRequest(table="adult", row_cap=1000), "48842 rows of 'adult' match the request, more than the row cap"),
        (SampleRequest(table="adult", sample_fraction=1.5), r"sample_fraction must lie in \(0, 1\]"),
        (SampleRequest(table=""), "No table given"),
    ],
)
def test_bad_requests_are_refused_before_any_data_query_and_audited(embedded_url, audit_url, request_, message):
    with _Statements() as statements, pytest.raises(SourceError, match=message):
        read_sample(embedded_url, request_, audit_url=audit_url)
    if "row cap" not in message or "exceeds" in message:
        assert statements.data_queries("adult") == []  # only catalog look-ups ran, no data query
    (record,) = audit.read_records(audit_url)
    assert record["outcome"] == "refused" and record["rows_returned"] is None
    assert re.search(message, record["error"])
    assert _row_count(embedded_url) == 48_842


def test_an_injection_in_a_filter_value_is_just_a_value(embedded_url, audit_url):
    request = SampleRequest(table="adult", filters=(Filter("workclass", "=", INJECTION),))
    with pytest.raises(SourceError, match="has 0 rows matching the request"):
        read_sample(embedded_url, request, audit_url=audit_url)
    assert _row_count(embedded_url) == 48_842
    (record,) = audit.read_records(audit_url)
    assert record["filters"] == [{"column": "workclass", "op": "=", "value": INJECTION}]
    assert INJECTION not in record["query_shape"]


def test_filters_compile_to_bound_parameters(embedded_url):
    engine = sa.create_engine(embedded_url)
    table, _ = reflect_table(engine, "adult", embedded_url)
    request = SampleRequest(
        table="adult",
        filters=(
            Filter("workclass", "!=", INJECTION), Filter("age", "between", [30, 40]),
            Filter("sex", "in", ["Female"]), Filter("income", "not in", (">50K",)), Filter("occupation", "is not null"),
            Filter("hours_per_week", ">=", 20),
        ),
    )
    _, sample_query = build_queries(table, engine, request)
    query = sample_query(100, None)
    assert INJECTION not in query.shape and "Female" not in query.shape and "30" not in query.shape
    assert query.parameters["f0"] == INJECTION and query.parameters["f1_lo"] == 30 and query.parameters["f1_hi"] == 40
    assert query.parameters["f2"] == ["Female"] and query.parameters["f5"] == 20
    assert "adult.occupation IS NOT NULL" in query.shape and "LIMIT ?" in query.shape
    engine.dispose()


def test_filters_select_the_right_rows(embedded_url, audit_url, adult):
    filters = (Filter("age", "between", [30, 40]), Filter("sex", "in", ["Female"]), Filter("hours_per_week", ">", 40))
    sample = read_sample(embedded_url, SampleRequest(table="adult", filters=filters), audit_url=audit_url)
    frame = pd.concat([sample.training, sample.holdout])
    expected = adult[adult.age.between(30, 40) & (adult.sex == "Female") & (adult.hours_per_week > 40)]
    assert len(frame) == len(expected) == sample.rows_matched
    assert sorted(frame["fnlwgt"]) == sorted(expected["fnlwgt"])


def test_only_max_rows_rows_are_fetched_with_a_limit_in_sql(embedded_url, audit_url):
    with _Statements() as statements:
        sample = read_sample(embedded_url, SampleRequest(table="adult", max_rows=300, seed=2), audit_url=audit_url)
    assert sample.rows_returned == 300
    (select,) = [s for s in statements.data_queries("adult") if "count(" not in s]
    assert "ORDER BY" in select and "LIMIT ?" in select


def test_same_seed_same_rows_other_seed_other_rows_sample_fraction_too(embedded_url, audit_url):
    def rows(seed, **more):
        sample = read_sample(embedded_url, SampleRequest(table="adult", max_rows=500, seed=seed, **more), audit_url=audit_url)
        return set(map(tuple, pd.concat([sample.training, sample.holdout]).astype(str).values))

    assert rows(1) == rows(1)
    assert len(rows(1) & rows(2)) < 50  # 500 of 48,842: overlap by chance is ~5 rows
    assert rows(4, sample_fraction=0.1) == rows(4, sample_fraction=0.1)
    small = read_sample(embedded_url, SampleRequest(table="adult", sample_fraction=0.01, seed=4), audit_url=audit_url)
    assert 300 < small.rows_matched < 700 and small.rows_returned == small.rows_matched  # ~1% of 48,842


def test_seeded_sample_is_not_biased_towards_the_start_of_the_table(embedded_url, audit_url, adult):
    sample = read_sample(embedded_url, SampleRequest(table="adult", max_rows=2000, seed=9), audit_url=audit_url)
    frame = pd.concat([sample.training, sample.holdout])
    assert abs(frame["age"].mean() - adult["age"].mean()) < 1.5
    assert abs((frame["income"] == ">50K").mean() - (adult["income"] == ">50K").mean()) < 0.04


def test_proportional_quotas_are_within_one_row_of_the_exact_share():
    counts = [("a", 700), ("b", 200), ("c", 99), ("d", 1)]
    quotas = dict(proportional_quotas(counts, 333))
    assert sum(quotas.values()) == 333
    for value, count in counts:
        assert abs(quotas[value] - 333 * count / 1000) < 1


@pytest.mark.parametrize("column", ["race", "income"])
def test_stratified_sample_keeps_stratum_proportions(embedded_url, audit_url, adult, column):
    n = 997
    sample = read_sample(embedded_url, SampleRequest(table="adult", max_rows=n, stratify_by=column, seed=5), audit_url=audit_url)
    got = pd.concat([sample.training, sample.holdout])[column].value_counts()
    assert got.sum() == n
    for value, count in adult[column].value_counts().items():
        assert abs(got.get(value, 0) - n * count / len(adult)) <= 1, value


def test_a_write_through_the_read_connection_fails(embedded_url):
    engine = sa.create_engine(embedded_url)
    with read_only_connection(engine, 5) as conn:
        with pytest.raises(sa.exc.OperationalError, match="readonly|read-only|query_only|attempt to write"):
            conn.exec_driver_sql("INSERT INTO adult (age) VALUES (1)")
    engine.dispose()
    assert _row_count(embedded_url) == 48_842


def test_a_sqlite_statement_running_past_the_timeout_is_interrupted(embedded_url):
    engine = sa.create_engine(embedded_url)
    slow = "SELECT count(*) FROM adult a, adult b"  # 2.4 billion pairs
    with read_only_connection(engine, 0.2) as conn, pytest.raises(sa.exc.OperationalError, match="interrupted"):
        conn.exec_driver_sql(slow)
    engine.dispose()


def test_empty_table_is_refused(tmp_path, audit_url):
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE visits (id INTEGER, age INTEGER)")
    with pytest.raises(SourceError, match="is empty"):
        read_sample(url, SampleRequest(table="visits"), audit_url=audit_url)


def test_password_is_masked():
    assert mask_url("postgresql+psycopg2://alice:s3cret@db.example/h") == "postgresql+psycopg2://alice:***@db.example/h"
    assert "s3cret" not in mask_url("postgresql://alice:s3cret@db/h")


def test_request_is_frozen_with_every_field_defaulted():
    request = SampleRequest()
    assert request.table == "" and request.filters == () and request.row_cap == 1_000_000
    assert request.statement_timeout_s == 60 and request.sample_fraction is None and request.stratify_by is None
    with pytest.raises(AttributeError):
        request.table = "x"  # type: ignore[misc]
    assert SampleRequest(table="t", filters=[{"column": "a", "op": "in", "value": [1, 2]}]).filters == (Filter("a", "in", (1, 2)),)


# ------------------------------------------------------------------------------------------------- PostgreSQL


def test_reads_a_schema_qualified_table_from_postgresql(pg_database, adult_small, audit_url):
    engine = sa.create_engine(pg_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA ward")
    adult_small.to_sql("patients", engine, schema="ward", index=False)
    engine.dispose()
    sample = read_sample(pg_database, SampleRequest(table="ward.patients", columns=("age", "sex", "income"), seed=3), audit_url=audit_url)
    assert len(sample.training) + len(sample.holdout) == len(adult_small)
    assert sample.columns == ["age", "sex", "income"]
    assert sorted(pd.concat([sample.training, sample.holdout])["age"]) == sorted(adult_small["age"])
    with pytest.raises(SourceError, match="not found"):
        read_sample(pg_database, SampleRequest(table="ward.missing"), audit_url=audit_url)
    with pytest.raises(SourceError, match="Schema 'nowhere' not found"):
        read_sample(pg_database, SampleRequest(table="nowhere.patients"), audit_url=audit_url)


def test_postgresql_sampling_is_seeded_limited_stratified_and_audited(pg_adult, audit_url, adult):
    def read(**fields):
        return read_sample(pg_adult, SampleRequest(table="ward.patients", **fields), audit_url=audit_url, run_id="run-1")

    with _Statements() as statements:
        first = read(max_rows=500, seed=1)
    (select,) = [s for s in statements.data_queries("ward.patients") if "count(" not in s]
    assert "md5" in select and "LIMIT %(param_1)s" in select
    assert first.rows_returned == 500 and first.rows_in_table == 48_842
    again, other = read(max_rows=500, seed=1), read(max_rows=500, seed=2)
    pd.testing.assert_frame_equal(first.training, again.training)
    assert not first.training.equals(other.training)

    fraction = read(sample_fraction=0.02, max_rows=400, seed=3)
    assert fraction.rows_returned == 400 and 700 < fraction.rows_matched < 1300  # ~2% of 48,842 before the limit
    assert "TABLESAMPLE bernoulli" in fraction.query_shape and "REPEATABLE" in fraction.query_shape
    pd.testing.assert_frame_equal(fraction.training, read(sample_fraction=0.02, max_rows=400, seed=3).training)

    strat = read(max_rows=1001, stratify_by="race", seed=4)
    got = pd.concat([strat.training, strat.holdout])["race"].value_counts()
    for value, count in adult["race"].value_counts().items():
        assert abs(got.get(value, 0) - 1001 * count / len(adult)) <= 1

    records = audit.read_records(audit_url)
    assert [r["outcome"] for r in records] == ["ok"] * 6 and records[0]["run_id"] == "run-1"
    assert records[0]["rows_returned"] == 500 and records[0]["seed"] == 1 and records[0]["table_name"] == "ward.patients"
    assert records[3]["sample_fraction"] == 0.02 and records[5]["stratify_by"] == "race"
    assert len({r["query_hash"] for r in records}) == 4  # the same request twice: the same query hash
    for record in records:
        assert PG_PASSWORD not in str(record) and ":***@127.0.0.1" in record["source"]


def test_postgresql_injection_is_a_value_and_sensitive_values_are_redacted(pg_adult, audit_url):
    request = SampleRequest(
        table="ward.patients",
        filters=(Filter("workclass", "=", INJECTION), Filter("native_country", "in", ["Cuba", "Peru"])),
        sensitive_columns=("native_country",),
    )
    with pytest.raises(SourceError, match="0 rows matching") as refused:
        read_sample(pg_adult, request, audit_url=audit_url)
    ok = read_sample(
        pg_adult,
        SampleRequest(table="ward.patients", filters=(Filter("native_country", "in", ["Cuba", "Peru"]),), sensitive_columns=("native_country",)),
        audit_url=audit_url,
    )
    assert ok.rows_returned == ok.rows_matched > 20
    # The filtered sensitive column is left out (its values would reveal the filter); the rows are the matching ones.
    assert "native_country" not in ok.columns and ok.withheld_columns == ["native_country"]
    assert ok.secret_values.matches(pd.Series(["Cuba", " peru ", "Chile"])).tolist() == [True, True, False]
    assert ok.parameters["f0"] == "<redacted>" and "Cuba" not in ok.query_shape
    assert _row_count(pg_adult, "patients", "ward") == 48_842
    refused_record, ok_record = audit.read_records(audit_url)
    assert refused_record["outcome"] == "refused" and refused_record["filters"][0]["value"] == INJECTION
    assert refused_record["filters"][1] == {"column": "native_country", "op": "in", "value": "<redacted>"}
    for record in (refused_record, ok_record):
        assert "Cuba" not in str(record) and "Peru" not in str(record) and PG_PASSWORD not in str(record)
    assert PG_PASSWORD not in str(refused.value)


def test_postgresql_read_connection_is_read_only_with_a_statement_timeout(pg_adult):
    engine = sa.create_engine(pg_adult)
    with read_only_connection(engine, 0.3) as conn:
        assert conn.exec_driver_sql("SHOW transaction_read_only").scalar_one() == "on"
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar_one() == "300ms"
        with pytest.raises(sa.exc.InternalError, match="read-only transaction"):
            conn.exec_driver_sql("INSERT INTO ward.patients (age) VALUES (1)")
    with read_only_connection(engine, 0.3) as conn:
        with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
            conn.exec_driver_sql("SELECT pg_sleep(5)")
    with engine.connect() as conn:  # SET LOCAL: the pool's next transaction has the server default again
        assert conn.exec_driver_sql("SHOW statement_timeout").scalar_one() == "0"
    engine.dispose()
    assert _row_count(pg_adult, "patients", "ward") == 48_842


def test_failed_reads_are_audited_without_the_password(pg_database, audit_url):
    url = sa.make_url(pg_database).set(password=PG_PASSWORD, port=1).render_as_string(hide_password=False)
    with pytest.raises(SourceReadFailed) as failed:
        read_sample(url, SampleRequest(table="ward.patients"), audit_url=audit_url)
    assert PG_PASSWORD not in str(failed.value) and "Cannot connect" in str(failed.value)
    (record,) = audit.read_records(audit_url)
    assert record["outcome"] == "failed" and record["error"] and PG_PASSWORD not in str(record)


# ------------------------------------------------------------------------------- PostgreSQL pre-thinning


BIG_ROWS = 120_000


def _copy_into(url, ddl, name, frame):
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(ddl)
    copy_frame(engine, name, frame)
    engine.dispose()


@pytest.fixture()
def pg_big(pg_database):
    """120,000 rows, written in `id` order with COPY: `id` primary key, `value` uniform on [0, 100), `grp` with
    strata of 90%, 9% and 1% (a, b, c, interleaved). Yields (URL, the table as a DataFrame)."""
    rng = np.random.default_rng(0)
    ids = np.arange(1, BIG_ROWS + 1)
    frame = pd.DataFrame({
        "id": ids,
        "value": np.round(rng.uniform(0, 100, BIG_ROWS), 6),
        "grp": np.where(ids % 100 == 0, "c", np.where(ids % 100 < 10, "b", "a")),
    })
    _copy_into(pg_database, "CREATE TABLE big (id integer PRIMARY KEY, value double precision, grp text)", "big", frame)
    return pg_database, frame


def _rows(sample):
    return pd.concat([sample.training, sample.holdout]).sort_values("id").reset_index(drop=True)


def test_postgresql_large_table_is_prethinned_exact_seeded_and_uniform(pg_big, audit_url):
    url, table = pg_big
    n = 2000

    def read(seed, **more):
        return read_sample(url, SampleRequest(table="big", max_rows=n, seed=seed, **more), audit_url=audit_url)

    with _Statements() as statements:
        first = read(1)
    # A keyed table is thinned by a seeded hash of its key, below a bound cutoff: p = (2000 + 268 + 50) / 120,000.
    assert "hashint8extended" in first.query_shape and "md5" in first.query_shape
    assert "%(thin_cutoff)s" in first.query_shape and first.parameters["thin_seed"] == 1
    assert first.parameters["thin_cutoff"] == -(2**63) + int((n + 6 * np.sqrt(n) + 50) / BIG_ROWS * 2.0**64)
    assert first.rows_returned == n and first.rows_in_table == first.rows_matched == BIG_ROWS
    counts = [s for s in statements.data_queries("big") if "count(" in s]
    selects = [s for s in statements.data_queries("big") if "count(" not in s]
    assert len(counts) == 1 and len(selects) == 1  # no filter: one count serves rows_in_table and rows_matched
    assert "hashint8extended" in selects[0]

    rows = _rows(first)
    assert rows["id"].is_unique
    pd.testing.assert_frame_equal(rows, _rows(read(1)))  # same seed, same rows
    assert len(set(rows["id"]) & set(_rows(read(2))["id"])) < 150  # 2,000 of 120,000 twice: ~33 in common by chance

    # A plausible simple random sample: means within 4 standard errors (finite-population corrected) of the table's,
    # for `id` (the physical order: no bias towards the start or the end) and for `value`.
    fpc = np.sqrt(1 - n / BIG_ROWS)
    for seed in (0, 2, 3):
        got = _rows(read(seed))
        for column in ("id", "value"):
            se = table[column].std() / np.sqrt(n) * fpc
            assert abs(got[column].mean() - table[column].mean()) < 4 * se, (seed, column)
        assert abs((got["grp"] == "c").mean() - 0.01) < 4 * np.sqrt(0.01 * 0.99 / n)

    # With a filter the matched count decides: ~60,000 rows with value >= 50, still thinned, only matching rows.
    filtered = read(4, filters=(Filter("value", ">=", 50.0),))
    assert "thin_cutoff" in filtered.parameters and filtered.rows_returned == n
    assert filtered.rows_in_table == BIG_ROWS and filtered.rows_matched == int((table["value"] >= 50).sum())
    assert (_rows(filtered)["value"] >= 50).all()

    # Not worth it when n is a large share of the table, and never with an explicit sample_fraction.
    many = read_sample(url, SampleRequest(table="big", max_rows=40_000, seed=5), audit_url=audit_url)
    assert "thin_cutoff" not in many.parameters and many.rows_returned == 40_000
    fraction = read(6, sample_fraction=0.5)
    assert "thin_cutoff" not in fraction.parameters and fraction.parameters["fraction_pct"] == 50.0

    # Keyed tables keep their sample through a physical rewrite, thinned as unthinned.
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE big SET value = value WHERE mod(id, 2) = 0")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM FULL big")
    engine.dispose()
    pd.testing.assert_frame_equal(rows, _rows(read(1)))


def test_postgresql_prethinning_of_text_keyed_and_unkeyed_tables(pg_big, audit_url):
    url, table = pg_big
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE big_text (code text PRIMARY KEY, id integer, value double precision)")
        conn.exec_driver_sql("INSERT INTO big_text SELECT 'k-' || id, id, value FROM big ORDER BY id")
        conn.exec_driver_sql("CREATE TABLE big_heap AS SELECT * FROM big ORDER BY id")  # no key: ordered by ctid
    engine.dispose()
    n = 2000
    for name, marker in (("big_text", "hashtextextended"), ("big_heap", "TABLESAMPLE bernoulli")):
        request = SampleRequest(table=name, max_rows=n, seed=11)
        sample = read_sample(url, request, audit_url=audit_url)
        assert marker in sample.query_shape and sample.rows_returned == n, name
        rows = _rows(sample)
        assert rows["id"].is_unique
        pd.testing.assert_frame_equal(rows, _rows(read_sample(url, request, audit_url=audit_url)))
        se = table["id"].std() / np.sqrt(n)
        assert abs(rows["id"].mean() - table["id"].mean()) < 4 * se, name
    heap = read_sample(url, SampleRequest(table="big_heap", max_rows=n, seed=11), audit_url=audit_url)
    assert heap.parameters["thin_pct"] == pytest.approx(100 * (n + 6 * np.sqrt(n) + 50) / BIG_ROWS)
    assert "ctid" in heap.query_shape and "REPEATABLE" in heap.query_shape


def test_postgresql_stratified_request_is_prethinned_with_exact_quotas(pg_big, audit_url):
    url, table = pg_big
    n = 2000
    request = SampleRequest(table="big", max_rows=n, stratify_by="grp", seed=7)
    sample = read_sample(url, request, audit_url=audit_url)
    assert "hashint8extended" in sample.query_shape and sample.rows_returned == n
    # One p for all strata, the largest need: c's (20 + 27 + 50) / 1,200.
    assert sample.parameters["thin_cutoff"] == -(2**63) + int((20 + 6 * np.sqrt(20) + 50) / 1200 * 2.0**64)
    quotas = dict(proportional_quotas(list(table["grp"].value_counts().items()), n))
    assert _rows(sample)["grp"].value_counts().to_dict() == quotas  # {a: 1800, b: 180, c: 20}
    pd.testing.assert_frame_equal(_rows(sample), _rows(read_sample(url, request, audit_url=audit_url)))


@pytest.mark.parametrize("stratify_by", [None, "grp"])
def test_postgresql_short_thinned_read_falls_back_to_the_whole_table(pg_big, audit_url, monkeypatch, stratify_by):
    url, table = pg_big
    n = 2000
    request = SampleRequest(table="big", max_rows=n, seed=8, stratify_by=stratify_by)
    monkeypatch.setattr(source_module, "THIN_MAX_FRACTION", 0.0)  # thinning off: the plain md5 top-n
    unthinned = read_sample(url, request, audit_url=audit_url)
    assert "thin_cutoff" not in unthinned.parameters
    monkeypatch.setattr(source_module, "THIN_MAX_FRACTION", 0.25)
    # p = (q - 10·sqrt(q)) / rows for the largest stratum: ~1,553 survivors for 2,000 rows (stratified: 1,376 for
    # a's 1,800, 138 for b's 180, 15 for c's 20): the thinned read is (all but surely) short.
    monkeypatch.setattr(source_module, "THIN_SIGMAS", -10.0)
    monkeypatch.setattr(source_module, "THIN_MARGIN", 0.0)
    with _Statements() as statements:
        sample = read_sample(url, request, audit_url=audit_url)
    selects = [s for s in statements.data_queries("big") if "count(" not in s]
    assert len(selects) == 2 and "hashint8extended" in selects[0] and "hashint8extended" not in selects[1]
    assert sample.rows_returned == n and "thin_cutoff" not in sample.parameters
    pd.testing.assert_frame_equal(_rows(sample), _rows(unthinned))  # the fallback is the unthinned read
    if stratify_by:
        quotas = dict(proportional_quotas(list(table["grp"].value_counts().items()), n))
        assert _rows(sample)["grp"].value_counts().to_dict() == quotas
    (*_, record) = audit.read_records(audit_url)
    assert record["outcome"] == "ok" and record["rows_returned"] == n and "hashint8extended" not in record["query_shape"]
