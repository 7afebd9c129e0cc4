"""Profile a table and turn it into the NaN-free numeric/categorical frame a synthcity generator can learn, and back.

Pure logic: no Dagster here. The profile is the source's data contract: every column's semantic type, missingness,
cardinality, range or allowed values, whether it identifies a person, and how it is handled (modelled, replaced by
surrogate keys, dropped, or refused), plus the cross-column orderings that hold on the source. Decisions are
recorded in words, so a person can read what was done to each column and why; every decision can be overridden.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd

from synth_platform.profiling.identifiers import person_or_id_reason

SemanticType = Literal[
    "numeric_continuous", "numeric_discrete", "categorical", "boolean", "datetime", "free_text", "identifier"
]
SEMANTIC_TYPES: tuple[str, ...] = SemanticType.__args__  # type: ignore[attr-defined]
ColumnKind = Literal["numeric", "categorical", "datetime", "identifier", "text"]  # what metrics and encoders use
KIND_OF_TYPE: dict[str, ColumnKind] = {
    "numeric_continuous": "numeric", "numeric_discrete": "numeric", "categorical": "categorical",
    "boolean": "categorical", "datetime": "datetime", "free_text": "text", "identifier": "identifier",
}
# model: the generator learns it. surrogate: left out of the generator, fresh keys in the synthetic table.
# drop: left out of the generator and of the synthetic table. refuse: the run stops until the column is dropped.
Treatment = Literal["model", "surrogate", "drop", "refuse"]
TREATMENTS: tuple[str, ...] = Treatment.__args__  # type: ignore[attr-defined]

MISSING_TOKEN = "__missing__"
OTHER_VALUE = "(other)"  # what categories seen in fewer than k source rows become (text columns)
RARE_VALUE_K = 5  # a value must occur in at least this many source rows to be learnt, published or generated
RareCategoryHandling = Literal["other", "missing"]
RARE_CATEGORY_HANDLINGS: tuple[str, ...] = RareCategoryHandling.__args__  # type: ignore[attr-defined]
MISSING_INDICATOR_SUFFIX = "__is_missing"
SURROGATE_PREFIX = "SYN-"
SURROGATE_EMAIL_DOMAIN = "synthetic.invalid"  # RFC 2606: .invalid never resolves
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
DATETIME_RESOLUTIONS = (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1))


class ProfileError(ValueError):
    """The table or an override cannot be turned into a generator's training frame; the message says what to do."""


@dataclass
class ColumnProfile:
    name: str
    semantic_type: SemanticType
    dtype: str
    missing_fraction: float
    cardinality: int
    treatment: Treatment = "model"
    minimum: float | None = None  # numeric: the value; datetime: seconds since 1970 (UTC)
    maximum: float | None = None
    allowed_values: list[Any] | None = None  # categorical and boolean: the values seen (nulls aside)
    identifier_reason: str = ""  # why the column identifies a person ("" when it does not)
    quasi_identifier: bool = False  # an attribute that helps re-identify people in combination with others
    datetime_resolution: str | None = None  # day / hour / minute / second: synthetic datetimes are rounded to it
    datetime_timezone: str | None = None  # the source's time zone; None for naive datetimes
    overridden: bool = False  # type or treatment set by config, not inferred
    handling: str = ""  # what happens to the column, in words
    sensitive: bool = False  # declared sensitive: modelled, but its values are never published (profile, suite, previews)
    acknowledged_identifier: str = ""  # detected as an identifier (the reason), modelled because config acknowledged it
    rare_values_generalised: int = 0  # distinct categories seen in fewer than k source rows, generalised
    rows_generalised: int = 0  # source rows whose category was generalised
    rows_bottom_coded: int = 0  # source rows below the k-th smallest value, raised to it
    rows_top_coded: int = 0  # source rows above the k-th largest value, lowered to it

    @property
    def kind(self) -> ColumnKind:
        return KIND_OF_TYPE[self.semantic_type]

    @property
    def is_integer(self) -> bool:
        return self.semantic_type == "numeric_discrete"

    @property
    def has_missing(self) -> bool:
        return self.missing_fraction > 0

    @property
    def modelled(self) -> bool:
        return self.treatment == "model"


