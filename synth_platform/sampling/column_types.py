"""How each source column type is read: converted to a value the rest of the pipeline can model, or left out with a
stated reason. Pure logic: no Dagster here; the catalog is read through a SQLAlchemy connection the caller holds.

Every column of the relation gets a `ColumnPlan`: its source SQL type (`source_type`, recorded on `SourceSample.
source_types` so later stages can restore the type), how it is read (`handling`: the SQL expression selected and the
pandas dtype built from the driver's values), and, when it is not read, why (`left_out`, recorded on
`SourceSample.left_out_columns`). A request that names a left-out column (columns, stratify_by, noise, a filter
comparing its values) is refused before the read; a column is never read only to crash later (a `json` column's
dicts broke hashing after an audited "ok" read).

PostgreSQL (the base type decides: a domain is read as its base type):

==========================================  ======================================  ====================================
type                                        read as (pandas dtype)                  conversion
==========================================  ======================================  ====================================
smallint, integer, bigint                   int64 (float64 when a NULL is read)     none
real, double precision                      float64                                 none: NaN and ±Infinity stay
numeric / decimal                           float64                                 Decimal → float (NaN, ±Infinity
                                                                                    stay; beyond float range: ±inf)
money                                       float64                                 CAST(… AS numeric) in SQL, → float
boolean                                     boolean (pandas' nullable)              none
text, varchar(n), char(n), name, citext     object (str)                            none (char(n) keeps its padding)
enum                                        object (str: the label)                 CAST(… AS text) in SQL
uuid                                        object (str: PostgreSQL's text form)    CAST(… AS text) in SQL
inet, cidr, macaddr, macaddr8               object (str: PostgreSQL's text form,    none (the driver returns the text
                                            e.g. 10.0.0.1, 10.0.0.0/8)              form; `::text` would add /32)
date                                        object (datetime.date)                  clamped in SQL to 0001-01-01 …
                                                                                    9999-12-31: -infinity and BC dates
                                                                                    → 0001-01-01, infinity and years
                                                                                    past 9999 → 9999-12-31
timestamp                                   datetime64[us]                          clamped in SQL to 0001-01-01
                                                                                    00:00:00 … 9999-12-31
                                                                                    23:59:59.999999 (±infinity to the
                                                                                    ends, as for date)
timestamptz                                 datetime64[us, UTC]                     timezone('UTC', …) in SQL (the
                                                                                    session's TimeZone does not
                                                                                    matter), then clamped as timestamp
time                                        float64: seconds since midnight         EXTRACT(EPOCH FROM …)
timetz                                      float64: seconds since midnight UTC     EXTRACT(EPOCH FROM timezone('UTC',
                                                                                    …)): the offset is applied
interval                                    float64: seconds                        EXTRACT(EPOCH FROM …): a month
                                                                                    counts 30 days, a year 365.25
json, jsonb                                 left out                                JSON documents are not modelled
arrays (int[], text[], …)                   left out                                arrays are not modelled
bytea                                       left out                                binary data is not modelled
xml                                         left out                                XML documents are not modelled
point, line, lseg, box, path, polygon,      left out                                geometric values are not modelled
circle
tsvector, tsquery                           left out                                text-search values are not modelled
range and multirange types                  left out                                ranges are not modelled
bit(n), bit varying(n)                      left out                                bit strings are not modelled
composite and any other type                left out                                the type is not modelled
==========================================  ======================================  ====================================

pandas' datetime64[ns] holds only the years 1677-2262, so sentinel dates (0001-01-01, 9999-12-31) would not fit:
timestamps use microseconds (datetime64[us], the unit PostgreSQL stores) and dates stay `datetime.date` objects,
as the pipeline has always received them. Which values were clamped, or how a column was converted, is written to
`SourceSample.conversions` (column → text).

SQLite stores any value in any column (its declared type is an affinity, not a rule), so a column is read as the
values sqlite3 returns, without SQLAlchemy's type processing (whose DATETIME parser raises on text it does not
expect), and its dtype follows the values read:

==========================================  ====================================================================
declared type / values read                 read as
==========================================  ====================================================================
BLOB (declared)                             left out before the read: binary data is not modelled
any column holding a BLOB value             left out (the values read decide; a request naming it is refused)
integers only                               int64 (float64 when a NULL is read)
integers and reals                          float64
text only                                   object (str)
numbers and text mixed                      object (str): the numbers read as text, recorded in `conversions`
BOOLEAN / BOOL holding 0 and 1              boolean (pandas' nullable)
DATE holding ISO-8601 dates (YYYY-MM-DD)    object (datetime.date)
DATETIME / TIMESTAMP / DATE holding         datetime64[us] (datetime64[us, UTC] when every value has an offset,
ISO-8601 date-times                         converted to UTC)
TIME holding ISO-8601 times                 float64: seconds since midnight
a date/time type holding anything else      as read (text or numbers), the mismatch recorded in `conversions`
==========================================  ====================================================================

Other databases: values as their driver returns them, Decimal → float; a column holding values the pipeline cannot
model (dicts, lists, bytes) is left out.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

# How a column is read (ColumnPlan.handling).
INTEGER, FLOAT, DECIMAL, MONEY, BOOLEAN, TEXT, AS_TEXT = "integer", "float", "decimal", "money", "boolean", "text", "as_text"
DATE, TIMESTAMP, TIMESTAMPTZ, TIME, TIMETZ, INTERVAL = "date", "timestamp", "timestamptz", "time", "timetz", "interval"
SQLITE = "sqlite"  # SQLite: the values decide (see the module text)
DRIVER = "driver"  # other databases, or a plan made without the catalog: as the driver returns them

SUPPORTED_TYPES = (
    "smallint, integer, bigint, real, double precision, numeric, money, boolean, text, varchar, char, enum, uuid, "
    "inet, cidr, macaddr, date, timestamp, timestamptz, time, timetz, interval"
)

_PG_HANDLING = {
    "int2": INTEGER, "int4": INTEGER, "int8": INTEGER, "float4": FLOAT, "float8": FLOAT, "numeric": DECIMAL,
    "money": MONEY, "bool": BOOLEAN, "text": TEXT, "varchar": TEXT, "bpchar": TEXT, "name": TEXT, "char": TEXT,
    "citext": TEXT, "uuid": AS_TEXT, "inet": TEXT, "cidr": TEXT, "macaddr": TEXT, "macaddr8": TEXT,
    "date": DATE, "timestamp": TIMESTAMP, "timestamptz": TIMESTAMPTZ, "time": TIME, "timetz": TIMETZ,
    "interval": INTERVAL,
}
_PG_LEFT_OUT = {
    "json": "JSON documents are not modelled", "jsonb": "JSON documents are not modelled",
    "bytea": "binary data is not modelled", "xml": "XML documents are not modelled",
    "tsvector": "text-search values are not modelled", "tsquery": "text-search values are not modelled",
    "bit": "bit strings are not modelled", "varbit": "bit strings are not modelled",
}
_PG_LEFT_OUT_CATEGORY = {"A": "arrays are not modelled", "G": "geometric values are not modelled"}
_PG_LEFT_OUT_KIND = {"r": "ranges are not modelled", "m": "ranges are not modelled",
                     "c": "composite (row) values are not modelled", "p": "pseudo-type values are not modelled"}
_SHORT_NAMES = (
    (re.compile(r"^character varying"), "varchar"), (re.compile(r"^character\b"), "char"),
    (re.compile(r"^bit varying"), "varbit"),
    (re.compile(r"^timestamp(\(\d+\))? with time zone"), r"timestamptz\1"),
    (re.compile(r"^timestamp(\(\d+\))? without time zone"), r"timestamp\1"),
    (re.compile(r"^time(\(\d+\))? with time zone"), r"timetz\1"),
    (re.compile(r"^time(\(\d+\))? without time zone"), r"time\1"),
)

DATE_MIN, DATE_MAX = dt.date(1, 1, 1), dt.date(9999, 12, 31)
TIMESTAMP_MIN, TIMESTAMP_MAX = dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
_CLAMP_NOTE = {
    DATE: "-infinity and dates before 0001-01-01 read as 0001-01-01, infinity and dates after 9999-12-31 as 9999-12-31",
    TIMESTAMP: "-infinity and times before 0001-01-01 00:00:00 read as that, infinity and times after "
               "9999-12-31 23:59:59.999999 as that",
}
_CONVERSIONS = {
    DECIMAL: "numeric values as float64",
    MONEY: "money cast to numeric in SQL, read as float64 (the currency symbol is dropped)",
    AS_TEXT: "read as text (PostgreSQL's text form)",
    DATE: "datetime.date objects; " + _CLAMP_NOTE[DATE],
    TIMESTAMP: "datetime64[us]; " + _CLAMP_NOTE[TIMESTAMP],
    TIMESTAMPTZ: "converted to UTC in SQL, datetime64[us, UTC]; " + _CLAMP_NOTE[TIMESTAMP],
    TIME: "seconds since midnight (float64)",
    TIMETZ: "seconds since midnight UTC (float64; the offset applied)",
    INTERVAL: "seconds (float64; a month counts 30 days, a year 365.25 days)",
}


@dataclass(frozen=True)
class ColumnPlan:
    """How one column is read: `handling` (see the constants above), or `left_out` with the reason."""

    name: str
    source_type: str
    handling: str = DRIVER
    left_out: str = ""
    conversion: str = ""  # what the read does to the values ("" when nothing)
    unreadable: bool = False  # left out because the role may not SELECT it (PostgreSQL column privileges)

    @property
    def kept(self) -> bool:
        return not self.left_out

    def with_left_out(self, reason: str, unreadable: bool = False) -> ColumnPlan:
        return ColumnPlan(self.name, self.source_type, self.handling, reason, self.conversion, unreadable)


def short_pg_type(declared: str) -> str:
    """PostgreSQL's `format_type` text in its short spelling: varchar(20), char(5), timestamptz, timetz(3), varbit."""
    for pattern, short in _SHORT_NAMES:
        declared = pattern.sub(short, declared)
    return declared


