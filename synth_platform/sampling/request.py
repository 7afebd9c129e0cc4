"""What a read asks for: `SampleRequest` (one table, optional columns, structured `Filter`s, sampling settings) and
the checks every name and value in it passes before any database is touched. Pure logic: no Dagster, no database.

The request holds no SQL: names are checked here for shape (plain text, sane length, no look-alike characters), and
against the reflected schema by the read (`source.check_names`); filter values only ever reach the database as bound
parameters.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

from synth_platform.sampling.errors import SourceError
from synth_platform.sampling.noise import NoiseBound, NoiseError, NoisePlan

MIN_ROWS = 20
DEFAULT_ROW_CAP = 1_000_000
DEFAULT_STATEMENT_TIMEOUT_S = 60.0
REDACTED = "<redacted>"
MAX_IDENTIFIER_CHARS = 255  # PostgreSQL truncates at 63 bytes, SQLite has no limit; longer names are never real
MAX_TEXT_VALUE_CHARS = 10_000
MAX_LIST_VALUES = 10_000
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "sqlite_temp")

SCALAR_OPS = ("=", "!=", "<", "<=", ">", ">=")
LIST_OPS = ("in", "not in")
NULL_OPS = ("is null", "is not null")
OPERATORS = SCALAR_OPS + LIST_OPS + NULL_OPS + ("between",)
_SCALAR_TYPES = (str, int, float, bool, decimal.Decimal, dt.date, dt.datetime, dt.time)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, _SCALAR_TYPES) and not (isinstance(value, float) and math.isnan(value))


def _unprintable(text: str) -> str | None:
    """The first control / format / surrogate character of `text` (NUL, escapes, bidi overrides), if any."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs"):
            return f"U+{ord(char):04X}"
    return None


def check_identifier(what: str, name: Any) -> None:
    """A table or column name must be plain text of sane length; whether it exists is checked against the schema."""
    if not isinstance(name, str) or not name:
        raise SourceError(f"{what} must be a non-empty name, got {type(name).__name__} {str(name)[:40]!r}.")
    if len(name) > MAX_IDENTIFIER_CHARS:
        raise SourceError(f"{what} {name[:40]!r}… is {len(name)} characters long; names have at most {MAX_IDENTIFIER_CHARS}.")
    bad = _unprintable(name)
    if bad is not None:
        raise SourceError(f"{what} {name[:40]!r} contains the control character {bad}; names are plain text.")
    problem = lookalike_problem(name)
    if problem:
        raise SourceError(f"{what} {code_points(name[:40])} {problem}; type the name in one script, as the database spells it.")


# Unicode's Default_Ignorable_Code_Point ranges (DerivedCoreProperties.txt) that are not format characters (Cf, refused
# above): invisible in every font, so `adult` + U+3164 looks like `adult`.
_IGNORABLE = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
              (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF), (0x2800, 0x2800))
# Unicode TR39's "highly restrictive" profile: one script, or one of these combinations (the ways Japanese, Chinese
# and Korean are written); Latin with Cyrillic or Greek is how look-alike names are made (`аdult`, Cyrillic а).
_ALLOWED_SCRIPT_SETS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}), frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


def lookalike_problem(name: str) -> str:
    """Why `name` could pass for another name ("" when it cannot): an invisible character, or letters of scripts that
    are not written together (Unicode TR39 highly restrictive; scripts from the confusable_homoglyphs data)."""
    from confusable_homoglyphs import categories

    for position, char in enumerate(name):
        if any(low <= ord(char) <= high for low, high in _IGNORABLE):
            return f"contains the invisible character U+{ord(char):04X} at position {position}"
    if name.isascii():
        return ""
    folded = unicodedata.normalize("NFKC", name)
    if folded != name:  # fullwidth ａｇｅ, mathematical 𝐚ge, ligatures: other code points for the same letters
        return f"is written with compatibility characters that stand for {folded!r}, so it can look like that name"
    scripts = {categories.alias(char) for char in name} - {"COMMON", "INHERITED"}
    if len(scripts) > 1 and not any(scripts <= allowed for allowed in _ALLOWED_SCRIPT_SETS):
        return f"mixes the scripts {sorted(scripts)}, so it can look like a different name"
    for position, char in enumerate(name):  # a symbol drawn like a letter: ⍺ (APL alpha) for a
        if not char.isascii() and categories.alias(char) == "COMMON" and _ascii_lookalike(char):
            return f"contains U+{ord(char):04X} at position {position}, a symbol that looks like {_ascii_lookalike(char)!r}"
    return ""


