"""Rows as the platform may use them (`apply_disclosure_control`), the NaN-free frame a generator learns
(`encode_for_generation`), generated rows back in the source's schema (`decode_from_generation`), and frames put in
the synthetic table's form for comparison (`align_for_comparison`).

Pure logic: no Dagster here. Everything is driven by the profile (`columns.DatasetProfile`): each column's
conversion, coded range, special values (±inf, sentinel dates) and datetime form; the indicator columns' names come
from the profile's marker, so they never collide with a column of the source.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from synth_platform.profiling.columns import (
    DATETIME_RESOLUTIONS, MISSING_STATE, NEGATIVE_INFINITY, OTHER_VALUE, POSITIVE_INFINITY, SURROGATE_EMAIL_DOMAIN,
    SURROGATE_PREFIX, ColumnProfile, DatasetProfile,
)
from synth_platform.profiling.values import (
    as_number, convert, datetime_seconds, iso_to_datetime, parse_datetimes, seconds_to_datetimes, sentinel_candidates,
)


def special_number(column: ColumnProfile, special: dict) -> float:
    """The number (seconds for datetimes) a special value stands for."""
    if special["state"] == POSITIVE_INFINITY:
        return np.inf
    if special["state"] == NEGATIVE_INFINITY:
        return -np.inf
    return float(special["seconds"])


def special_masks(numbers: np.ndarray, column: ColumnProfile) -> dict[str, np.ndarray]:
    """Per modelled special value of the column, the rows holding it (datetimes compared to the whole second)."""
    masks: dict[str, np.ndarray] = {}
    for special in column.special_values:
        target = special_number(column, special)
        if np.isinf(target):
            masks[special["state"]] = numbers == target
        else:
            with np.errstate(invalid="ignore"):
                masks[special["state"]] = np.floor(numbers) == np.floor(target)
    return masks


def unmodelled_special(numbers: np.ndarray, column: ColumnProfile, modelled: np.ndarray) -> np.ndarray:
    """Rows holding a special value the profile does not model (seen in fewer than k rows): they become missing."""
    if column.kind == "numeric":
        return np.isinf(numbers) & ~modelled
    if column.kind == "datetime" and (column.special_values or column.rows_special_to_missing):
        return sentinel_candidates(numbers) & ~modelled
    return np.zeros(len(numbers), dtype=bool)


def _any(masks: dict[str, np.ndarray], size: int) -> np.ndarray:
    out = np.zeros(size, dtype=bool)
    for mask in masks.values():
        out |= mask
    return out


def convert_column(series: pd.Series, column: ColumnProfile) -> pd.Series:
    return convert(series, column.conversion)


def apply_disclosure_control(frame: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """The rows as the platform may use them after profiling: the synthetic table's columns only (dropped
    identifiers gone, surrogate-key columns holding fresh keys, never the source's), values read as the profile
    reads them (conversions), categories seen in fewer than k source rows generalised, numbers / datetimes coded
    into the published range, special values kept (modelled) or made missing (seen in fewer than k rows).
    Generators learn from this, tuning and the report compare with it; raw source rows never go further than the
    profiler."""
    controlled: dict[str, pd.Series] = {}
    for column in profile.columns:
        if column.treatment not in ("model", "surrogate") or column.name not in frame:
            continue
        series = frame[column.name]
        if column.treatment == "surrogate":
            controlled[column.name] = pd.Series(surrogate_keys(column, len(series)), index=series.index)
            continue
        series = convert_column(series, column)
        if column.kind == "categorical" and column.rare_values_generalised:
            known = series.isna() | series.isin(column.allowed_values or [])
            other = OTHER_VALUE if OTHER_VALUE in (column.allowed_values or []) else None
            controlled[column.name] = series.astype(object).where(known, other)
        elif column.kind == "datetime":
            controlled[column.name] = _control_datetimes(series, column)
        elif column.kind == "numeric":
            controlled[column.name] = _control_numbers(series, column)
        else:
            controlled[column.name] = series
    return pd.DataFrame(controlled, index=frame.index)


def _control_numbers(series: pd.Series, column: ColumnProfile) -> pd.Series:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series
    durations = pd.api.types.is_timedelta64_dtype(series.dtype)
    values = series if durations or pd.api.types.is_numeric_dtype(series.dtype) else pd.to_numeric(series, errors="coerce")
    numbers = as_number(values, "numeric")
    modelled = _any(special_masks(numbers, column), len(numbers))
    to_missing = unmodelled_special(numbers, column, modelled)
    if column.minimum is not None:
        low, high = column.minimum, column.maximum
        if durations:
            low, high = pd.Timedelta(seconds=low), pd.Timedelta(seconds=high)
        clipped = values.clip(low, high)
        values = clipped.where(~pd.Series(modelled, index=values.index), values) if modelled.any() else clipped
    if to_missing.any():
        values = values.where(~pd.Series(to_missing, index=values.index))
    return values


def _control_datetimes(series: pd.Series, column: ColumnProfile) -> pd.Series:
    seconds = datetime_seconds(series)
    modelled = _any(special_masks(seconds, column), len(seconds))
    to_missing = unmodelled_special(seconds, column, modelled)
    if column.datetime_form is None:  # pandas datetime64[ns]: clip the timestamps themselves (sub-seconds kept)
        stamps = parse_datetimes(series)
        if column.minimum is not None:
            tz = getattr(stamps.dt, "tz", None)
            low, high = (pd.Timestamp(bound, unit="s") for bound in (column.minimum, column.maximum))
            if tz is not None:
                low, high = low.tz_localize("UTC").tz_convert(tz), high.tz_localize("UTC").tz_convert(tz)
            clipped = stamps.clip(low, high)
            stamps = clipped.where(~pd.Series(modelled, index=stamps.index), stamps) if modelled.any() else clipped
        return stamps.where(~pd.Series(to_missing, index=stamps.index)) if to_missing.any() else stamps
    coded = seconds.copy()
    if column.minimum is not None:
        coded = np.where(modelled, seconds, np.clip(seconds, column.minimum, column.maximum))
    coded[to_missing] = np.nan
    if _in_form(series, column.datetime_form):
        # Already in the column's form: unchanged values stay exactly what they were; coded ones are made in it
        same = (coded == seconds) | (np.isnan(coded) & np.isnan(seconds))
        made = seconds_to_datetimes(np.where(same, np.nan, coded), column.datetime_form, column.datetime_timezone, series.index)
        kept = series.where(same, made)
        return kept.where(~np.isnan(coded), None) if kept.dtype == object else kept.where(~np.isnan(coded))
    return seconds_to_datetimes(coded, column.datetime_form, column.datetime_timezone, series.index)


def encode_for_generation(frame: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """The NaN-free, finite frame a generator trains on: only modelled columns, rare values generalised and ranges
    coded (`apply_disclosure_control`, whatever rows are given), datetimes as seconds, missingness and special values
    (±inf, sentinel dates) modelled by 0/1 indicator columns, numbers too large for float32 as asinh."""
    frame = apply_disclosure_control(frame, profile)
    encoded: dict[str, pd.Series] = {}
    for column in profile.columns:
        if not column.modelled:
            continue
        series = frame[column.name]
        if column.kind == "categorical":
            encoded[column.name] = series.astype(object).where(series.notna(), column.missing_token).astype(str)
            continue
        numbers = as_number(series, column.kind)
        masks = special_masks(numbers, column)
        missing = np.isnan(numbers)
        regular = ~missing & ~_any(masks, len(numbers)) & np.isfinite(numbers)
        fill = float(np.median(numbers[regular])) if regular.any() else (column.minimum or 0.0)
        numbers = np.where(regular, numbers, fill)
        if column.transform == "asinh":
            numbers = np.arcsinh(numbers / column.transform_scale)
        if missing.any() or column.has_missing:
            encoded[profile.indicator(column.name, MISSING_STATE)] = pd.Series(missing.astype(int), index=series.index)
        for state, mask in masks.items():
            encoded[profile.indicator(column.name, state)] = pd.Series(mask.astype(int), index=series.index)
        encoded[column.name] = pd.Series(numbers, index=series.index)
    return pd.DataFrame(encoded, index=frame.index)


def decode_from_generation(generated: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """Map generated rows back to the source schema: types, ranges, missing and special values, datetimes at the
    source's resolution, time zone and form, numbers at the source's decimals, fresh surrogate keys numbered from 1;
    dropped columns stay out."""
    decoded: dict[str, pd.Series] = {}
    n = len(generated)
    for column in profile.columns:
        if column.treatment == "surrogate":
            decoded[column.name] = pd.Series(surrogate_keys(column, n), index=generated.index)
            continue
        if not column.modelled:
            continue
        values = generated[column.name]
        if column.kind == "categorical":
            decoded[column.name] = _decode_categorical(values, column)
            continue
        numbers = pd.to_numeric(values, errors="coerce").astype(float)
        if column.transform == "asinh" and column.minimum is not None:
            scale = column.transform_scale
            bounded = numbers.clip(np.arcsinh(column.minimum / scale), np.arcsinh(column.maximum / scale))
            numbers = scale * np.sinh(bounded)
        if column.minimum is not None:
            numbers = numbers.clip(column.minimum, column.maximum)
        missing = _flag(generated, profile.indicator(column.name, MISSING_STATE))
        special = _special_choice(generated, profile, column).where(~missing, "")
        if column.kind == "datetime":
            decoded[column.name] = _decode_datetime(numbers, column, missing, special)
        else:
            decoded[column.name] = _decode_number(numbers, column, missing, special)
    return pd.DataFrame(decoded, index=generated.index).reset_index(drop=True)


def _flag(generated: pd.DataFrame, indicator: str) -> pd.Series:
    if indicator not in generated:
        return pd.Series(False, index=generated.index)
    return pd.to_numeric(generated[indicator], errors="coerce").fillna(0) >= 0.5


def _special_choice(generated: pd.DataFrame, profile: DatasetProfile, column: ColumnProfile) -> pd.Series:
    """Per row, the special state chosen (of the indicators at 0.5 or more, the highest), "" for a plain value."""
    choice = pd.Series("", index=generated.index, dtype=object)
    best = pd.Series(0.5, index=generated.index)
    for state in column.special_states():
        name = profile.indicator(column.name, state)
        if name not in generated:
            continue
        score = pd.to_numeric(generated[name], errors="coerce").fillna(0)
        wins = (score >= best) & ((choice == "") | (score > best))
        choice, best = choice.where(~wins, state), best.where(~wins, score)
    return choice


def _decode_number(numbers: pd.Series, column: ColumnProfile, missing: pd.Series, special: pd.Series) -> pd.Series:
    if column.conversion == "timedelta":
        seconds = numbers.round() if column.is_integer else numbers
        return pd.to_timedelta(seconds.where(~missing), unit="s")
    if column.is_integer:
        numbers = numbers.round()
        if not column.special_values:  # integers stay integers (nullable where the source has gaps)
            return numbers.where(~missing).astype("Int64") if column.has_missing else numbers.astype("int64")
    elif column.decimals is not None:
        numbers = numbers.round(column.decimals)
    for spec in column.special_values:
        numbers = numbers.where(special != spec["state"], special_number(column, spec))
    return numbers.where(~missing)


def _decode_datetime(seconds: pd.Series, column: ColumnProfile, missing: pd.Series, special: pd.Series) -> pd.Series:
    unit = dict(DATETIME_RESOLUTIONS)[column.datetime_resolution or "second"]
    values = ((seconds / unit).round() * unit).to_numpy(dtype=float)
    chosen = (special != "").to_numpy()
    values[missing.to_numpy() | chosen] = np.nan
    out = seconds_to_datetimes(values, column.datetime_form, column.datetime_timezone, seconds.index)
    for spec in column.special_values:
        rows = special == spec["state"]
        if rows.any():
            out = out.where(~rows, special_datetime(column, spec))
    return out


def special_datetime(column: ColumnProfile, special: dict):
    """A sentinel date as the source held it, in the column's form and time zone."""
    return iso_to_datetime(special["value"], column.datetime_form, column.datetime_timezone)


