"""Schedules."""

from __future__ import annotations

import dagster as dg

from synth_platform.jobs import synthesis_job

daily_synthesis_schedule = dg.ScheduleDefinition(
    job=synthesis_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    description="Re-sample, re-profile, re-tune and re-generate every day at 03:00 UTC.",
)
