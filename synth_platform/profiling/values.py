"""Reading a column's values whatever form the source gives them in, and writing them back in that form.

Pure logic: no Dagster here. A sampled table can hold Python objects pandas leaves as they are (DATE columns arrive
as `datetime.date`, NUMERIC as `Decimal`, UUID as `uuid.UUID`, INTERVAL as `timedelta`), datetimes outside
pandas' datetime64[ns] years 1677-2262 (the sentinel 9999-12-31), infinities, and values no generator can learn
(bytes, JSON documents). This module decides how each column is read (`read_plan`), converts it (`convert`), reads
numbers and datetimes as floats (`as_number`: datetimes as seconds since 1970 in UTC, in any year), and turns
seconds back into the column's own datetime form (`seconds_to_datetimes`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
import warnings
from typing import Any

import numpy as np
import pandas as pd

from synth_platform.profiling.columns import ProfileError

EPOCH = dt.datetime(1970, 1, 1)
EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
EPOCH_DATE = dt.date(1970, 1, 1)
PYTHON_MIN_S = (dt.datetime.min - EPOCH).total_seconds()  # 0001-01-01
PYTHON_MAX_S = (dt.datetime(9999, 12, 31, 23, 59, 59) - EPOCH).total_seconds()
NS_MIN_S = pd.Timestamp.min.value / 1e9  # pandas datetime64[ns]: 1677-09-21 … 2262-04-11
NS_MAX_S = pd.Timestamp.max.value / 1e9
# A date this far out is a sentinel ("no end", "unknown"), not a date something happened on.
SENTINEL_FROM_S = (dt.datetime(9000, 1, 1) - EPOCH).total_seconds()
SENTINEL_BEFORE_S = (dt.datetime(1001, 1, 1) - EPOCH).total_seconds()
REPRESENTABLE_LIMITS_S = frozenset({float(np.floor(NS_MIN_S)), float(np.floor(NS_MAX_S))})
MAX_SENTINELS = 3  # more distinct far-out dates than this: the column's values really span that far
UNITS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
ISO_DATE_START = re.compile(r"^\d{4}-\d{2}-\d{2}")
DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# How a column's values are read before profiling (ColumnProfile.conversion), the same way for every frame of it.
CONVERSIONS = {
    "": "as they are",
    "numeric": "numbers held as Python objects, read as floats",
    "decimal": "Decimal values read as floats",
    "uuid": "UUID values read as text",
    "bool": "read as booleans (SQL type boolean)",
    "timedelta": "durations, modelled as seconds and restored as durations",
    "category": "pandas categories read as their values",
}
BOOLEAN_TRUE = frozenset({"true", "t", "yes", "y", "1", "1.0", "on"})
BOOLEAN_FALSE = frozenset({"false", "f", "no", "n", "0", "0.0", "off"})
# SQL types (the sampler's source_types) whose values no generator can learn, whatever pandas holds them as.
UNSUPPORTED_SQL_TYPES = ("bytea", "blob", "binary", "varbinary", "json", "jsonb", "xml", "array", "tsvector", "geometry",
                         "geography", "point", "polygon", "line", "box", "circle", "path", "hstore")
_UNSUPPORTED_VALUE_TYPES: tuple[tuple[type, str], ...] = (
    ((bytes, bytearray, memoryview), "binary data (bytes)"),
    ((dict,), "documents (dict / JSON objects)"),
    ((list, tuple, set, frozenset, np.ndarray), "lists or arrays"),
    ((dt.time,), "times of day without a date"),
    ((complex, np.complexfloating), "complex numbers"),
)


def value_shape(value: Any) -> str:
    """A source value's shape without its content, for messages: letters become a/A, digits 9 (`'Jo-12'` →
    `'Aa-99'`), at most 40 characters. Errors may show what a bad value looks like, never the value."""
    text = str(value)[:40]
    return "".join("9" if c.isdigit() else ("A" if c.isupper() else "a") if c.isalpha() else c for c in text)


def sql_type(source_type: str) -> tuple[str, int | None]:
    """("numeric", 2) for "NUMERIC(10,2)": the base type, lower case, and the scale where one is given."""
    text = " ".join(str(source_type).strip().lower().split())
    if text.endswith("[]") or text.startswith("_"):  # PostgreSQL arrays: int[] or _int4
        return "array", None
    match = re.match(r"^([a-z_ ]+?)\s*(?:\((\d+)\s*(?:,\s*(-?\d+))?\))?(\s.*)?$", text)
    if not match:
        return text, None
    base = match.group(1).strip()
    rest = (match.group(4) or "").strip()
    if base in ("timestamp", "time") and "with time zone" in rest:
        base += "tz"
    aliases = {
        "timestamp with time zone": "timestamptz", "timestamp without time zone": "timestamp", "bool": "boolean",
        "decimal": "numeric", "character varying": "varchar", "user-defined": "enum", "user_defined": "enum",
        "interval day to second": "interval", "interval year to month": "interval",
    }
    base = aliases.get(base, base)
    scale = int(match.group(3)) if base == "numeric" and match.group(3) is not None else None
    if base == "numeric" and match.group(2) is not None and match.group(3) is None:
        scale = 0  # numeric(p) has scale 0
    return base, scale


def read_plan(series: pd.Series, source_type: str = "") -> tuple[str, str]:
    """(conversion, reason to leave the column out): how to read the column before profiling it (a key of
    CONVERSIONS), or why no generator can learn it ("" when it can)."""
    base, _ = sql_type(source_type) if source_type else ("", None)
    dtype = series.dtype
    if base in UNSUPPORTED_SQL_TYPES:
        return "", f"SQL type {source_type}: values no tabular generator can learn"
    if isinstance(dtype, pd.CategoricalDtype):
        return "category", ""
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "timedelta", ""
    if pd.api.types.is_complex_dtype(dtype):
        return "", "complex numbers: no tabular generator can learn them"
    if isinstance(dtype, (pd.PeriodDtype, pd.IntervalDtype)) or isinstance(dtype, pd.SparseDtype):
        return "", f"values of pandas type {dtype}: not supported"
    if base == "boolean" and not pd.api.types.is_bool_dtype(dtype):
        return "bool", ""
    if dtype != object:
        return "", ""
    non_null = series.dropna()
    if not len(non_null):
        return "", ""
    kinds = {type(value) for value in non_null.head(5_000)} | {type(value) for value in non_null.tail(1_000)}
    for types, what in _UNSUPPORTED_VALUE_TYPES:
        if any(issubclass(kind, types) for kind in kinds):
            return "", f"{what}: no tabular generator can learn them"
    if all(issubclass(kind, uuid.UUID) for kind in kinds):
        return "uuid", ""
    if all(issubclass(kind, (dt.timedelta, np.timedelta64)) for kind in kinds):
        return "timedelta", ""
    numbers = [kind for kind in kinds if issubclass(kind, (int, float, decimal.Decimal, np.number)) and not issubclass(kind, (bool, np.bool_))]
    if numbers and len(numbers) == len(kinds):
        return ("decimal" if any(issubclass(kind, decimal.Decimal) for kind in kinds) else "numeric"), ""
    known = (str, bool, np.bool_, int, float, decimal.Decimal, np.number, dt.date, np.datetime64, uuid.UUID)
    odd = sorted(kind.__name__ for kind in kinds if not issubclass(kind, known))
    if odd:
        return "", f"values of type {', '.join(odd)}: not supported"
    return "", ""


def decimal_places(series: pd.Series) -> int | None:
    """The most decimal places of a column's Decimal values (its NUMERIC scale as read), None when it has none."""
    places = [
        -value.as_tuple().exponent for value in series.dropna()
        if isinstance(value, decimal.Decimal) and value.is_finite() and isinstance(value.as_tuple().exponent, int)
    ]
    return max(0, min(max(places), 15)) if places else None


