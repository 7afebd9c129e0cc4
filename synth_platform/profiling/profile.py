"""Profile a table and turn it into the NaN-free numeric/categorical frame a synthcity generator can learn, and back.

Pure logic: no Dagster here. Decisions taken per column are recorded in the profile, so a person can read what was
done to each column and why.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

ColumnKind = Literal["numeric", "categorical", "datetime", "identifier"]

MISSING_TOKEN = "__missing__"
MISSING_INDICATOR_SUFFIX = "__is_missing"
IDENTIFIER_NAME = re.compile(r"(^id$|_id$|^id_|uuid|guid|^key$|_key$|record_?(no|num|number)$|^mrn$|ssn)", re.I)
SURROGATE_PREFIX = "SYN-"


@dataclass
class ColumnProfile:
    name: str
    kind: ColumnKind
    dtype: str
    missing_fraction: float
    cardinality: int
    is_integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    handling: str = ""  # what encode_for_generation does with the column, in words

    @property
    def has_missing(self) -> bool:
        return self.missing_fraction > 0


@dataclass
class DatasetProfile:
    n_rows: int
    columns: list[ColumnProfile] = field(default_factory=list)

    def by_kind(self, *kinds: ColumnKind) -> list[str]:
        return [column.name for column in self.columns if column.kind in kinds]

    def column(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"n_rows": self.n_rows, "columns": [asdict(column) for column in self.columns]}

    @classmethod
    def from_dict(cls, data: dict) -> DatasetProfile:
        return cls(n_rows=data["n_rows"], columns=[ColumnProfile(**column) for column in data["columns"]])


def profile_dataframe(frame: pd.DataFrame) -> DatasetProfile:
    """Classify every column (numeric / categorical / datetime / identifier) and decide its missing-value handling."""
    if frame.empty or len(frame.columns) == 0:
        raise ValueError("Cannot profile an empty table: it has no rows or no columns.")
    columns = [_profile_column(frame[name]) for name in frame.columns]
    if all(column.kind == "identifier" for column in columns):
        raise ValueError(
            f"Every column of the table looks like an identifier ({[c.name for c in columns]}): there is nothing "
            "a generator could learn. Select the data columns too."
        )
    return DatasetProfile(n_rows=len(frame), columns=columns)


def _profile_column(series: pd.Series) -> ColumnProfile:
    name = str(series.name)
    non_null = series.dropna()
    missing_fraction = float(series.isna().mean())
    cardinality = int(non_null.nunique())
    kind = _classify(series, non_null, cardinality)
    profile = ColumnProfile(
        name=name, kind=kind, dtype=str(series.dtype), missing_fraction=missing_fraction, cardinality=cardinality
    )
    if kind in ("numeric", "datetime") and len(non_null):
        values = _as_number(non_null, kind)
        profile.minimum, profile.maximum = float(values.min()), float(values.max())
        profile.is_integer = kind == "numeric" and bool(np.all(np.mod(values, 1) == 0))
    profile.handling = _handling(profile)
    return profile


def _classify(series: pd.Series, non_null: pd.Series, cardinality: int) -> ColumnKind:
    all_unique = len(non_null) > 0 and cardinality == len(non_null)
    is_text = series.dtype == object or pd.api.types.is_string_dtype(series.dtype)
    if pd.api.types.is_datetime64_any_dtype(series.dtype) or (is_text and len(non_null) and _looks_like_datetime(non_null)):
        return "datetime"
    if all_unique and len(non_null) >= 20 and (IDENTIFIER_NAME.search(str(series.name)) or is_text):
        return "identifier"
    if pd.api.types.is_bool_dtype(series.dtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "numeric" if cardinality > 2 else "categorical"
    return "categorical"


def _looks_like_datetime(values: pd.Series) -> bool:
    probe = values.astype(str).head(500)
    if not probe.str.contains(r"^\d{4}-\d{2}-\d{2}", regex=True).all():
        return False
    return bool(pd.to_datetime(probe, errors="coerce", format="ISO8601").notna().all())


def _as_number(values: pd.Series, kind: ColumnKind) -> np.ndarray:
    if kind == "datetime":
        return _datetime_to_seconds(values)
    return values.to_numpy(dtype=float)


def _datetime_to_seconds(values: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(values, errors="coerce", format="ISO8601")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return (stamps - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=float)


def _handling(column: ColumnProfile) -> str:
    if column.kind == "identifier":
        return "dropped before generation; fresh surrogate keys in the synthetic table"
    prefix = "as seconds since 1970; " if column.kind == "datetime" else ""
    if not column.has_missing:
        return prefix + "no missing values"
    if column.kind == "categorical":
        return f"missing values modelled as the category {MISSING_TOKEN!r}, restored as missing"
    return prefix + (
        f"missing values filled with the median and modelled by an indicator column "
        f"'{column.name}{MISSING_INDICATOR_SUFFIX}', restored as missing"
    )


def encode_for_generation(frame: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """The NaN-free frame a generator trains on: identifiers dropped, datetimes as seconds, missingness modelled."""
    encoded: dict[str, pd.Series] = {}
    for column in profile.columns:
        if column.kind == "identifier":
            continue
        series = frame[column.name]
        if column.kind == "categorical":
            values = series.astype(object).where(series.notna(), MISSING_TOKEN).astype(str)
            encoded[column.name] = values
            continue
        numbers = pd.Series(_as_number(series, column.kind), index=series.index)
        missing = numbers.isna()
        if missing.any() or column.has_missing:
            fill = float(numbers.median()) if (~missing).any() else 0.0
            numbers = numbers.fillna(fill)
            encoded[column.name + MISSING_INDICATOR_SUFFIX] = missing.astype(int)
        encoded[column.name] = numbers
    return pd.DataFrame(encoded, index=frame.index)


def decode_from_generation(generated: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """Map generated rows back to the source schema: types, ranges, missing values, surrogate identifiers."""
    decoded: dict[str, pd.Series] = {}
    n = len(generated)
    for column in profile.columns:
        if column.kind == "identifier":
            decoded[column.name] = pd.Series([f"{SURROGATE_PREFIX}{i + 1:08d}" for i in range(n)], index=generated.index)
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
            stamps = pd.to_datetime(numbers.round(), unit="s")
            decoded[column.name] = stamps.where(~missing, pd.NaT)
        elif column.is_integer:
            rounded = numbers.round()
            decoded[column.name] = (
                rounded.where(~missing).astype("Int64") if column.has_missing else rounded.astype("int64")
            )
        else:
            decoded[column.name] = numbers.where(~missing)
    return pd.DataFrame(decoded, index=generated.index).reset_index(drop=True)


def _decode_categorical(values: pd.Series, column: ColumnProfile) -> pd.Series:
    text = values.astype(str)
    restored = text.where(text != MISSING_TOKEN, None)
    if column.dtype in ("object", "str", "string"):
        return restored
    if column.dtype == "bool":
        return restored.map({"True": True, "False": False})
    if column.dtype.startswith(("int", "uint", "float", "Int", "Float")):
        numbers = pd.to_numeric(restored, errors="coerce")
        return numbers.astype(column.dtype if not column.has_missing and column.dtype.startswith(("int", "uint")) else float)
    return restored


def align_for_comparison(frame: pd.DataFrame, profile: DatasetProfile) -> pd.DataFrame:
    """Source-shaped frame with datetimes parsed, for metrics that compare source and synthetic rows."""
    aligned = frame[[column.name for column in profile.columns]].copy()
    for column in profile.columns:
        if column.kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(aligned[column.name].dtype):
            aligned[column.name] = pd.to_datetime(aligned[column.name], errors="coerce", format="ISO8601")
    return aligned
