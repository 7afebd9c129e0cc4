"""Every PostgreSQL column type, and SQLite's loose typing, is read into a value the pipeline can model or left out
with a stated reason (column_types.py), never a crash: json columns used to come back as dicts and break
`source_sample` after an audited "ok" read (`unhashable type: 'dict'`)."""

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from synth_platform.sampling import audit
from synth_platform.sampling.source import Filter, SampleRequest, SourceError, read_sample

ROWS = 40

# One column of each type; rows 1-5 hold the edge values (infinities, sentinels, NaN), row 41-42 NULLs everywhere.
PG_DDL = f"""
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE everything (
    id integer PRIMARY KEY, doc json, docb jsonb, ints integer[], texts text[], uid uuid, span interval, cash money,
    raw bytea, amount numeric(10,2), ratio numeric, feeling mood, flags bit(3), vflags varbit, ip inet, net cidr,
    mac macaddr, x xml, pt point, box_ box, tsv tsvector, rng int4range, at_tz timestamptz, at timestamp, t time,
    ttz timetz, d date, flag boolean, small smallint, big bigint, r real, dbl double precision, body text,
    code varchar(10), fixed char(4), pos positive
);
INSERT INTO everything
SELECT g, json_build_object('a', g), jsonb_build_object('b', g), ARRAY[g, g + 1], ARRAY['x' || g], gen_random_uuid(),
    make_interval(days => g, hours => 1), (g * 1.5)::numeric::money, '\\x00ff'::bytea, g * 1.25, g / 4.0,
    (ARRAY['sad', 'ok', 'happy']::mood[])[1 + g % 3], B'101', B'1', ('10.0.0.' || g)::inet, '10.0.0.0/8',
    '08:00:2b:01:02:03', '<a/>', point(g, g), box(point(0, 0), point(g, g)), to_tsvector('simple', 'a b'),
    int4range(g, g + 5),
    CASE g WHEN 1 THEN 'infinity'::timestamptz WHEN 2 THEN '-infinity' WHEN 3 THEN '0001-01-01 00:00+05'
           ELSE timestamptz '2024-03-01 12:00+02' + make_interval(days => g) END,
    CASE g WHEN 1 THEN 'infinity'::timestamp WHEN 2 THEN '-infinity' WHEN 3 THEN '9999-12-31 23:59:59'
           ELSE timestamp '2024-03-01 12:00' + make_interval(hours => g) END,
    time '12:30:00', timetz '01:00:00+02',
    CASE g WHEN 1 THEN 'infinity'::date WHEN 2 THEN '-infinity' WHEN 3 THEN '9999-12-31' WHEN 4 THEN '0001-01-01'
           WHEN 5 THEN '0044-03-15 BC' ELSE date '2024-01-01' + g END,
    g % 2 = 0, g, g * 10000000000::bigint,
    CASE g WHEN 1 THEN 'NaN'::real WHEN 2 THEN 'Infinity' ELSE g END,
    CASE g WHEN 1 THEN '-Infinity'::float8 WHEN 2 THEN 'NaN' ELSE g / 8.0 END,
    'text ' || g, 'c' || g, 'ab', g
FROM generate_series(1, {ROWS}) g;
INSERT INTO everything (id) VALUES ({ROWS + 1}), ({ROWS + 2});
"""

LEFT_OUT = {
    "doc": "type json: JSON documents are not modelled", "docb": "type jsonb: JSON documents are not modelled",
    "ints": "type integer[]: arrays are not modelled", "texts": "type text[]: arrays are not modelled",
    "raw": "type bytea: binary data is not modelled", "flags": "type bit(3): bit strings are not modelled",
    "vflags": "type varbit: bit strings are not modelled", "x": "type xml: XML documents are not modelled",
    "pt": "type point: geometric values are not modelled", "box_": "type box: geometric values are not modelled",
    "tsv": "type tsvector: text-search values are not modelled", "rng": "type int4range: ranges are not modelled",
}
KEPT = {  # column: (pandas dtype, source type)
    "id": ("int64", "integer"), "uid": ("object", "uuid"), "span": ("float64", "interval"),
    "cash": ("float64", "money"), "amount": ("float64", "numeric(10,2)"), "ratio": ("float64", "numeric"),
    "feeling": ("object", "enum"), "ip": ("object", "inet"), "net": ("object", "cidr"), "mac": ("object", "macaddr"),
    "at_tz": ("datetime64[us, UTC]", "timestamptz"), "at": ("datetime64[us]", "timestamp"), "t": ("float64", "time"),
    "ttz": ("float64", "timetz"), "d": ("object", "date"), "flag": ("boolean", "boolean"),
    "small": ("float64", "smallint"), "big": ("float64", "bigint"), "r": ("float64", "real"),
    "dbl": ("float64", "double precision"), "body": ("object", "text"), "code": ("object", "varchar(10)"),
    "fixed": ("object", "char(4)"), "pos": ("float64", "integer"),  # NULL rows: integers as float64
}


@pytest.fixture()
def pg_everything(pg_database):
    raw = sa.create_engine(pg_database).raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.execute(PG_DDL)
        raw.commit()
    finally:
        raw.close()
    return pg_database


