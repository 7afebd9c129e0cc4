"""The auto-optimizer sensor of each table's chain: failed threshold checks (and "optimize this run" requests) → one adjusted re-run from
`tuned_hyperparameters` down, until a run is all green, the attempt cap is reached or no untried change is left;
then the chain's best attempt is chosen."""

from __future__ import annotations

import json
import time

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from synth_platform import attempt_chain
from synth_platform.evaluation.thresholds import REPORT_RULES
from synth_platform.jobs import best_attempt_job_name, optimize_run_job, resynthesis_job_name
from synth_platform.resources import AutoOptimizerSettings, PlatformStorage
from synth_platform.tables import TableSpec

MANUAL_CURSOR = "optimize_run_job"  # cursor keys: run ids of the last handled runs of these jobs
ERRORED_CURSOR = "errored_attempts"


def auto_optimizer_sensor_name(table: str) -> str:
    return f"{table}_auto_optimizer_sensor"


def _finished_failures(
    context: dg.SensorEvaluationContext, cursor: dict[str, int], report_key: dg.AssetKey
) -> dict[str, tuple[list[str], str]]:
    """Failed checks of finished runs not handled before, by run id, with the run whose report they judged;
    advances `cursor` past what it read. Only ERROR-severity failures count: a warning (a fidelity check that is
    not made blocking) starts no re-run.

    A record whose run is still going stops the reading of that check (the cursor stays before it), so an
    evaluation is handled exactly once, after its run has finished.
    """
    failed_by_run: dict[str, tuple[list[str], str]] = {}
    for rule in REPORT_RULES:
        key = dg.AssetCheckKey(report_key, rule.check_name)
        for record in attempt_chain.check_evaluations_since(context.instance, key, cursor.get(rule.check_name, 0)):
            run = context.instance.get_run_by_id(record.run_id)
            if run is not None and not run.is_finished:
                break
            cursor[rule.check_name] = record.id
            evaluation = record.evaluation
            if record.status == AssetCheckExecutionRecordStatus.FAILED and (
                evaluation is None or evaluation.severity == dg.AssetCheckSeverity.ERROR
            ):
                checks, _ = failed_by_run.setdefault(record.run_id, ([], attempt_chain.evaluated_run_id(record)))
                checks.append(rule.check_name)
    return failed_by_run


def _finished_runs_since(context: dg.SensorEvaluationContext, cursor: dict, key: str, job_name: str) -> list[dg.DagsterRun]:
    """Finished runs of `job_name` created after the one `cursor[key]` names, oldest first; advances the cursor to
    the last of them. A run still going stops the reading (it and later ones are read on a later tick), so every
    run is handled once, after it has finished."""
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(job_name=job_name), limit=100, order_by="id", ascending=True, cursor=cursor.get(key) or None,
    )
    finished = []
    for record in records:
        if not record.dagster_run.is_finished:
            break
        finished.append(record.dagster_run)
        cursor[key] = record.dagster_run.run_id
    return finished


def _manual_requests(context: dg.SensorEvaluationContext, cursor: dict, table: str) -> list[tuple[str, dict]]:
    """Successful `optimize_run_job` runs for a run of `table` not handled before: (their run id, their config),
    oldest first. Requests for other tables' runs are their sensors' (each sensor keeps its own cursor)."""
    requests = []
    for run in _finished_runs_since(context, cursor, MANUAL_CURSOR, optimize_run_job.name):
        if run.status != dg.DagsterRunStatus.SUCCESS:
            continue
        config = attempt_chain.op_config(run.run_config or {}, "plan_optimizer_step")
        if attempt_chain.table_of_run(context.instance.get_run_by_id(str(config.get("run_id", "")))) == table:
            requests.append((run.run_id, config))
    return requests


def _errored_attempts(context: dg.SensorEvaluationContext, cursor: dict, job_name: str) -> list[dg.DagsterRun]:
    """Re-runs of a chain that failed before their report (a generator error, say), not handled before: their chain
    gets no check evaluation, so it ends here and its best attempt must still be chosen."""
    return [run for run in _finished_runs_since(context, cursor, ERRORED_CURSOR, job_name)
            if run.status == dg.DagsterRunStatus.FAILURE and attempt_chain.CHAIN_TAG in run.tags
            and attempt_chain.report_of_run(context.instance, run.run_id) is None]


