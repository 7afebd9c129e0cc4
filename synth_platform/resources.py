"""Resources: where the source table lives and where the platform keeps its own files."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from synth_platform.sampling.source import ensure_embedded_source


class PlatformStorage(dg.ConfigurableResource):
    """The platform's own files: embedded source, Optuna studies, generator workspaces, reports.

    `root` empty means `<DAGSTER_HOME or the instance's temp dir>/synth_platform`.
    `optuna_storage` empty means a SQLite file under `root`; a `postgresql+psycopg2://…` URL shares studies.
    `audit_url` empty means `<root>/audit.sqlite3`: where every read of the source is recorded (never the source).
    """

    root: str = ""
    optuna_storage: str = ""
    audit_url: str = ""

    _root: Path | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.root:
            self._root = Path(self.root)
        elif context.instance is not None:
            self._root = Path(context.instance.root_directory) / "synth_platform"
        else:
            self._root = Path(os.environ.get("DAGSTER_HOME", ".")) / "synth_platform"
        self._root.mkdir(parents=True, exist_ok=True)

    @property
    def root_path(self) -> Path:
        if self.root:
            return Path(self.root)
        if self._root is None:
            raise RuntimeError("PlatformStorage without `root` is only usable inside a run (it needs the instance).")
        return self._root

    def optuna_url(self) -> str:
        return self.optuna_storage or f"sqlite:///{self.root_path / 'optuna.sqlite3'}"

    def audit_database_url(self) -> str:
        return self.audit_url or f"sqlite:///{self.root_path / 'audit.sqlite3'}"

    def workspace(self, run_id: str) -> Path:
        return self.root_path / "workspace" / run_id

    def run_dir(self, run_id: str) -> Path:
        path = self.root_path / "runs" / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def reports_dir(self) -> Path:
        return self.root_path / "reports"


class SourceDatabase(dg.ConfigurableResource):
    """The database the source table is read from (read-only). Empty `url`: the embedded SQLite seeded from UCI
    Adult, built on first use under the platform storage root."""

    url: str = ""

    def resolve_url(self, storage: PlatformStorage) -> str:
        return self.url or ensure_embedded_source(storage.root_path / "embedded_source.sqlite")


def source_database_from_env() -> SourceDatabase:
    """`SYNTH_SOURCE_URL` when set (kept as an env var reference, so the UI never shows its password)."""
    if os.environ.get("SYNTH_SOURCE_URL"):
        return SourceDatabase(url=dg.EnvVar("SYNTH_SOURCE_URL"))
    return SourceDatabase()


def platform_storage_from_env() -> PlatformStorage:
    """`SYNTH_OPTUNA_STORAGE` when set selects a shared Optuna storage (e.g. PostgreSQL); `SYNTH_AUDIT_URL` the
    database of the source-read audit log."""
    fields = {}
    if os.environ.get("SYNTH_OPTUNA_STORAGE"):
        fields["optuna_storage"] = dg.EnvVar("SYNTH_OPTUNA_STORAGE")
    if os.environ.get("SYNTH_AUDIT_URL"):
        fields["audit_url"] = dg.EnvVar("SYNTH_AUDIT_URL")
    return PlatformStorage(**fields)