def _rows(sample):
    return pd.concat([sample.training, sample.holdout]).sort_values("id").set_index("id")


def test_every_postgresql_type_is_read_as_a_modelled_value_or_left_out_with_a_reason(pg_everything, audit_url):
    sample = read_sample(pg_everything, SampleRequest(table="everything", seed=1), audit_url=audit_url)
    assert audit.read_records(audit_url)[0]["outcome"] == "ok"
    assert sample.left_out_columns == LEFT_OUT
    frame = _rows(sample)
    assert sample.columns == [c for c in KEPT]  # table order, the left-out columns gone
    assert {c: str(frame[c].dtype) for c in frame.columns} == {c: d for c, (d, _) in KEPT.items() if c != "id"}
    assert sample.source_types == {c: t for c, (_, t) in KEPT.items()}
    # Nothing unhashable or unmodelled: every column can be counted, hashed, described.
    for column in frame.columns:
        frame[column].nunique(dropna=False)
    pd.util.hash_pandas_object(frame.astype(str))

    row = frame.loc
    assert row[4, "uid"].count("-") == 4 and row[7, "feeling"] == ("sad", "ok", "happy")[7 % 3]
    assert row[7, "ip"] == "10.0.0.7" and row[7, "net"] == "10.0.0.0/8" and row[7, "mac"] == "08:00:2b:01:02:03"
    assert row[2, "span"] == 2 * 86400 + 3600 and row[6, "cash"] == 9.0 and row[3, "amount"] == 3.75
    assert row[6, "ratio"] == 1.5 and row[6, "t"] == 12.5 * 3600 and row[6, "ttz"] == 23 * 3600
    assert bool(row[6, "flag"]) is True and bool(row[7, "flag"]) is False and row[8, "big"] == 8e10
    assert row[6, "fixed"] == "ab  " and row[6, "code"] == "c6" and row[6, "pos"] == 6
    # real NaN / ±Infinity stay float values
    assert math.isnan(row[1, "r"]) and row[2, "r"] == math.inf and row[1, "dbl"] == -math.inf and math.isnan(row[2, "dbl"])
    # dates: infinities and out-of-range dates at the representable ends, sentinels as they are
    assert [row[i, "d"] for i in range(1, 7)] == [
        dt.date(9999, 12, 31), dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(1, 1, 1), dt.date(1, 1, 1), dt.date(2024, 1, 7)]
    assert "infinity" in sample.conversions["d"] and "9999-12-31" in sample.conversions["d"]
    assert row[1, "at"] == pd.Timestamp("9999-12-31 23:59:59.999999") and row[2, "at"] == pd.Timestamp("0001-01-01")
    assert row[3, "at"] == pd.Timestamp("9999-12-31 23:59:59") and row[4, "at"] == pd.Timestamp("2024-03-01 16:00")
    # timestamptz: UTC, whatever the session's time zone; 0001-01-01 00:00+05 is 1 BC in UTC: clamped
    assert row[1, "at_tz"] == pd.Timestamp("9999-12-31 23:59:59.999999", tz="UTC")
    assert row[2, "at_tz"] == row[3, "at_tz"] == pd.Timestamp("0001-01-01", tz="UTC")
    assert row[4, "at_tz"] == pd.Timestamp("2024-03-05 10:00", tz="UTC")
    assert "seconds" in sample.conversions["span"] and "UTC" in sample.conversions["at_tz"]
    # NULLs stay missing in every kept column
    assert frame.loc[[ROWS + 1, ROWS + 2]].isna().all().all()


def test_postgresql_timestamptz_is_utc_whatever_the_session_time_zone(pg_everything, audit_url):
    url = sa.make_url(pg_everything).update_query_dict({"options": "-c TimeZone=Asia/Kolkata"}).render_as_string(hide_password=False)
    sample = read_sample(url, SampleRequest(table="everything", columns=("id", "at_tz", "ttz"), seed=1), audit_url=audit_url)
    frame = _rows(sample)
    assert frame.loc[4, "at_tz"] == pd.Timestamp("2024-03-05 10:00", tz="UTC") and frame.loc[4, "ttz"] == 23 * 3600


@pytest.mark.parametrize(
    ("fields", "column", "kind"),
    [
        ({"columns": ("id", "docb")}, "docb", "jsonb"),
        ({"columns": ("ints",)}, "ints", r"integer\[\]"),
        ({"stratify_by": "rng"}, "rng", "int4range"),
        ({"filters": (Filter("raw", "=", "x"),)}, "raw", "bytea"),
    ],
)
def test_naming_a_column_of_an_unmodelled_type_is_refused_with_the_alternatives(pg_everything, audit_url, fields, column, kind):
    with pytest.raises(SourceError, match=rf"'{column}' \(type {kind}: .* not modelled\)\. Supported types: .*cast them in a view"):
        read_sample(pg_everything, SampleRequest(table="everything", **fields), audit_url=audit_url)
    (record,) = audit.read_records(audit_url)
    assert record["outcome"] == "refused"