@dataclass(frozen=True)
class Ordering:
    """`low` ≤ `high` on every source row where both are present (e.g. admission ≤ discharge)."""

    low: str
    high: str

    def __str__(self) -> str:
        return f"{self.low} ≤ {self.high}"


@dataclass
class DatasetProfile:
    n_rows: int
    columns: list[ColumnProfile] = field(default_factory=list)
    orderings: list[Ordering] = field(default_factory=list)
    rows_unique_on_quasi_identifiers: float | None = None  # share of rows no other row shares the QI values of
    rare_value_k: int = RARE_VALUE_K  # values seen in fewer source rows are generalised (categories) or coded (ranges)
    rare_category_handling: RareCategoryHandling = "other"

    def by_kind(self, *kinds: ColumnKind) -> list[str]:
        """The modelled columns of these kinds (the ones a generator learns and the report compares)."""
        return [column.name for column in self.columns if column.kind in kinds and column.modelled]

    def by_treatment(self, *treatments: Treatment) -> list[str]:
        return [column.name for column in self.columns if column.treatment in treatments]

    def identifiers(self) -> list[str]:
        return [column.name for column in self.columns if column.semantic_type == "identifier"]

    def quasi_identifiers(self) -> list[str]:
        return [column.name for column in self.columns if column.quasi_identifier and column.modelled]

    def output_columns(self) -> list[str]:
        """The synthetic table's columns, in source order: everything but the dropped columns."""
        return [column.name for column in self.columns if column.treatment in ("model", "surrogate")]

    def column(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def sensitive_columns(self) -> list[str]:
        return [column.name for column in self.columns if column.sensitive]

    def to_dict(self, published: bool = True) -> dict:
        """The profile as JSON. `published` (the default: profile.json, metadata) withholds the values of sensitive
        columns (allowed values and range); `published=False` keeps them, for the platform's own sealed storage."""
        columns = [asdict(column) for column in self.columns]
        if published:
            for column in columns:
                if column["sensitive"]:
                    column.update(allowed_values=None, minimum=None, maximum=None)
        return {
            "n_rows": self.n_rows,
            "columns": columns,
            "orderings": [asdict(ordering) for ordering in self.orderings],
            "rows_unique_on_quasi_identifiers": self.rows_unique_on_quasi_identifiers,
            "rare_value_k": self.rare_value_k,
            "rare_category_handling": self.rare_category_handling,
        }

    @classmethod
    def from_dict(cls, data: dict) -> DatasetProfile:
        return cls(
            n_rows=data["n_rows"],
            columns=[ColumnProfile(**column) for column in data["columns"]],
            orderings=[Ordering(**ordering) for ordering in data.get("orderings", [])],
            rows_unique_on_quasi_identifiers=data.get("rows_unique_on_quasi_identifiers"),
            rare_value_k=data.get("rare_value_k", RARE_VALUE_K),
            rare_category_handling=data.get("rare_category_handling", "other"),
        )


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
) -> DatasetProfile:
    """Profile every column, decide its treatment, code rare values, find the orderings that hold, and check the
    result is usable.

    `column_types` overrides the inferred semantic type of named columns, `column_treatments` their treatment
    (e.g. `{"notes": "drop"}`). A column detected as an identifier is only modelled when `column_types` gives it
    another type AND it is listed in `acknowledge_identifiers`. Categories seen in fewer than `rare_value_k` rows
    become `OTHER_VALUE` (text columns, `rare_category_handling="other"`) or missing; numbers and datetimes are
    bottom- and top-coded at the k-th smallest and largest value. The profile describes the table after that
    coding (`apply_disclosure_control`): its allowed values and ranges hold no value fewer than k rows share.
    `sensitive_columns` are modelled but their values are never published (`to_dict`).
    Raises `ProfileError` for a table a generator cannot learn from: empty, only identifiers, a free-text column not
    dropped, an identifier set to be modelled without acknowledgement, an unknown column or value."""
    if frame.empty or len(frame.columns) == 0:
        raise ProfileError("Cannot profile an empty table: it has no rows or no columns.")
    column_types, column_treatments = dict(column_types or {}), dict(column_treatments or {})
    _check_overrides(frame, column_types, column_treatments)
    _check_disclosure_settings(frame, rare_value_k, rare_category_handling, sensitive_columns, acknowledge_identifiers)
    columns = [
        _profile_column(
            frame[name], column_types.get(str(name)), column_treatments.get(str(name)),
            acknowledged=str(name) in set(acknowledge_identifiers),
        )
        for name in frame.columns
    ]
    profile = DatasetProfile(
        n_rows=len(frame), columns=columns, rare_value_k=rare_value_k,
        rare_category_handling=rare_category_handling,  # type: ignore[arg-type]
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
        column.handling = _handling(column, frame[column.name].dropna(), rare_value_k)
    if detect_orderings:
        profile.orderings = find_orderings(controlled, profile)
    quasi = profile.quasi_identifiers()
    if quasi:
        profile.rows_unique_on_quasi_identifiers = float((~controlled[quasi].duplicated(keep=False)).mean())
    check_usable(profile)
    return profile


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
    k-th largest value (both are then shared by at least k rows). Sets allowed values / range and the counts."""
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
    values = np.sort(as_number(non_null, column.kind))
    n, j = len(values), min(k, len(values)) - 1
    low, high = values[j], values[n - 1 - j]
    if low > high:  # fewer than 2k − 1 values: every value is coded to the middle one
        low = high = values[n // 2]
    column.minimum, column.maximum = float(low), float(high)
    column.rows_bottom_coded, column.rows_top_coded = int((values < low).sum()), int((values > high).sum())


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)


def apply_disclosure_control(frame: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """The rows as the platform may use them after profiling: the synthetic table's columns only (dropped
    identifiers gone, surrogate-key columns holding fresh keys, never the source's), categories seen in fewer than
    k source rows generalised and numbers / datetimes coded into the published range. Generators learn from this,
    tuning and the report compare with it; raw source rows never go further than the profiler."""
    controlled: dict[str, pd.Series] = {}
    for column in profile.columns:
        if column.treatment not in ("model", "surrogate") or column.name not in frame:
            continue
        series = frame[column.name]
        if column.treatment == "surrogate":
            controlled[column.name] = pd.Series(surrogate_keys(column, len(series)), index=series.index)
        elif column.kind == "categorical" and column.rare_values_generalised:
            known = series.isna() | series.isin(column.allowed_values or [])
            other = OTHER_VALUE if OTHER_VALUE in (column.allowed_values or []) else None
            controlled[column.name] = series.astype(object).where(known, other)
        elif column.kind == "datetime" and column.minimum is not None:
            stamps = _parse_datetimes(series)
            tz = getattr(stamps.dt, "tz", None)
            low, high = (pd.Timestamp(bound, unit="s") for bound in (column.minimum, column.maximum))
            if tz is not None:
                low, high = low.tz_localize("UTC").tz_convert(tz), high.tz_localize("UTC").tz_convert(tz)
            controlled[column.name] = stamps.clip(low, high)
        elif column.kind == "numeric" and column.minimum is not None:
            numbers = series if pd.api.types.is_numeric_dtype(series.dtype) else pd.to_numeric(series, errors="coerce")
            if pd.api.types.is_bool_dtype(numbers.dtype):
                controlled[column.name] = numbers
            else:
                controlled[column.name] = numbers.clip(column.minimum, column.maximum)
        else:
            controlled[column.name] = series
    return pd.DataFrame(controlled, index=frame.index)


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
        raise ProfileError(
            f"No column of the table is left for a generator: every column is an identifier, dropped or refused "
            f"({[(c.name, c.semantic_type, c.treatment) for c in profile.columns]}). Select the data columns too."
        )


def _profile_column(
    series: pd.Series, type_override: str | None, treatment_override: str | None, acknowledged: bool = False
) -> ColumnProfile:
    name = str(series.name)
    non_null = series.dropna()
    cardinality = int(non_null.nunique())
    detected = identifier_reason(series, non_null, cardinality)
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
        semantic_type = "identifier" if reason else _semantic_type(series, non_null, cardinality)
    profile = ColumnProfile(
        name=name, semantic_type=semantic_type, dtype=str(series.dtype), missing_fraction=float(series.isna().mean()),
        cardinality=cardinality, identifier_reason=reason, overridden=bool(type_override or treatment_override),
        acknowledged_identifier=acknowledged_reason,
        quasi_identifier=semantic_type not in ("identifier", "free_text") and bool(QUASI_IDENTIFIER_NAME.search(name)),
    )
    if profile.kind in ("numeric", "datetime") and len(non_null):
        values = as_number(non_null, profile.kind)
        if np.isnan(values).any():
            raise ProfileError(
                f"Column {name!r} is {semantic_type} but {int(np.isnan(values).sum())} value(s) cannot be read as "
                f"{'dates' if profile.kind == 'datetime' else 'numbers'}, e.g. one shaped {value_shape(non_null[np.isnan(values)].iloc[0])!r}; "
                "override its type in column_types."
            )
        profile.minimum, profile.maximum = float(values.min()), float(values.max())
        if semantic_type == "numeric_discrete" and not np.all(np.mod(values, 1) == 0):
            raise ProfileError(f"Column {name!r} is set to numeric_discrete but holds non-integer values; use numeric_continuous.")
        if profile.kind == "datetime":
            profile.datetime_resolution = _resolution(values)
            profile.datetime_timezone = _timezone(non_null)
    if profile.kind == "categorical":
        profile.allowed_values = sorted((_plain(value) for value in non_null.unique()), key=lambda v: (str(type(v)), v))
    profile.treatment = treatment_override or _default_treatment(profile)
    return profile  # `handling` is written by profile_dataframe, once the rare values are coded


def value_shape(value: Any) -> str:
    """A source value's shape without its content, for messages: letters become a/A, digits 9 (`'Jo-12'` →
    `'Aa-99'`), at most 40 characters. Errors may show what a bad value looks like, never the value."""
    text = str(value)[:40]
    return "".join("9" if c.isdigit() else ("A" if c.isupper() else "a") if c.isalpha() else c for c in text)


def identifier_reason(series: pd.Series, non_null: pd.Series | None = None, cardinality: int | None = None) -> str:
    """Why the column directly identifies a person or a record ("" when it does not): e-mail addresses, personal
    names (by the column's name or its values), national ids, record numbers, card numbers, IBANs, phone numbers,
    record numbers by name, or a unique key."""
    non_null = series.dropna() if non_null is None else non_null
    cardinality = int(non_null.nunique()) if cardinality is None else cardinality
    if not len(non_null):
        return ""
    name = str(series.name)
    is_text = _is_text(series)
    distinct_share = cardinality / len(non_null)
    dates = _looks_like_datetime(non_null)
    text = non_null.astype(str).str.strip() if is_text and not dates else None
    if text is not None and text.str.match(EMAIL_VALUE).mean() >= 0.95:
        return "e-mail addresses"
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
    if all_unique and is_text and not _looks_like_datetime(non_null) and _mean_words(non_null) < FREE_TEXT_MIN_WORDS:
        return "a unique key (every value distinct text)"
    if all_unique and pd.api.types.is_integer_dtype(series.dtype):
        values = non_null.to_numpy(dtype=float)
        if values.max() - values.min() + 1 <= 2 * len(values):
            return "a unique key (distinct integers in a dense run, like row numbers)"
    return ""


def _semantic_type(series: pd.Series, non_null: pd.Series, cardinality: int) -> str:
    is_text = _is_text(series)
    if pd.api.types.is_datetime64_any_dtype(series.dtype) or (is_text and len(non_null) and _looks_like_datetime(non_null)):
        return "datetime"
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series.dtype):
        if cardinality <= 2:
            return "boolean" if set(non_null.unique()) <= {0, 1} and cardinality == 2 else "categorical"
        values = non_null.to_numpy(dtype=float)
        return "numeric_discrete" if np.all(np.mod(values, 1) == 0) else "numeric_continuous"
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


def _looks_like_datetime(values: pd.Series) -> bool:
    probe = values.astype(str).head(500)
    if not probe.str.contains(r"^\d{4}-\d{2}-\d{2}", regex=True).all():
        return False
    return bool(pd.to_datetime(probe, errors="coerce", format="ISO8601").notna().all())


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


def _timezone(values: pd.Series) -> str | None:
    tz = getattr(_parse_datetimes(values).dt, "tz", None)
    return str(tz) if tz is not None else None


def as_number(values: pd.Series, kind: ColumnKind) -> np.ndarray:
    """Numbers as floats; datetimes (parsed from text when needed) as seconds since 1970 in UTC; NaN where unreadable."""
    if kind == "datetime":
        return _datetime_to_seconds(values)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def _datetime_to_seconds(values: pd.Series) -> np.ndarray:
    stamps = _parse_datetimes(values)
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return (stamps - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=float)


def _parse_datetimes(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pandas' notice about mixed offsets, handled below
        stamps = pd.to_datetime(values, errors="coerce", format="ISO8601")
    if not pd.api.types.is_datetime64_any_dtype(stamps.dtype):  # mixed UTC offsets come back as objects: use UTC
        stamps = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    return stamps


def _default_treatment(column: ColumnProfile) -> Treatment:
    if column.semantic_type == "free_text":
        return "refuse"
    if column.semantic_type == "identifier":
        # Keys stay keys (fresh ones), so the table still joins; contact details and names have no use in
        # synthetic data and are dropped.
        return "drop" if column.identifier_reason.startswith(DROPPED_IDENTIFIERS) else "surrogate"
    return "model"


def _handling(column: ColumnProfile, non_null: pd.Series, k: int = RARE_VALUE_K) -> str:
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
    elif column.kind == "numeric":
        prefix = "rounded to integers; " if column.is_integer else ""
    else:
        prefix = ""
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
    if not column.has_missing:
        return prefix + "no missing values"
    if column.kind == "categorical":
        return prefix + f"missing values modelled as the category {MISSING_TOKEN!r}, restored as missing"
    return prefix + (
        f"missing values filled with the median and modelled by an indicator column "
        f"'{column.name}{MISSING_INDICATOR_SUFFIX}', restored as missing"
    )


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def find_orderings(frame: pd.DataFrame, profile: DatasetProfile, min_rows: int = MIN_KEY_ROWS) -> list[Ordering]:
    """Pairs of modelled columns of the same kind (numeric or datetime) with low ≤ high on every source row where
    both are present, when their ranges overlap (an ordering the ranges already imply says nothing) and at least
    `min_rows` rows have both values."""
    found: list[Ordering] = []
    for kind in ("numeric", "datetime"):
        names = profile.by_kind(kind)
        numbers = {name: pd.Series(as_number(frame[name], kind), index=frame.index) for name in names}
        for a, b in combinations(names, 2):
            both = numbers[a].notna() & numbers[b].notna()
            if both.sum() < min_rows:
                continue
            x, y = numbers[a][both], numbers[b][both]
            if (x == y).all():
                continue
            for low, high, lo_values, hi_values in ((a, b, x, y), (b, a, y, x)):
                ranges_overlap = lo_values.max() > hi_values.min()
                if ranges_overlap and (lo_values <= hi_values).all():
                    found.append(Ordering(low, high))
    return found


def encode_for_generation(frame: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """The NaN-free frame a generator trains on: only modelled columns, rare values generalised and ranges coded
    (`apply_disclosure_control`, whatever rows are given), datetimes as seconds, missingness modelled."""
    frame = apply_disclosure_control(frame, profile)
    encoded: dict[str, pd.Series] = {}
    for column in profile.columns:
        if not column.modelled:
            continue
        series = frame[column.name]
        if column.kind == "categorical":
            values = series.astype(object).where(series.notna(), MISSING_TOKEN).astype(str)
            encoded[column.name] = values
            continue
        numbers = pd.Series(as_number(series, column.kind), index=series.index)
        missing = numbers.isna()
        if missing.any() or column.has_missing:
            fill = float(numbers.median()) if (~missing).any() else 0.0
            numbers = numbers.fillna(fill)
            encoded[column.name + MISSING_INDICATOR_SUFFIX] = missing.astype(int)
        encoded[column.name] = numbers
    return pd.DataFrame(encoded, index=frame.index)


def decode_from_generation(generated: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """Map generated rows back to the source schema: types, ranges, missing values, datetimes at the source's
    resolution and time zone, fresh surrogate keys numbered from 1; dropped columns stay out."""
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
        if column.minimum is not None:
            numbers = numbers.clip(column.minimum, column.maximum)
        indicator = column.name + MISSING_INDICATOR_SUFFIX
        missing = (
            pd.to_numeric(generated[indicator], errors="coerce").fillna(0) >= 0.5
            if indicator in generated
            else pd.Series(False, index=generated.index)
        )
        if column.kind == "datetime":
            decoded[column.name] = _decode_datetime(numbers, column).where(~missing, pd.NaT)
        elif column.is_integer:
            rounded = numbers.round()
            decoded[column.name] = (
                rounded.where(~missing).astype("Int64") if column.has_missing else rounded.astype("int64")
            )
        else:
            decoded[column.name] = numbers.where(~missing)
    return pd.DataFrame(decoded, index=generated.index).reset_index(drop=True)


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


def _decode_datetime(seconds: pd.Series, column: ColumnProfile) -> pd.Series:
    unit = dict(DATETIME_RESOLUTIONS)[column.datetime_resolution or "second"]
    stamps = pd.to_datetime((seconds / unit).round() * unit, unit="s")
    if column.datetime_timezone:
        stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(column.datetime_timezone)
    return stamps


def _decode_categorical(values: pd.Series, column: ColumnProfile) -> pd.Series:
    """Generated category labels back to the source's values and dtype (labels are the values as text: see
    encode_for_generation); the missing token, and any label the source never had, become missing."""
    lookup = {str(value): value for value in column.allowed_values or []}
    restored = values.astype(str).map(lookup)
    if column.dtype.startswith(("int", "uint", "float", "Int", "Float")):
        numbers = pd.to_numeric(restored, errors="coerce")
        keep_integers = column.dtype.startswith(("int", "uint")) and not numbers.isna().any()
        return numbers.astype(column.dtype) if keep_integers else numbers.astype(float)
    if column.dtype == "bool" and restored.notna().all():
        return restored.astype(bool)
    return restored.astype(object).where(restored.notna(), None)


def align_for_comparison(frame: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """The frame with the synthetic table's columns and datetimes parsed (as the decoder returns them), so source
    and synthetic rows compare like for like."""
    aligned = frame[[name for name in profile.output_columns() if name in frame.columns]].copy()
    for column in profile.columns:
        if not column.modelled or column.name not in aligned:
            continue
        values = aligned[column.name]
        if column.kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(values.dtype):
            aligned[column.name] = _parse_datetimes(values)
        elif column.kind == "numeric" and not pd.api.types.is_numeric_dtype(values.dtype):  # numbers stored as text
            aligned[column.name] = pd.to_numeric(values, errors="coerce")
    return aligned