def pg_plan(name: str, declared: str, typname: str, typtype: str, typcategory: str) -> ColumnPlan:
    """The plan for a PostgreSQL column of base type `typname` (`format_type` text `declared`, pg_type's
    typtype and typcategory)."""
    short = short_pg_type(declared)
    if typtype == "e":
        return ColumnPlan(name, "enum", AS_TEXT, conversion="enum label as text")
    reason = _PG_LEFT_OUT_KIND.get(typtype) or _PG_LEFT_OUT_CATEGORY.get(typcategory) or _PG_LEFT_OUT.get(typname)
    if reason:
        return ColumnPlan(name, short, "", left_out=f"type {short}: {reason}")
    handling = _PG_HANDLING.get(typname)
    if handling is None and typcategory == "S":
        handling = TEXT
    if handling is None:
        return ColumnPlan(name, short, "", left_out=f"type {short}: the type is not modelled")
    return ColumnPlan(name, short, handling, conversion=_CONVERSIONS.get(handling, ""))


def sqlite_plan(name: str, declared: str) -> ColumnPlan:
    if "BLOB" in declared.upper():
        return ColumnPlan(name, declared, "", left_out=f"declared {declared}: binary data is not modelled")
    return ColumnPlan(name, declared, SQLITE)


def type_refusal(table: str, plans: list[ColumnPlan]) -> str:
    """The message refusing a request that names columns left out for their type (no values, only types)."""
    listed = ", ".join(f"{p.name!r} ({p.left_out})" for p in plans)
    return (
        f"The request names columns of {table!r} whose type the platform does not read: {listed}. Supported types: "
        f"{SUPPORTED_TYPES}. Leave them out of the request, or cast them in a view (e.g. CREATE VIEW … AS SELECT "
        "doc->>'field' AS field, …) and read the view."
    )


