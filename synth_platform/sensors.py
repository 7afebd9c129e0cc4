"""The auto-optimizer sensor: failed threshold checks → one adjusted re-run from `tuned_hyperparameters` down."""

from __future__ import annotations

import json

import dagster as dg
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

from synth_platform.assets import privacy_utility_report
from synth_platform.evaluation.report import THRESHOLD_RULES
from synth_platform.jobs import resynthesis_job
from synth_platform.optimizer.rules import MAX_ATTEMPTS, propose_adjustment

ATTEMPT_TAG = "synth_platform/attempt"
PARENT_RUN_TAG = "synth_platform/parent_run"
FAILURE_TAG = "synth_platform/failure"
CHANGE_TAG = "synth_platform/change"
FAILED_CHECKS_TAG = "synth_platform/failed_checks"
RESYNTHESIS_OPS = ("tuned_hyperparameters", "synthetic_table", "privacy_utility_report")


HISTORY_PAGE = 100  # evaluation records fetched per storage query (newest first, paged back to the cursor)


def check_evaluations_since(
    instance: dg.DagsterInstance, check_key: dg.AssetCheckKey, after_id: int
) -> list[AssetCheckExecutionRecord]:
    """Every evaluation record of a check with a storage id above `after_id`, oldest first.

    The one place that touches Dagster's non-public check-history API: sensors cannot subscribe to check
    evaluations (`asset_sensor` only sees materializations), so this reads the check execution table directly.
    The storage returns records newest first; pages go back (its `cursor` means "ids below") until `after_id`.
    """
    records: list[AssetCheckExecutionRecord] = []
    before: int | None = None
    while True:
        page = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=HISTORY_PAGE, cursor=before)
        new = [r for r in page if r.id > after_id]
        records.extend(new)
        if len(page) < HISTORY_PAGE or len(new) < len(page):
            return sorted(records, key=lambda r: r.id)
        before = page[-1].id


def _finished_failures(context: dg.SensorEvaluationContext, cursor: dict[str, int]) -> dict[str, list[str]]:
    """Failed checks of finished runs not handled before, by run id; advances `cursor` past what it read.

    A record whose run is still going stops the reading of that check (the cursor stays before it), so an
    evaluation is handled exactly once, after its run has finished.
    """
    failed_by_run: dict[str, list[str]] = {}
    for rule in THRESHOLD_RULES:
        key = dg.AssetCheckKey(privacy_utility_report.key, rule.check_name)
        for record in check_evaluations_since(context.instance, key, cursor.get(rule.check_name, 0)):
            run = context.instance.get_run_by_id(record.run_id)
            if run is not None and not run.is_finished:
                break
            cursor[rule.check_name] = record.id
            if record.status == AssetCheckExecutionRecordStatus.FAILED:
                failed_by_run.setdefault(record.run_id, []).append(rule.check_name)
    return failed_by_run


def _op_config(run_config: dict, op: str) -> dict:
    return dict((run_config.get("ops", {}).get(op) or {}).get("config") or {})


@dg.sensor(
    job=resynthesis_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Reads failed threshold checks and requests a re-run with an adjusted config, at most {MAX_ATTEMPTS} attempts.",
)
def auto_optimizer_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    requests, notes = [], []
    for run_id, failed in _finished_failures(context, cursor).items():
        run = context.instance.get_run_by_id(run_id)
        if run is None:
            notes.append(f"run {run_id} failed {failed} but has been deleted: nothing to re-run from")
            continue
        attempt = int(run.tags.get(ATTEMPT_TAG, "0"))
        if attempt >= MAX_ATTEMPTS:
            notes.append(f"run {run_id} failed {failed} at attempt {attempt}: attempt cap {MAX_ATTEMPTS} reached")
            continue
        run_config = run.run_config or {}
        tuning, generation = _op_config(run_config, "tuned_hyperparameters"), _op_config(run_config, "synthetic_table")
        adjustment = propose_adjustment(failed, tuning, generation)
        if adjustment is None:
            notes.append(f"run {run_id} failed {failed}: no rule proposes a change")
            continue
        context.log.info(f"run {run_id} failed {failed}; attempt {attempt + 1}: {adjustment.change}")
        requests.append(
            dg.RunRequest(
                run_key=f"{run_id}:attempt-{attempt + 1}",
                run_config={"ops": {
                    "tuned_hyperparameters": {"config": adjustment.tuning},
                    "synthetic_table": {"config": adjustment.generation},
                    "privacy_utility_report": {"config": _op_config(run_config, "privacy_utility_report")},
                }},
                tags={
                    ATTEMPT_TAG: str(attempt + 1),
                    PARENT_RUN_TAG: run_id,
                    FAILURE_TAG: adjustment.failure,
                    CHANGE_TAG: adjustment.change,
                    FAILED_CHECKS_TAG: ",".join(sorted(failed)),
                },
            )
        )
    return dg.SensorResult(
        run_requests=requests,
        cursor=json.dumps(cursor, sort_keys=True),
        skip_reason=None if requests else ("; ".join(notes) or "no new failed check evaluation"),
    )
