"""The one Definitions object of the code location: a chain per table of tables.yaml (see table_chains.py)."""

from __future__ import annotations

import warnings

import dagster as dg

from synth_platform.io_managers import SealedFilesystemIOManager
from synth_platform.jobs import optimize_run_job
from synth_platform.resources import auto_optimizer_from_env, platform_storage_from_env, source_database_from_env
from synth_platform.sensors import dead_run_sweep_sensor
from synth_platform.table_chains import build_table_chains
from synth_platform.tables import load_tables

# Dagster rebuilds the checks of a key-prefixed chain (AssetsDefinition.with_attributes) through a constructor
# argument it marks beta, and warns on every load of the code location: noise for whoever starts the UI.
warnings.filterwarnings("ignore", message=r"Parameter `execution_type` of function `AssetsDefinition.__init__`")

CHAINS = build_table_chains(load_tables())

defs = dg.Definitions(
    assets=[asset for chain in CHAINS for asset in chain.assets],
    asset_checks=[check for chain in CHAINS for check in chain.checks],
    jobs=[job for chain in CHAINS for job in chain.jobs] + [optimize_run_job],
    schedules=[chain.schedule for chain in CHAINS if chain.schedule is not None],
    sensors=[chain.sensor for chain in CHAINS] + [dead_run_sweep_sensor],
    resources={
        "source_database": source_database_from_env(),
        "platform_storage": platform_storage_from_env(),
        "auto_optimizer": auto_optimizer_from_env(),
        "io_manager": SealedFilesystemIOManager(),  # asset values hold source rows: sealed, owner-only
    },
    # One process for the whole chain: the steps run one after another anyway, torch uses every core inside a step,
    # and a process per step would re-import torch and synthcity (~15 s) for each of the nine steps.
    executor=dg.in_process_executor,
)
