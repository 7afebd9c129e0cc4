"""The source tables the platform synthesizes, one asset chain each, as declared in `tables.yaml`.

Plain Python (no Dagster): reads and checks the file, and says which settings a table's chain runs with. The
Dagster shell (`table_chains.py`) builds one chain of assets, checks, jobs, schedule and sensor per entry.

A setting of a table's asset comes from, in this order: the run config of the run (launchpad, `--config-json`, the
auto-optimizer's re-runs); the table's entry in `tables.yaml`; the asset config's own default.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TABLES_FILE_ENV = "SYNTH_TABLES_FILE"
DEFAULT_TABLES_FILE = Path(__file__).resolve().parents[1] / "tables.yaml"
DEFAULT_SCHEDULE = "0 3 * * *"

# The assets whose settings an entry may set, in chain order.
CONFIGURABLE_ASSETS = ("source_sample", "profiled_dataset", "tuned_hyperparameters", "synthetic_table", "privacy_utility_report")

# Entry keys that are shorthands for one asset setting: key -> (asset, field).
SHORTHANDS = {
    "table": ("source_sample", "table"),
    "generator": ("tuned_hyperparameters", "plugin"),
    "time_budget_minutes": ("synthetic_table", "time_budget_minutes"),
    "privacy_budget_epsilon": ("source_sample", "privacy_budget_epsilon"),
}
ENTRY_KEYS = {"name", "description", "source_url_env", "source_password_env", "schedule", "thresholds", "config", *SHORTHANDS}
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TablesFileError(ValueError):
    """`tables.yaml` cannot be used: the message names the entry, the key and the fix."""


@dataclass(frozen=True)
class TableSpec:
    """One entry of `tables.yaml`: a source table and how its chain runs."""

    name: str  # the chain's asset key prefix, group, and the prefix of its jobs, schedule and sensor
    description: str = ""
    source_url_env: str = ""  # env var holding the source's SQLAlchemy URL; empty: the source_database resource
    source_password_env: str = ""  # env var holding the password, when the URL holds none
    schedule: str = ""  # cron (UTC); empty: no schedule
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # asset -> {field: value}

    def settings_of(self, asset: str) -> dict[str, Any]:
        return dict(self.settings.get(asset, {}))

    def to_dict(self) -> dict[str, Any]:
        """What the UI shows of the entry: environment variable names, never their values."""
        return {"name": self.name, "description": self.description, "source_url_env": self.source_url_env,
                "source_password_env": self.source_password_env, "schedule": self.schedule, "settings": self.settings}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableSpec:
        return cls(name=data["name"], description=data.get("description", ""), source_url_env=data.get("source_url_env", ""),
                   source_password_env=data.get("source_password_env", ""), schedule=data.get("schedule", ""),
                   settings={k: dict(v) for k, v in (data.get("settings") or {}).items()})


def effective_settings(spec: TableSpec | None, asset: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """An asset's settings for one run: what the run config gives, over the table's entry (the asset config's
    defaults fill the rest)."""
    return {**(spec.settings_of(asset) if spec else {}), **(given or {})}


DEFAULT_TABLES = [TableSpec(
    name="adult", description="UCI Adult census rows in the embedded SQLite database (or SYNTH_SOURCE_URL)",
    schedule=DEFAULT_SCHEDULE, settings={"source_sample": {"table": "adult"}},
)]


def tables_file() -> Path:
    return Path(os.environ.get(TABLES_FILE_ENV) or DEFAULT_TABLES_FILE)


def load_tables(path: Path | None = None) -> list[TableSpec]:
    """The entries of the tables file (`SYNTH_TABLES_FILE`, else `tables.yaml` at the project root); the embedded
    Adult table alone when there is no such file."""
    path = path or tables_file()
    if not path.exists():
        if os.environ.get(TABLES_FILE_ENV):
            raise TablesFileError(f"{TABLES_FILE_ENV} names {path}, which does not exist; point it at a tables file "
                                  f"or unset it to use {DEFAULT_TABLES_FILE.name}.")
        return list(DEFAULT_TABLES)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise TablesFileError(f"{path} is not valid YAML{where}: {getattr(error, 'problem', None) or error}.") from None
    return parse_tables(document, str(path))


def parse_tables(document: Any, source: str = "tables.yaml") -> list[TableSpec]:
    """Check a whole tables document and return its entries; every problem is reported at once."""
    if not isinstance(document, dict) or not isinstance(document.get("tables"), list) or not document["tables"]:
        raise TablesFileError(f"{source} must hold `tables:`, a list of at least one entry (name, table, ...).")
    problems: list[str] = []
    specs: list[TableSpec] = []
    for position, entry in enumerate(document["tables"], start=1):
        spec = _parse_entry(entry, position, problems)
        if spec is not None:
            specs.append(spec)
    names = [s.name.lower() for s in specs]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"two entries are named {name!r} (names are compared without case): give each table its own name")
    if problems:
        raise TablesFileError(f"{source} has {len(problems)} problem(s):\n- " + "\n- ".join(problems))
    return specs


def _parse_entry(entry: Any, position: int, problems: list[str]) -> TableSpec | None:
    if not isinstance(entry, dict):
        problems.append(f"entry {position} is not a mapping of settings (name: ..., table: ...)")
        return None
    name = entry.get("name")
    label = f"entry {position}" + (f" ({name!r})" if isinstance(name, str) else "")
    if not isinstance(name, str) or not NAME.match(name):
        problems.append(f"{label}: `name` must start with a letter and hold only letters, digits and _ (at most 40): "
                        "it prefixes the chain's asset keys, jobs, schedule and sensor")
    for key in sorted(set(entry) - ENTRY_KEYS):
        problems.append(f"{label}: unknown key {key!r}; the keys are {sorted(ENTRY_KEYS)} (other asset settings go under `config`)")
    for key in ("source_url_env", "source_password_env"):
        value = entry.get(key, "")
        if value and (not isinstance(value, str) or not ENV_NAME.match(value)):
            problems.append(f"{label}: `{key}` must be the name of an environment variable (the URL itself, which may "
                            "hold a password, never goes in this file)")
    schedule = entry.get("schedule", "")
    if schedule is None:
        schedule = ""
    if schedule and not _valid_cron(schedule):
        problems.append(f"{label}: `schedule` {schedule!r} is not a cron expression (e.g. '0 3 * * *'); leave it out for none")
    settings: dict[str, dict[str, Any]] = {}
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        problems.append(f"{label}: `config` must map asset names to their settings, e.g. {{synthetic_table: {{num_rows: 1000}}}}")
        config = {}
    for asset, values in config.items():
        if asset not in CONFIGURABLE_ASSETS:
            problems.append(f"{label}: `config.{asset}` is not a configurable asset; one of {list(CONFIGURABLE_ASSETS)}")
        elif not isinstance(values, dict):
            problems.append(f"{label}: `config.{asset}` must map setting names to values")
        else:
            settings[asset] = dict(values)
    thresholds = entry.get("thresholds") or {}
    if not isinstance(thresholds, dict):
        problems.append(f"{label}: `thresholds` must map report settings to values, e.g. {{ks_mean_max: 0.1}}")
    else:
        settings.setdefault("privacy_utility_report", {}).update(thresholds)
    for key, (asset, setting) in SHORTHANDS.items():
        if key in entry:
            if setting in settings.get(asset, {}):
                problems.append(f"{label}: `{key}` and `config.{asset}.{setting}` both set {setting}; keep one")
            settings.setdefault(asset, {})[setting] = entry[key]
    if not isinstance(name, str):
        return None
    return TableSpec(name=name, description=str(entry.get("description") or ""), source_url_env=entry.get("source_url_env") or "",
                     source_password_env=entry.get("source_password_env") or "", schedule=schedule,
                     settings={k: v for k, v in settings.items() if v})


def _valid_cron(expression: Any) -> bool:
    if not isinstance(expression, str):
        return False
    from dagster._utils.schedules import is_valid_cron_string  # the parser Dagster's schedules use

    return is_valid_cron_string(expression)


if __name__ == "__main__":  # `python -m synth_platform.tables`: the table names, one a line (make materialize)
    for spec in load_tables():
        print(spec.name)
