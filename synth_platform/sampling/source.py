"""Read a sample of one table from any SQLAlchemy database and split it into training and holdout parts.

Pure logic: no Dagster here. The embedded default source is a SQLite file seeded from the bundled UCI Adult data.

Safety properties of every read:

* the request holds no SQL: identifiers (table, columns, filter/stratify/sensitive columns) are checked against the
  reflected schema before any data query, and the SELECT is built from the reflected `Table` with SQLAlchemy Core,
  every filter value a bound parameter;
* reads run in a read-only transaction (`SET TRANSACTION READ ONLY` plus a transaction-local `statement_timeout`
  on PostgreSQL, `PRAGMA query_only` plus a progress-handler deadline on SQLite);
* non-local sources need TLS (`check_transport_security`); names and values that are not plain text are refused,
  and so are system catalogs;
* sampling happens in the database with a seeded ordering (and `TABLESAMPLE BERNOULLI … REPEATABLE` for
  `sample_fraction` on PostgreSQL), so only the sampled rows cross the wire, never more than `row_cap`; large
  PostgreSQL tables are pre-thinned by a seeded key hash first, so the ordering runs on a few n rows, not all M;
* optional query-level noise on sensitive numeric columns (`noise.py`), its epsilon recorded;
* every read, refused and failed ones included, is written to the audit table (see `audit.py`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import functools
import getpass
import gzip
import hashlib
import json
import math
import os
import sqlite3
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from synth_platform.profiling.disclosure import SecretDigests
from synth_platform.sampling.credentials import connectable_url, mask_url, scrub
from synth_platform.sampling.errors import SourceError
from synth_platform.sampling.privileges import privileged_role_reasons, side_effect_functions
from synth_platform.sampling.transport import check_transport_security
from synth_platform.sampling.noise import NoiseBound, NoiseError, NoisePlan, apply_noise

BUNDLED_DATASET = Path(__file__).resolve().parent.parent / "data" / "adult.csv.gz"
EMBEDDED_TABLE = "adult"
MIN_ROWS = 20
DEFAULT_ROW_CAP = 1_000_000
DEFAULT_STATEMENT_TIMEOUT_S = 60.0
MAX_STRATA = 1_000
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
_HASH_PRIME = 2_147_483_647  # 2**31 - 1: products of two values below it stay inside SQLite's 64-bit integers


class SourceReadFailed(RuntimeError):
    """The database failed while serving a valid request (timeout, lost connection); the message holds no password."""


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


@dataclass
class SourceSample:
    """A seeded split of a sampled table. The holdout is for evaluation only: no tuner or generator sees it."""

    training: pd.DataFrame
    holdout: pd.DataFrame
    table: str
    source: str  # the database URL with its password masked
    seed: int
    rows_in_table: int
    fingerprint: str = field(default="")
    rows_matched: int = 0  # rows satisfying the filters (before sampling)
    query_shape: str = ""  # the compiled SELECT with placeholders: no values
    parameters: dict[str, Any] = field(default_factory=dict)  # bound values, sensitive ones redacted
    query_hash: str = ""
    audit_id: int | None = None
    audit_database: str = ""  # masked URL
    epsilon_spent: float | None = None  # query-level noise budget this read spent (None: no noise)
    noise: list[dict[str, Any]] = field(default_factory=list)  # per noised column: bound, Laplace scale, epsilon
    sensitive_columns: list[str] = field(default_factory=list)  # sensitive columns in the sample: values never shown
    withheld_columns: list[str] = field(default_factory=list)  # sensitive filter columns, left out (see SampleRequest)
    secret_values: SecretDigests = field(default_factory=SecretDigests)  # digests of sensitive filter values only
    resolved_table: str = ""  # schema.table as the database resolved the name (search_path), what was read
    read_as: str = ""  # the database role the read ran as (and what allowed it when it is privileged)

    @property
    def columns(self) -> list[str]:
        return list(self.training.columns)

    @property
    def rows_returned(self) -> int:
        return len(self.training) + len(self.holdout)


def ensure_embedded_source(path: Path, dataset: Path = BUNDLED_DATASET, table: str = EMBEDDED_TABLE) -> str:
    """Build the embedded SQLite source from the bundled dataset on first use; return its SQLAlchemy URL.

    The file is written under a temporary name and moved into place, so a crash or a concurrent run never
    leaves a half-built database behind.
    """
    path = Path(path)
    if not _has_table(path, table):
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(dataset, "rt") as handle:
            frame = pd.read_csv(handle)
        fd, tmp_name = tempfile.mkstemp(prefix=".embedded-", suffix=".sqlite", dir=path.parent)
        os.close(fd)
        try:
            with sqlite3.connect(tmp_name) as conn:
                frame.to_sql(table, conn, index=False)
            os.replace(tmp_name, path)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
    return f"sqlite:///{path}"


def _has_table(path: Path, table: str) -> bool:
    if not path.exists():
        return False
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
    return row is not None


# --------------------------------------------------------------------------------------------------- read path


@contextlib.contextmanager
def read_only_connection(engine: sa.Engine, statement_timeout_s: float) -> Iterator[sa.Connection]:
    """A connection inside a read-only transaction with a statement timeout; rolled back and closed on exit.

    PostgreSQL: `SET TRANSACTION READ ONLY` then `set_config('statement_timeout', :ms, true)` (= SET LOCAL) in the
    same transaction. SQLite: `PRAGMA query_only = ON` and a progress handler that interrupts statements running
    past the deadline."""
    timeout_ms = int(round(float(statement_timeout_s) * 1000))
    if timeout_ms <= 0:
        raise SourceError(f"statement_timeout_s must be positive, got {statement_timeout_s!r}.")
    dialect = engine.dialect.name
    with engine.connect() as conn:
        raw = None
        conn.begin()
        try:
            if dialect == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                conn.execute(sa.text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(timeout_ms)})
            elif dialect == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
                raw = conn.connection.driver_connection
                deadline = time.monotonic() + timeout_ms / 1000.0
                raw.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
            else:
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield conn
        finally:
            conn.rollback()
            if raw is not None:
                raw.set_progress_handler(None, 0)
                raw.execute("PRAGMA query_only = OFF")


def resolve_schema(engine: sa.Engine, name: str) -> str | None:
    """The schema an unqualified table name resolves to for this connection (PostgreSQL: through the role's
    `search_path`, which the database side controls; SQLite: `main`), None when no table of that name is visible."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            return conn.execute(sa.text(
                "SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.oid = pg_catalog.to_regclass(pg_catalog.quote_ident(:name))"), {"name": name}).scalar()
    if engine.dialect.name == "sqlite":
        return "main"
    return sa.inspect(engine).default_schema_name


