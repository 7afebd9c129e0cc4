"""The platform's own tables, created on first use from the DDL files in `sql/` (one file per table and dialect).
Pure logic: no Dagster here."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


def ddl_path(stem: str, dialect: str, what: str) -> Path:
    """`sql/<stem>.<dialect>.sql`; a dialect without one is refused naming `what` the table holds."""
    path = SQL_DIR / f"{stem}.{dialect}.sql"
    if not path.exists():
        raise ValueError(f"No {what} DDL for {dialect!r} databases: expected {path}. Use SQLite or PostgreSQL.")
    return path


def statements(text: str) -> list[str]:
    """The SQL statements of a DDL file, `--` comments removed."""
    lines = [line.split("--", 1)[0] for line in text.splitlines()]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def ensure_table(engine: sa.Engine, table: str, ddl: Path) -> sa.Table:
    """Create `table` from its DDL file when missing (another process creating it at the same moment is fine);
    return it reflected."""
    try:
        with engine.begin() as conn:
            if not sa.inspect(conn).has_table(table):
                for statement in statements(ddl.read_text()):
                    conn.exec_driver_sql(statement)
    except sa.exc.DBAPIError:
        if not sa.inspect(engine).has_table(table):  # not a concurrent creator that got there first
            raise
    return sa.Table(table, sa.MetaData(), autoload_with=engine)


def add_missing_columns(engine: sa.Engine, table: str, columns: dict[str, str]) -> sa.Table:
    """Add each of `columns` (name → SQL type; nullable) that `table` lacks: a table created by an earlier version
    of its DDL gains the columns added since. Return the table reflected."""
    present = {column["name"] for column in sa.inspect(engine).get_columns(table)}
    missing = {name: kind for name, kind in columns.items() if name not in present}
    if missing:
        with engine.begin() as conn:
            for name, kind in missing.items():
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
    return sa.Table(table, sa.MetaData(), autoload_with=engine)


class TableStore:
    """One of the platform's tables in the database at a SQLAlchemy `url` (SQLite or PostgreSQL), created on first
    use by `ensure` (the table's `ensure_table` wrapper). The URL is masked whenever the store is shown."""

    ensure: Callable[[sa.Engine], sa.Table]

    def __init__(self, url: str):
        self.url = url

    def __repr__(self) -> str:
        from synth_platform.sampling.credentials import mask_url

        return f"{type(self).__name__}({mask_url(self.url)!r})"

    @contextlib.contextmanager
    def _table(self) -> Iterator[tuple[sa.Engine, sa.Table]]:
        engine = sa.create_engine(self.url)
        try:
            yield engine, type(self).ensure(engine)
        finally:
            engine.dispose()
