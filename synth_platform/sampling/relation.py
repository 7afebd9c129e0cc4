"""The relation a read samples: its kind, what the connecting role may read of it, how each column is read
(`column_types`), and what names a row for the seeded hash. Pure logic: no Dagster; catalog reads only (nothing
here reads a row or calls a function a view holds).

How a row is named, so that a seeded hash of it orders (and thins) the rows reproducibly:

==========================================  ================================================================
relation                                    row named by
==========================================  ================================================================
PostgreSQL table, partitioned table with a  its primary key (the sample survives UPDATE / VACUUM FULL)
readable primary key
PostgreSQL table, materialized view         ctid
PostgreSQL partitioned table                tableoid and ctid (ctid alone repeats across partitions)
PostgreSQL view, foreign table, or any      the text of the row's readable columns (`ROW(a, b, …)::text`):
relation whose key / ctid the role cannot   identical rows hash alike and are taken or left together
read
SQLite table                                its rowid (through `_rowid_` or `oid` when a column is named rowid)
SQLite view, WITHOUT ROWID table, table     the row's column values (a deterministic function registered on
whose columns shadow rowid, _rowid_, oid    the connection, `query.SQLITE_ROW_HASH`)
==========================================  ================================================================

TABLESAMPLE BERNOULLI (sample_fraction, and thinning unkeyed relations) applies to PostgreSQL tables, partitioned
tables and materialized views only; other relations are thinned by a seeded hash cutoff of the row's name.

PostgreSQL column privileges: a role granted SELECT on some columns only can read those. The other columns are
left out with the reason and the GRANT that would add them (`ColumnPlan.unreadable`); the row is named by
readable columns only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlalchemy as sa

from synth_platform.sampling.column_types import DRIVER, ColumnPlan, pg_plan, sqlite_plan

PG_KINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}
_TABLESAMPLE_KINDS = ("r", "p", "m")
SQLITE_ROWID_NAMES = ("rowid", "_rowid_", "oid")

# Every column (domains resolved to their base type) with its declared type and whether the current role may read it.
_PG_COLUMNS = sa.text(
    """
    WITH RECURSIVE resolved AS (
        SELECT a.attnum, a.attname, a.atttypid AS typid, a.atttypmod AS typmod, 0 AS depth
        FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = CAST(:relation AS regclass) AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL
        SELECT r.attnum, r.attname, t.typbasetype, t.typtypmod, r.depth + 1
        FROM resolved r JOIN pg_catalog.pg_type t ON t.oid = r.typid
        WHERE t.typtype = 'd'
    )
    SELECT DISTINCT ON (r.attnum) r.attname AS name, pg_catalog.format_type(r.typid, r.typmod) AS declared,
           t.typname, t.typtype::text AS typtype, t.typcategory::text AS typcategory,
           pg_catalog.has_column_privilege(CAST(:relation AS regclass), r.attnum, 'SELECT') AS readable
    FROM resolved r JOIN pg_catalog.pg_type t ON t.oid = r.typid
    ORDER BY r.attnum, r.depth DESC
    """
)
_PG_RELATION = sa.text(
    "SELECT c.relkind::text, current_user::text FROM pg_catalog.pg_class c WHERE c.oid = CAST(:relation AS regclass)"
)
_PG_SYSTEM_COLUMN = sa.text("SELECT pg_catalog.has_column_privilege(CAST(:relation AS regclass), :column, 'SELECT')")


@dataclass(frozen=True)
class Relation:
    """What the query builder needs to know of the relation read."""

    dialect: str
    kind: str  # table, view, materialized view, partitioned table, foreign table, WITHOUT ROWID table
    columns: dict[str, ColumnPlan] = field(default_factory=dict)  # every column, in order: read or left out
    key: tuple[str, ...] = ()  # readable primary-key columns naming a row
    row_id: tuple[str, ...] = ()  # system columns naming a row (ctid; tableoid, ctid; rowid / _rowid_ / oid)
    tablesample: bool = False  # TABLESAMPLE BERNOULLI applies (PostgreSQL tables and materialized views)
    role: str = ""  # PostgreSQL: the role reading (for GRANT hints)
    name: str = ""  # the relation as SQL names it (quoted, schema-qualified on PostgreSQL)

    @property
    def kept(self) -> list[str]:
        return [name for name, plan in self.columns.items() if plan.kept]

    @property
    def left_out(self) -> dict[str, str]:
        return {name: plan.left_out for name, plan in self.columns.items() if not plan.kept}

    @property
    def readable(self) -> list[str]:
        """Columns the role may read (whether or not they are modelled): what names a row without a key."""
        return [name for name, plan in self.columns.items() if not plan.unreadable]

    def grant_hint(self, columns: list[str], preparer: sa.sql.compiler.IdentifierPreparer | None = None) -> str:
        quote = preparer.quote if preparer is not None else (lambda n: n)
        return f"GRANT SELECT ({', '.join(quote(c) for c in columns)}) ON {self.name} TO {quote(self.role) if self.role else '<role>'};"


def assumed_relation(table: sa.Table, dialect: str) -> Relation:
    """The relation as the reflected `table` alone says it is, without the catalog: a table the role reads whole,
    named by its primary key (PostgreSQL) or ctid / rowid. For compiling queries outside a read."""
    columns = {c.name: ColumnPlan(c.name, str(c.type), DRIVER) for c in table.columns}
    if dialect == "postgresql":
        return Relation(dialect, "table", columns, key=tuple(c.name for c in table.primary_key.columns),
                        row_id=("ctid",), tablesample=True, name=table.fullname)
    return Relation(dialect, "table", columns, row_id=("rowid",), name=table.fullname)


def describe_relation(conn: sa.Connection, table: sa.Table) -> Relation:
    """The relation behind the reflected `table`, from the catalog (see the module text)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return _describe_postgresql(conn, table)
    if dialect == "sqlite":
        return _describe_sqlite(conn, table)
    return assumed_relation(table, dialect)


