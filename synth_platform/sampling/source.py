"""Read a sample of one table from any SQLAlchemy database and split it into training and holdout parts.

Pure logic: no Dagster here. The embedded default source is a SQLite file seeded from the bundled UCI Adult data.

The read is spread over modules along its seams; this one runs it (`read_sample`) and re-exports the public names:

* `request.py`: what a read asks for (`SampleRequest`, `Filter`) and the checks on its names and values;
* `drivers.py`: the installed driver for a URL (`postgresql://` → psycopg2);
* `relation.py`: the relation's kind, the columns the role may read, and what names a row for the seeded hash;
* `column_types.py`: how each column type is read, or why it is left out (the table of types is there);
* `query.py`: the counting and sampling SQL (seeded hashes, TABLESAMPLE, pre-thinning, internal names);
* `noise.py`, `audit.py`, `privileges.py`, `transport.py`, `credentials.py`: noise, the audit trail, role and
  function checks, TLS, and URLs as they may be shown.

Safety properties of every read:

* the request holds no SQL: identifiers (table, columns, filter/stratify/sensitive columns) are checked against the
  reflected schema before any data query, and the SELECT is built from the reflected `Table` with SQLAlchemy Core,
  every filter value a bound parameter;
* reads run in a read-only transaction (`SET TRANSACTION READ ONLY` plus a transaction-local `statement_timeout`
  on PostgreSQL, `PRAGMA query_only` plus a progress-handler deadline on SQLite);
* non-local sources need TLS (`check_transport_security`); names and values that are not plain text are refused,
  and so are system catalogs;
* sampling happens in the database with a seeded ordering (and `TABLESAMPLE BERNOULLI … REPEATABLE` for
  `sample_fraction` on PostgreSQL tables), so only the sampled rows cross the wire, never more than `row_cap`;
  large PostgreSQL relations are pre-thinned by a seeded hash first, so the ordering runs on a few n rows, not all
  M; tables, partitioned tables, views, materialized views and foreign tables (SQLite: tables, WITHOUT ROWID
  tables, views) are all sampled this way, each seeded;
* only columns the role may read and whose type the pipeline models are read; the others are listed on
  `SourceSample.left_out_columns` with the reason, and a request naming one is refused;
* optional query-level noise on sensitive numeric columns (`noise.py`), its epsilon recorded;
* every read, refused and failed ones included, is written to the audit table (see `audit.py`).
"""

from __future__ import annotations

import contextlib
import decimal
import getpass
import gzip
import hashlib
import math
import os
import sqlite3
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from synth_platform.profiling.disclosure import SecretDigests
from synth_platform.sampling.column_types import frame_from_rows, type_refusal
from synth_platform.sampling.credentials import connectable_url, mask_url, scrub
from synth_platform.sampling.drivers import with_installed_driver
from synth_platform.sampling.errors import SourceError
from synth_platform.sampling.noise import NoiseError, apply_noise
from synth_platform.sampling.privileges import privileged_role_reasons, side_effect_functions
from synth_platform.sampling.query import (
    HASH_PRIME,
    SQLITE_ROW_HASH,
    CompiledQuery,
    build_queries,
    finish,
    internal_names,
    proportional_quotas,
    sqlite_row_hash,
)
from synth_platform.sampling.relation import Relation, describe_relation
from synth_platform.sampling.request import (  # noqa: F401 - re-exported
    DEFAULT_ROW_CAP,
    DEFAULT_STATEMENT_TIMEOUT_S,
    LIST_OPS,
    MAX_IDENTIFIER_CHARS,
    MAX_LIST_VALUES,
    MAX_TEXT_VALUE_CHARS,
    MIN_ROWS,
    NULL_OPS,
    OPERATORS,
    REDACTED,
    SCALAR_OPS,
    SYSTEM_SCHEMAS,
    Filter,
    SampleRequest,
    check_identifier,
    code_points,
    lookalike_problem,
)
from synth_platform.sampling.transport import check_transport_security