def reflect_table(
    engine: sa.Engine, table_name: str, shown_url: str, allowed_schemas: tuple[str, ...] = ()
) -> tuple[sa.Table, str]:
    """The reflected table and its schema-qualified name. An unqualified name is resolved to its schema first, and
    on PostgreSQL read schema-qualified, so the read and the audit name the same table whatever the search_path
    says; `allowed_schemas` (when given) must include the schema."""
    schema, _, name = table_name.rpartition(".")
    schema = schema or None
    resolved = schema or resolve_schema(engine, name)
    if allowed_schemas and resolved is not None and resolved not in allowed_schemas:
        raise SourceError(
            f"Table {table_name!r} resolves to schema {resolved!r} in {shown_url}, which is not among the allowed schemas "
            f"{list(allowed_schemas)}: qualify the name (schema.table) or add the schema to allowed_schemas."
        )
    if schema is None and engine.dialect.name == "postgresql" and resolved is not None:
        schema = resolved
    inspector = sa.inspect(engine)
    if schema is not None and schema not in inspector.get_schema_names():
        raise SourceError(
            f"Schema {schema!r} not found in {shown_url}. Available schemas: {sorted(inspector.get_schema_names())}."
        )
    if not inspector.has_table(name, schema=schema):
        available = sorted(inspector.get_table_names(schema=schema))
        raise SourceError(f"Table {table_name!r} not found in {shown_url}. Available tables: {available or 'none'}.")
    table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=engine)
    return table, f"{resolved}.{name}" if resolved else name


def check_names(table: sa.Table, request: SampleRequest) -> None:
    """Every identifier in the request must be a column of the reflected table."""
    available = [column.name for column in table.columns]
    known = set(available)
    checks = [
        ("Columns", list(request.columns)),
        ("Filter columns", [f.column for f in request.filters]),
        ("Stratify column", [request.stratify_by] if request.stratify_by is not None else []),
        ("Sensitive columns", list(request.sensitive_columns)),
        ("Noise columns", [b.column for b in request.noise_bounds]),
    ]
    for what, names in checks:
        unknown = [name for name in names if name not in known]
        if unknown:
            raise SourceError(
                f"{what} {unknown} do not exist in table {request.table!r}. Available columns: {available}."
            )
    for item in request.filters:
        _check_value_type(table.c[item.column], item)
    for bound in request.noise_bounds:
        if request.columns and bound.column not in request.columns:
            raise SourceError(f"Noise column {bound.column!r} is not among the columns read {list(request.columns)}: add it or drop its bound.")
        if _python_type(table.c[bound.column]) not in (int, float, decimal.Decimal):
            raise SourceError(f"Noise column {bound.column!r} ({table.c[bound.column].type}) is not numeric; noise applies to numeric columns only.")


