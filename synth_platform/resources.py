"""Resources: where the source table lives and where the platform keeps its own files."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from pydantic import PrivateAttr

from synth_platform.sampling.credentials import connectable_url
from synth_platform.sampling.drivers import with_installed_driver
from synth_platform.sealed_storage import private_directory
from synth_platform.sampling.source import ensure_embedded_source
from synth_platform.tables import TableSpec


class PlatformStorage(dg.ConfigurableResource):
    """The platform's own files: embedded source, Optuna studies, generator workspaces, reports.

    `root` empty means `<DAGSTER_HOME or the instance's temp dir>/synth_platform`.
    `optuna_storage` empty means a SQLite file under `root`; a `postgresql+psycopg2://…` URL shares studies.
    `audit_url` empty means `<root>/audit.sqlite3`: where every read of the source is recorded (never the source).
    `tuning_memory_url` empty means `<root>/tuning_memory.sqlite3`: past studies' best parameters, for warm starts.
    `mlflow_tracking_uri` empty means a SQLite MLflow store under `<root>/mlflow`; a server URL (http://…) or
    database URL shares it.
    """

    root: str = ""
    optuna_storage: str = ""
    audit_url: str = ""
    tuning_memory_url: str = ""
    mlflow_tracking_uri: str = ""

    _root: Path | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.root:
            self._root = Path(self.root)
        elif context.instance is not None:
            self._root = Path(context.instance.root_directory) / "synth_platform"
        else:
            self._root = Path(os.environ.get("DAGSTER_HOME", ".")) / "synth_platform"
        private_directory(self._root)  # source-derived files (rows, reports, MLflow, audit): owner-only
        if context.instance is not None and context.dagster_run is not None:
            from synth_platform.run_workers import fail_runs_of_dead_workers, record_worker

            record_worker(context.instance, context.run_id)
            dead = fail_runs_of_dead_workers(context.instance)
            if dead:
                context.log.warning(f"marked {len(dead)} run(s) whose worker process is gone as failed: {dead}")

    @property
    def root_path(self) -> Path:
        if self.root:
            return Path(self.root)
        if self._root is None:
            raise RuntimeError("PlatformStorage without `root` is only usable inside a run (it needs the instance).")
        return self._root

    def _store_url(self, url: str, file_name: str) -> str:
        """One of the platform's own stores: `url` as the driver must receive it (a raw `@` in its password
        encoded; `postgresql://` / `postgres://` with the installed driver, as source URLs get), or, when empty, a
        SQLite file `file_name` under the root."""
        return with_installed_driver(connectable_url(url)) if url else f"sqlite:///{self.root_path / file_name}"

    def optuna_url(self) -> str:
        return self._store_url(self.optuna_storage, "optuna.sqlite3")

    def audit_database_url(self) -> str:
        return self._store_url(self.audit_url, "audit.sqlite3")

    def tuning_memory_database_url(self) -> str:
        return self._store_url(self.tuning_memory_url, "tuning_memory.sqlite3")

    def mlflow_uri(self) -> str:
        from synth_platform.tuning.tracking import tracking_uri_for

        return tracking_uri_for(self.root_path, self.mlflow_tracking_uri)

    def workspace(self, run_id: str) -> Path:
        return self.root_path / "workspace" / run_id

    def remove_stale_workspaces(self, is_active: Callable[[str], bool]) -> list[str]:
        """Remove the workspaces (generator files, the sealed trial setup) of runs that are no longer active — a run
        killed outright never cleans up after itself. `is_active(run_id)` says whether a run may still use its
        workspace. Returns the run ids whose workspace was removed."""
        root = self.root_path / "workspace"
        removed = []
        for path in sorted(root.iterdir()) if root.is_dir() else []:
            if path.is_dir() and not is_active(path.name):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        return removed

    def run_dir(self, run_id: str) -> Path:
        path = self.root_path / "runs" / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def reports_dir(self) -> Path:
        return self.root_path / "reports"

    @property
    def encoders_dir(self) -> Path:
        """Fitted data encoders of ctgan / tvae / dpgan, keyed by data and settings, shared by runs and workers."""
        return self.root_path / "encoders"


class SourceDatabase(dg.ConfigurableResource):
    """The database the source table is read from (read-only). Empty `url`: the embedded SQLite seeded from UCI
    Adult, built on first use under the platform storage root.

    Give secrets as environment variables (`dg.EnvVar`), never as plain config: `url` may carry the password, or
    the password can come separately in `password` (then `url` holds none). `require_tls` refuses plain-text
    connections to non-local hosts (PostgreSQL needs `sslmode=require` or stricter)."""

    url: str = ""
    password: str = ""
    require_tls: bool = True

    def resolve_url(self, storage: PlatformStorage) -> str:
        if not self.url:
            return ensure_embedded_source(storage.root_path / "embedded_source.sqlite")
        if not self.password:
            return self.url
        try:
            parsed = sa.make_url(self.url)
        except Exception:  # noqa: BLE001 - never echo the URL: it may hold a secret
            raise ValueError("The source_database url cannot be parsed; expected dialect+driver://user@host/database.") from None
        return parsed.set(password=self.password).render_as_string(hide_password=False)

    def for_table(self, spec: TableSpec | None) -> SourceDatabase:
        """The database a tables.yaml entry reads from: the URL (and password) in the environment variables the
        entry names, with this resource's TLS rule; this resource itself when the entry names none."""
        if spec is None or not spec.source_url_env:
            return self
        url = os.environ.get(spec.source_url_env, "")
        if not url:
            raise ValueError(f"Table {spec.name!r}: its source URL comes from the environment variable "
                             f"{spec.source_url_env} (tables.yaml, source_url_env), which is not set; set it to the "
                             "SQLAlchemy URL of its database (e.g. postgresql://reader@host/db) where the runs run.")
        password = os.environ.get(spec.source_password_env, "") if spec.source_password_env else ""
        return SourceDatabase(url=url, password=password, require_tls=self.require_tls)