def test_unmodelled_columns_can_still_be_tested_for_null_and_converted_ones_stratified(pg_everything, audit_url):
    sample = read_sample(
        pg_everything,
        SampleRequest(table="everything", columns=("id", "feeling", "d"), filters=(Filter("doc", "is not null"),),
                      stratify_by="feeling", max_rows=21, seed=2),
        audit_url=audit_url,
    )
    frame = _rows(sample)
    assert len(frame) == 21 and frame.index.max() <= ROWS  # the NULL rows filtered out
    assert frame["feeling"].value_counts().to_dict() == {"sad": 7, "ok": 7, "happy": 7}
    dated = read_sample(pg_everything, SampleRequest(table="everything", columns=("id", "d"), stratify_by="d", seed=2), audit_url=audit_url)
    assert _rows(dated)["d"].value_counts()[dt.date(9999, 12, 31)] == 2  # infinity and 9999-12-31: one stratum


# ----------------------------------------------------------------------------------------------------- SQLite


@pytest.fixture()
def sqlite_loose(tmp_path):
    url = f"sqlite:///{tmp_path / 'loose.sqlite'}"
    conn = sa.create_engine(url).raw_connection()
    conn.execute(
        "CREATE TABLE loose (id INTEGER PRIMARY KEY, photo BLOB, mixed, stamp DATETIME, junk_stamp DATETIME, "
        "day DATE, at_tz TIMESTAMP, clock TIME, flag BOOLEAN, amount NUMERIC(10,2), label VARCHAR(20), "
        "typeless, score REAL, count_ INTEGER, sneaky TEXT)"
    )
    for i in range(1, ROWS + 1):
        conn.execute(
            "INSERT INTO loose VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (i, b"\x00\xff", i if i % 2 else f"t{i}", f"2024-03-{i % 28 + 1:02d} 10:{i % 60:02d}:00",
             "yesterday" if i == 5 else "2024-01-01T00:00:00", "9999-12-31" if i == 1 else f"2024-02-{i % 28 + 1:02d}",
             f"2024-03-01T12:00:00+0{i % 3}:00", f"0{i % 10}:30:00", i % 2, i * 1.5 if i % 2 else i, f"name {i}",
             None if i == 3 else i / 3, float("inf") if i == 1 else i / 7, None if i == 2 else i,
             b"\x01" if i == 9 else f"s{i}"),
        )
    conn.execute("CREATE VIEW loose_view AS SELECT id, stamp, mixed, amount FROM loose")
    conn.commit()
    conn.close()
    return url


def test_sqlite_loose_typing_is_read_by_the_values_or_left_out(sqlite_loose, audit_url):
    sample = read_sample(sqlite_loose, SampleRequest(table="loose", seed=1), audit_url=audit_url)
    assert sample.left_out_columns == {
        "photo": "declared BLOB: binary data is not modelled",
        "sneaky": "holds BLOB (binary) values, which are not modelled",
    }
    frame = _rows(sample)
    assert {c: str(frame[c].dtype) for c in frame.columns} == {
        "mixed": "object", "stamp": "datetime64[us]", "junk_stamp": "object", "day": "object",
        "at_tz": "datetime64[us, UTC]", "clock": "float64", "flag": "boolean", "amount": "float64",
        "label": "object", "typeless": "float64", "score": "float64", "count_": "float64",
    }
    assert sample.source_types["stamp"] == "DATETIME" and sample.source_types["amount"] == "NUMERIC(10,2)"
    assert frame.loc[3, "mixed"] == "3" and frame.loc[4, "mixed"] == "t4" and "read as text" in sample.conversions["mixed"]
    assert frame.loc[5, "junk_stamp"] == "yesterday" and "not ISO-8601" in sample.conversions["junk_stamp"]
    assert frame.loc[1, "day"] == dt.date(9999, 12, 31) and frame.loc[2, "day"] == dt.date(2024, 2, 3)
    assert frame.loc[1, "at_tz"] == pd.Timestamp("2024-03-01 11:00", tz="UTC")
    assert frame.loc[4, "stamp"] == pd.Timestamp("2024-03-05 10:04") and frame.loc[3, "clock"] == 3.5 * 3600
    assert bool(frame.loc[3, "flag"]) is True and frame.loc[1, "score"] == math.inf and np.isnan(frame.loc[3, "typeless"])
    assert frame.loc[2, "amount"] == 2 and frame.loc[3, "amount"] == 4.5 and np.isnan(frame.loc[2, "count_"])
    with pytest.raises(SourceError, match=r"'sneaky' \(holds BLOB \(binary\) values"):
        read_sample(sqlite_loose, SampleRequest(table="loose", columns=("id", "sneaky"), seed=1), audit_url=audit_url)
    with pytest.raises(SourceError, match=r"'photo' \(declared BLOB: binary data is not modelled\)"):
        read_sample(sqlite_loose, SampleRequest(table="loose", columns=("id", "photo"), seed=1), audit_url=audit_url)
    view = read_sample(sqlite_loose, SampleRequest(table="loose_view", seed=1), audit_url=audit_url)
    assert str(_rows(view)["stamp"].dtype) == "datetime64[us]" and view.rows_returned == ROWS