# ------------------------------------------------------------------------------------------------ SQL side


def _lit(sql: str, type_: Any) -> sa.ColumnElement:
    return sa.literal_column(sql, type_=type_)


def _clamped(expr: sa.ColumnElement, low: sa.ColumnElement, high: sa.ColumnElement) -> sa.ColumnElement:
    return sa.case((expr < low, low), (expr > high, high), else_=expr)


def column_expression(plan: ColumnPlan, column: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """What the SELECT reads for `column` (unlabelled). Outside `DRIVER` the result bypasses SQLAlchemy's type
    processing: the driver's values reach `column_series`, which converts them."""
    handling = plan.handling
    if handling == DRIVER:
        return column
    expr: sa.ColumnElement = column
    if dialect == "postgresql":
        if handling == MONEY:
            expr = sa.cast(column, sa.Numeric)
        elif handling == AS_TEXT:
            expr = sa.cast(column, sa.Text)
        elif handling == DATE:
            expr = _clamped(column, _lit("DATE '0001-01-01'", sa.Date), _lit("DATE '9999-12-31'", sa.Date))
        elif handling in (TIMESTAMP, TIMESTAMPTZ):
            if handling == TIMESTAMPTZ:
                expr = sa.func.timezone(_lit("'UTC'", sa.Text), column, type_=sa.DateTime)
            expr = _clamped(expr, _lit("TIMESTAMP '0001-01-01 00:00:00'", sa.DateTime),
                            _lit("TIMESTAMP '9999-12-31 23:59:59.999999'", sa.DateTime))
        elif handling in (TIME, INTERVAL):
            expr = sa.extract("epoch", column)
        elif handling == TIMETZ:
            expr = sa.extract("epoch", sa.func.timezone(_lit("'UTC'", sa.Text), column, type_=sa.Time))
    return sa.type_coerce(expr, sa.types.NullType())


# --------------------------------------------------------------------------------------------- Python side

_MODELLABLE = (str, int, float, bool, decimal.Decimal, dt.date, dt.datetime, dt.time, dt.timedelta, uuid.UUID,
               np.generic)


def column_series(plan: ColumnPlan, values: list[Any]) -> tuple[pd.Series | None, str, str]:
    """The pandas column for `values` read by `plan`: (series, conversion note, "") or, when the values cannot be
    modelled, (None, "", the reason it is left out). Never raises on a value: what it cannot convert it leaves out."""
    handling = plan.handling
    if handling == INTEGER:
        return _inferred(values), plan.conversion, ""
    if handling in (TEXT, AS_TEXT):
        return pd.Series([v if v is None or isinstance(v, str) else str(v) for v in values], dtype=object), plan.conversion, ""
    if handling == DATE:
        return pd.Series(values, dtype=object), plan.conversion, ""
    if handling == FLOAT:
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64"), plan.conversion, ""
    if handling in (DECIMAL, MONEY, TIME, TIMETZ, INTERVAL):
        return pd.Series([_float(v) for v in values], dtype="float64"), plan.conversion, ""
    if handling == BOOLEAN:
        return pd.Series(values, dtype="boolean"), plan.conversion, ""
    if handling in (TIMESTAMP, TIMESTAMPTZ):
        series = _timestamps(values)
        if handling == TIMESTAMPTZ:
            series = series.dt.tz_localize("UTC")
        return series, plan.conversion, ""
    if handling == SQLITE:
        return _sqlite_series(plan, values)
    return _driver_series(values)


def _has(values: list[Any], kind: type) -> bool:
    return any(isinstance(v, kind) for v in values)


def _float(value: Any) -> float:
    if value is None:
        return np.nan
    try:
        return float(value)
    except (OverflowError, ValueError, decimal.InvalidOperation):
        return np.nan


def _inferred(values: list[Any]) -> pd.Series:
    """Numbers as pandas infers them (int64, or float64 when a value is missing), as `DataFrame.from_records` did."""
    if values and all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in values):
        if any(v is not None for v in values):
            return pd.Series(values, dtype="float64" if None in values else "int64")
    return pd.Series(values, dtype=object) if not values or all(v is None for v in values) else pd.Series(values)


