"""Every kind of relation is sampled in the database, seeded and uniformly: PostgreSQL tables (keyed or not),
partitioned tables, views, materialized views and foreign tables; SQLite tables, WITHOUT ROWID tables, views and
tables with a user column named rowid. Views could not be read at all on PostgreSQL (TABLESAMPLE, ctid), and on
SQLite views, WITHOUT ROWID tables and user `rowid` columns gave the same first rows for every seed.

The uniformity checks read each relation with many seeds through the read path (`source._read_table`, on one engine
to keep them fast) and look at how often each row is drawn: about seeds·p for inclusion probability p, tested with a
chi-square bound (any seed-independent choice fails it by orders of magnitude)."""

import math
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from synth_platform.sampling import source as source_module
from synth_platform.sampling.query import internal_names
from synth_platform.sampling.source import SampleRequest, SourceError, proportional_quotas, read_sample

from ..conftest import admin_url_of, fresh_pg_database

ROWS = 100  # the small relations: id 1..100, grp 'a' for 70 ids and 'b' for 30 (interleaved)
BIG_ROWS = 2_000  # the large ones, for pre-thinning
SEEDS = range(30)


def _base_sql(rows: int) -> str:
    return (f"SELECT g AS id, CASE WHEN g % 10 < 7 THEN 'a' ELSE 'b' END AS grp, (g * 7919) % 1000 / 10.0 AS val "
            f"FROM generate_series(1, {rows}) g")


def _execute(url: str, *statements: str) -> None:
    raw = sa.create_engine(url).raw_connection()  # raw psycopg2: no %-parameter parsing of the DDL
    try:
        with raw.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        raw.commit()
    finally:
        raw.close()


PG_KINDS = ("keyed", "heap", "parted", "view", "matview", "foreign")


@pytest.fixture(scope="module")
def pg_relations():
    """One relation of each PostgreSQL kind over the same rows, small (`small_<kind>`) and large (`big_<kind>`). The
    foreign tables read CSV files through file_fdw (set up by the admin, granted to the test role)."""
    files = []
    with fresh_pg_database() as url:
        owner = sa.make_url(url).username
        admin_statements = ["CREATE EXTENSION file_fdw", "CREATE SERVER csv_files FOREIGN DATA WRAPPER file_fdw"]
        for prefix, rows in (("small_", ROWS), ("big_", BIG_ROWS)):
            _execute(
                url,
                f"CREATE TABLE {prefix}keyed (id integer PRIMARY KEY, grp text, val numeric)",
                f"INSERT INTO {prefix}keyed {_base_sql(rows)}",
                f"CREATE TABLE {prefix}heap AS SELECT * FROM {prefix}keyed ORDER BY id",
                f"CREATE TABLE {prefix}parted (id integer, grp text, val numeric) PARTITION BY RANGE (id)",
                f"CREATE TABLE {prefix}parted_low PARTITION OF {prefix}parted FOR VALUES FROM (MINVALUE) TO ({rows // 2})",
                f"CREATE TABLE {prefix}parted_high PARTITION OF {prefix}parted FOR VALUES FROM ({rows // 2}) TO (MAXVALUE)",
                f"INSERT INTO {prefix}parted SELECT * FROM {prefix}keyed",
                f"CREATE VIEW {prefix}view AS SELECT id, grp, val FROM {prefix}keyed WHERE id > 0",
                f"CREATE MATERIALIZED VIEW {prefix}matview AS SELECT * FROM {prefix}keyed",
            )
            path = Path("/tmp") / f"synth_test_{uuid.uuid4().hex}.csv"
            files.append(path)
            admin_statements += [
                f"COPY (SELECT * FROM {prefix}keyed ORDER BY id) TO '{path}' WITH (FORMAT csv)",
                f"CREATE FOREIGN TABLE {prefix}foreign (id integer, grp text, val numeric) SERVER csv_files "
                f"OPTIONS (filename '{path}', format 'csv')",
                f'GRANT SELECT ON {prefix}foreign TO "{owner}"',
            ]
        _execute(admin_url_of(url), *admin_statements)
        try:
            yield url
        finally:
            for path in files:
                path.unlink(missing_ok=True)


class _Reader:
    """Reads through `source._read_table` on one engine (the read path without the audit and the split)."""

    def __init__(self, url: str):
        self.engine = sa.create_engine(url)

    def read(self, **fields) -> tuple[pd.DataFrame, dict]:
        state: dict = {}
        result = source_module._read_table(self.engine, SampleRequest(**fields), "test", state)
        return result.frame, state

    def close(self):
        self.engine.dispose()