def surrogate_keys(column: ColumnProfile, count: int) -> list[str]:
    """Fresh keys that say they are synthetic: `SYN-00000001`…, or `syn-00000001@synthetic.invalid` for e-mails."""
    if column.identifier_reason == "e-mail addresses":
        return [f"syn-{i:08d}@{SURROGATE_EMAIL_DOMAIN}" for i in range(1, count + 1)]
    return [f"{SURROGATE_PREFIX}{i:08d}" for i in range(1, count + 1)]


def renumber_surrogate_keys(frame: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """Surrogate keys numbered 1…n over the whole frame (rows assembled from several draws repeat numbers)."""
    frame = frame.reset_index(drop=True)
    for name in profile.by_treatment("surrogate"):
        frame[name] = surrogate_keys(profile.column(name), len(frame))
    return frame


def _decode_categorical(values: pd.Series, column: ColumnProfile) -> pd.Series:
    """Generated category labels back to the source's values and dtype (labels are the values as text: see
    encode_for_generation); the missing token, and any label the source never had, become missing."""
    lookup = {str(value): value for value in column.allowed_values or []}
    restored = values.astype(str).map(lookup)
    if column.dtype.startswith(("int", "uint", "float", "Int", "Float")):
        numbers = pd.to_numeric(restored, errors="coerce")
        keep_integers = column.dtype.startswith(("int", "uint")) and not numbers.isna().any()
        return numbers.astype(column.dtype) if keep_integers else numbers.astype(float)
    booleans = bool(column.allowed_values) and all(isinstance(v, bool) for v in column.allowed_values or [])
    if booleans and column.dtype == "boolean":  # pandas' nullable booleans (how the sampler reads SQL boolean)
        return restored.astype("boolean")
    if booleans and (column.dtype == "bool" or column.conversion == "bool") and restored.notna().all():
        return restored.astype(bool)
    return restored.astype(object).where(restored.notna(), None)


def align_for_comparison(frame: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """The frame with the synthetic table's columns, values read as the profile reads them and datetimes in the
    column's form (as the decoder returns them), so source and synthetic rows compare like for like."""
    aligned = frame[[name for name in profile.output_columns() if name in frame.columns]].copy()
    for column in profile.columns:
        if not column.modelled or column.name not in aligned:
            continue
        values = convert_column(aligned[column.name], column)
        if column.kind == "datetime":
            if column.datetime_form is None:
                if not pd.api.types.is_datetime64_any_dtype(values.dtype):
                    values = parse_datetimes(values)
            elif not _in_form(values, column.datetime_form):
                values = seconds_to_datetimes(datetime_seconds(values), column.datetime_form, column.datetime_timezone, values.index)
        elif column.kind == "numeric" and column.conversion != "timedelta" and not pd.api.types.is_numeric_dtype(values.dtype):
            values = pd.to_numeric(values, errors="coerce")  # numbers stored as text
        aligned[column.name] = values
    return aligned


def _in_form(values: pd.Series, form: str | None) -> bool:
    """The values are held as the column's datetime form says (a datetime64 column of its unit, or Python dates /
    datetimes)."""
    if form is None or form.startswith("datetime64"):
        unit = "ns" if form is None else np.datetime_data(np.dtype(form))[0]
        dtype = values.dtype
        return pd.api.types.is_datetime64_any_dtype(dtype) and np.datetime_data(getattr(dtype, "base", dtype))[0] == unit
    kind = dt.datetime if form == "datetime" else dt.date
    return values.dtype == object and bool(values.dropna().map(lambda value: isinstance(value, kind)).all())
