"""The one Definitions object of the code location."""

from __future__ import annotations

import dagster as dg

from synth_platform.assets import ALL_ASSETS
from synth_platform.checks import ALL_CHECKS
from synth_platform.io_managers import SealedFilesystemIOManager
from synth_platform.jobs import best_attempt_job, optimize_run_job, resynthesis_job, synthesis_job
from synth_platform.resources import auto_optimizer_from_env, platform_storage_from_env, source_database_from_env
from synth_platform.schedules import daily_synthesis_schedule
from synth_platform.sensors import auto_optimizer_sensor, dead_run_sweep_sensor

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[synthesis_job, resynthesis_job, best_attempt_job, optimize_run_job],
    schedules=[daily_synthesis_schedule],
    sensors=[auto_optimizer_sensor, dead_run_sweep_sensor],
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