__all__ = [
    "BUNDLED_DATASET", "DEFAULT_ROW_CAP", "DEFAULT_STATEMENT_TIMEOUT_S", "EMBEDDED_TABLE", "HASH_PRIME", "LIST_OPS",
    "MAX_IDENTIFIER_CHARS", "MAX_LIST_VALUES", "MAX_STRATA", "MAX_TEXT_VALUE_CHARS", "MIN_ROWS", "NULL_OPS",
    "OPERATORS", "REDACTED", "SCALAR_OPS", "SYSTEM_SCHEMAS", "THIN_MARGIN", "THIN_MAX_FRACTION", "THIN_SIGMAS",
    "CompiledQuery", "Filter", "ReadResult", "SampleRequest", "SourceError", "SourceReadFailed", "SourceSample",
    "build_queries", "check_identifier", "check_names", "check_side_effects", "check_transport_security",
    "code_points", "dataset_fingerprint", "ensure_embedded_source", "finish", "integer_limits", "internal_names",
    "lookalike_problem", "mask_url", "proportional_quotas", "read_only_connection", "read_sample", "reflect_table",
    "resolve_schema", "split_training_holdout", "thinning_fraction", "with_installed_driver",
]

BUNDLED_DATASET = Path(__file__).resolve().parent.parent / "data" / "adult.csv.gz"
EMBEDDED_TABLE = "adult"
MAX_STRATA = 1_000