def _python_type(column: sa.Column) -> type | None:
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def integer_limits(table: sa.Table, dialect: str) -> dict[str, int]:
    """Integer columns and the largest magnitude each holds exactly as a float (SMALLINT 2^15, INTEGER 2^31, wider
    2^53, where float64 stops counting every integer; SQLite's integers are all 64-bit)."""
    limits = {}
    for column in table.columns:
        if _python_type(column) is int:
            sized = dialect != "sqlite"
            limit = (2**15 if sized and isinstance(column.type, sa.SmallInteger)
                     else 2**31 if sized and type(column.type) in (sa.Integer, sa.INTEGER) else 2**53)
            limits[column.name] = limit
    return limits


def _check_value_type(column: sa.Column, item: Filter) -> None:
    """Numbers for numeric columns, text for text columns: a mismatch is refused rather than sent to the database."""
    if item.op in NULL_OPS:
        return
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return
    values = item.value if isinstance(item.value, tuple) else (item.value,)
    if issubclass(python_type, (int, float, decimal.Decimal)) and not issubclass(python_type, bool):
        wrong = [v for v in values if not isinstance(v, (int, float, decimal.Decimal)) or isinstance(v, bool)]
        expected = "numbers"
    elif issubclass(python_type, str):
        wrong = [v for v in values if not isinstance(v, str)]
        expected = "text"
    else:
        return
    if wrong:
        raise SourceError(f"Filter on {item.column!r} ({column.type}) takes {expected}; got a {type(wrong[0]).__name__} value.")


@dataclass
class CompiledQuery:
    statement: sa.Select
    shape: str
    parameters: dict[str, Any]
    redacted_parameters: dict[str, Any]
    query_hash: str


def _condition(column: sa.ColumnElement, item: Filter, index: int) -> sa.ColumnElement[bool]:
    name = f"f{index}"
    kind = column.type
    if item.op == "is null":
        return column.is_(None)
    if item.op == "is not null":
        return column.is_not(None)
    if item.op in LIST_OPS:
        param = sa.bindparam(name, list(item.value), expanding=True, type_=kind)
        return column.in_(param) if item.op == "in" else column.not_in(param)
    if item.op == "between":
        return column.between(sa.bindparam(f"{name}_lo", item.value[0], type_=kind), sa.bindparam(f"{name}_hi", item.value[1], type_=kind))
    param = sa.bindparam(name, item.value, type_=kind)
    return {
        "=": column == param, "!=": column != param, "<": column < param,
        "<=": column <= param, ">": column > param, ">=": column >= param,
    }[item.op]


def _seeded_hash(source: sa.FromClause, table: sa.Table, dialect: str, seed: int, prefix: str = "hash") -> sa.ColumnElement:
    """A deterministic pseudo-random key per row, fixed by `seed`: ordering by it is a seeded shuffle."""
    if dialect == "postgresql":
        pk = list(table.primary_key.columns)
        if pk:
            identity = sa.func.concat_ws("|", *[sa.cast(source.c[c.name], sa.Text) for c in pk])
        else:
            identity = sa.cast(sa.literal_column("ctid"), sa.Text)
        return sa.func.md5(identity.concat(sa.bindparam(f"{prefix}_seed", f"|{seed}", type_=sa.Text)))
    # SQLite and others: an integer mix of the rowid with bound, seed-derived constants (affine steps modulo a
    # prime, separated by a xorshift, so different seeds give unrelated orders).
    rng = np.random.default_rng(seed)
    a1, b1, a2, b2 = (int(v) for v in rng.integers(1, _HASH_PRIME - 1, size=4))
    row = sa.literal_column("rowid")
    p = sa.bindparam(f"{prefix}_p", _HASH_PRIME, type_=sa.Integer)
    h = (row % p * sa.bindparam(f"{prefix}_a1", a1, type_=sa.Integer) + sa.bindparam(f"{prefix}_b1", b1, type_=sa.Integer)) % p
    shifted = h.op(">>")(sa.bindparam(f"{prefix}_s", 13, type_=sa.Integer))
    h = h.op("|")(shifted) - h.op("&")(shifted)  # xor without a xor operator
    return (h * sa.bindparam(f"{prefix}_a2", a2, type_=sa.Integer) + sa.bindparam(f"{prefix}_b2", b2, type_=sa.Integer)) % p


def _source(table: sa.Table, dialect: str, request: SampleRequest) -> tuple[sa.FromClause, list[sa.ColumnElement]]:
    """The FROM clause (table, or its TABLESAMPLE on PostgreSQL) and extra WHERE conditions for the fraction."""
    if request.sample_fraction is None or request.sample_fraction >= 1.0:
        return table, []
    if dialect == "postgresql":
        sampled = table.tablesample(
            sa.func.bernoulli(sa.bindparam("fraction_pct", request.sample_fraction * 100.0, type_=sa.Float)),
            name="sampled",
            seed=sa.bindparam("fraction_seed", request.seed, type_=sa.Integer),
        )
        return sampled, []
    key = _seeded_hash(table, table, dialect, request.seed + 1, prefix="fraction")
    bound = sa.bindparam("fraction_bound", int(request.sample_fraction * _HASH_PRIME), type_=sa.Integer)
    return table, [key < bound]


