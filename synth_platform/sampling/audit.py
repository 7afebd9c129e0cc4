"""The source-read audit log: one record per read of a source table, refused and failed reads included.

Pure logic: no Dagster here. The table's DDL lives in `sql/audit_log.<dialect>.sql`; it is created on first use in
the audit database, which is the platform's own database (never the source, which the platform only reads).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from synth_platform.sampling.credentials import url_secrets

from synth_platform import ddl

AUDIT_TABLE = "synth_source_audit"
OUTCOMES = ("ok", "refused", "failed")
# What a record says between the intent (written before the read) and the outcome (after it): if the process dies
# or the audit store fails mid-read, this is what stays.
UNFINISHED = "started; no outcome recorded (the process stopped, or the audit store failed, before the read ended)"


@dataclass
class AuditRecord:
    actor: str
    source: str  # masked URL
    table_name: str
    outcome: str
    run_id: str | None = None
    columns: list[str] = field(default_factory=list)
    filters: list[dict[str, Any]] = field(default_factory=list)  # sensitive values already "<redacted>"
    sample_fraction: float | None = None
    max_rows: int | None = None
    seed: int | None = None
    stratify_by: str | None = None
    rows_returned: int | None = None
    epsilon_spent: float | None = None  # query-level noise budget spent by this read (noise.py); None: no noise
    query_hash: str | None = None
    query_shape: str | None = None
    error: str | None = None
    read_as: str | None = None  # the database role, and what made it privileged when a request allowed that


def ddl_path(dialect: str) -> Path:
    return ddl.ddl_path("audit_log", dialect, "audit-log")


def ensure_audit_table(engine: sa.Engine) -> sa.Table:
    """Create the audit table from its DDL file when missing (and add the columns later versions brought to an
    older one); return it reflected."""
    table = ddl.ensure_table(engine, AUDIT_TABLE, ddl_path(engine.dialect.name))
    if "read_as" not in table.c:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {AUDIT_TABLE} ADD COLUMN read_as TEXT")
        table = sa.Table(AUDIT_TABLE, sa.MetaData(), autoload_with=engine)
    return table


def _scrubbed(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, "***")
    return value


def _secrets_of(urls: list[str]) -> list[str]:
    """Each URL that carries a secret (whole) and every secret in it (`credentials.url_secrets`), longest first."""
    found = []
    for url in urls:
        secrets = url_secrets(url)
        if secrets:
            found.extend([*secrets, url])
    return sorted(set(found), key=len, reverse=True)


def _row(audit_url: str, record: AuditRecord, secrets: list[str]) -> dict[str, Any]:
    """The record as a table row, with every secret of `secrets` (URLs) and of the audit URL replaced by ***."""
    if record.outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {record.outcome!r}.")
    hidden = _secrets_of([*secrets, audit_url])
    row = {key: _scrubbed(value, hidden) for key, value in asdict(record).items()}
    row["columns"] = _scrubbed(json.dumps(record.columns), hidden)
    row["filters"] = _scrubbed(json.dumps(record.filters, default=str), hidden)
    return row


def write_record(audit_url: str, record: AuditRecord, secrets: list[str] = ()) -> int:
    """Append `record` to the audit table at `audit_url` (created if missing); return its id.

    `secrets` are URLs whose passwords (and full text) must not appear in any field: they are replaced by ***."""
    row = _row(audit_url, record, list(secrets))
    engine = sa.create_engine(audit_url)
    try:
        table = ensure_audit_table(engine)
        with engine.begin() as conn:
            return int(conn.execute(table.insert().values(**row).returning(table.c.id)).scalar_one())
    finally:
        engine.dispose()


def finish_record(audit_url: str, record_id: int, record: AuditRecord, secrets: list[str] = ()) -> None:
    """Replace the intent record `record_id` (written by `write_record` before the read) with the read's outcome."""
    row = _row(audit_url, record, list(secrets))
    engine = sa.create_engine(audit_url)
    try:
        table = ensure_audit_table(engine)
        with engine.begin() as conn:
            updated = conn.execute(table.update().where(table.c.id == record_id).values(**row)).rowcount
        if updated != 1:
            raise RuntimeError(f"audit record {record_id} is gone from {AUDIT_TABLE}")
    finally:
        engine.dispose()


def read_records(audit_url: str, record_id: int | None = None) -> list[dict[str, Any]]:
    """Every audit record (or only the one with `record_id`), oldest first, with `columns` and `filters` decoded."""
    engine = sa.create_engine(audit_url)
    try:
        table = ensure_audit_table(engine)
        query = sa.select(table).order_by(table.c.id)
        if record_id is not None:
            query = query.where(table.c.id == record_id)
        with engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
    finally:
        engine.dispose()
    for row in rows:
        row["columns"] = json.loads(row["columns"])
        row["filters"] = json.loads(row["filters"])
    return rows