@functools.lru_cache(maxsize=4096)
def _ascii_lookalike(char: str) -> str:
    """The ASCII letter or digit `char` is confusable with (Unicode's confusables data), "" when none."""
    from confusable_homoglyphs import confusables

    for found in confusables.is_confusable(char, greedy=True) or []:
        for glyph in found["homoglyphs"]:
            if glyph["c"].isascii() and glyph["c"].isalnum():
                return glyph["c"]
    return ""


def code_points(name: str) -> str:
    """The name as typed, and for a non-ASCII one each non-ASCII character's code point, so a look-alike shows."""
    if name.isascii():
        return repr(name)
    marked = "".join(char if char.isascii() else f"<U+{ord(char):04X}>" for char in name)
    return f"{name!r} ({marked})"


def _check_text_value(column: str, value: Any) -> None:
    if not isinstance(value, str):
        return
    if len(value) > MAX_TEXT_VALUE_CHARS:
        raise SourceError(f"A filter value on {column!r} is {len(value)} characters long; at most {MAX_TEXT_VALUE_CHARS} are accepted.")
    if "\x00" in value:
        raise SourceError(f"A filter value on {column!r} contains a NUL character, which no database text can hold.")
    if any(unicodedata.category(char) == "Cs" for char in value):
        raise SourceError(f"A filter value on {column!r} contains an unpaired surrogate; send valid Unicode text.")


@dataclass(frozen=True)
class Filter:
    """One structured condition: `column op value`. `value` is a scalar, a list (in / not in), a (low, high)
    pair (between) or nothing (is null / is not null). Values only ever reach the database as bound parameters."""

    column: str
    op: str = "="
    value: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.value, list):
            object.__setattr__(self, "value", tuple(self.value))

    def validate(self) -> None:
        check_identifier("A filter column", self.column)
        if not isinstance(self.op, str) or self.op not in OPERATORS:
            raise SourceError(f"Filter operator {str(self.op)[:40]!r} on {self.column!r} is not one of {list(OPERATORS)}.")
        value = self.value
        if self.op in NULL_OPS:
            if value is not None:
                raise SourceError(f"Filter {self.column!r} {self.op} takes no value, got {value!r}.")
        elif self.op in LIST_OPS:
            if not isinstance(value, tuple) or not value or not all(_is_scalar(v) for v in value):
                raise SourceError(f"Filter {self.column!r} {self.op} needs a non-empty list of plain values.")
        elif self.op == "between":
            if not isinstance(value, tuple) or len(value) != 2 or not all(_is_scalar(v) for v in value):
                raise SourceError(f"Filter {self.column!r} between needs a [low, high] pair of plain values.")
        elif not _is_scalar(value):
            raise SourceError(f"Filter {self.column!r} {self.op} needs one plain value (text, number, date), got {type(value).__name__}.")
        values = value if isinstance(value, tuple) else (value,)
        if len(values) > MAX_LIST_VALUES:
            raise SourceError(f"Filter {self.column!r} {self.op} lists {len(values)} values; at most {MAX_LIST_VALUES} are accepted.")
        for item in values:
            _check_text_value(self.column, item)

    def describe(self, redact: bool) -> dict[str, Any]:
        value: Any = self.value
        if redact and self.op not in NULL_OPS:
            value = REDACTED
        elif isinstance(value, tuple):
            value = list(value)
        return {"column": self.column, "op": self.op, "value": _jsonable(value)}


