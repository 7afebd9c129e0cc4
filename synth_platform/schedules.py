"""Schedules."""

from __future__ import annotations

import dagster as dg

from synth_platform.jobs import synthesis_job

daily_synthesis_schedule = dg.ScheduleDefinition(
    name="daily_synthesis_schedule",
    job=synthesis_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Re-sample, re-profile, re-tune and re-generate every day at 03:00 UTC.",
)