def _finish(statement: sa.Select, engine: sa.Engine, request: SampleRequest) -> CompiledQuery:
    compiled = statement.compile(dialect=engine.dialect)
    shape = str(compiled)
    parameters = {k: _jsonable(v) for k, v in compiled.params.items()}
    sensitive_columns = request.all_sensitive_columns
    sensitive = {f"f{i}" for i, f in enumerate(request.filters) if f.column in sensitive_columns}
    if request.stratify_by in sensitive_columns:
        sensitive |= {k.rsplit("_", 1)[0] for k in parameters if k.startswith("stratum_")}
    redacted = {
        k: (REDACTED if k in sensitive or k.rsplit("_", 1)[0] in sensitive else v) for k, v in parameters.items()
    }
    digest = hashlib.sha256((shape + "\n" + json.dumps(redacted, sort_keys=True, default=str)).encode()).hexdigest()
    return CompiledQuery(statement, shape, parameters, redacted, digest)


# Pre-thinning (PostgreSQL, `max_rows` set, no `sample_fraction`): when the matched rows M far outnumber the n rows
# wanted, the sampling SELECT first keeps each row independently with probability p, so md5 and the top-n sort run
# on ~n + 6·sqrt(n) + 50 rows instead of M (see `_thinned`). p = (n + THIN_SIGMAS·sqrt(n) + THIN_MARGIN) / M
# puts the expected survivor count Mp about 6 standard deviations (sd = sqrt(Mp(1-p)) <= ~sqrt(n)) above n; by
# Chernoff, P(Binomial(M, p) < n) <= exp(-t²/2Mp) with t = 6·sqrt(n) + 50, i.e. below 1.6e-8 for every n >= 1
# (e^-30 at n = 20, e^-19.8 at n = 10,000), and the +50 keeps small n from resting on the normal approximation.
# A short thinned read is re-run unthinned, so the row count is never short. Thinning is used only when
# p <= THIN_MAX_FRACTION: above it, the saved hashing no longer pays for a second pass in the rare fallback.
THIN_SIGMAS = 6.0
THIN_MARGIN = 50.0
THIN_MAX_FRACTION = 0.25


def thinning_fraction(needs: list[tuple[int, int]]) -> float | None:
    """The Bernoulli fraction p for pre-thinning, given (rows wanted, rows available) per stratum (one pair when not
    stratified), or None when thinning would not pay (p > THIN_MAX_FRACTION).

    One p serves all strata, so it is the largest per-stratum p: every stratum then keeps its quota with the same
    probability bound or better (a stratum with quota 0 needs nothing; a union bound over at most MAX_STRATA
    strata keeps a fallback rare)."""
    fractions = [
        (wanted + THIN_SIGMAS * math.sqrt(wanted) + THIN_MARGIN) / available
        for wanted, available in needs
        if wanted > 0 and available > 0
    ]
    if not fractions:
        return None
    p = max(fractions)
    return p if 0.0 < p <= THIN_MAX_FRACTION else None


def _thinned(table: sa.Table, seed: int, p: float) -> tuple[sa.FromClause, list[sa.ColumnElement]]:
    """The FROM clause and extra WHERE condition that keep each row of `table` independently with probability `p`.

    With a primary key: `hashint8extended(key, seed)` (one integer key column) or `hashtextextended(the key text,
    seed)` below a bound cutoff. Both are PostgreSQL's 64-bit Jenkins hashes (PostgreSQL 11+), uniform over the int8
    range, so P(kept) = p; they depend on the key and seed only, so, like the md5 order, the same rows are kept
    after UPDATE / VACUUM FULL / CLUSTER move them. Without one: `TABLESAMPLE BERNOULLI(100·p) REPEATABLE(seed)`
    (it hashes each tuple's TID with the seed; the md5 order of such a table is of the ctid too, so a physical
    rewrite changes the sample either way), cheaper still: no expression per row."""
    pk = list(table.primary_key.columns)
    if not pk:
        sampled = table.tablesample(
            sa.func.bernoulli(sa.bindparam("thin_pct", p * 100.0, type_=sa.Float)),
            name="thinned",
            seed=sa.bindparam("thin_seed", seed, type_=sa.Integer),
        )
        return sampled, []
    thin_seed = sa.bindparam("thin_seed", seed, type_=sa.BigInteger)
    if len(pk) == 1 and isinstance(pk[0].type, sa.Integer):
        hashed = sa.func.hashint8extended(sa.cast(table.c[pk[0].name], sa.BigInteger), thin_seed, type_=sa.BigInteger)
    else:
        identity = sa.func.concat_ws("|", *[sa.cast(table.c[c.name], sa.Text) for c in pk])
        hashed = sa.func.hashtextextended(identity, thin_seed, type_=sa.BigInteger)
    cutoff = -(2**63) + min(int(p * 2.0**64), 2**64 - 1)  # keep h < cutoff: a share p of [-2^63, 2^63)
    return table, [hashed < sa.bindparam("thin_cutoff", cutoff, type_=sa.BigInteger)]


