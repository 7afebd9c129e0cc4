"""Command line for the auto-optimizer, on the instance in $DAGSTER_HOME (as `dagster asset materialize` uses).

    python -m synth_platform.cli optimize RUN_ID [--dry-run] [--max-attempts N]   # one optimizer step, run in-process
    python -m synth_platform.cli history RUN_ID                                   # the run's chain and its best attempt
    python -m synth_platform.cli policy [--run RUN_ID]                            # the policy and its learnt ranking

`make optimize RUN=<id>` is the first. The re-run executes in this process against the same instance, so the UI
shows it (tags: attempt, parent run, chain, failure, change) like a run the sensor launched.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import dagster as dg

from synth_platform import attempt_chain
from synth_platform.optimizer.attempts import SCORE_RULE, choose
from synth_platform.optimizer.diagnosis import FAILURE_PRIORITY
from synth_platform.optimizer.policy import policy_markdown


def _instance() -> dg.DagsterInstance:
    try:
        return dg.DagsterInstance.get()
    except Exception as exc:  # noqa: BLE001 - Dagster raises several types for a missing or broken home
        raise SystemExit(f"No Dagster instance: set DAGSTER_HOME to the directory the runs were made in ({exc}).") from None


def memory_url(instance: dg.DagsterInstance) -> str:
    """The tuning memory the runs of this instance use (SYNTH_TUNING_MEMORY_URL, or the SQLite file under its home)."""
    from synth_platform.resources import PlatformStorage

    storage = PlatformStorage(root=str(Path(instance.root_directory) / "synth_platform"),
                              tuning_memory_url=os.environ.get("SYNTH_TUNING_MEMORY_URL", ""))
    return storage.tuning_memory_database_url()


def policy(run_id: str | None) -> int:
    """The hand-written policy (the prior), then each failure kind's rules ranked by what the tuning memory recorded,
    for the dataset of `run_id` (similarity-weighted) or, without one, every recorded outcome weighted alike."""
    from synth_platform.optimizer import learning

    print(policy_markdown())
    with _instance() as instance:
        report = {}
        if run_id:
            report = attempt_chain.report_of_run(instance, run_id) or {}
            if not report:
                print(f"error: run {run_id} has no privacy_utility_report in this DAGSTER_HOME", file=sys.stderr)
                return 2
        ranking = attempt_chain.learnt_ranking(learning.OutcomeMemory(memory_url(instance)).outcomes(), report, FAILURE_PRIORITY)
    recorded = sum(e.n_outcomes for evidence in ranking.values() for e in evidence)
    print(f"\nLearnt ranking ({recorded} recorded outcome(s); "
          + (f"weighted by similarity to run {run_id}'s dataset" if run_id else "every dataset weighted alike") + "):\n")
    print(learning.ranking_markdown(ranking))
    return 0


def optimize(run_id: str, *, dry_run: bool, max_attempts: int | None) -> int:
    from synth_platform.definitions import CHAINS, defs
    from synth_platform.jobs import resynthesis_job_name
    from synth_platform.resources import auto_optimizer_from_env
    from synth_platform.table_chains import chain_named

    cap = max_attempts if max_attempts is not None else auto_optimizer_from_env().checked_max_attempts()
    with _instance() as instance:
        run = instance.get_run_by_id(run_id)
        table = attempt_chain.table_of_run(run)
        chain = chain_named(CHAINS, table)
        if run is not None and chain is None:
            found = table or "none found: no table tag, and its assets are of several tables or none"
            print(f"error: run {run_id} is not a run of one table's chain in tables.yaml (table: {found}); the tables "
                  f"are {[c.spec.name for c in CHAINS]}. Run one table's job (<table>_synthesis_job) or materialize one "
                  "table's assets.", file=sys.stderr)
            return 2
        try:
            step = attempt_chain.plan_step(instance, run_id, max_attempts=cap, trigger="cli", memory_url=memory_url(instance),
                                           spec=chain.spec if chain else None)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(step.describe())
        if step.plan.proposal is None:
            return 1
        if dry_run:
            print("dry run: nothing launched")
            return 0
        job = defs.resolve_job_def(resynthesis_job_name(table))
        result = job.execute_in_process(run_config=step.run_config, instance=instance, tags=step.tags, raise_on_error=False)
        report = attempt_chain.report_of_run(instance, result.run_id)
        green = bool(report and report.get("all_green"))
        print(f"attempt {step.attempt + 1}: run {result.run_id} {'all green' if green else 'not green'}")
        if not green:
            print(f"next step: python -m synth_platform.cli optimize {result.run_id}")
        return 0 if green else 1


def history(run_id: str) -> int:
    with _instance() as instance:
        run = instance.get_run_by_id(run_id)
        if run is None:
            print(f"error: run {run_id} does not exist in this DAGSTER_HOME", file=sys.stderr)
            return 2
        chain = attempt_chain.attempt_of(run)["chain"]
        attempts = attempt_chain.chain_attempts(instance, chain)
        try:
            choice = choose(attempts)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(choice.history)
        print(f"\nbest: attempt {choice.best.attempt} (run {choice.best.run_id}), {'all green' if choice.all_green else 'NOT green'}")
        print(f"rule: {SCORE_RULE}")
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth_platform.cli", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    step = commands.add_parser("optimize", help="diagnose a failed run and run one adjusted re-run")
    step.add_argument("run_id")
    step.add_argument("--dry-run", action="store_true", help="print the diagnosis and the change; launch nothing")
    step.add_argument("--max-attempts", type=int, default=None, help="attempt cap (default: SYNTH_OPTIMIZER_MAX_ATTEMPTS or 3)")
    chain = commands.add_parser("history", help="the attempts of a run's chain and the best one")
    chain.add_argument("run_id")
    rules = commands.add_parser("policy", help="print the adjustment policy table and the ranking learnt from recorded attempts")
    rules.add_argument("--run", default=None, help="rank for this run's dataset (similar datasets weigh more)")
    args = parser.parse_args(argv)
    if args.command == "optimize":
        return optimize(args.run_id, dry_run=args.dry_run, max_attempts=args.max_attempts)
    if args.command == "history":
        return history(args.run_id)
    return policy(args.run)


if __name__ == "__main__":
    raise SystemExit(main())