@pytest.fixture()
def pg_reader(pg_relations):
    reader = _Reader(pg_relations)
    yield reader
    reader.close()


def assert_uniform(draws: list[pd.Series], population: int, p: float, what: str) -> None:
    """Each of ids 1..population drawn about len(draws)·p times: a chi-square statistic (inclusion independent or
    nearly so: sampling without replacement only lowers it) below its mean plus 6 standard deviations, and every
    row drawn at least once (P(never) = (1-p)^30 < 1e-6 per row at p = 0.4)."""
    counts = pd.concat(draws).value_counts().reindex(range(1, population + 1), fill_value=0)
    seeds = len(draws)
    statistic = float(((counts - seeds * p) ** 2).sum() / (seeds * p * (1 - p)))
    assert statistic < population + 6 * math.sqrt(2 * population), (what, statistic, counts.describe().to_dict())
    assert (counts > 0).all(), (what, list(counts[counts == 0].index))


def assert_uniform_buckets(draws: list[pd.Series], population: int, buckets: int, what: str) -> None:
    """For large relations: ids grouped into `buckets` equal ranges, each drawn about its share of all draws."""
    ids = pd.concat(draws)
    counts = ((ids - 1) * buckets // population).value_counts().reindex(range(buckets), fill_value=0)
    expected = len(ids) / buckets
    statistic = float(((counts - expected) ** 2).sum() / expected)
    assert statistic < buckets + 6 * math.sqrt(2 * buckets), (what, statistic, counts.to_dict())
    assert ids.nunique() > 0.6 * len(ids), (what, ids.nunique())  # ~86% distinct for a uniform draw of 600 of 2,000


@pytest.mark.parametrize("kind", PG_KINDS)
def test_every_postgresql_relation_kind_is_sampled_seeded_and_uniformly(pg_relations, pg_reader, audit_url, kind):
    table = f"small_{kind}"
    # End to end: the same seed gives the same sample, another seed another one.
    def rows(seed, **more):
        sample = read_sample(pg_relations, SampleRequest(table=table, max_rows=40, seed=seed, **more), audit_url=audit_url)
        return sorted(pd.concat([sample.training, sample.holdout])["id"])

    first = rows(1)
    assert len(first) == 40 and first == rows(1) and first != rows(2)

    # max_rows: 40 of 100, every row with probability 0.4
    draws = [pg_reader.read(table=table, max_rows=40, seed=seed)[0]["id"] for seed in SEEDS]
    assert all(len(d) == 40 and d.is_unique for d in draws)
    assert_uniform(draws, ROWS, 0.4, f"{kind} max_rows")

    # sample_fraction: each row kept independently with probability 0.4
    draws = []
    for seed in SEEDS:
        frame, state = pg_reader.read(table=table, sample_fraction=0.4, seed=seed)
        draws.append(frame["id"])
    marker = "TABLESAMPLE" if kind in ("keyed", "heap", "parted", "matview") else "hashtextextended"
    assert marker in state["query"].shape, state["query"].shape
    assert_uniform(draws, ROWS, 0.4, f"{kind} sample_fraction")
    assert draws[0].tolist() == pg_reader.read(table=table, sample_fraction=0.4, seed=0)[0]["id"].tolist()

    # stratify_by: quotas 28 of grp a's 70 rows and 12 of b's 30, so again 0.4 for every row
    draws = []
    for seed in SEEDS:
        frame, _ = pg_reader.read(table=table, max_rows=40, stratify_by="grp", seed=seed)
        assert frame["grp"].value_counts().to_dict() == {"a": 28, "b": 12}
        draws.append(frame["id"])
    assert_uniform(draws, ROWS, 0.4, f"{kind} stratify_by")


@pytest.mark.parametrize("kind", PG_KINDS)
def test_large_postgresql_relations_of_every_kind_are_prethinned_uniformly(pg_reader, kind):
    table = f"big_{kind}"
    draws = []
    for seed in SEEDS:
        frame, state = pg_reader.read(table=table, max_rows=20, seed=seed)
        assert len(frame) == 20 and frame["id"].is_unique
        draws.append(frame["id"])
    parameters = state["query"].parameters
    assert "thin_cutoff" in parameters or "thin_pct" in parameters, state["query"].shape  # thinning was used
    assert_uniform_buckets(draws, BIG_ROWS, 10, f"{table} thinned")
    again, _ = pg_reader.read(table=table, max_rows=20, seed=SEEDS[-1])
    assert again["id"].tolist() == draws[-1].tolist()
    # stratified and thinned: exact quotas (14 of a's 1,400 rows, 6 of b's 600)
    frame, state = pg_reader.read(table=table, max_rows=20, stratify_by="grp", seed=3)
    assert frame["grp"].value_counts().to_dict() == {"a": 14, "b": 6}
    assert "thin_cutoff" in state["query"].parameters or "thin_pct" in state["query"].parameters


def test_postgresql_relations_without_a_key_are_named_by_their_values_or_their_row_ids(pg_reader):
    """Views and foreign tables hash the row's values (no ctid there); partitioned tables add tableoid to ctid
    (ctid repeats across partitions); TABLESAMPLE only where PostgreSQL allows it."""
    shapes = {kind: pg_reader.read(table=f"small_{kind}", max_rows=40, seed=1)[1]["query"].shape for kind in PG_KINDS}
    assert "concat_ws" in shapes["keyed"] and "ctid" not in shapes["keyed"]
    assert "ctid" in shapes["heap"] and "tableoid" not in shapes["heap"]
    assert "tableoid" in shapes["parted"] and "ctid" in shapes["parted"]
    for kind in ("view", "foreign"):
        assert "ctid" not in shapes[kind] and "CAST(row(" in shapes[kind], shapes[kind]


# ----------------------------------------------------------------------------------------------------- SQLite

SQLITE_KINDS = ("plain", "without_rowid", "view", "user_rowid", "all_rowid_names")


@pytest.fixture(scope="module")
def sqlite_relations(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('kinds') / 'kinds.sqlite'}"
    engine = sa.create_engine(url)
    ids = range(1, ROWS + 1)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE plain (id INTEGER, grp TEXT, val REAL)")
        conn.exec_driver_sql("CREATE TABLE without_rowid (id INTEGER PRIMARY KEY, grp TEXT, val REAL) WITHOUT ROWID")
        conn.exec_driver_sql("CREATE VIEW view AS SELECT id, grp, val FROM plain WHERE id > 0")
        # A user column named rowid (text codes): `rowid` is that column, not the row id.
        conn.exec_driver_sql("CREATE TABLE user_rowid (rowid TEXT, id INTEGER, grp TEXT)")
        conn.exec_driver_sql('CREATE TABLE all_rowid_names (rowid TEXT, "_ROWID_" TEXT, OID TEXT, id INTEGER, grp TEXT)')
        for i in ids:
            grp = "a" if i % 10 < 7 else "b"
            for table in ("plain", "without_rowid"):
                conn.exec_driver_sql(f"INSERT INTO {table} VALUES (?, ?, ?)", (i, grp, (i * 7919) % 1000 / 10))
            conn.exec_driver_sql("INSERT INTO user_rowid VALUES (?, ?, ?)", (f"code-{i}", i, grp))
            conn.exec_driver_sql("INSERT INTO all_rowid_names VALUES (?, ?, ?, ?, ?)", ("x", "y", "z", i, grp))
    engine.dispose()
    return url


@pytest.fixture()
def sqlite_reader(sqlite_relations):
    reader = _Reader(sqlite_relations)
    yield reader
    reader.close()


@pytest.mark.parametrize("kind", SQLITE_KINDS)
def test_every_sqlite_relation_kind_is_sampled_seeded_and_uniformly(sqlite_relations, sqlite_reader, audit_url, kind):
    def rows(seed):
        sample = read_sample(sqlite_relations, SampleRequest(table=kind, max_rows=40, seed=seed), audit_url=audit_url)
        return sorted(pd.concat([sample.training, sample.holdout])["id"])

    first = rows(1)
    assert len(first) == 40 and first == rows(1) and first != rows(2)
    if kind == "user_rowid":  # the user's rowid column is read as the user's values
        user = read_sample(sqlite_relations, SampleRequest(table=kind, max_rows=40, seed=1), audit_url=audit_url)
        assert (user.training["rowid"] == "code-" + user.training["id"].astype(str)).all()

    draws = [sqlite_reader.read(table=kind, max_rows=40, seed=seed)[0]["id"] for seed in SEEDS]
    assert all(len(d) == 40 and d.is_unique for d in draws)
    assert_uniform(draws, ROWS, 0.4, f"{kind} max_rows")

    draws = [sqlite_reader.read(table=kind, sample_fraction=0.4, seed=seed)[0]["id"] for seed in SEEDS]
    assert_uniform(draws, ROWS, 0.4, f"{kind} sample_fraction")

    draws = []
    for seed in SEEDS:
        frame, _ = sqlite_reader.read(table=kind, max_rows=40, stratify_by="grp", seed=seed)
        assert frame["grp"].value_counts().to_dict() == {"a": 28, "b": 12}
        draws.append(frame["id"])
    assert_uniform(draws, ROWS, 0.4, f"{kind} stratify_by")


def test_sqlite_rows_are_named_by_the_real_rowid_where_there_is_one(sqlite_reader):
    shapes = {kind: sqlite_reader.read(table=kind, max_rows=40, seed=1)[1]["query"].shape for kind in SQLITE_KINDS}
    assert "rowid" in shapes["plain"] and "synth_row_hash" not in shapes["plain"]
    assert "_rowid_" in shapes["user_rowid"] and "synth_row_hash" not in shapes["user_rowid"]
    for kind in ("without_rowid", "view", "all_rowid_names"):
        assert "synth_row_hash" in shapes[kind], kind


# ------------------------------------------------------------------------------------- internal names vs columns


def test_internal_names_start_with_a_prefix_no_column_starts_with():
    assert internal_names(["age", "grp"]).prefix == "__synth_"
    names = internal_names(["__synth_stratum", "__SYNTH1_key", "__synth2_", "__synth3"])
    assert names.prefix == "__synth3_"  # __synth3 itself does not start with __synth3_
    columns = ["__synth_key", "__synth1_rn", "__synth2_ranked"]
    chosen = internal_names(columns)
    internal = {chosen.stratum, chosen.key, chosen.rn, chosen.ranked, chosen.sampled, chosen.thinned}
    assert not {c.lower() for c in columns} & {i.lower() for i in internal}


# Columns named like every internal label, alias and bound parameter of the query builder.
COLLIDING = ("__synth_stratum", "__synth_rn", "__synth_key", "__synth_ranked", "__synth_sampled", "__synth_thinned",
             "ranked", "sampled", "thinned", "hash_seed", "f0", "stratum_0", "quota_0", "param_1", "thin_cutoff")


def _colliding_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"id": range(1, rows + 1), "grp": np.where(np.arange(rows) % 10 < 7, "a", "b")})
    for name in COLLIDING:
        frame[name] = [f"{name}-{i}" for i in frame["id"]] if not name.startswith("__synth_rn") else rng.integers(1, 5, rows)
    return frame