def build_queries(table: sa.Table, engine: sa.Engine, request: SampleRequest):
    """The counting query (matched rows, per stratum when stratified) and a function turning its result into the
    sampling SELECT.

    `sample_query(limit, quotas, thin=p)` (PostgreSQL only) first keeps each row with probability p (`_thinned`: a
    seeded 64-bit hash of the primary key below a cutoff, or TABLESAMPLE BERNOULLI without a key), then orders by
    the seeded md5 key and keeps the first `limit` rows (per-stratum quotas) as usual. If that read holds at least
    `limit` rows (each stratum at least its quota), the result is still a simple random sample of `limit` of the M
    matched rows (stratified: one per stratum, independent across strata): inclusion is independent per row with
    the same p, so given k survivors they are a uniformly random k-subset of the M; the md5 order is unrelated to
    which rows survived (Jenkins hash vs md5, two unrelated hash functions of the key), so the first `limit`
    survivors by it are a uniformly random `limit`-subset of the k; and a uniform subset of a uniform subset is a
    uniform subset of the whole. Whether the read came up short depends on k only, so re-running unthinned in that
    case (itself a simple random sample) leaves the overall draw uniform. Thinned and unthinned reads with the same
    seed pick different (equally random) rows; the same seed on the same rows picks the same ones (for keyed
    tables whatever their physical layout, as without thinning)."""
    dialect = engine.dialect.name
    source, extra = _source(table, dialect, request)
    conditions = [_condition(source.c[f.column], f, i) for i, f in enumerate(request.filters)] + extra
    if request.stratify_by is not None:
        stratum = source.c[request.stratify_by]
        count_query = sa.select(stratum, sa.func.count()).select_from(source).where(*conditions).group_by(stratum)
    else:
        count_query = sa.select(sa.func.count()).select_from(source).where(*conditions)

    def sample_query(limit: int, quotas: list[tuple[Any, int]] | None, thin: float | None = None) -> CompiledQuery:
        source, extra = _source(table, dialect, request)
        if thin is not None:
            if dialect != "postgresql" or source is not table or extra:
                raise ValueError("Pre-thinning is for PostgreSQL requests without sample_fraction only.")
            source, extra = _thinned(table, request.seed, thin)
        conditions = [_condition(source.c[f.column], f, i) for i, f in enumerate(request.filters)] + extra
        selected = [source.c[name] for name in (request.columns or [c.name for c in table.columns])]
        key = _seeded_hash(source, table, dialect, request.seed)
        if quotas is None:
            statement = sa.select(*selected).select_from(source).where(*conditions).order_by(key).limit(limit)
            return _finish(statement, engine, request)
        stratum_col = source.c[request.stratify_by]
        inner = (
            sa.select(
                *selected,
                stratum_col.label("__synth_stratum"),
                key.label("__synth_key"),
                sa.func.row_number().over(partition_by=stratum_col, order_by=key).label("__synth_rn"),
            )
            .select_from(source)
            .where(*conditions)
            .subquery("ranked")
        )
        whens = []
        for i, (value, quota) in enumerate(quotas):
            match = inner.c["__synth_stratum"].is_(None) if value is None else (
                inner.c["__synth_stratum"] == sa.bindparam(f"stratum_{i}", value, type_=stratum_col.type)
            )
            whens.append((match, sa.bindparam(f"quota_{i}", quota, type_=sa.Integer)))
        quota_expr = sa.case(*whens, else_=sa.literal(0, type_=sa.Integer)) if whens else sa.literal(0)
        statement = (
            sa.select(*[inner.c[c.name] for c in selected])
            .where(inner.c["__synth_rn"] <= quota_expr)
            .order_by(inner.c["__synth_key"])
            .limit(limit)
        )
        return _finish(statement, engine, request)

    return count_query, sample_query


def proportional_quotas(counts: list[tuple[Any, int]], n: int) -> list[tuple[Any, int]]:
    """Largest-remainder allocation of `n` rows over strata: each stratum within one row of its exact share."""
    total = sum(c for _, c in counts)
    if total == 0:
        return [(v, 0) for v, _ in counts]
    n = min(n, total)
    exact = [n * c / total for _, c in counts]
    quotas = [int(math.floor(e)) for e in exact]
    order = sorted(range(len(counts)), key=lambda i: (-(exact[i] - quotas[i]), i))
    for i in order[: n - sum(quotas)]:
        quotas[i] += 1
    return [(counts[i][0], min(quotas[i], counts[i][1])) for i in range(len(counts))]