def _timestamps(values: list[Any], utc: bool = False) -> pd.Series:
    """datetime64[us] from datetime objects (None → NaT); aware ones converted to UTC when `utc`."""
    naive = []
    for v in values:
        if v is None:
            naive.append(None)
        elif utc and v.tzinfo is not None:
            naive.append(v.astimezone(dt.timezone.utc).replace(tzinfo=None))
        else:
            naive.append(v)
    return pd.Series(np.array(naive, dtype="datetime64[us]"))


def _driver_series(values: list[Any]) -> tuple[pd.Series | None, str, str]:
    bad = next((v for v in values if v is not None and not isinstance(v, _MODELLABLE)), None)
    if bad is not None:
        return None, "", f"holds {type(bad).__name__} values, which are not modelled"
    if _has(values, decimal.Decimal):
        return pd.Series([_float(v) for v in values], dtype="float64"), "numeric values as float64", ""
    if _has(values, uuid.UUID):
        return pd.Series([None if v is None else str(v) for v in values], dtype=object), "read as text", ""
    return _inferred(values), "", ""


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _sqlite_series(plan: ColumnPlan, values: list[Any]) -> tuple[pd.Series | None, str, str]:
    non_null = [v for v in values if v is not None]
    if any(isinstance(v, bytes) for v in non_null):
        return None, "", "holds BLOB (binary) values, which are not modelled"
    declared = plan.source_type.upper()
    numbers = [v for v in non_null if isinstance(v, (int, float))]
    texts = [v for v in non_null if isinstance(v, str)]
    if "BOOL" in declared and non_null and not texts and all(v in (0, 1) for v in numbers):
        return pd.Series([None if v is None else bool(v) for v in values], dtype="boolean"), "0/1 read as boolean", ""
    if ("DATE" in declared or "TIME" in declared) and non_null:
        converted = _sqlite_datetimes(declared, values) if not numbers else None
        if converted is not None:
            return converted
        mismatch = f"declared {plan.source_type} but holds values that are not ISO-8601 text: kept as read"
        series, note, _ = _sqlite_plain(values, numbers, texts)
        return series, "; ".join(n for n in (mismatch, note) if n), ""
    return _sqlite_plain(values, numbers, texts)


