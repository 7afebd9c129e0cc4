"""Our in-database seeded sample against the usual ways to draw 10,000 random rows from a 1,000,000-row PostgreSQL table.

    .venv/bin/python benchmarks/source_sampling_vs_random.py            # 7 repeats (full pull: 3), ~3 min after the build
    .venv/bin/python benchmarks/source_sampling_vs_random.py --quick    # 3 repeats (full pull: 1), ~1 min after the build

Table: UCI Adult from ../shared/datasets/adult.csv.gz replicated to 1,000,000 rows, with an integer `id` primary key,
as `adult_1m` in database `synth_bench` on the server at $SYNTH_BENCH_PG_URL (default
postgresql+psycopg2://root@127.0.0.1:5432/). The database and table are built on first use (COPY, ~1 min) and reused.

Side by side, in rounds (each round runs every method once, so load on the machine hits all of them alike), median
wall time over the repeats, after one untimed warm-up round (the table is in PostgreSQL's cache for every method):
- ours: `read_sample(url, SampleRequest(table, max_rows=10_000, seed))` end to end: reflection and name checks, the
  read-only transaction, one count, the pre-thinned md5-ordered top-n SELECT (rows kept where a seeded 64-bit hash
  of the key is below a cutoff, ~1.07%), the training/holdout split and the audit record (into a temporary SQLite
  audit database);
- ours without pre-thinning (THIN_MAX_FRACTION = 0): md5 of all 1,000,000 keys and a top-n sort, as before the
  pre-thinning (which also counted the table twice; this counts it once);
- naive: `SELECT * FROM t ORDER BY random() LIMIT 10000` into pandas (not repeatable: no seed);
- full pull: `pd.read_sql("SELECT * FROM t")` then `.sample(10_000)` in pandas.
Rows transferred are the rows the database sends; bytes are `len(pickle.dumps(frame))` of what arrived. Then
EXPLAIN ANALYZE execution times of the SELECTs alone (server side, no transfer). Timings are wall-clock on whatever
machine runs it; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from synth_platform.sampling import source
from synth_platform.sampling.source import SampleRequest, read_sample, reflect_table

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO.parent / "shared" / "datasets" / "adult.csv.gz"
BASE_URL = os.environ.get("SYNTH_BENCH_PG_URL", "postgresql+psycopg2://root@127.0.0.1:5432/")
DATABASE = "synth_bench"
TABLE = "adult_1m"
ROWS = 1_000_000
SAMPLE = 10_000


def bench_url() -> str:
    """Create the benchmark database if missing; return its URL."""
    admin = sa.create_engine(sa.make_url(BASE_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DATABASE}).first() is None:
            conn.exec_driver_sql(f'CREATE DATABASE "{DATABASE}"')
    admin.dispose()
    return sa.make_url(BASE_URL).set(database=DATABASE).render_as_string(hide_password=False)


def ensure_table(url: str) -> None:
    """`adult_1m`: Adult replicated to ROWS rows with an `id` primary key; built under another name, then renamed."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        if sa.inspect(conn).has_table(TABLE) and conn.exec_driver_sql(f"SELECT count(*) FROM {TABLE}").scalar_one() == ROWS:
            engine.dispose()
            return
    print(f"building {TABLE} ({ROWS:,} rows) from {DATASET} ...", flush=True)
    start = time.perf_counter()
    with gzip.open(DATASET, "rt") as handle:
        adult = pd.read_csv(handle)
    frame = pd.concat([adult] * (ROWS // len(adult) + 1), ignore_index=True).iloc[:ROWS]
    frame.insert(0, "id", range(1, ROWS + 1))
    building = f"{TABLE}_building"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {building}")
    frame.head(0).to_sql(building, engine, index=False)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.copy_expert(f"COPY {building} FROM STDIN WITH (FORMAT csv)", buffer)
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE {building} ADD PRIMARY KEY (id)")
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
        conn.exec_driver_sql(f"ALTER TABLE {building} RENAME TO {TABLE}")
        conn.exec_driver_sql(f"ALTER INDEX {building}_pkey RENAME TO {TABLE}_pkey")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM ANALYZE {TABLE}")
    engine.dispose()
    print(f"  built in {time.perf_counter() - start:.1f} s", flush=True)


def explain_ms(engine: sa.Engine, sql: str, params: dict | None = None) -> float:
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params or {}).scalar_one()
    return float(plan[0]["Execution Time"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 repeats (full pull once) instead of 7 (full pull 3)")
    args = parser.parse_args()
    repeats, full_repeats = (3, 1) if args.quick else (7, 3)

    url = bench_url()
    ensure_table(url)
    engine = sa.create_engine(url)
    audit_dir = tempfile.TemporaryDirectory()
    audit_url = f"sqlite:///{Path(audit_dir.name) / 'audit.sqlite3'}"
    print(f"{TABLE}: {ROWS:,} rows; sampling {SAMPLE:,}; {repeats} repeats ({full_repeats} for the full pull), median")

    def ours(seed: int, thinning: bool = True) -> pd.DataFrame:
        saved = source.THIN_MAX_FRACTION
        source.THIN_MAX_FRACTION = saved if thinning else 0.0
        try:
            sample = read_sample(url, SampleRequest(table=TABLE, max_rows=SAMPLE, seed=seed), audit_url=audit_url)
        finally:
            source.THIN_MAX_FRACTION = saved
        assert sample.rows_returned == SAMPLE and ("thin_cutoff" in sample.parameters) == thinning
        return pd.concat([sample.training, sample.holdout])

    def naive(seed: int) -> pd.DataFrame:
        return pd.read_sql(f"SELECT * FROM {TABLE} ORDER BY random() LIMIT {SAMPLE}", engine)

    def full_pull(seed: int) -> pd.DataFrame:
        return pd.read_sql(f"SELECT * FROM {TABLE}", engine)  # sampled by `finish`, inside the timing

    methods = {
        "ours (read_sample, pre-thinned)": (ours, repeats, lambda f: f),
        "ours without pre-thinning": (lambda s: ours(s, thinning=False), repeats, lambda f: f),
        "naive ORDER BY random() LIMIT": (naive, repeats, lambda f: f),
        "full pull + pandas .sample": (full_pull, full_repeats, lambda f: f.sample(SAMPLE, random_state=0)),
    }
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    transferred: dict[str, tuple[int, int, int]] = {}
    for round_ in range(max(repeats, full_repeats) + 1):  # round 0: untimed warm-up
        for name, (fetch, times, finish) in methods.items():
            if round_ > times:
                continue
            start = time.perf_counter()
            fetched = fetch(round_)
            result = finish(fetched)
            elapsed = time.perf_counter() - start
            assert len(result) == SAMPLE
            if round_ == 0:
                transferred[name] = (len(fetched), fetched.shape[1], len(pickle.dumps(fetched)))
                del fetched, result
                continue
            seconds[name].append(elapsed)
            del fetched, result
        if round_:
            print(f"  round {round_}: " + ", ".join(f"{s[-1]:.2f}" for s in seconds.values() if len(s) == round_), flush=True)

    medians = {name: statistics.median(values) for name, values in seconds.items()}
    base = medians["ours (read_sample, pre-thinned)"]
    print(f"\n{'method':36s} {'median s':>9s} {'min s':>7s} {'rows sent':>10s} {'cols':>5s} {'MB (pickle)':>12s} {'vs ours':>8s}")
    for name, median in medians.items():
        rows, cols, size = transferred[name]
        print(f"{name:36s} {median:9.3f} {min(seconds[name]):7.3f} {rows:10,d} {cols:5d} {size / 1e6:12.1f} {median / base:7.1f}x")

    # Server-side only: EXPLAIN ANALYZE of the SELECTs (no transfer, no client work).
    table, _ = reflect_table(engine, TABLE, TABLE)
    request = SampleRequest(table=TABLE, max_rows=SAMPLE, seed=1)
    count_query, sample_query = source.build_queries(table, engine, request)
    thin = source.thinning_fraction([(SAMPLE, ROWS)])
    # The same table seen without its primary key: what an unkeyed table gets (TABLESAMPLE BERNOULLI, md5 of ctid).
    unkeyed = sa.Table(TABLE, sa.MetaData(), *[sa.Column(c.name, c.type) for c in table.columns])
    _, unkeyed_query = source.build_queries(unkeyed, engine, request)
    explains = {}
    for label, statement in (("count(*) (ours, once per read)", count_query),
                             ("ours: pre-thinned md5 top-n", sample_query(SAMPLE, None, thin=thin).statement),
                             ("  same, unkeyed (TABLESAMPLE)", unkeyed_query(SAMPLE, None, thin=thin).statement),
                             ("ours without pre-thinning", sample_query(SAMPLE, None).statement)):
        compiled = statement.compile(dialect=engine.dialect)
        explains[label] = statistics.median(explain_ms(engine, str(compiled), compiled.params) for _ in range(repeats))
    explains["naive ORDER BY random() LIMIT"] = statistics.median(
        explain_ms(engine, f"SELECT * FROM {TABLE} ORDER BY random() LIMIT {SAMPLE}") for _ in range(repeats))
    print(f"\nEXPLAIN ANALYZE execution time, median of {repeats} (thinning fraction p = {thin:.4%}):")
    for label, ms in explains.items():
        print(f"  {label:36s} {ms:9.1f} ms")
    ours_ms = explains["ours: pre-thinned md5 top-n"]
    print(f"  naive / ours (SELECT only): {explains['naive ORDER BY random() LIMIT'] / ours_ms:.1f}x; "
          f"unthinned / thinned: {explains['ours without pre-thinning'] / ours_ms:.1f}x")
    print(f"\nend to end: naive / ours {medians['naive ORDER BY random() LIMIT'] / base:.1f}x, "
          f"full pull / ours {medians['full pull + pandas .sample'] / base:.1f}x, "
          f"unthinned / thinned {medians['ours without pre-thinning'] / base:.1f}x")
    engine.dispose()
    audit_dir.cleanup()


if __name__ == "__main__":
    main()