def _pg_name(conn: sa.Connection, table: sa.Table) -> str:
    preparer = conn.dialect.identifier_preparer
    name = preparer.quote(table.name)
    return name if table.schema is None else f"{preparer.quote_schema(table.schema)}.{name}"


def _describe_postgresql(conn: sa.Connection, table: sa.Table) -> Relation:
    relation = _pg_name(conn, table)
    relkind, role = conn.execute(_PG_RELATION, {"relation": relation}).one()
    preparer = conn.dialect.identifier_preparer
    columns: dict[str, ColumnPlan] = {}
    for row in conn.execute(_PG_COLUMNS, {"relation": relation}):
        plan = pg_plan(row.name, row.declared, row.typname, row.typtype, row.typcategory)
        if not row.readable:
            plan = plan.with_left_out(
                f"the role {role} has no SELECT privilege on it (GRANT SELECT ({preparer.quote(row.name)}) ON "
                f"{relation} TO {preparer.quote(role)};)", unreadable=True,
            )
        columns[row.name] = plan

    def readable_system(column: str) -> bool:
        return bool(conn.execute(_PG_SYSTEM_COLUMN, {"relation": relation, "column": column}).scalar())

    key = tuple(c.name for c in table.primary_key.columns)
    if not key or any(columns[c].unreadable for c in key if c in columns):
        key = ()
    row_id: tuple[str, ...] = ()
    if not key and relkind in ("r", "m") and readable_system("ctid"):
        row_id = ("ctid",)
    elif not key and relkind == "p" and readable_system("ctid") and readable_system("tableoid"):
        row_id = ("tableoid", "ctid")
    return Relation("postgresql", PG_KINDS.get(relkind, f"relation of kind {relkind!r}"), columns, key=key,
                    row_id=row_id, tablesample=relkind in _TABLESAMPLE_KINDS, role=role, name=relation)


def _describe_sqlite(conn: sa.Connection, table: sa.Table) -> Relation:
    preparer = conn.dialect.identifier_preparer
    schema = preparer.quote_schema(table.schema or "main")
    name = f"{schema}.{preparer.quote(table.name)}"
    kind, without_rowid = _sqlite_kind(conn, schema, table.name)
    info = conn.exec_driver_sql(f"PRAGMA {schema}.table_info({preparer.quote(table.name)})").all()
    columns = {row[1]: sqlite_plan(row[1], row[2] or "") for row in info}
    if not columns:  # not seen by the pragma (should not happen): what reflection says
        columns = {c.name: sqlite_plan(c.name, "") for c in table.columns}
    if kind == "view":
        return Relation("sqlite", "view", columns, name=name)
    if without_rowid:
        return Relation("sqlite", "WITHOUT ROWID table", columns, name=name)
    shadowed = {c.lower() for c in columns}
    free = [alias for alias in SQLITE_ROWID_NAMES if alias not in shadowed]
    if not free:
        return Relation("sqlite", "table whose columns shadow rowid, _rowid_ and oid", columns, name=name)
    return Relation("sqlite", "table", columns, row_id=(free[0],), name=name)


_WITHOUT_ROWID = re.compile(r"\bWITHOUT\s+ROWID\b", re.IGNORECASE)


def _sqlite_kind(conn: sa.Connection, schema: str, name: str) -> tuple[str, bool]:
    """("table" or "view", whether it is a WITHOUT ROWID table), from `PRAGMA table_list` (SQLite 3.37+), else from
    the table's CREATE statement (the options after its last parenthesis)."""
    try:
        row = conn.exec_driver_sql(f"PRAGMA {schema}.table_list", ()).all()
        found = [r for r in row if str(r[1]).lower() == name.lower()]
        if found:
            return ("view" if found[0][2] == "view" else "table"), bool(found[0][4])
    except sa.exc.DBAPIError:  # an older SQLite: no table_list
        pass
    kind, sql = conn.exec_driver_sql(
        f"SELECT type, sql FROM {schema}.sqlite_master WHERE name = ? COLLATE NOCASE AND type IN ('table', 'view')",
        (name,),
    ).one()
    return kind, kind == "table" and bool(_WITHOUT_ROWID.search((sql or "")[(sql or "").rfind(")"):]))