def _best_attempt_request(job_name: str, chain: str, reason: str, last_run: str) -> dg.RunRequest:
    """Choose the chain's best attempt; keyed by the run the chain stopped at (a chain a manual step extends and
    that stops again gets a new choice)."""
    return dg.RunRequest(
        job_name=job_name,
        run_key=f"{chain}:best-after-{last_run}",
        run_config={"ops": {"best_synthetic_table": {"config": {"chain": chain}}}},
        tags={attempt_chain.CHAIN_TAG: chain, attempt_chain.STOP_TAG: reason[:500]},
    )


def auto_optimizer_sensor_for(
    spec: TableSpec, report_key: dg.AssetKey, jobs: list[UnresolvedAssetJobDefinition]
) -> dg.SensorDefinition:
    """The auto-optimizer of one table's chain: it reads the checks of that table's report only, and re-runs and
    chooses the best attempt with that table's jobs (`jobs`: its resynthesis and best-attempt jobs)."""
    table = spec.name
    resynthesis, best_attempt = resynthesis_job_name(table), best_attempt_job_name(table)

    @dg.sensor(
        name=auto_optimizer_sensor_name(table),
        jobs=jobs,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Table {table}: diagnoses failed threshold checks of its report and requests a re-run with the "
        "adjusted config the optimizer policy proposes (also for optimize_run_job requests on its runs), up to the "
        "auto_optimizer resource's attempt cap; when a chain stops without an all-green run, requests the choice of "
        "its best attempt.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext, auto_optimizer: AutoOptimizerSettings, platform_storage: PlatformStorage
    ) -> dg.SensorResult:
        started = time.perf_counter()
        cap = auto_optimizer.checked_max_attempts()
        cursor: dict = json.loads(context.cursor) if context.cursor else {}  # check name → record id; job → run id
        requests, notes = [], []

        work = [(run_id, cap, report_run, "sensor", None)
                for run_id, (_, report_run) in _finished_failures(context, cursor, report_key).items()]
        for manual_run, config in _manual_requests(context, cursor, table):
            work.append((config.get("run_id", ""), int(config.get("max_attempts") or cap), None, "optimize_run_job", manual_run))

        for run in _errored_attempts(context, cursor, resynthesis):
            reason = f"attempt {run.tags.get(attempt_chain.ATTEMPT_TAG)} (run {run.run_id}) failed before its report"
            notes.append(reason)
            requests.append(_best_attempt_request(best_attempt, run.tags[attempt_chain.CHAIN_TAG], reason, run.run_id))

        for run_id, max_attempts, report_run, trigger, manual_run in work:
            try:
                step = attempt_chain.plan_step(context.instance, run_id, max_attempts=max_attempts, report_run_id=report_run,
                                               trigger=trigger, memory_url=platform_storage.tuning_memory_database_url(), spec=spec)
            except ValueError as exc:
                notes.append(str(exc))
                continue
            context.log.info(step.describe())
            if step.plan.proposal is None:
                notes.append(f"run {run_id}: {step.plan.stop_reason}")
                if trigger == "sensor":  # the chain ends here: choose its best attempt
                    requests.append(_best_attempt_request(best_attempt, step.chain, step.plan.stop_reason, run_id))
                continue
            run_key = f"{run_id}:attempt-{step.attempt + 1}" + (f":manual-{manual_run}" if manual_run else "")
            requests.append(dg.RunRequest(job_name=resynthesis, run_key=run_key, run_config=step.run_config, tags=step.tags))
        context.log.info(f"auto-optimizer tick ({table}): {len(work)} item(s), {len(requests)} request(s) in "
                         f"{time.perf_counter() - started:.2f} s")
        return dg.SensorResult(
            run_requests=requests,
            cursor=json.dumps(cursor, sort_keys=True),
            skip_reason=None if requests else ("; ".join(notes) or "no new failed check evaluation"),
        )

    return _sensor


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks runs whose worker process died (kill -9, out of memory) as failed, so none stays STARTED "
    "forever (Dagster's run monitoring cannot see it for the default run launcher or CLI runs); see run_workers.py.",
)
def dead_run_sweep_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    from synth_platform.run_workers import fail_runs_of_dead_workers

    dead = fail_runs_of_dead_workers(context.instance)
    return dg.SkipReason(f"marked {len(dead)} run(s) with a dead worker as failed: {dead}" if dead else "no run with a dead worker")
