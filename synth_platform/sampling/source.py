"""Read a sample of one table from any SQLAlchemy database and split it into training and holdout parts.

Pure logic: no Dagster here. The embedded default source is a SQLite file seeded from the bundled UCI Adult data.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

BUNDLED_DATASET = Path(__file__).resolve().parent.parent / "data" / "adult.csv.gz"
EMBEDDED_TABLE = "adult"
MIN_ROWS = 20


class SourceError(ValueError):
    """A sampling request that cannot be served; the message says what to change."""


@dataclass(frozen=True)
class SampleRequest:
    """What to read: one table, optionally some of its columns, at most `max_rows` rows, split with `seed`."""

    table: str
    columns: tuple[str, ...] = ()
    max_rows: int | None = None
    holdout_fraction: float = 0.2
    seed: int = 0

    def validate(self) -> None:
        if not self.table or not self.table.strip():
            raise SourceError("No table given: set `table` to the name of the table to sample.")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise SourceError(f"holdout_fraction must lie strictly between 0 and 1, got {self.holdout_fraction}.")
        if self.max_rows is not None and self.max_rows < MIN_ROWS:
            raise SourceError(f"max_rows must be at least {MIN_ROWS} (or unset for the whole table), got {self.max_rows}.")
        if len(set(self.columns)) != len(self.columns):
            raise SourceError(f"Columns are listed twice in {list(self.columns)}.")


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

    @property
    def columns(self) -> list[str]:
        return list(self.training.columns)


def mask_url(url: str) -> str:
    """The URL as it may be shown to people: the password replaced by ***."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparseable URL is shown as nothing at all rather than leaked
        return "<unparseable database URL>"


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


def read_sample(url: str, request: SampleRequest) -> SourceSample:
    """Read `request.table` from `url` read-only, sample it with the seed and split it into training and holdout."""
    request.validate()
    shown_url = mask_url(url)
    engine = sa.create_engine(url)
    try:
        frame, rows_in_table = _read_table(engine, request, shown_url)
    finally:
        engine.dispose()

    rng = np.random.default_rng(request.seed)
    if request.max_rows is not None and len(frame) > request.max_rows:
        frame = frame.iloc[np.sort(rng.choice(len(frame), size=request.max_rows, replace=False))]
    frame = frame.reset_index(drop=True)
    if len(frame) < MIN_ROWS:
        raise SourceError(
            f"Table {request.table!r} in {shown_url} has {len(frame)} rows; at least {MIN_ROWS} are needed "
            "to train a generator and keep a holdout."
        )
    training, holdout = split_training_holdout(frame, request.holdout_fraction, rng)
    return SourceSample(
        training=training,
        holdout=holdout,
        table=request.table,
        source=shown_url,
        seed=request.seed,
        rows_in_table=rows_in_table,
        fingerprint=dataset_fingerprint(request.table, frame),
    )


def _read_table(engine: sa.Engine, request: SampleRequest, shown_url: str) -> tuple[pd.DataFrame, int]:
    schema, _, name = request.table.rpartition(".")
    schema = schema or None
    try:
        inspector = sa.inspect(engine)
        if not inspector.has_table(name, schema=schema):
            available = sorted(inspector.get_table_names(schema=schema))
            raise SourceError(
                f"Table {request.table!r} not found in {shown_url}. Available tables: {available or 'none'}."
            )
        table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=engine)
    except sa.exc.OperationalError as exc:
        raise SourceError(f"Cannot connect to {shown_url}: {exc.orig}") from None

    available_columns = [column.name for column in table.columns]
    unknown = [column for column in request.columns if column not in available_columns]
    if unknown:
        raise SourceError(
            f"Columns {unknown} do not exist in table {request.table!r}. Available columns: {available_columns}."
        )
    selected = [table.c[column] for column in (request.columns or available_columns)]

    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        elif engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only = ON")
        rows_in_table = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        if rows_in_table == 0:
            raise SourceError(f"Table {request.table!r} in {shown_url} is empty: there is nothing to synthesize.")
        frame = pd.read_sql(sa.select(*selected), conn)
    return frame, rows_in_table


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