class SourceReadFailed(RuntimeError):
    """The database failed while serving a valid request (timeout, lost connection); the message holds no password."""


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
    # Columns not in the sample, and why: the role may not SELECT them (with the GRANT that would add them), their
    # type is not modelled (json, arrays, bytea, …: see column_types.py), or their values are not (SQLite BLOBs).
    left_out_columns: dict[str, str] = field(default_factory=dict)
    # The source SQL type of each column in the sample ("integer", "numeric(10,2)", "timestamptz", "date", "uuid",
    # "enum", "interval"; SQLite: the declared type as written), so later stages can restore types.
    source_types: dict[str, str] = field(default_factory=dict)
    # How the read converted a column's values, where it did ("interval → seconds", infinity → 9999-12-31, …).
    conversions: dict[str, str] = field(default_factory=dict)

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
    past the deadline; the seeded row hash (`query.sqlite_row_hash`, deterministic, no side effects) is registered
    for relations without a real rowid."""
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
                raw.create_function(SQLITE_ROW_HASH, -1, sqlite_row_hash, deterministic=True)
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
        views = sorted(set(_view_names(inspector, schema)) - set(available))
        shown = f" Available views: {views}." if views else ""
        raise SourceError(f"Table {table_name!r} not found in {shown_url}. Available tables: {available or 'none'}.{shown}")
    with warnings.catch_warnings():  # types SQLAlchemy does not know (xml, point, …): column_types decides on them
        warnings.filterwarnings("ignore", message="Did not recognize type", category=sa.exc.SAWarning)
        table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=engine)
    return table, f"{resolved}.{name}" if resolved else name


def _view_names(inspector: sa.Inspector, schema: str | None) -> list[str]:
    """Views (and PostgreSQL materialized views): relations that can be sampled as well as tables."""
    names = list(inspector.get_view_names(schema=schema))
    with contextlib.suppress(NotImplementedError):
        names += inspector.get_materialized_view_names(schema=schema)
    return names


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


@dataclass
class ReadResult:
    frame: pd.DataFrame
    rows_in_table: int
    rows_matched: int
    query: CompiledQuery
    integer_columns: frozenset[str] = frozenset()
    left_out_columns: dict[str, str] = field(default_factory=dict)
    source_types: dict[str, str] = field(default_factory=dict)
    conversions: dict[str, str] = field(default_factory=dict)


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



def requested_names(request: SampleRequest) -> dict[str, list[str]]:
    """Every column the request names, by where it names it (columns, filters comparing values, stratify, noise)."""
    return {
        "columns": list(request.columns),
        "filters": [f.column for f in request.filters],
        "stratify_by": [request.stratify_by] if request.stratify_by is not None else [],
        "noise_bounds": [b.column for b in request.noise_bounds],
    }


def check_left_out(relation: Relation, request: SampleRequest, preparer: Any = None) -> None:
    """Refuse a request naming a column the read leaves out: one the role may not read (the message holds the GRANT
    that would fix it), or one whose type is not modelled (a null test in a filter is fine: it reads no value).
    Refuse one that leaves nothing to read."""
    named = requested_names(request)
    unreadable = sorted({c for where in named.values() for c in where
                         if c in relation.columns and relation.columns[c].unreadable})
    if unreadable:
        where = sorted(k for k, v in named.items() if set(v) & set(unreadable))
        raise SourceError(
            f"The request names columns of {request.table!r} that the role {relation.role or 'reading'} may not read "
            f"(no SELECT privilege on them): {unreadable}, in {', '.join(where)}. Leave them out of the request, or "
            f"have the table's owner run: {relation.grant_hint(unreadable, preparer)}"
        )
    value_filters = [f.column for f in request.filters if f.op not in NULL_OPS]
    named_by_value = set(named["columns"]) | set(value_filters) | set(named["stratify_by"]) | set(named["noise_bounds"])
    untyped = [relation.columns[c] for c in relation.columns if c in named_by_value and not relation.columns[c].kept]
    if untyped:
        raise SourceError(type_refusal(request.table, untyped))
    if not (request.columns or relation.kept):
        raise SourceError(
            f"No column of {request.table!r} can be read: {relation.left_out}. Grant the role SELECT on the columns "
            "to sample, or read a view casting them to supported types."
        )


def _read_table(engine: sa.Engine, request: SampleRequest, shown_url: str, state: dict[str, Any]) -> ReadResult:
    try:
        table, resolved = reflect_table(engine, request.table, shown_url, request.allowed_schemas)
    except sa.exc.OperationalError as exc:
        raise SourceReadFailed(f"Cannot connect to {shown_url}: {exc.orig}") from None
    state["resolved_table"] = resolved
    check_side_effects(engine, table, request, shown_url, state)
    check_names(table, request)
    with engine.connect() as conn:
        relation = describe_relation(conn, table)
    check_left_out(relation, request, engine.dialect.identifier_preparer)
    plan = request.noise_plan
    if plan is not None:
        try:
            plan.check_integer_limits(integer_limits(table, engine.dialect.name))
        except NoiseError as exc:
            raise SourceError(str(exc)) from None
    count_query, sample_query = build_queries(table, engine, request, relation)
    state["query"] = finish(count_query, engine, request)  # replaced by the sampling query once it is built

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
            keys = list(result.keys())
            rows = result.fetchmany(request.row_cap + 1)
            if len(rows) > min(limit, request.row_cap):
                raise SourceReadFailed(f"The database returned more than the {limit} rows asked for; the read is discarded.")
            if thin is None or len(rows) >= expected:
                break
            thin = None  # the thinned read came up short (rare, see THIN_SIGMAS): read again, unthinned
    frame, conversions, found = frame_from_rows(rows, keys, relation.columns)
    named = set(request.columns) | set(requested_names(request)["noise_bounds"])
    refused = sorted(set(found) & named)
    if refused:
        listed = ", ".join(f"{c!r} ({found[c]})" for c in refused)
        raise SourceError(
            f"The request names columns of {request.table!r} whose values the platform does not read: {listed}. Leave "
            "them out of the request, or read a view casting them to text or numbers."
        )
    left_out = {name: reason for name, reason in relation.left_out.items() if not request.columns} | found
    source_types = {name: relation.columns[name].source_type for name in frame.columns if name in relation.columns}
    integer_columns = frozenset(c.name for c in table.columns if _python_type(c) is int)
    return ReadResult(frame, int(rows_in_table), rows_matched, query, integer_columns, left_out, source_types, conversions)


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
            audit_url = with_installed_driver(audit_url)  # postgresql:// → the installed driver, as for the source
            audit_id = audit.write_record(audit_url, record("failed", audit.UNFINISHED), secrets=[url])
        except Exception as exc:  # noqa: BLE001 - any failure of the store stops the read before it starts
            raise SourceReadFailed(
                f"Nothing was read from {shown_url}: the audit store {mask_url(audit_url)} cannot record the read "
                f"({audit_failure(exc)}). Fix the audit store (SYNTH_AUDIT_URL) and run again."
            ) from None
    try:
        request.validate()
        driver_url = with_installed_driver(url)  # postgresql:// and postgres:// → postgresql+psycopg2://
        check_transport_security(driver_url, require_tls)
        engine = sa.create_engine(driver_url)
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
            left_out_columns=read.left_out_columns,
            source_types={c: read.source_types[c] for c in frame.columns if c in read.source_types},
            conversions={c: read.conversions[c] for c in frame.columns if c in read.conversions},
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
