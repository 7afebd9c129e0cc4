"""The auto-optimizer's view of Dagster: attempt chains of runs, their tags, check evaluations, reports, and the
one function that plans the next attempt of a failed run. Used by the sensor, the `optimize_run_job`, the CLI and
`best_synthetic_table`, so all four decide the same way.

A chain is a first run and the adjusted re-runs that followed it; every re-run carries the chain's id (the first
run's id), its attempt number, its parent run and what it changed, as run tags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecord

from synth_platform.generation.generators import DEFAULT_TRAINING_STEPS
from synth_platform.optimizer.attempts import Attempt, better_overall
from synth_platform.optimizer.diagnosis import Diagnosis, diagnose
from synth_platform.optimizer.policy import RULES, Plan, Situation, plan_next_attempt
from synth_platform.tables import TableSpec, effective_settings

ATTEMPT_TAG = "synth_platform/attempt"
PARENT_RUN_TAG = "synth_platform/parent_run"
CHAIN_TAG = "synth_platform/chain"
FAILURE_TAG = "synth_platform/failure"
RULE_TAG = "synth_platform/rule"
CHANGE_TAG = "synth_platform/change"
FAILED_CHECKS_TAG = "synth_platform/failed_checks"
TRIGGER_TAG = "synth_platform/trigger"  # "sensor", "optimize_run_job" or "cli"
STOP_TAG = "synth_platform/chain_stopped"

TABLE_TAG = "synth_platform/table"  # the tables.yaml entry whose chain a run belongs to (on its jobs' runs)
# Assets by name (the last part of their key: a table's chain prefixes them with the table's name; a run
# materializes one table's chain).
REPORT_ASSET = "privacy_utility_report"
SYNTHETIC_ASSET = "synthetic_table"
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


def evaluated_run_id(record: AssetCheckExecutionRecord) -> str:
    """The run whose report the check judged: a checks-only run judges an earlier run's materialization."""
    evaluation = record.evaluation
    target = evaluation.target_materialization_data if evaluation is not None else None
    return target.run_id if target is not None else record.run_id


def attempt_of(run: dg.DagsterRun | None) -> dict[str, Any]:
    """A run's place in its chain, from its tags (a run without tags is attempt 0 of its own chain; no run at all,
    as for a directly invoked asset, is attempt 0 of no chain)."""
    tags, run_id = (run.tags, run.run_id) if run is not None else ({}, "")
    return {
        "chain": tags.get(CHAIN_TAG, run_id),
        "attempt": int(tags.get(ATTEMPT_TAG, "0")),
        "parent_run": tags.get(PARENT_RUN_TAG, ""),
        "rule": tags.get(RULE_TAG, ""),
        "change": tags.get(CHANGE_TAG, ""),
        "failure": tags.get(FAILURE_TAG, ""),
    }


def table_of_run(run: dg.DagsterRun | None) -> str:
    """The tables.yaml entry a run belongs to: its table tag (every run of a table's jobs has it), else the one key
    prefix of the assets it selected (`dagster asset materialize`, a "Materialize" in the UI); "" when neither
    tells (no run, or assets of several tables)."""
    if run is None:
        return ""
    if run.tags.get(TABLE_TAG):
        return run.tags[TABLE_TAG]
    prefixes = {key.path[0] for key in (run.asset_selection or ()) if len(key.path) > 1}
    return prefixes.pop() if len(prefixes) == 1 else ""


def chain_runs(instance: dg.DagsterInstance, chain: str) -> list[dg.DagsterRun]:
    """The chain's first run (when it still exists) and its attempts (runs tagged with the chain and an attempt
    number; the best-attempt run carries the chain tag only), in attempt order."""
    runs = [r for r in instance.get_runs(filters=dg.RunsFilter(tags={CHAIN_TAG: chain})) if ATTEMPT_TAG in r.tags]
    first = instance.get_run_by_id(chain)
    if first is not None and all(r.run_id != chain for r in runs):
        runs.append(first)
    return sorted(runs, key=lambda r: (int(r.tags.get(ATTEMPT_TAG, "0")), r.run_id))


def _materialization_metadata(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict[str, Any]]:
    """The metadata of each asset a run materialized (its last materialization of each), by asset name (the last
    part of its key), read in one query."""
    found: dict[str, dict[str, Any]] = {}
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None:
            found[materialization.asset_key.path[-1]] = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
    return found