@dataclass
class ReadResult:
    frame: pd.DataFrame
    rows_in_table: int
    rows_matched: int
    query: CompiledQuery
    integer_columns: frozenset[str] = frozenset()


def check_side_effects(engine: sa.Engine, table: sa.Table, request: SampleRequest, shown_url: str, state: dict[str, Any]) -> None:
    """Refuse a read whose role, or the functions the table would call, could do more than read (`privileges.py`),
    unless the request allows it; what was allowed goes into `state["read_as"]` for the audit."""
    with engine.connect() as conn:
        role = privileged_role_reasons(conn)
        functions = side_effect_functions(conn, table.schema, table.name)
    state["read_as"] = role.describe() + (" — allowed by allow_privileged_role" if role.privileged else "")
    if role.privileged and not request.allow_privileged_role:
        raise SourceError(
            f"Nothing was read: the connection to {shown_url} runs as a privileged role ({'; '.join(role.reasons)}). "
            "Such a role can run shell commands and touch server files from inside a read-only transaction (a view "
            "calling COPY … TO PROGRAM). Connect as a role with only SELECT on the tables (README: 'A least-privilege "
            "reader'), or set allow_privileged_role: true, which the audit records."
        )
    if functions:
        listed = ", ".join(f.describe() for f in functions)
        if not request.allow_side_effect_functions:
            raise SourceError(
                f"Nothing was read: reading {request.table!r} would call functions that can have side effects: {listed}. "
                "Read the underlying table (or a view without such functions), or set allow_side_effect_functions: true, "
                "which the audit records."
            )
        state["read_as"] += f"; calls {listed} — allowed by allow_side_effect_functions"


def _read_table(engine: sa.Engine, request: SampleRequest, shown_url: str, state: dict[str, Any]) -> ReadResult:
    try:
        table, resolved = reflect_table(engine, request.table, shown_url, request.allowed_schemas)
    except sa.exc.OperationalError as exc:
        raise SourceReadFailed(f"Cannot connect to {shown_url}: {exc.orig}") from None
    state["resolved_table"] = resolved
    check_side_effects(engine, table, request, shown_url, state)
    check_names(table, request)
    plan = request.noise_plan
    if plan is not None:
        try:
            plan.check_integer_limits(integer_limits(table, engine.dialect.name))
        except NoiseError as exc:
            raise SourceError(str(exc)) from None
    count_query, sample_query = build_queries(table, engine, request)
    state["query"] = _finish(count_query, engine, request)  # replaced by the sampling query once it is built

    # Without filters or sample_fraction the counting query counts the whole table: one scan serves both counts.
    whole_table = not request.filters and (request.sample_fraction is None or request.sample_fraction >= 1.0)
    with read_only_connection(engine, request.statement_timeout_s) as conn:
        rows_in_table = None
        if not whole_table:
            rows_in_table = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            if rows_in_table == 0:
                raise SourceError(f"Table {request.table!r} in {shown_url} is empty: there is nothing to synthesize.")
        if request.stratify_by is not None:
            counts = [(row[0], int(row[1])) for row in conn.execute(count_query)]
            rows_matched = sum(c for _, c in counts)
        else:
            counts = None
            rows_matched = int(conn.execute(count_query).scalar_one())
        if rows_in_table is None:
            rows_in_table = rows_matched
            if rows_in_table == 0:
                raise SourceError(f"Table {request.table!r} in {shown_url} is empty: there is nothing to synthesize.")
        if counts is not None and len(counts) > MAX_STRATA:
            raise SourceError(
                f"Stratify column {request.stratify_by!r} has {len(counts)} distinct values; at most {MAX_STRATA} are supported."
            )
        if request.max_rows is None and rows_matched > request.row_cap:
            raise SourceError(
                f"{rows_matched} rows of {request.table!r} match the request, more than the row cap of "
                f"{request.row_cap}: set max_rows (or a filter / sample_fraction)."
            )
        limit = min(request.max_rows or request.row_cap, request.row_cap)
        quotas = proportional_quotas(counts, limit) if counts is not None else None
        if quotas is not None:
            limit = min(limit, sum(q for _, q in quotas)) or 1
        # Pre-thinning (see `thinning_fraction` and `build_queries`): PostgreSQL, max_rows set, no sample_fraction.
        thin = None
        if engine.dialect.name == "postgresql" and request.max_rows is not None and request.sample_fraction is None:
            needs = [(q, c) for (_, q), (_, c) in zip(quotas, counts)] if quotas is not None else [(limit, rows_matched)]
            thin = thinning_fraction(needs)
        # Rows the read must return: the limit, or each stratum's quota (the LIMIT is their sum).
        expected = min(limit, rows_matched) if quotas is None else sum(q for _, q in quotas)
        while True:
            query = sample_query(limit, quotas, thin=thin)
            state["query"] = query
            result = conn.execute(query.statement)
            rows = result.fetchmany(request.row_cap + 1)
            if len(rows) > min(limit, request.row_cap):
                raise SourceReadFailed(f"The database returned more than the {limit} rows asked for; the read is discarded.")
            if thin is None or len(rows) >= expected:
                break
            thin = None  # the thinned read came up short (rare, see THIN_SIGMAS): read again, unthinned
        frame = pd.DataFrame.from_records(rows, columns=list(result.keys()), coerce_float=True)
    integer_columns = frozenset(c.name for c in table.columns if _python_type(c) is int)
    return ReadResult(frame, int(rows_in_table), rows_matched, query, integer_columns)