def _check_colliding(sample_frame: pd.DataFrame, n: int) -> None:
    assert len(sample_frame) == n and sample_frame["id"].is_unique
    assert list(sample_frame.columns) == ["id", "grp", *COLLIDING]
    for name in COLLIDING:
        if name not in ("__synth_rn", "__synth_stratum"):
            assert (sample_frame[name] == [f"{name}-{i}" for i in sample_frame["id"]]).all(), name


@pytest.mark.parametrize("stratify_by", [None, "grp", "__synth_rn", "__synth_stratum"])
def test_columns_named_like_internal_aliases_do_not_break_sampling(pg_database, tmp_path, audit_url, stratify_by):
    frame = _colliding_frame(2_000)
    frame["__synth_stratum"] = np.where(frame["id"] % 4 == 0, "s0", "s1")  # a column named like the stratum label
    sqlite_url = f"sqlite:///{tmp_path / 'colliding.sqlite'}"
    engine = sa.create_engine(sqlite_url)
    frame.to_sql("colliding", engine, index=False)
    engine.dispose()
    engine = sa.create_engine(pg_database)
    frame.to_sql("colliding", engine, index=False)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE colliding ADD PRIMARY KEY (id)")
    engine.dispose()
    n = 100  # on PostgreSQL pre-thinned: 100 of 2,000
    for url in (sqlite_url, pg_database):
        request = SampleRequest(table="colliding", max_rows=n, stratify_by=stratify_by, seed=2)
        sample = read_sample(url, request, audit_url=audit_url)
        rows = pd.concat([sample.training, sample.holdout])
        _check_colliding(rows, n)
        if stratify_by is not None:
            quotas = dict(proportional_quotas(list(frame[stratify_by].value_counts().items()), n))
            assert rows[stratify_by].value_counts().to_dict() == {k: v for k, v in quotas.items() if v}
        other = read_sample(url, SampleRequest(table="colliding", max_rows=n, stratify_by=stratify_by, seed=3), audit_url=audit_url)
        assert set(pd.concat([other.training, other.holdout])["id"]) != set(rows["id"])


def test_a_missing_relation_is_refused_listing_tables_and_views(pg_relations, sqlite_relations, audit_url):
    with pytest.raises(SourceError, match=r"Available tables: .*'small_keyed'.*Available views: .*'small_matview', 'small_view'"):
        read_sample(pg_relations, SampleRequest(table="small_vew"), audit_url=audit_url)
    with pytest.raises(SourceError, match=r"Available tables: .*'plain'.*Available views: \['view'\]"):
        read_sample(sqlite_relations, SampleRequest(table="veiw"), audit_url=audit_url)