def _report(metadata: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    path = metadata.get(REPORT_ASSET, {}).get("report_path")
    if not path or not Path(path).exists():
        return None
    return json.loads(Path(path).read_text(encoding="utf-8"))


def report_of_run(instance: dg.DagsterInstance, run_id: str) -> dict[str, Any] | None:
    """The privacy/utility report a run materialized (read from the JSON it wrote), or None."""
    return _report(_materialization_metadata(instance, run_id))


def chain_attempts(instance: dg.DagsterInstance, chain: str) -> list[Attempt]:
    """Every attempt of a chain with its report (None for runs that ended before their report)."""
    attempts = []
    for run in chain_runs(instance, chain):
        place = attempt_of(run)
        metadata = _materialization_metadata(instance, run.run_id)
        attempts.append(Attempt(
            run_id=run.run_id, attempt=place["attempt"], report=_report(metadata),
            change=place["change"], rule=place["rule"], failure=place["failure"],
            synthetic_path=str(metadata.get(SYNTHETIC_ASSET, {}).get("csv_path", "")), status=run.status.value,
        ))
    return attempts


TUNING_ASSET = "tuned_hyperparameters"


def parameters_fitted_before(instance: dg.DagsterInstance, run: dg.DagsterRun | None, generation: dict[str, Any],
                             spec: TableSpec | None = None) -> list[dict[str, Any]]:
    """The tuned parameter sets earlier attempts of `run`'s chain fitted with this same final-fit config (and
    plugin): choosing one of them again would repeat that attempt's fit exactly, a wasted re-run. [] for a run
    outside any chain or a first run."""
    if run is None:
        return []
    place = attempt_of(run)
    plugin = full_configs(run.run_config or {}, spec)[0]["plugin"]
    found = []
    for earlier in chain_runs(instance, place["chain"]):
        if earlier.run_id == run.run_id:
            continue
        tuning, earlier_generation = full_configs(earlier.run_config or {}, spec)
        if tuning["plugin"] != plugin or earlier_generation != generation:
            continue
        params = _materialization_metadata(instance, earlier.run_id).get(TUNING_ASSET, {}).get("best_params")
        if isinstance(params, dict):
            found.append({k: v for k, v in params.items() if k != "epsilon"})
    return found


def op_config(run_config: dict, op: str) -> dict:
    return dict((run_config.get("ops", {}).get(op) or {}).get("config") or {})


def full_configs(run_config: dict, spec: TableSpec | None = None) -> tuple[dict, dict]:
    """A run's tuned_hyperparameters and synthetic_table configs as the run used them: its run config over its
    table's tables.yaml settings (`spec`), every default filled in."""
    from synth_platform.assets import GenerationConfig, TuningConfig

    return (TuningConfig(**effective_settings(spec, "tuned_hyperparameters", op_config(run_config, "tuned_hyperparameters"))).model_dump(),
            GenerationConfig(**effective_settings(spec, "synthetic_table", op_config(run_config, "synthetic_table"))).model_dump())


@dataclass(frozen=True)
class StepPlan:
    """One optimizer step for a failed run: the plan, and (when there is a proposal) the run to request."""

    run_id: str  # the failed run
    chain: str
    attempt: int  # the failed run's attempt number
    plan: Plan
    run_config: dict = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    base_run: str = ""  # the run whose config the change starts from: the failed run, or its parent when it made things worse
    lessons: tuple[str, ...] = ()  # what earlier attempts of the chain taught, one sentence each
    avoided_rules: frozenset[str] = frozenset()  # rules not repeated: their attempt made their target worse or changed nothing
    ranking: dict = field(default_factory=dict)  # failure kind → [learning.RuleEvidence], best first (failing kinds only)
    learnt_steps: Any = None  # learning.LearntSteps: how long similar datasets needed to train (None: nothing similar)

    @property
    def diagnosis(self) -> Diagnosis:
        return self.plan.diagnosis

    def describe(self) -> str:
        lines = [f"run {self.run_id} (chain {self.chain}, attempt {self.attempt}): {self.diagnosis.kind}"]
        lines += [f"  cause: {f.cause}" for f in self.diagnosis.findings]
        lines += [f"  lesson: {lesson}" for lesson in self.lessons]
        if self.base_run and self.base_run != self.run_id:
            lines.append(f"  the change starts from run {self.base_run}'s config (the failed run made its target worse)")
        for failure, evidence in self.ranking.items():
            lines.append(f"  rules for {failure}, learnt order: " + "; ".join(e.describe() for e in evidence))
        if self.learnt_steps is not None:
            lines.append(f"  learnt training steps: {self.learnt_steps.describe()}")
        if self.plan.proposal:
            lines.append(f"  attempt {self.attempt + 1}, rule {self.plan.proposal.rule}: {self.plan.proposal.change}")
        else:
            lines.append(f"  no re-run: {self.plan.stop_reason}")
        lines += [f"  passed over {item}" for item in self.plan.considered]
        return "\n".join(lines)


def chain_reports(instance: dg.DagsterInstance, runs: list[dg.DagsterRun],
                  known: dict[str, dict[str, Any] | None] | None = None) -> dict[str, dict[str, Any] | None]:
    """Run id → the report each run of a chain materialized (None: none), each read once (`known`: already read)."""
    known = known or {}
    return {run.run_id: known[run.run_id] if run.run_id in known else report_of_run(instance, run.run_id) for run in runs}


def chain_outcomes(runs: list[dg.DagsterRun], reports: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """What each re-run of a chain did to its target metric (`learning.AttemptOutcome` by run id), from the
    reports (`chain_reports`) of the run and of its parent; re-runs without either report are left out."""
    from synth_platform.optimizer import learning

    outcomes = {}
    for run in runs:
        place = attempt_of(run)
        report, parent = reports.get(run.run_id), reports.get(place["parent_run"])
        rule = RULES.get(place["rule"])
        if place["attempt"] < 1 or report is None or parent is None or rule is None:
            continue
        try:
            outcomes[run.run_id] = learning.outcome_of(
                parent, report, chain=place["chain"], attempt=place["attempt"], run_id=run.run_id,
                parent_run_id=place["parent_run"], rule=rule.name, failure=rule.failure, change=place["change"],
                dataset_fingerprint=str((report.get("dataset") or {}).get("fingerprint", "")),
                meta_features=dict((report.get("dataset") or {}).get("meta_features") or {}),
            )
        except ValueError:  # a target metric missing from a report: nothing to learn from this pair
            continue
    return outcomes


def fitted_generator(report: dict | None) -> tuple[str | None, str]:
    """The generator a report's run fitted, comparable across reports: (plugin, its parameters as canonical JSON)."""
    generator = (report or {}).get("generator") or {}
    return generator.get("plugin"), json.dumps(generator.get("params") or {}, sort_keys=True, default=str)


def _same_fit(reports: dict[str, dict[str, Any] | None], outcome: Any) -> bool:
    """Whether a re-run fitted exactly the generator its parent fitted (same plugin and parameters): its change
    never reached the fit."""
    return fitted_generator(reports.get(outcome.run_id)) == fitted_generator(reports.get(outcome.parent_run_id))


def _better_overall(reports: dict[str, dict[str, Any] | None], outcome: Any) -> bool:
    """Whether a re-run's report scores better than its parent's by the best-attempt rule (`attempts.better_overall`)."""
    parent, child = reports.get(outcome.parent_run_id), reports.get(outcome.run_id)
    return parent is not None and child is not None and better_overall(parent, child)


def lesson_of(outcome: Any, *, same_fit: bool = False) -> str:
    """One sentence on what a re-run did to the metric its rule targets."""
    before, after = outcome.before.get(outcome.target_metric), outcome.after.get(outcome.target_metric)
    effect = ("fixed it" if outcome.fixed else "better, not fixed") if outcome.improved else "worse" if outcome.worse else "no effect"
    text = f"attempt {outcome.attempt} ({outcome.rule}): {outcome.target_metric} {before:.4f} -> {after:.4f}, {effect}"
    if same_fit:
        text += " (the change never reached the fit: same plugin and parameters as its parent)"
    return text


def learnt_ranking(recorded: list, report: dict, failures: tuple[str, ...]) -> dict[str, list]:
    """Failure kind → the rules answering it, ranked by `learning.rank_rules` on the `recorded` outcomes (the
    outcome memory's) for this report's dataset meta-features."""
    from synth_platform.optimizer import learning

    features = dict((report.get("dataset") or {}).get("meta_features") or {})
    return {
        failure: learning.rank_rules([r.name for r in RULES.values() if r.failure == failure], failure,
                                     [o for o in recorded if o.failure == failure], features)
        for failure in failures
    }


def plan_step(
    instance: dg.DagsterInstance, run_id: str, *, max_attempts: int, report_run_id: str | None = None, trigger: str = "sensor",
    memory_url: str | None = None, spec: TableSpec | None = None,
) -> StepPlan:
    """Diagnose a failed run's report and plan its next attempt. Raises ValueError (with what to do) when the run
    or its report cannot be found.

    The chain's history decides too: a rule whose attempt made its target metric worse or changed nothing is not
    repeated, its opposite goes first, and a run that made its target worse is reverted (the change starts from its
    parent's config). With `memory_url` (the tuning memory), rules are tried in their learnt order. `spec`: the
    tables.yaml entry of the run's table (its settings are part of every run's config)."""
    from synth_platform.optimizer import learning

    run = instance.get_run_by_id(run_id)
    if run is None:
        raise ValueError(f"Run {run_id} does not exist on this instance (DAGSTER_HOME); give the id of a failed run.")
    report = report_of_run(instance, report_run_id or run_id)
    if report is None:
        raise ValueError(
            f"Run {run_id} has no privacy_utility_report to diagnose (it failed before the report, or its files were "
            "removed); re-run it, or give a run whose checks failed."
        )
    place = attempt_of(run)
    runs = chain_runs(instance, place["chain"])
    reports = chain_reports(instance, runs, known={report_run_id or run_id: report})
    outcomes = chain_outcomes(runs, reports)
    # A re-run that moved its own target the wrong way but made the attempt as a whole better (fewer failed checks,
    # or the same ones nearer their thresholds: training longer cured KS and nudged the correlation up) taught
    # nothing against its rule: only the others count as lessons.
    better = {run_id for run_id, o in outcomes.items() if _better_overall(reports, o)}
    # Nor did a "train longer" that made things worse short of the plugin's default steps (`learning.early_training`).
    early = {run_id for run_id, o in outcomes.items() if learning.early_training(o)} - better
    avoid, worse = learning.chain_lessons([o for run_id, o in outcomes.items() if run_id not in better | early])

    def excuse(run_id: str, o: Any) -> str:
        if run_id in better and (o.worse or o.no_effect):
            return "; the attempt as a whole got better, so its rule stays"
        if run_id in early:
            return (f"; {o.plugin} trained {o.steps_after:,} steps, short of its default {DEFAULT_TRAINING_STEPS[o.plugin]:,}: "
                    "early training is not monotone, so training longer stays")
        return ""

    lessons = tuple(lesson_of(o, same_fit=_same_fit(reports, o)) + excuse(run_id, o) for run_id, o in outcomes.items())
    base, base_report = run, report
    own = outcomes.get(run_id)
    if own is not None and own.worse and run_id not in better | early:
        parent = instance.get_run_by_id(own.parent_run_id)
        parent_report = reports.get(own.parent_run_id) or report_of_run(instance, own.parent_run_id)
        if parent is not None and parent_report is not None and parent_report["verdicts"]:
            base, base_report = parent, parent_report
    tuning, generation = full_configs(base.run_config or {}, spec)
    tried = [full_configs(r.run_config or {}, spec) for r in runs if r.run_id != base.run_id]
    generator = base_report.get("generator") or {}
    recorded = learning.OutcomeMemory(memory_url).outcomes() if memory_url else []
    learnt_steps = learning.learnt_training_steps(
        recorded, str(generator.get("plugin") or tuning["plugin"]),
        dict((base_report.get("dataset") or {}).get("meta_features") or {}))
    situation = Situation(
        diagnosis=diagnose(base_report), tuning=tuning, generation=generation, training_rows=int(base_report["rows"]["training"]),
        generator_params=dict(generator.get("params") or {}), study_name=str(generator.get("study_name") or ""),
        trained_steps=int(generator.get("training_steps") or 0), learnt_steps=learnt_steps,
    )
    ranking = learnt_ranking(recorded, base_report, situation.diagnosis.failures)
    plan = plan_next_attempt(
        situation, attempt=place["attempt"], max_attempts=max_attempts, tried=tried, avoid_rules=avoid, worse_rules=worse,
        ranking={failure: [e.rule for e in evidence] for failure, evidence in ranking.items()},
    )
    known = dict(base_run=base.run_id, lessons=lessons, avoided_rules=frozenset(avoid), ranking=ranking, learnt_steps=learnt_steps)
    if plan.proposal is None:
        return StepPlan(run_id, place["chain"], place["attempt"], plan, **known)
    proposal = plan.proposal
    change = proposal.change
    if base.run_id != run_id:
        change = f"reverted to attempt {attempt_of(base)['attempt']}'s config ({lesson_of(own)}); then {change}"
    run_config = {"ops": {
        "tuned_hyperparameters": {"config": proposal.tuning},
        "synthetic_table": {"config": proposal.generation},
        "privacy_utility_report": {"config": op_config(base.run_config or {}, "privacy_utility_report")},
    }}
    tags = {
        CHAIN_TAG: place["chain"],
        ATTEMPT_TAG: str(place["attempt"] + 1),
        PARENT_RUN_TAG: base.run_id,
        FAILURE_TAG: plan.diagnosis.kind,
        RULE_TAG: proposal.rule,
        CHANGE_TAG: change[:4000],
        FAILED_CHECKS_TAG: ",".join(f.check for f in plan.diagnosis.findings),
        TRIGGER_TAG: trigger,
    }
    return StepPlan(run_id, place["chain"], place["attempt"], plan, run_config, tags, **known)