def read_sample(
    url: str,
    request: SampleRequest,
    *,
    audit_url: str | None,
    run_id: str | None = None,
    actor: str | None = None,
    require_tls: bool = True,
) -> SourceSample:
    """Read a seeded sample of `request.table` from `url` read-only and split it into training and holdout.

    Every call writes one record to the audit table at `audit_url` before anything is read (its intent: until the
    outcome replaces it, it says the read did not finish) and the outcome (ok, refused or failed) after; a store that
    cannot take the intent stops the read, one that fails afterwards discards the rows, and the message holds both
    errors. `audit_url=None` skips the audit and is meant for tests of the read path only.
    `require_tls` refuses plain-text connections to non-local hosts (see `check_transport_security`)."""
    from synth_platform.sampling import audit  # local: audit imports this module

    url, audit_url = connectable_url(url), (connectable_url(audit_url) if audit_url is not None else None)
    shown_url = mask_url(url)
    state: dict[str, Any] = {}
    outcome, error, sample = "ok", None, None
    engine = None

    def record(outcome: str, error: str | None) -> audit.AuditRecord:
        query: CompiledQuery | None = state.get("query")
        return audit.AuditRecord(
            actor=actor or _os_user(), run_id=run_id, source=shown_url,
            table_name=_audited_name(str(request.table), state.get("resolved_table")),
            columns=[str(c) for c in request.columns] if isinstance(request.columns, (tuple, list)) else [],
            filters=_safe_filters(request), sample_fraction=request.sample_fraction, max_rows=request.max_rows,
            seed=request.seed if isinstance(request.seed, int) else None, stratify_by=request.stratify_by,
            rows_returned=state.get("rows_returned"), epsilon_spent=state.get("epsilon_spent"),
            query_hash=query.query_hash if query else None, query_shape=query.shape if query else None,
            outcome=outcome, error=error, read_as=state.get("read_as"),
        )

    def audit_failure(exc: BaseException) -> str:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return scrub(f"{type(exc).__name__}: {detail}", url, audit_url or "")

    audit_id = None
    if audit_url is not None:  # the intent first: no audit store, no read
        try:
            audit_id = audit.write_record(audit_url, record("failed", audit.UNFINISHED), secrets=[url])
        except Exception as exc:  # noqa: BLE001 - any failure of the store stops the read before it starts
            raise SourceReadFailed(
                f"Nothing was read from {shown_url}: the audit store {mask_url(audit_url)} cannot record the read "
                f"({audit_failure(exc)}). Fix the audit store (SYNTH_AUDIT_URL) and run again."
            ) from None
    try:
        request.validate()
        check_transport_security(url, require_tls)
        engine = sa.create_engine(url)
        read = _read_table(engine, request, shown_url, state)
        frame = read.frame.reset_index(drop=True)
        if len(frame) < MIN_ROWS:
            raise SourceError(
                f"Table {request.table!r} in {shown_url} has {len(frame)} rows matching the request; at least "
                f"{MIN_ROWS} are needed to train a generator and keep a holdout."
            )
        plan = request.noise_plan
        if plan is not None:
            frame = apply_noise(frame, plan, read.integer_columns)
            state["epsilon_spent"] = plan.epsilon
        frame = frame.drop(columns=[c for c in request.withheld_columns if c in frame.columns])
        if frame.shape[1] == 0:
            raise SourceError(
                f"Every column read is a sensitive filter column ({request.withheld_columns}), and those are left out of "
                "the sample (their values would reveal the filter): select other columns too."
            )
        rng = np.random.default_rng(request.seed)
        training, holdout = split_training_holdout(frame, request.holdout_fraction, rng)
        state["rows_returned"] = len(frame)
        sample = SourceSample(
            training=training,
            holdout=holdout,
            table=request.table,
            source=shown_url,
            seed=request.seed,
            rows_in_table=read.rows_in_table,
            fingerprint=dataset_fingerprint(request.table, frame),
            rows_matched=read.rows_matched,
            query_shape=read.query.shape,
            parameters=read.query.redacted_parameters,
            query_hash=read.query.query_hash,
            epsilon_spent=plan.epsilon if plan is not None else None,
            noise=plan.describe() if plan is not None else [],
            sensitive_columns=[c for c in frame.columns if c in request.all_sensitive_columns],
            withheld_columns=request.withheld_columns,
            secret_values=SecretDigests.of(request.secret_values()),
            resolved_table=state.get("resolved_table", ""),
            read_as=state.get("read_as", ""),
        )
    except SourceError as exc:
        outcome, error = "refused", SourceError(_redact_values(scrub(str(exc), url), request))
    except SourceReadFailed as exc:
        outcome, error = "failed", SourceReadFailed(_redact_values(scrub(str(exc), url), request))
    except sa.exc.SQLAlchemyError as exc:
        # Redacted before it is cut to its first line (no echo of the statement): a value spanning lines is gone whole.
        detail = _redact_values(str(getattr(exc, "orig", None) or exc), request).strip().splitlines()[0]
        outcome, error = "failed", SourceReadFailed(
            _redact_values(scrub(f"Reading {request.table!r} from {shown_url} failed: {detail}", url), request)
        )
    except Exception as exc:  # noqa: BLE001 - anything else is still audited, then reported without secrets
        outcome, error = "failed", SourceReadFailed(
            _redact_values(scrub(f"Reading {request.table!r} from {shown_url} failed: {type(exc).__name__}: {exc}", url), request)
        )
    finally:
        if engine is not None:
            engine.dispose()

    if audit_url is not None:
        try:
            audit.finish_record(audit_url, audit_id, record(outcome, str(error) if error is not None else None), secrets=[url])
        except Exception as exc:  # noqa: BLE001 - the outcome is not on record: say so, with the read's own error
            what = f"the read {'succeeded' if error is None else 'failed: ' + str(error)}"
            raise SourceReadFailed(
                f"The outcome of reading {request.table!r} from {shown_url} could not be recorded in the audit store "
                f"{mask_url(audit_url)} ({audit_failure(exc)}); {what}. Its audit record {audit_id} says the read did "
                "not finish, and no rows are returned. Fix the audit store and run again."
            ) from None
        if sample is not None:
            sample.audit_id = audit_id
            sample.audit_database = mask_url(audit_url)
        elif error is not None:
            error = type(error)(f"{error} (audit record {audit_id})")
    if error is not None:
        raise error
    assert sample is not None
    return sample


