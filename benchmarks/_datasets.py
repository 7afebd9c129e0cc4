"""The benchmark datasets and the platform's definitions over one of them, shared by the benchmarks that materialize
the whole asset graph (optimizer_attempts_to_green.py, fidelity.py).

Adult is the bundled embedded source; the others are loaded from ../shared/datasets (and the patient table is
built by synth_platform_tests/profiling/built_tables.py) into a SQLite file first.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import dagster as dg
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from synth_platform.definitions import defs  # noqa: E402
from synth_platform.resources import AutoOptimizerSettings, PlatformStorage, SourceDatabase  # noqa: E402

SHARED = REPO.parent / "shared" / "datasets"
DATASETS = {  # name: (csv under ../shared/datasets, "built" for the patient table, or None for the embedded Adult; table; report target)
    "adult": (None, "adult", "income"),
    "credit_data": ("credit_data.csv", "credit_data", "Status"),
    "penguins": ("penguins.csv", "penguins", "species"),
    "patients": ("built", "patients", "diagnosis"),
}
PATIENT_ROWS = 3000  # rows of the built patient table
# What a user must configure for a table besides its name: the patient table's free-text notes are refused until
# dropped (a generator cannot learn prose, and it carries names).
TABLE_CONFIG = {"patients": {"profiled_dataset": {"column_treatments": {"notes": "drop"}}}}


def source_for(name: str, directory: Path) -> SourceDatabase:
    """The source database of dataset `name`: the embedded Adult, or a SQLite file written under `directory`."""
    csv, table, _ = DATASETS[name]
    if csv is None:
        return SourceDatabase()
    path = directory / f"{table}.sqlite"
    if csv == "built":
        from synth_platform_tests.profiling.built_tables import patients

        frame = patients(PATIENT_ROWS)
    else:
        frame = pd.read_csv(SHARED / csv)
    with sqlite3.connect(path) as conn:
        frame.to_sql(table, conn, index=False, if_exists="replace")
    return SourceDatabase(url=f"sqlite:///{path}")


def base_run_config(name: str) -> dict[str, dict]:
    """The run config a user gives for dataset `name`: its table, the report's target and the table's own settings
    (TABLE_CONFIG); every other setting at its default."""
    _, table, target = DATASETS[name]
    config: dict[str, dict] = {"ops": {"source_sample": {"config": {"table": table}},
                                       "privacy_utility_report": {"config": {"target_column": target}}}}
    for op, values in TABLE_CONFIG.get(name, {}).items():
        config["ops"].setdefault(op, {"config": {}})["config"].update(values)
    return config


def definitions_for(source: SourceDatabase, storage: PlatformStorage, max_attempts: int = 3) -> dg.Definitions:
    """The platform's definitions with this benchmark's source and store."""
    return dg.Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs, sensors=defs.sensors, executor=defs.executor,
        resources={**defs.resources, "source_database": source, "platform_storage": storage,
                   "auto_optimizer": AutoOptimizerSettings(max_attempts=max_attempts)},
    )