def convert(series: pd.Series, conversion: str) -> pd.Series:
    """The column read as `read_plan` decided (idempotent: converting converted values changes nothing)."""
    if not conversion:
        return series
    if conversion in ("numeric", "decimal"):
        return pd.to_numeric(series, errors="coerce") if not pd.api.types.is_numeric_dtype(series.dtype) else series
    if conversion == "uuid":
        return series.astype(object).where(series.isna(), series.astype(str))
    if conversion == "category":
        return series.astype(object)
    if conversion == "timedelta":
        return series if pd.api.types.is_timedelta64_dtype(series.dtype) else pd.to_timedelta(series, errors="coerce")
    if conversion == "bool":
        if pd.api.types.is_bool_dtype(series.dtype):
            return series
        return series.astype(object).map(_as_bool, na_action="ignore").astype(object).where(series.notna(), None)
    raise ValueError(f"unknown conversion {conversion!r}")


def _as_bool(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in BOOLEAN_TRUE:
        return True
    if text in BOOLEAN_FALSE:
        return False
    return value  # left as it is: check_booleans names it


def check_booleans(series: pd.Series, name: str) -> None:
    """Refuse a column declared boolean that holds something else (message: the value's shape, never the value)."""
    odd = series.dropna()
    odd = odd[~odd.map(lambda value: isinstance(value, (bool, np.bool_)))]
    if len(odd):
        raise ProfileError(
            f"Column {name!r} has SQL type boolean but {len(odd)} value(s) are not true/false, e.g. one shaped "
            f"{value_shape(odd.iloc[0])!r}; fix the source's type or override it in column_types."
        )


# --- numbers and datetimes as floats ------------------------------------------------------------------------


def as_number(values: pd.Series, kind: str) -> np.ndarray:
    """Numbers as floats (durations as seconds); datetimes (parsed from text or Python objects when needed, in any
    year) as seconds since 1970 in UTC; NaN where unreadable."""
    if kind == "datetime":
        return datetime_seconds(values)
    if pd.api.types.is_timedelta64_dtype(values.dtype):
        return values.dt.total_seconds().to_numpy(dtype=float)
    if values.dtype == object:
        first = values.dropna().head(1)
        if len(first) and isinstance(first.iloc[0], (dt.timedelta, np.timedelta64)):
            return pd.to_timedelta(values, errors="coerce").dt.total_seconds().to_numpy(dtype=float)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def datetime_seconds(values: pd.Series) -> np.ndarray:
    """Seconds since 1970 (UTC for zoned values) of datetimes held as datetime64 of any unit, Python date /
    datetime objects or ISO text, in any year (9999-12-31 included); NaN for missing or unreadable values."""
    values = pd.Series(values) if not isinstance(values, pd.Series) else values
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return _datetime64_seconds(values)
    out = np.full(len(values), np.nan)
    present = values.notna().to_numpy()
    if not present.any():
        return out
    stamps = parse_datetimes(values)
    if pd.api.types.is_datetime64_any_dtype(stamps.dtype):
        out = _datetime64_seconds(stamps)
    slow = np.flatnonzero(present & np.isnan(out))  # outside datetime64[ns], or Python objects pandas left alone
    for position in slow:
        out[position] = _value_seconds(values.iat[position])
    return out


def _datetime64_seconds(stamps: pd.Series) -> np.ndarray:
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    array = stamps.to_numpy()
    unit, _ = np.datetime_data(array.dtype)
    seconds = array.view("int64").astype(float) / UNITS_PER_SECOND.get(unit, 1)
    seconds[np.isnat(array)] = np.nan
    return seconds


def _value_seconds(value: Any) -> float:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime() if value is not pd.NaT else None
    if value is None:
        return np.nan
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return np.nan
        return float(value.astype("datetime64[us]").astype("int64")) / 1e6
    if isinstance(value, str):
        text = value.strip()
        if not ISO_DATE_START.match(text):
            return np.nan
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            return np.nan
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return (value - EPOCH_UTC).total_seconds()
        return (value - EPOCH).total_seconds()
    if isinstance(value, dt.date):
        return float((value - EPOCH_DATE).days) * 86_400
    return np.nan


def parse_datetimes(values: pd.Series) -> pd.Series:
    """The values as pandas datetime64[ns] (UTC where offsets are mixed); NaT where that cannot hold a value."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' notices about mixed offsets and inferred formats, handled below
        stamps = pd.to_datetime(values, errors="coerce", format="ISO8601")
        if not pd.api.types.is_datetime64_any_dtype(stamps.dtype):  # mixed UTC offsets come back as objects: use UTC
            stamps = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    return stamps


def looks_like_datetime(values: pd.Series) -> bool:
    """Every probed value is a date: a Python date / datetime / numpy datetime64, or ISO text (YYYY-MM-DD…) that
    reads as one, in any year."""
    probe = values.dropna().head(500)
    if not len(probe):
        return False
    if probe.map(lambda value: isinstance(value, (dt.date, np.datetime64))).all():
        return True
    text = probe.astype(str)
    if not text.str.match(ISO_DATE_START).all():
        return False
    return not np.isnan(datetime_seconds(probe)).any()


def datetime_timezone(values: pd.Series) -> str | None:
    """The values' time zone (a name pandas can convert to; "UTC" for mixed offsets), or None for naive ones."""
    tz = getattr(values.dtype, "tz", None)
    if tz is None and not pd.api.types.is_datetime64_any_dtype(values.dtype):
        tz = getattr(parse_datetimes(values).dt, "tz", None)
        if tz is None:
            aware = {
                _zone_name(value.tzinfo) for value in values.dropna().head(2_000)
                if isinstance(value, dt.datetime) and value.tzinfo is not None
            }
            if aware:
                return aware.pop() if len(aware) == 1 else "UTC"
    return _zone_name(tz) if tz is not None else None


def _zone_name(tz: Any) -> str:
    name = getattr(tz, "key", None) or getattr(tz, "zone", None) or str(tz)
    try:
        pd.Timestamp(0, tz="UTC").tz_convert(name)
    except Exception:  # a zone pandas cannot name (a fixed offset object): the values are restored in UTC
        return "UTC"
    return name


def _tzinfo(name: str | None) -> dt.tzinfo | None:
    if not name:
        return None
    if name == "UTC":
        return dt.timezone.utc
    return pd.Timestamp(0, tz="UTC").tz_convert(name).tzinfo


def datetime_form(values: pd.Series, seconds: np.ndarray) -> str | None:
    """How the column's synthetic datetimes are held: a datetime64 column's own unit ("datetime64[us]"; None for
    ns, the usual form); for other columns None (datetime64[ns]) when every value fits it, otherwise the source's
    own form: "date" for Python dates or date-only text, "datetime" for Python datetimes or other text."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):  # the source's own unit (PostgreSQL reads give us)
        unit, _ = np.datetime_data(getattr(values.dtype, "base", values.dtype))
        return None if unit == "ns" else f"datetime64[{unit}]"
    present = seconds[~np.isnan(seconds)]
    if not len(present) or (present.min() >= NS_MIN_S and present.max() <= NS_MAX_S):
        return None
    non_null = values.dropna()
    dates = non_null.map(lambda value: isinstance(value, dt.date) and not isinstance(value, dt.datetime))
    if dates.all() or non_null.astype(str).str.strip().str.match(DATE_ONLY).all():
        return "date"
    return "datetime"


def seconds_to_datetimes(seconds: np.ndarray, form: str | None, timezone: str | None, index: pd.Index) -> pd.Series:
    """Seconds since 1970 (UTC) back to datetimes in the column's form (see `datetime_form`); NaN → missing."""
    seconds = np.asarray(seconds, dtype=float)
    missing = np.isnan(seconds)
    if form is None or form.startswith("datetime64"):
        unit = "ns" if form is None else np.datetime_data(np.dtype(form))[0]
        per_second = UNITS_PER_SECOND[unit]
        low, high = (np.ceil(NS_MIN_S), np.floor(NS_MAX_S)) if unit == "ns" else (PYTHON_MIN_S, PYTHON_MAX_S)
        present = np.where(missing, 0.0, seconds)
        whole = np.floor(np.clip(present, low, high))
        fraction = np.clip(np.round((np.clip(present, low, high + 1) - whole) * per_second), 0, per_second - 1).astype("int64")
        if unit == "ns":  # the last whole second pandas can hold ends at .854775807
            fraction = np.where(whole >= high, np.minimum(fraction, pd.Timestamp.max.value % per_second), fraction)
        ticks = whole.astype("int64") * per_second + fraction
        array = ticks.astype(f"datetime64[{unit}]")
        array[missing] = np.datetime64("NaT")
        stamps = pd.Series(array, index=index)
        if timezone:
            stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(timezone)
        return stamps
    zone = _tzinfo(timezone)
    out: list[Any] = []
    for value in seconds:
        if np.isnan(value):
            out.append(None)
            continue
        moment = EPOCH + dt.timedelta(seconds=float(np.clip(value, PYTHON_MIN_S, PYTHON_MAX_S)))
        if form == "date":
            out.append(moment.date())
        elif zone is not None:
            out.append(moment.replace(tzinfo=dt.timezone.utc).astimezone(zone))
        else:
            out.append(moment)
    return pd.Series(out, index=index, dtype=object)


def sentinel_candidates(seconds: np.ndarray) -> np.ndarray:
    """Dates that are markers, not events: year 9000 or later, year 1000 or earlier, or exactly the first or last
    moment pandas' datetime64[ns] can hold."""
    floor = np.floor(seconds)
    at_limit = np.isin(floor, list(REPRESENTABLE_LIMITS_S))
    return ~np.isnan(seconds) & ((seconds >= SENTINEL_FROM_S) | (seconds < SENTINEL_BEFORE_S) | at_limit)


def datetime_iso(value: Any) -> str:
    """A source datetime value as exact ISO text (what `iso_to_datetime` reads back to the same value)."""
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, (dt.date, pd.Timestamp)):
        return value.isoformat()
    return str(value).strip()


def iso_to_datetime(text: str, form: str | None, timezone: str | None) -> Any:
    """One datetime from `datetime_iso`'s text, in the column's form (see `datetime_form`) and time zone."""
    if form == "date":
        return dt.date.fromisoformat(text[:10])
    if form == "datetime":
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        zone = _tzinfo(timezone)
        if zone is not None:
            value = value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value
            value = value.astimezone(zone)
        return value
    stamp = pd.Timestamp(text)
    if form is not None:
        stamp = stamp.as_unit(np.datetime_data(np.dtype(form))[0])
    if timezone:
        stamp = (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).tz_convert(timezone)
    elif stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def datetime_text(seconds: float, form: str | None, timezone: str | None) -> str:
    """One datetime as the ISO text the contract and the profile show (a date alone for the "date" form)."""
    value = seconds_to_datetimes(np.array([seconds]), "date" if form == "date" else "datetime", timezone, pd.RangeIndex(1)).iloc[0]
    return value.isoformat()