def _sqlite_plain(values: list[Any], numbers: list[Any], texts: list[Any]) -> tuple[pd.Series, str, str]:
    if numbers and texts:
        shown = [None if v is None else (v if isinstance(v, str) else repr(v)) for v in values]
        return pd.Series(shown, dtype=object), "numbers and text mixed: the numbers read as text", ""
    if numbers and any(isinstance(v, float) for v in numbers):
        return pd.Series([np.nan if v is None else float(v) for v in values], dtype="float64"), "", ""
    if texts:
        return pd.Series(values, dtype=object), "", ""
    return _inferred(values), "", ""


def _sqlite_datetimes(declared: str, values: list[Any]) -> tuple[pd.Series, str, str] | None:
    """ISO-8601 text in a date/time column as dates, timestamps or seconds since midnight; None when any value is
    not such text."""
    texts = [v.strip() if isinstance(v, str) else None for v in values]
    try:
        if "DATE" not in declared and "TIMESTAMP" not in declared:  # TIME
            times = [None if t is None else dt.time.fromisoformat(t) for t in texts]
            seconds = [np.nan if t is None else t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6 for t in times]
            return pd.Series(seconds, dtype="float64"), "ISO-8601 times as seconds since midnight (float64)", ""
        if declared.startswith("DATE") and "TIME" not in declared and all(t is None or _ISO_DATE.match(t) for t in texts):
            return (pd.Series([None if t is None else dt.date.fromisoformat(t) for t in texts], dtype=object),
                    "ISO-8601 dates as datetime.date objects", "")
        stamps = [None if t is None else dt.datetime.fromisoformat(t) for t in texts]
    except ValueError:
        return None
    aware = {s.tzinfo is not None for s in stamps if s is not None}
    if len(aware) > 1:
        return None  # offsets on some values only: not one kind of timestamp
    if aware == {True}:
        return _timestamps(stamps, utc=True).dt.tz_localize("UTC"), "ISO-8601 date-times with offsets, converted to UTC (datetime64[us, UTC])", ""
    return _timestamps(stamps), "ISO-8601 date-times as datetime64[us]", ""


def frame_from_rows(
    rows: list[Any], keys: list[str], plans: dict[str, ColumnPlan]
) -> tuple[pd.DataFrame, dict[str, str], dict[str, str]]:
    """The sample as a DataFrame, each column converted by its plan: (frame, conversions: column → what was done to
    its values, left out: column → why, for columns whose values cannot be modelled)."""
    data: dict[str, pd.Series] = {}
    conversions: dict[str, str] = {}
    left_out: dict[str, str] = {}
    for index, name in enumerate(keys):
        plan = plans.get(name) or ColumnPlan(name, "", DRIVER)
        series, note, reason = column_series(plan, [row[index] for row in rows])
        if series is None:
            left_out[name] = reason
            continue
        data[name] = series.reset_index(drop=True)
        if note:
            conversions[name] = note
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(rows))) if data else pd.DataFrame(index=pd.RangeIndex(len(rows)))
    return frame, conversions, left_out
