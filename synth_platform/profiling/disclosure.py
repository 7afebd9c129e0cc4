"""Value-level disclosure: does a table hold a source value the platform promises never to release?

Pure logic: no Dagster here. Row-level privacy (membership inference, exact copies) says nothing about single
values: a generator that learnt names as categories passes every row-level check while printing real names. This
module searches a synthetic table for the four kinds of value the platform must never release, and reports how
many cells of which column hold one, never the values themselves:

- `identifier_values`: a value of a source column profiled as a direct identifier (names, e-mails, record
  numbers, keys), in any text column or identifier column, compared as trimmed, case-folded text. A value that is
  also a published category of the column it appears in (seen in at least k source rows of that column: a
  surname "White" and the race "White") is that column's own value, not a leak.
- `rare_values`: a category of a modelled column seen in fewer than k source training rows (or only in the
  holdout), which the profiler generalised and no generator saw.
- `beyond_coded_range`: a number or datetime outside the column's published range, which stops at the k-th
  smallest and largest source value (an outlier that identifies one row lies beyond it).
- `sensitive_filter_values`: a value a filter on a sensitive column was given, in any cell of any column. Only
  salted digests of those values are kept (`SecretDigests`), so the check can look for them without holding them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd

from synth_platform.profiling.profile import OTHER_VALUE, DatasetProfile, as_number, special_masks

KINDS = ("identifier_values", "rare_values", "beyond_coded_range", "sensitive_filter_values")


def _normalised(values: pd.Series) -> pd.Series:
    return values.astype(str).str.strip().str.casefold()


@dataclass(frozen=True)
class SecretDigests:
    """Salted SHA-256 digests of secret values (filter values on sensitive columns): enough to recognise a value
    in a table, not to recover it. The salt is fresh per read, so digests of two reads do not compare."""

    salt: str = ""
    digests: frozenset[str] = frozenset()

    @classmethod
    def of(cls, values: Iterable[Any]) -> SecretDigests:
        salt = secrets.token_hex(16)
        texts = {str(value).strip().casefold() for value in values if value is not None}
        return cls(salt, frozenset(cls._digest(salt, text) for text in texts if text))

    @staticmethod
    def _digest(salt: str, text: str) -> str:
        return hashlib.sha256(f"{salt}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()

    def matches(self, values: pd.Series) -> pd.Series:
        """True where a value, as trimmed case-folded text, is one of the secrets."""
        if not self.digests:
            return pd.Series(False, index=values.index)
        present = values.notna()
        texts = _normalised(values[present])
        hits = {text for text in texts.unique() if self._digest(self.salt, text) in self.digests}
        return present & _normalised(values).isin(hits)

    def __bool__(self) -> bool:
        return bool(self.digests)


@dataclass
class DisclosureFindings:
    """Cells per column holding a value the platform must not release, by kind. Counts only, never values."""

    identifier_values: dict[str, int] = field(default_factory=dict)
    rare_values: dict[str, int] = field(default_factory=dict)
    beyond_coded_range: dict[str, int] = field(default_factory=dict)
    sensitive_filter_values: dict[str, int] = field(default_factory=dict)

    @property
    def cells(self) -> int:
        return sum(sum(getattr(self, kind).values()) for kind in KINDS)

    @property
    def passed(self) -> bool:
        return self.cells == 0

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {kind: dict(getattr(self, kind)) for kind in KINDS}

    def summary(self) -> str:
        if self.passed:
            return "no source identifier, rare value, value beyond the coded range or sensitive filter value found"
        parts = []
        for kind in KINDS:
            found = getattr(self, kind)
            if found:
                by_column = ", ".join(f"{column}: {count}" for column, count in sorted(found.items()))
                parts.append(f"{kind.replace('_', ' ')} in {sum(found.values())} cell(s) ({by_column})")
        return "; ".join(parts)


def find_disclosures(
    synthetic: pd.DataFrame,
    training: pd.DataFrame,
    profile: DatasetProfile,
    *,
    holdout: pd.DataFrame | None = None,
    secret_values: SecretDigests | None = None,
) -> DisclosureFindings:
    """Search `synthetic` for source values that must not be released. `training` (and `holdout`) are the raw
    source rows, before any coding; `profile` is the one the synthetic table was made under (its k, its
    identifiers, its published categories and ranges)."""
    sources = [training] + ([holdout] if holdout is not None else [])
    findings = DisclosureFindings()
    _identifier_values(synthetic, sources, profile, findings)
    _rare_values(synthetic, training, sources, profile, findings)
    _beyond_coded_range(synthetic, profile, findings)
    if secret_values:
        for name in synthetic.columns:
            hits = int(secret_values.matches(synthetic[name]).sum())
            if hits:
                findings.sensitive_filter_values[str(name)] = hits
    return findings


def _published_categories(profile: DatasetProfile, name: str) -> set[str]:
    try:
        column = profile.column(name)
    except KeyError:
        return set()
    if column.kind != "categorical" or not column.modelled:
        return set()
    return {str(value).strip().casefold() for value in column.allowed_values or []}


def _identifier_values(synthetic: pd.DataFrame, sources: list[pd.DataFrame], profile: DatasetProfile, findings: DisclosureFindings) -> None:
    identifiers = profile.identifiers()
    known: set[str] = set()
    for source in sources:
        for name in identifiers:
            if name in source:
                known.update(_normalised(source[name].dropna()))
    known.discard("")
    if not known:
        return
    for name in synthetic.columns:
        values = synthetic[name].dropna()
        textual = values.dtype == object or pd.api.types.is_string_dtype(values.dtype)
        if name not in identifiers and not textual:
            continue
        candidates = known - _published_categories(profile, str(name))
        hits = int(_normalised(values).isin(candidates).sum())
        if hits:
            findings.identifier_values[str(name)] = hits


def _rare_values(
    synthetic: pd.DataFrame, training: pd.DataFrame, sources: list[pd.DataFrame], profile: DatasetProfile,
    findings: DisclosureFindings,
) -> None:
    k = profile.rare_value_k
    for column in profile.columns:
        name = column.name
        if column.kind != "categorical" or not column.modelled or name not in synthetic or name not in training:
            continue
        counts = _normalised(training[name].dropna()).value_counts()
        seen: set[str] = set()
        for source in sources:
            if name in source:
                seen.update(_normalised(source[name].dropna()))
        rare = {value for value in seen if counts.get(value, 0) < k} - {OTHER_VALUE.casefold()}
        if not rare:
            continue
        hits = int(_normalised(synthetic[name].dropna()).isin(rare).sum())
        if hits:
            findings.rare_values[name] = hits


def _beyond_coded_range(synthetic: pd.DataFrame, profile: DatasetProfile, findings: DisclosureFindings) -> None:
    for column in profile.columns:
        name = column.name
        if column.kind not in ("numeric", "datetime") or not column.modelled or column.minimum is None or name not in synthetic:
            continue
        numbers = as_number(synthetic[name], column.kind)
        low, high = column.minimum, column.maximum
        if column.kind == "datetime":  # the published bounds are whole seconds (contract._datetime_bound)
            low, high = float(np.floor(low)), float(np.ceil(high))
        present = ~np.isnan(numbers)
        for special in special_masks(numbers, column).values():  # ±inf and sentinel dates the profile models
            present &= ~special
        hits = int((present & ((numbers < low) | (numbers > high))).sum())
        if hits:
            findings.beyond_coded_range[name] = hits