def source_database_from_env() -> SourceDatabase:
    """`SYNTH_SOURCE_URL` (and `SYNTH_SOURCE_PASSWORD`) when set, kept as env var references so the UI and the run
    config never show them; `SYNTH_SOURCE_REQUIRE_TLS=0` allows plain-text connections to non-local hosts."""
    fields: dict = {}
    if os.environ.get("SYNTH_SOURCE_URL"):
        fields["url"] = dg.EnvVar("SYNTH_SOURCE_URL")
    if os.environ.get("SYNTH_SOURCE_PASSWORD"):
        fields["password"] = dg.EnvVar("SYNTH_SOURCE_PASSWORD")
    if os.environ.get("SYNTH_SOURCE_REQUIRE_TLS", "").strip().lower() in ("0", "false", "no", "off"):
        fields["require_tls"] = False
    return SourceDatabase(**fields)


def platform_storage_from_env() -> PlatformStorage:
    """`SYNTH_OPTUNA_STORAGE` when set selects a shared Optuna storage (e.g. PostgreSQL); `SYNTH_AUDIT_URL` the
    database of the source-read audit log; `SYNTH_TUNING_MEMORY_URL` the tuning memory; `MLFLOW_TRACKING_URI` the
    MLflow tracking store."""
    fields = {}
    if os.environ.get("SYNTH_OPTUNA_STORAGE"):
        fields["optuna_storage"] = dg.EnvVar("SYNTH_OPTUNA_STORAGE")
    if os.environ.get("SYNTH_AUDIT_URL"):
        fields["audit_url"] = dg.EnvVar("SYNTH_AUDIT_URL")
    if os.environ.get("SYNTH_TUNING_MEMORY_URL"):
        fields["tuning_memory_url"] = dg.EnvVar("SYNTH_TUNING_MEMORY_URL")
    if os.environ.get("MLFLOW_TRACKING_URI"):
        fields["mlflow_tracking_uri"] = dg.EnvVar("MLFLOW_TRACKING_URI")
    return PlatformStorage(**fields)


class AutoOptimizerSettings(dg.ConfigurableResource):
    """How far the auto-optimizer goes: `max_attempts` adjusted re-runs per chain (a first run and its re-runs)."""

    max_attempts: int = 3

    def checked_max_attempts(self) -> int:
        if self.max_attempts < 0:
            raise ValueError(f"max_attempts must be 0 or more, got {self.max_attempts}.")
        return self.max_attempts


def auto_optimizer_from_env() -> AutoOptimizerSettings:
    """`SYNTH_OPTIMIZER_MAX_ATTEMPTS` when set (0 turns the re-runs off; the best attempt is still chosen)."""
    value = os.environ.get("SYNTH_OPTIMIZER_MAX_ATTEMPTS", "").strip()
    if not value:
        return AutoOptimizerSettings()
    try:
        return AutoOptimizerSettings(max_attempts=int(value))
    except ValueError:
        raise ValueError(f"SYNTH_OPTIMIZER_MAX_ATTEMPTS must be a whole number, got {value!r}.") from None
