"""Profile a table and turn it into the NaN-free numeric/categorical frame a synthcity generator can learn, and back.

Pure logic: no Dagster here. The profile is the source's data contract: every column's semantic type, missingness,
cardinality, range or allowed values, special values (±inf, sentinel dates), whether it identifies a person, and how
it is handled (modelled, replaced by surrogate keys, dropped, or refused), plus the cross-column orderings that hold
on the source and the columns left out (and why). Decisions are recorded in words, so a person can read what was
done to each column and why; every decision can be overridden.

This module decides (`profile_dataframe`); `columns.py` holds the data model, `values.py` reads values in any form,
`encoding.py` encodes and decodes rows by a profile, `orderings.py` finds the orderings. Their public names are
importable from here too.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from synth_platform.profiling.columns import (  # noqa: F401  (re-exported: the profile's public names live here too)
    DATETIME_RESOLUTIONS, INDICATOR_MARKER, KIND_OF_TYPE, MISSING_INDICATOR_SUFFIX, MISSING_STATE, MISSING_TOKEN,
    NEGATIVE_INFINITY, OTHER_VALUE, POSITIVE_INFINITY, RARE_CATEGORY_HANDLINGS, RARE_VALUE_K, SEMANTIC_TYPES,
    SENTINEL, SURROGATE_EMAIL_DOMAIN, SURROGATE_PREFIX, TREATMENTS, ColumnKind, ColumnProfile, DatasetProfile,
    Ordering, ProfileError, RareCategoryHandling, SemanticType, Treatment,
)
from synth_platform.profiling.encoding import (  # noqa: F401
    align_for_comparison, apply_disclosure_control, decode_from_generation, encode_for_generation,
    renumber_surrogate_keys, special_masks, surrogate_keys,
)
from synth_platform.profiling.identifiers import person_or_id_reason
from synth_platform.profiling.orderings import find_orderings  # noqa: F401
from synth_platform.profiling.values import (  # noqa: F401
    CONVERSIONS, MAX_SENTINELS, as_number, check_booleans, convert, datetime_form, datetime_iso, datetime_timezone,
    decimal_places, looks_like_datetime, parse_datetimes, read_plan, sentinel_candidates, sql_type, value_shape,
)

MIN_KEY_ROWS = 20  # fewer distinct values than this prove nothing about being a key

# Column names that say "this is a person's record number", whatever the values look like.
RECORD_NUMBER_NAME = re.compile(
    r"(^|_)(ssn|mrn|nhs_?(no|num|number)|passport(_?(no|num|number))?|social_security(_number)?|"
    r"national_?id|tax_?id|account_?(no|num|number)|medical_record(_?(no|num|number))?|"
    r"record_?(no|num|number)|insurance_?(no|num|number))$",
    re.I,
)
KEY_NAME = re.compile(r"(^id$|_id$|^id_|uuid|guid|^key$|_key$|_?(no|num|number)$)", re.I)
# Identifiers with no use as a key in synthetic data (contact details, names, national and financial numbers) are
# dropped; keys and record numbers get fresh surrogates so the synthetic table still joins.
DROPPED_IDENTIFIERS = (
    "e-mail addresses", "phone numbers", "personal names", "user names", "national id numbers",
    "payment card numbers", "bank account numbers",
)
EMAIL_VALUE = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
PHONE_VALUE = re.compile(r"^\+?[\d\s().-]{7,20}$")
DECIMAL_VALUE = re.compile(r"^-?\d+\.\d+$")
UUID_VALUE = re.compile(r"^\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$")
UUIDS = "UUIDs"
# Attributes that, combined, re-identify people (Sweeney: ZIP code, birth date and sex identify 87% of Americans).
QUASI_IDENTIFIER_NAME = re.compile(
    r"(^age$|^age_|_age$|birth|^dob$|zip|post_?code|postal|^sex$|gender|^race$|ethnic|nationality|native|"
    r"country|marital|occupation|profession|religion|^city$|county|region)",
    re.I,
)
BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "y", "n", "t", "f"})
FREE_TEXT_MIN_WORDS = 3.0  # mean words per value from which a distinct-valued text column is prose, not a category
FREE_TEXT_MIN_DISTINCT = 0.5
RECORD_NUMBER_MIN_DISTINCT = 0.5
EXACT_INTEGERS = 2.0**53  # integers beyond this are not exact as floats: such columns are modelled as continuous
# Numbers beyond this magnitude overflow float32 arithmetic in generators (their squares pass 3.4e38): such columns
# are modelled as asinh(x), which keeps every value finite and small and is undone exactly (in float64) on decoding.
EXTREME_MAGNITUDE = 1e15


def profile_dataframe(
    frame: pd.DataFrame,
    *,
    column_types: dict[str, str] | None = None,
    column_treatments: dict[str, str] | None = None,
    detect_orderings: bool = True,
    rare_value_k: int = RARE_VALUE_K,
    rare_category_handling: str = "other",
    sensitive_columns: list[str] | tuple[str, ...] = (),
    acknowledge_identifiers: list[str] | tuple[str, ...] = (),
    source_types: dict[str, str] | None = None,
    left_out_columns: dict[str, str] | None = None,
) -> DatasetProfile:
    """Profile every column, decide its treatment, code rare values, find the orderings that hold, and check the
    result is usable.

    `column_types` overrides the inferred semantic type of named columns, `column_treatments` their treatment
    (e.g. `{"notes": "drop"}`). A column detected as an identifier is only modelled when `column_types` gives it
    another type AND it is listed in `acknowledge_identifiers`. Categories seen in fewer than `rare_value_k` rows
    become `OTHER_VALUE` (text columns, `rare_category_handling="other"`) or missing; numbers and datetimes are
    bottom- and top-coded at the k-th smallest and largest value, and their special values (±inf, sentinel dates
    such as 9999-12-31) seen in fewer than k rows become missing. The profile describes the table after that
    coding (`apply_disclosure_control`): its allowed values and ranges hold no value fewer than k rows share.
    `sensitive_columns` are modelled but their values are never published (`to_dict`).
    `source_types` (column → SQL type, from the sampler) refine the reading: uuid columns are identifiers, enum
    columns categories, boolean columns booleans, numeric(p, s) columns are restored at s decimals, interval columns
    as durations. `left_out_columns` (column → reason, from the sampler) are listed in the profile with their reason;
    columns holding values no generator can learn (bytes, documents, lists) are left out the same way.
    Raises `ProfileError` for a table a generator cannot learn from: empty, only identifiers, a free-text column not
    dropped, an identifier set to be modelled without acknowledgement, an unknown column or value."""
    if frame.empty or len(frame.columns) == 0:
        raise ProfileError("Cannot profile an empty table: it has no rows or no columns.")
    _check_column_names(frame)
    column_types, column_treatments = dict(column_types or {}), dict(column_treatments or {})
    source_types = {str(name): str(kind) for name, kind in (source_types or {}).items()}
    left_out = _check_left_out(frame, left_out_columns)
    _check_overrides(frame, column_types, column_treatments)
    _check_disclosure_settings(frame, rare_value_k, rare_category_handling, sensitive_columns, acknowledge_identifiers)
    frame, conversions, places = _read_columns(frame, source_types, left_out)
    overridden = sorted(name for name in column_types if name in left_out)
    if overridden:
        reasons = "; ".join(f"{name!r}: {left_out[name]}" for name in overridden)
        raise ProfileError(
            f"column_types sets the type of column(s) {overridden}, which cannot be modelled ({reasons}). Remove the "
            "override (the column is left out of the synthetic table), or leave the column out of source_sample's columns."
        )
    acknowledged = set(acknowledge_identifiers)
    columns = [
        _profile_column(
            frame[name], column_types.get(str(name)), column_treatments.get(str(name)),
            acknowledged=str(name) in acknowledged, source_type=source_types.get(str(name), ""),
            conversion=conversions[name], decimals=places.get(name),
        )
        for name in frame.columns
    ]
    profile = DatasetProfile(
        n_rows=len(frame), columns=columns, rare_value_k=rare_value_k,
        rare_category_handling=rare_category_handling,  # type: ignore[arg-type]
        left_out_columns=left_out,
    )
    sensitive = set(sensitive_columns)
    for column in profile.columns:
        column.sensitive = column.name in sensitive
        if column.modelled:
            _code_rare_values(column, frame[column.name], rare_value_k, rare_category_handling)
    controlled = apply_disclosure_control(frame, profile)
    for column in profile.columns:
        if column.modelled:  # shares and counts of what generators see and the contract holds
            values = controlled[column.name]
            column.missing_fraction = float(values.isna().mean())
            column.cardinality = int(values.dropna().nunique())
            _choose_transform(column)
            if column.kind == "categorical":
                column.missing_token = _missing_token(frame[column.name])
    profile.indicator_marker = _indicator_marker(profile, set(map(str, frame.columns)) | set(left_out))
    for column in profile.columns:
        column.handling = _handling(column, frame[column.name].dropna(), rare_value_k, profile)
    if detect_orderings:
        profile.orderings = find_orderings(controlled, profile)
    quasi = profile.quasi_identifiers()
    if quasi:
        profile.rows_unique_on_quasi_identifiers = float((~controlled[quasi].duplicated(keep=False)).mean())
    check_usable(profile)
    return profile


def _check_column_names(frame: pd.DataFrame) -> None:
    names = [str(name) for name in frame.columns]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ProfileError(
            f"The table has more than one column named {repeated}: give each column its own name (e.g. alias them in "
            "the query or view the sampler reads) so each can be profiled and restored."
        )


def _check_left_out(frame: pd.DataFrame, left_out_columns: dict[str, str] | None) -> dict[str, str]:
    left_out = {str(name): str(reason) for name, reason in (left_out_columns or {}).items()}
    read = sorted(set(left_out) & {str(name) for name in frame.columns})
    if read:
        raise ProfileError(
            f"left_out_columns names column(s) {read} that the table has: a column is either read or left out."
        )
    return left_out


def _read_columns(
    frame: pd.DataFrame, source_types: dict[str, str], left_out: dict[str, str]
) -> tuple[pd.DataFrame, dict[Any, str], dict[Any, int | None]]:
    """The columns a generator can learn, read as they will be everywhere (`values.convert`), with their conversion
    and, for Decimal values, their decimal places; the others are added to `left_out` with the reason."""
    kept: dict[Any, pd.Series] = {}
    conversions: dict[Any, str] = {}
    places: dict[Any, int | None] = {}
    for name in frame.columns:
        conversion, reason = read_plan(frame[name], source_types.get(str(name), ""))
        if reason:
            left_out[str(name)] = f"{reason}; left out of the generator and the synthetic table"
            continue
        if conversion == "decimal":
            places[name] = decimal_places(frame[name])  # the NUMERIC scale the values carry
        series = convert(frame[name], conversion)
        if conversion == "bool":
            check_booleans(series, str(name))
        kept[name], conversions[name] = series, conversion
    if not kept:
        raise ProfileError(
            f"No column of the table can be modelled: every column was left out ({left_out}). Select columns of "
            "numbers, text, dates or booleans."
        )
    return pd.DataFrame(kept, index=frame.index), conversions, places


def _check_disclosure_settings(
    frame: pd.DataFrame, k: int, handling: str, sensitive: list[str] | tuple[str, ...], acknowledged: list[str] | tuple[str, ...]
) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ProfileError(f"rare_value_k must be a whole number of at least 1 (1 turns rare-value coding off), got {k!r}.")
    if handling not in RARE_CATEGORY_HANDLINGS:
        raise ProfileError(f"rare_category_handling = {handling!r}; choose one of {list(RARE_CATEGORY_HANDLINGS)}.")
    known = {str(name) for name in frame.columns}
    for what, names in (("acknowledge_identifiers", acknowledged), ("sensitive_columns", sensitive)):
        unknown = sorted(set(names) - known)
        if unknown:
            raise ProfileError(f"{what} names column(s) {unknown} that the table does not have; its columns are {sorted(known)}.")


def _code_rare_values(column: ColumnProfile, series: pd.Series, k: int, handling: str) -> None:
    """Decide the coding that keeps values fewer than `k` rows share out of everything the column publishes or
    generates: categories below k rows are generalised; numbers and datetimes are coded at the k-th smallest and
    k-th largest value (both are then shared by at least k rows); special values seen in fewer than k rows become
    missing. Sets allowed values / range / special values and the counts."""
    non_null = series.dropna()
    if not len(non_null):
        return
    if column.kind == "categorical":
        counts = non_null.map(_plain).value_counts()
        rare = counts[counts < k]
        if rare.empty:
            return
        kept = [value for value in column.allowed_values or [] if counts.get(value, 0) >= k]
        if handling == "other" and _is_text(series):
            kept = kept + ([OTHER_VALUE] if OTHER_VALUE not in kept else [])
        column.allowed_values = kept
        column.rare_values_generalised, column.rows_generalised = int(len(rare)), int(rare.sum())
        return
    if column.kind not in ("numeric", "datetime") or k <= 1:
        return
    rare_specials = [special for special in column.special_values if special["rows"] < k]
    if rare_specials:
        column.rows_special_to_missing = int(sum(special["rows"] for special in rare_specials))
        column.special_values = _renumbered([special for special in column.special_values if special["rows"] >= k])
    numbers = as_number(non_null, column.kind)
    regular = ~np.isnan(numbers) & np.isfinite(numbers)
    if column.kind == "datetime" and (column.special_values or column.rows_special_to_missing):
        regular &= ~sentinel_candidates(numbers)
    values = np.sort(numbers[regular])
    if not len(values):
        return
    n, j = len(values), min(k, len(values)) - 1
    low, high = values[j], values[n - 1 - j]
    if low > high:  # fewer than 2k − 1 values: every value is coded to the middle one
        low = high = values[n // 2]
    column.minimum, column.maximum = float(low), float(high)
    column.rows_bottom_coded, column.rows_top_coded = int((values < low).sum()), int((values > high).sum())


def _renumbered(specials: list[dict]) -> list[dict]:
    """Sentinel states numbered 1, 2… again after some were dropped (infinities keep their names)."""
    number = 0
    out = []
    for special in specials:
        if special["state"].startswith(SENTINEL):
            number += 1
            special = {**special, "state": f"{SENTINEL}{number}"}
        out.append(special)
    return out


def _choose_transform(column: ColumnProfile) -> None:
    if column.kind != "numeric" or column.minimum is None or column.conversion == "timedelta":
        return
    if max(abs(column.minimum), abs(column.maximum)) > EXTREME_MAGNITUDE or not np.isfinite(column.maximum - column.minimum):
        column.transform, column.transform_scale = "asinh", 1.0


def _missing_token(series: pd.Series) -> str:
    """MISSING_TOKEN, or `__missing_2__`, `__missing_3__`… when the column holds that text: a missing value must
    never come back as a real one, nor a real one as missing."""
    labels = set(series.dropna().astype(str)) | {OTHER_VALUE}
    token, number = MISSING_TOKEN, 1
    while token in labels:
        number += 1
        token = f"__missing_{number}__"
    return token


def _indicator_marker(profile: DatasetProfile, names: set[str]) -> str:
    """The marker of indicator column names (`x__is_missing`): the usual one unless an indicator would carry the
    name of a column (or of another indicator); then `__is2_`, `__is3_`…"""
    number = 1
    while True:
        marker = INDICATOR_MARKER if number == 1 else f"__is{number}_"
        internal = [
            f"{column.name}{marker}{state}"
            for column in profile.columns if column.modelled and column.kind in ("numeric", "datetime")
            for state in (MISSING_STATE, *column.special_states())
        ]
        if not set(internal) & names and len(set(internal)) == len(internal):
            return marker
        number += 1


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)


def _check_overrides(frame: pd.DataFrame, types: dict[str, str], treatments: dict[str, str]) -> None:
    known = {str(name) for name in frame.columns}
    for what, overrides, allowed in (("column_types", types, SEMANTIC_TYPES), ("column_treatments", treatments, TREATMENTS)):
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ProfileError(f"{what} names column(s) {unknown} that the table does not have; its columns are {sorted(known)}.")
        for name, value in overrides.items():
            if value not in allowed:
                raise ProfileError(f"{what}[{name!r}] = {value!r}; choose one of {list(allowed)}.")


def check_usable(profile: DatasetProfile) -> None:
    """Refuse what a generator must not or cannot see, with the override that fixes it."""
    refused = [column for column in profile.columns if column.treatment == "refuse"]
    if refused:
        details = "; ".join(f"{column.name!r} ({column.handling})" for column in refused)
        names = ", ".join(f"{column.name}: drop" for column in refused)
        raise ProfileError(
            f"Free-text column(s) refused: {details}. A tabular generator cannot learn prose and it can carry names "
            f"and other identifying details. Drop them with the profiled_dataset config "
            f"column_treatments: {{{names}}}, or leave them out of source_sample's columns."
        )
    modelled_identifiers = [c.name for c in profile.columns if c.semantic_type == "identifier" and c.modelled]
    if modelled_identifiers:
        raise ProfileError(
            f"Identifier column(s) {modelled_identifiers} cannot be modelled: identifiers never go into a generator. "
            "Use the treatment surrogate or drop; if a column is not an identifier, override its type in column_types "
            "and list it in acknowledge_identifiers."
        )
    if not any(column.modelled for column in profile.columns):
        left_out = f"; left out: {profile.left_out_columns}" if profile.left_out_columns else ""
        raise ProfileError(
            f"No column of the table is left for a generator: every column is an identifier, dropped or refused "
            f"({[(c.name, c.semantic_type, c.treatment) for c in profile.columns]}{left_out}). Select the data columns too."
        )


def _profile_column(
    series: pd.Series, type_override: str | None, treatment_override: str | None, acknowledged: bool = False,
    source_type: str = "", conversion: str = "", decimals: int | None = None,
) -> ColumnProfile:
    name = str(series.name)
    non_null = series.dropna()
    cardinality = int(non_null.nunique())
    sql, scale = sql_type(source_type) if source_type else ("", None)
    detected = UUIDS + f" (SQL type {source_type})" if sql == "uuid" else ("" if sql == "enum" else identifier_reason(series, non_null, cardinality))
    reason, acknowledged_reason = "", ""
    if type_override:
        semantic_type = type_override
        if type_override == "identifier":
            reason = detected or "set by config"
        elif detected and not acknowledged:
            raise ProfileError(
                f"Column {name!r} looks like a direct identifier ({detected}), so column_types[{name!r}] = "
                f"{type_override!r} alone does not model it. If it really is not one, also list it in the "
                f"profiled_dataset config acknowledge_identifiers: [{name}] (its values shared by at least k source rows "
                "may then appear in the synthetic table); otherwise remove the override."
            )
        elif detected:
            acknowledged_reason = detected
    else:
        reason = detected
        if reason:
            semantic_type = "identifier"
        elif sql == "enum":
            semantic_type = "categorical"
        elif sql == "boolean":
            semantic_type = "boolean"
        else:
            semantic_type = _semantic_type(series, non_null, cardinality)
    profile = ColumnProfile(
        name=name, semantic_type=semantic_type, dtype=str(series.dtype), missing_fraction=float(series.isna().mean()),
        cardinality=cardinality, identifier_reason=reason, overridden=bool(type_override or treatment_override),
        acknowledged_identifier=acknowledged_reason,
        quasi_identifier=semantic_type not in ("identifier", "free_text") and bool(QUASI_IDENTIFIER_NAME.search(name)),
        source_type=source_type, conversion=conversion,
        decimals=scale if sql == "numeric" and scale is not None else decimals,
    )
    if profile.kind in ("numeric", "datetime") and len(non_null):
        _profile_range(profile, series, non_null)
    if profile.kind == "categorical":
        profile.allowed_values = sorted((_plain(value) for value in non_null.unique()), key=lambda v: (str(type(v)), v))
    profile.treatment = treatment_override or _default_treatment(profile)  # type: ignore[assignment]
    return profile  # `handling` is written by profile_dataframe, once the rare values are coded


def _profile_range(profile: ColumnProfile, series: pd.Series, non_null: pd.Series) -> None:
    """Range, special values (±inf; sentinel dates) and, for datetimes, resolution, time zone and form."""
    name, semantic_type = profile.name, profile.semantic_type
    values = as_number(non_null, profile.kind)
    if np.isnan(values).any():
        raise ProfileError(
            f"Column {name!r} is {semantic_type} but {int(np.isnan(values).sum())} value(s) cannot be read as "
            f"{'dates' if profile.kind == 'datetime' else 'numbers'}, e.g. one shaped {value_shape(non_null[np.isnan(values)].iloc[0])!r}; "
            "override its type in column_types."
        )
    specials: list[dict[str, Any]] = []
    if profile.kind == "numeric":
        for state, mask, text in ((POSITIVE_INFINITY, np.isposinf(values), "inf"), (NEGATIVE_INFINITY, np.isneginf(values), "-inf")):
            if mask.any():
                specials.append({"state": state, "value": text, "rows": int(mask.sum())})
        regular = values[np.isfinite(values)]
    else:
        candidates = sentinel_candidates(values)
        distinct = np.unique(np.floor(values[candidates]))
        if candidates.any() and len(distinct) <= MAX_SENTINELS and (~candidates).any():
            for number, seconds in enumerate(distinct, start=1):
                rows = candidates & (np.floor(values) == seconds)
                first = int(np.flatnonzero(rows)[0])
                specials.append({
                    "state": f"{SENTINEL}{number}", "value": datetime_iso(non_null.iloc[first]),
                    "seconds": float(values[first]), "rows": int(rows.sum()),
                })
            regular = values[~candidates]
        else:
            regular = values
    profile.special_values = specials
    if len(regular):
        profile.minimum, profile.maximum = float(regular.min()), float(regular.max())
    integral = bool(len(regular)) and np.all(np.mod(regular, 1) == 0) and np.abs(regular).max() < EXACT_INTEGERS
    if semantic_type == "numeric_discrete" and not integral and len(regular):
        raise ProfileError(
            f"Column {name!r} is set to numeric_discrete but holds non-integer values (or integers beyond 2**53, which "
            "floats cannot hold exactly); use numeric_continuous."
        )
    if profile.kind == "datetime":
        profile.datetime_resolution = _resolution(regular if len(regular) else values)
        profile.datetime_timezone = datetime_timezone(non_null)
        profile.datetime_form = datetime_form(series, as_number(series, "datetime"))


def identifier_reason(series: pd.Series, non_null: pd.Series | None = None, cardinality: int | None = None) -> str:
    """Why the column directly identifies a person or a record ("" when it does not): e-mail addresses, personal
    names (by the column's name or its values), national ids, record numbers, card numbers, IBANs, phone numbers,
    UUIDs, record numbers by name, or a unique key. Dates are never identifiers by their shape (9999-12-31 looks
    like a phone number)."""
    non_null = series.dropna() if non_null is None else non_null
    cardinality = int(non_null.nunique()) if cardinality is None else cardinality
    if not len(non_null):
        return ""
    name = str(series.name)
    is_text = _is_text(series)
    distinct_share = cardinality / len(non_null)
    dates = looks_like_datetime(non_null)
    text = non_null.astype(str).str.strip() if is_text and not dates else None
    if text is not None and text.str.match(EMAIL_VALUE).mean() >= 0.95:
        return "e-mail addresses"
    if text is not None and (text.str.match(UUID_VALUE) & text.str.contains("-")).mean() >= 0.95:
        return f"{UUIDS} ({distinct_share:.0%} distinct values)"
    # Names by meaning (the column's name in many languages, whatever its cardinality), names by content (Faker's
    # first/last-name lists), national ids, record numbers, card numbers, IBANs: see identifiers.py. Before the
    # phone rule, whose shape (7-20 digits and separators) national ids and card numbers also have.
    by_meaning = "" if dates else person_or_id_reason(name, non_null)
    if by_meaning:
        return by_meaning
    if text is not None:
        digits = text.str.count(r"\d")
        if (text.str.match(PHONE_VALUE) & (digits >= 7) & ~text.str.match(DECIMAL_VALUE)).mean() >= 0.95:
            return "phone numbers"
    if RECORD_NUMBER_NAME.search(name):
        return "a record number (by its name)"
    all_unique = cardinality == len(non_null) and len(non_null) >= MIN_KEY_ROWS
    if KEY_NAME.search(name) and (all_unique or distinct_share >= RECORD_NUMBER_MIN_DISTINCT) and cardinality >= MIN_KEY_ROWS:
        return "a unique key" if all_unique else f"a record number ({distinct_share:.0%} distinct values, named like a key)"
    if all_unique and is_text and not dates and _mean_words(non_null) < FREE_TEXT_MIN_WORDS:
        return "a unique key (every value distinct text)"
    if all_unique and pd.api.types.is_integer_dtype(series.dtype):
        values = non_null.to_numpy(dtype=float)
        if values.max() - values.min() + 1 <= 2 * len(values):
            return "a unique key (distinct integers in a dense run, like row numbers)"
    return ""


def _semantic_type(series: pd.Series, non_null: pd.Series, cardinality: int) -> str:
    is_text = _is_text(series)
    if pd.api.types.is_datetime64_any_dtype(series.dtype) or (is_text and len(non_null) and looks_like_datetime(non_null)):
        return "datetime"
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_timedelta64_dtype(series.dtype):
        seconds = series.dropna().dt.total_seconds().to_numpy()
        return "numeric_discrete" if len(seconds) and np.all(np.mod(seconds, 1) == 0) else "numeric_continuous"
    if pd.api.types.is_numeric_dtype(series.dtype):
        if cardinality <= 2:
            return "boolean" if set(non_null.unique()) <= {0, 1} and cardinality == 2 else "categorical"
        values = non_null.to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        integral = len(finite) and np.all(np.mod(finite, 1) == 0) and np.abs(finite).max() < EXACT_INTEGERS
        return "numeric_discrete" if integral else "numeric_continuous"
    if is_text and cardinality == 2 and set(non_null.astype(str).str.strip().str.lower().unique()) <= BOOLEAN_WORDS:
        return "boolean"
    if (
        is_text and len(non_null) >= MIN_KEY_ROWS and cardinality / len(non_null) >= FREE_TEXT_MIN_DISTINCT
        and _mean_words(non_null) >= FREE_TEXT_MIN_WORDS
    ):
        return "free_text"
    return "categorical"


def _mean_words(values: pd.Series) -> float:
    return float(values.astype(str).str.split().str.len().mean())


_looks_like_datetime = looks_like_datetime  # the old private name


def _plain(value: Any) -> Any:
    """A JSON-ready Python scalar (numpy and pandas scalars become int, float, bool or str)."""
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return value


def _resolution(seconds: np.ndarray) -> str:
    for name, unit in DATETIME_RESOLUTIONS:
        if np.all(np.mod(seconds, unit) == 0):
            return name
    return "second"


def _default_treatment(column: ColumnProfile) -> Treatment:
    if column.semantic_type == "free_text":
        return "refuse"
    if column.semantic_type == "identifier":
        # Keys stay keys (fresh ones), so the table still joins; contact details and names have no use in
        # synthetic data and are dropped.
        return "drop" if column.identifier_reason.startswith(DROPPED_IDENTIFIERS) else "surrogate"
    return "model"


def _handling(column: ColumnProfile, non_null: pd.Series, k: int = RARE_VALUE_K, profile: DatasetProfile | None = None) -> str:
    if column.treatment == "refuse":
        words = _mean_words(non_null) if len(non_null) else 0.0
        return f"free text ({words:.1f} words per value, {column.cardinality} distinct): refused until dropped"
    if column.treatment == "drop":
        what = f"identifier: {column.identifier_reason}" if column.semantic_type == "identifier" else column.semantic_type
        return f"{what}; dropped: not given to the generator, not in the synthetic table"
    if column.treatment == "surrogate":
        what = f"identifier: {column.identifier_reason}" if column.identifier_reason else column.semantic_type
        return f"{what}; not given to the generator; fresh surrogate keys ({SURROGATE_PREFIX}…) in the synthetic table"
    if column.kind == "datetime":
        prefix = f"as seconds since 1970, restored as datetimes at {column.datetime_resolution} resolution; "
        if column.datetime_timezone:
            prefix += f"in time zone {column.datetime_timezone}; "
        if column.datetime_form:
            held = {"date": "Python dates", "datetime": "Python datetimes"}.get(column.datetime_form, column.datetime_form)
            prefix += f"held as {held} (values outside pandas' datetime64[ns] years 1677–2262); "
    elif column.kind == "numeric":
        prefix = "rounded to integers; " if column.is_integer else ""
        if column.decimals is not None and not column.is_integer:
            prefix += f"rounded to {column.decimals} decimals ({column.source_type or 'the scale of its Decimal values'}); "
    else:
        prefix = ""
    if column.conversion:
        prefix = f"{CONVERSIONS[column.conversion]}; " + prefix
    if column.quasi_identifier:
        prefix = "quasi-identifier; " + prefix
    if column.acknowledged_identifier:
        prefix = f"detected as an identifier ({column.acknowledged_identifier}), modelled as acknowledged in config; " + prefix
    if column.sensitive:
        prefix = "sensitive: values never published; " + prefix
    if column.rare_values_generalised:
        into = f"the value {OTHER_VALUE!r}" if OTHER_VALUE in (column.allowed_values or []) else "missing"
        prefix += (
            f"{column.rare_values_generalised} value(s) seen in fewer than {k} rows "
            f"({column.rows_generalised} rows) generalised to {into}; "
        )
    if column.rows_bottom_coded or column.rows_top_coded:
        prefix += (
            f"range coded to the {_ordinal(k)} smallest / largest value ({column.rows_bottom_coded} rows raised, "
            f"{column.rows_top_coded} lowered); "
        )
    marker = profile.indicator_marker if profile is not None else INDICATOR_MARKER
    if column.special_values:
        shown = ", ".join(
            (f"{special['value']} ({special['rows']} rows)" if not column.sensitive else f"{special['rows']} rows")
            for special in column.special_values
        )
        what = "sentinel value(s)" if column.kind == "datetime" else "non-finite value(s)"
        prefix += (
            f"{what} {shown} modelled by indicator columns '{column.name}{marker}<state>' "
            f"({', '.join(column.special_states())}) and restored as themselves; "
        )
    if column.rows_special_to_missing:
        what = "sentinel dates" if column.kind == "datetime" else "non-finite values (inf / -inf)"
        prefix += f"{column.rows_special_to_missing} row(s) of {what} seen in fewer than {k} rows set to missing; "
    if column.transform == "asinh":
        prefix += (
            f"values up to {max(abs(column.minimum or 0), abs(column.maximum or 0)):.3g} in magnitude modelled as "
            f"asinh(x) (finite and small for float32 generators), restored by sinh; "
        )
    if not column.has_missing:
        return prefix + "no missing values"
    if column.kind == "categorical":
        return prefix + f"missing values modelled as the category {column.missing_token!r}, restored as missing"
    return prefix + (
        f"missing values filled with the median and modelled by an indicator column "
        f"'{column.name}{marker}{MISSING_STATE}', restored as missing"
    )


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"
