"""Schedules: one per table whose tables.yaml entry has a `schedule`."""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from synth_platform.tables import TableSpec


def synthesis_schedule_for(spec: TableSpec, job: UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name=f"{spec.name}_synthesis_schedule",
        job=job,
        cron_schedule=spec.schedule,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description=f"Table {spec.name}: re-sample, re-profile, re-tune and re-generate on {spec.schedule!r} (UTC), "
        "through the run queue like every training run.",
    )