@dataclass(frozen=True)
class SampleRequest:
    """What to read: one table (optionally `schema.table`), optionally some of its columns and structured filters,
    at most `max_rows` rows sampled in the database with `seed` (optionally stratified by one column and/or thinned
    to `sample_fraction` first), split into training and holdout with the same seed.

    `sensitive_columns` are columns whose filter values never appear in audit records or metadata.
    `row_cap` is a hard limit: requests that could return more rows are refused.
    `noise_epsilon` with `noise_bounds` adds bounded Laplace noise to those numeric columns as they are read (see
    `noise.py`); noised columns count as sensitive and cannot be filtered or stratified on."""

    table: str = ""
    columns: tuple[str, ...] = ()
    max_rows: int | None = None
    holdout_fraction: float = 0.2
    seed: int = 0
    filters: tuple[Filter, ...] = ()
    sample_fraction: float | None = None
    stratify_by: str | None = None
    sensitive_columns: tuple[str, ...] = ()
    statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S
    row_cap: int = DEFAULT_ROW_CAP
    noise_epsilon: float | None = None
    noise_bounds: tuple[NoiseBound, ...] = ()
    allowed_schemas: tuple[str, ...] = ()
    allow_privileged_role: bool = False
    allow_side_effect_functions: bool = False

    def __post_init__(self) -> None:
        for name in ("columns", "filters", "sensitive_columns", "noise_bounds", "allowed_schemas"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        object.__setattr__(
            self, "filters", tuple(f if isinstance(f, Filter) else Filter(**f) for f in self.filters)
        )
        object.__setattr__(
            self, "noise_bounds", tuple(b if isinstance(b, NoiseBound) else NoiseBound(**b) for b in self.noise_bounds)
        )

    @property
    def noise_plan(self) -> NoisePlan | None:
        if self.noise_epsilon is None and not self.noise_bounds:
            return None
        return NoisePlan(self.noise_epsilon, self.noise_bounds)  # type: ignore[arg-type]

    @property
    def all_sensitive_columns(self) -> set[str]:
        """Columns declared sensitive plus the noised ones."""
        return set(self.sensitive_columns) | {b.column for b in self.noise_bounds}

    def validate(self) -> None:
        if not isinstance(self.table, str) or not self.table.strip():
            raise SourceError("No table given: set `table` to the name of the table to sample.")
        schema, _, name = self.table.rpartition(".")
        check_identifier("Table", name)
        if schema:
            check_identifier("Schema", schema)
        if schema.lower() in SYSTEM_SCHEMAS or schema.lower().startswith("pg_") or name.lower().startswith(("sqlite_", "pg_")):
            raise SourceError(f"Table {self.table!r} is a system catalog; only user tables can be sampled.")
        for column in self.columns:
            check_identifier("A column", column)
        for column in self.sensitive_columns:
            check_identifier("A sensitive column", column)
        for allowed in self.allowed_schemas:
            check_identifier("An allowed schema", allowed)
        if schema and self.allowed_schemas and schema not in self.allowed_schemas:
            raise SourceError(f"Schema {schema!r} is not among the allowed schemas {list(self.allowed_schemas)}.")
        if self.stratify_by is not None:
            check_identifier("The stratify column", self.stratify_by)
        if not 0.0 < self.holdout_fraction < 1.0:
            raise SourceError(f"holdout_fraction must lie strictly between 0 and 1, got {self.holdout_fraction}.")
        if not isinstance(self.row_cap, int) or self.row_cap < MIN_ROWS:
            raise SourceError(f"row_cap must be an integer of at least {MIN_ROWS}, got {self.row_cap!r}.")
        if self.max_rows is not None:
            if not isinstance(self.max_rows, int) or self.max_rows < MIN_ROWS:
                raise SourceError(f"max_rows must be at least {MIN_ROWS} (or unset for the whole table), got {self.max_rows}.")
            if self.max_rows > self.row_cap:
                raise SourceError(f"max_rows={self.max_rows} exceeds the row cap of {self.row_cap} rows.")
        if len(set(self.columns)) != len(self.columns):
            raise SourceError(f"Columns are listed twice in {list(self.columns)}.")
        if self.sample_fraction is not None and not 0.0 < self.sample_fraction <= 1.0:
            raise SourceError(f"sample_fraction must lie in (0, 1], got {self.sample_fraction}.")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise SourceError(f"seed must be an integer in [0, 2**31), got {self.seed!r}.")
        if not isinstance(self.statement_timeout_s, (int, float)) or not 0 < self.statement_timeout_s <= 24 * 3600:
            raise SourceError(f"statement_timeout_s must lie in (0, 86400], got {self.statement_timeout_s!r}.")
        for item in self.filters:
            item.validate()
        plan = self.noise_plan
        if plan is not None:
            for bound in plan.bounds:
                check_identifier("A noise column", bound.column)
            try:
                plan.validate()
            except NoiseError as exc:
                raise SourceError(str(exc)) from None
            noised = set(plan.columns)
            filtered = sorted(noised & {f.column for f in self.filters})
            if filtered:
                raise SourceError(
                    f"Noised columns {filtered} cannot be filtered on: which rows come back would reveal their true "
                    "values. Filter on other columns or drop the noise for them."
                )
            if self.stratify_by in noised:
                raise SourceError(f"Noised column {self.stratify_by!r} cannot be the stratify column (its true values would shape the sample).")

    @property
    def withheld_columns(self) -> list[str]:
        """Columns a filter on a sensitive column is on: left out of the sample, because their values would reveal
        the filter (every row holds the pinned value, or the range starts at the secret bound)."""
        sensitive = self.all_sensitive_columns
        return sorted({f.column for f in self.filters if f.column in sensitive and f.op not in NULL_OPS})

    def secret_values(self) -> list[Any]:
        """The values of filters on sensitive columns (what must never be shown anywhere)."""
        sensitive = self.all_sensitive_columns
        found: list[Any] = []
        for item in self.filters:
            if item.column in sensitive and item.value is not None:
                found.extend(item.value if isinstance(item.value, tuple) else (item.value,))
        return found

    def filters_for_audit(self) -> list[dict[str, Any]]:
        sensitive = self.all_sensitive_columns
        return [f.describe(redact=f.column in sensitive) for f in self.filters]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime, dt.time, decimal.Decimal)):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value