def _audited_name(requested: str, resolved: str | None) -> str:
    """The table as the audit records it: the schema-qualified name that was read (and the name as requested when
    that differs), non-ASCII names with their code points."""
    shown = requested if requested.isascii() else code_points(requested)
    if resolved and resolved != requested:
        return f"{resolved} (requested as {shown})"
    return shown


def _redact_values(message: str, request: SampleRequest) -> str:
    """`message` without the values of filters on sensitive columns (database errors and refusals may quote them):
    each value as text, as its repr with and without quotes (escaped newlines), and each of its lines, so that a
    message cut to its first line, or one that quotes the value escaped, shows none of it."""
    try:
        values = request.secret_values()
    except Exception:  # noqa: BLE001 - a malformed request: redact whatever its filters hold
        values = [getattr(f, "value", None) for f in getattr(request, "filters", ())]
    forms: set[str] = set()
    for value in values:
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if item is None:
                continue
            text = str(item)
            forms.update({text, repr(item), repr(text)[1:-1], *(line.strip() for line in text.splitlines())})
    for form in sorted((f for f in forms if f), key=len, reverse=True):
        message = message.replace(form, REDACTED)
    return message


def _safe_filters(request: SampleRequest) -> list[dict[str, Any]]:
    try:
        return request.filters_for_audit()
    except Exception:  # noqa: BLE001 - a malformed filter is recorded by its shape only
        return [{"column": str(getattr(f, "column", "?")), "op": str(getattr(f, "op", "?")), "value": REDACTED} for f in request.filters]


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return "unknown"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime, dt.time, decimal.Decimal)):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def split_training_holdout(
    frame: pd.DataFrame, holdout_fraction: float, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded random split; both parts keep at least one row."""
    n_holdout = min(max(1, round(len(frame) * holdout_fraction)), len(frame) - 1)
    order = rng.permutation(len(frame))
    holdout = frame.iloc[np.sort(order[:n_holdout])].reset_index(drop=True)
    training = frame.iloc[np.sort(order[n_holdout:])].reset_index(drop=True)
    return training, holdout


def dataset_fingerprint(table: str, frame: pd.DataFrame) -> str:
    """A short, stable name for a dataset's shape: table, column names and dtypes (not its values)."""
    schema = ";".join(f"{name}:{dtype}" for name, dtype in frame.dtypes.astype(str).items())
    return f"{table.replace('.', '_')}-{hashlib.sha256(schema.encode()).hexdigest()[:10]}"
