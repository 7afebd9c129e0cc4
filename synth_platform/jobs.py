"""Jobs: each table's chain (whole, from tuning down, best attempt), and the "optimize this run" job."""

from collections.abc import Callable

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from pydantic import Field

from synth_platform import attempt_chain
from synth_platform.optimizer.learning import ranking_markdown
from synth_platform.optimizer.policy import policy_markdown
from synth_platform.resources import AutoOptimizerSettings, PlatformStorage

# Runs that train a generator carry this tag; the instance's run queue (dagster.yaml `concurrency`) limits them.
TRAINING_TAG = "synth_platform/training"


def synthesis_job_name(table: str) -> str:
    return f"{table}_synthesis_job"


def resynthesis_job_name(table: str) -> str:
    return f"{table}_resynthesis_job"


def best_attempt_job_name(table: str) -> str:
    return f"{table}_best_attempt_job"


def table_jobs(table: str, key: Callable[[str], dg.AssetKey]) -> tuple[UnresolvedAssetJobDefinition, ...]:
    """A table's three jobs over its chain (`key(asset name)` gives the chain's asset keys): the whole chain, the
    re-run from tuning down the auto-optimizer launches, and the choice of a chain's best attempt. Every run of
    them carries the table's tag; the training ones the training tag the run queue limits."""
    table_tag = {attempt_chain.TABLE_TAG: table}
    return (
        dg.define_asset_job(
            synthesis_job_name(table), selection=dg.AssetSelection.groups(table),
            description=f"Table {table}: the whole chain, from the source table to the privacy/utility report and its checks.",
            tags={TRAINING_TAG: "true", **table_tag},
        ),
        dg.define_asset_job(
            resynthesis_job_name(table), selection=dg.AssetSelection.assets(key("tuned_hyperparameters")).downstream(),
            description=f"Table {table}: re-tune, re-generate and re-evaluate on the last source sample and profile "
            "(used by the auto-optimizer).",
            tags={TRAINING_TAG: "true", **table_tag},
        ),
        dg.define_asset_job(
            best_attempt_job_name(table), selection=dg.AssetSelection.assets(key("best_synthetic_table")),
            description=f"Table {table}: choose the best attempt of an optimizer chain that ended without an all-green run.",
            tags=table_tag,
        ),
    )


class OptimizeRunConfig(dg.Config):
    run_id: str = Field(default="", description="The failed run to apply one optimizer step to.")
    max_attempts: int = Field(default=0, description="Attempt cap for this step; 0 means the auto_optimizer resource's.")


@dg.op(description="Diagnose a failed run and plan one optimizer step; the auto-optimizer sensor of the run's table launches the re-run.")
def plan_optimizer_step(
    context: dg.OpExecutionContext, config: OptimizeRunConfig, auto_optimizer: AutoOptimizerSettings, platform_storage: PlatformStorage
) -> dict:
    from synth_platform.definitions import CHAINS  # the tables the code location loaded (and its sensors plan with)
    from synth_platform.table_chains import chain_named

    if not config.run_id:
        raise ValueError("Give the failed run's id: ops.plan_optimizer_step.config.run_id.")
    cap = config.max_attempts or auto_optimizer.checked_max_attempts()
    run = context.instance.get_run_by_id(config.run_id)
    table = attempt_chain.table_of_run(run)
    chain = chain_named(CHAINS, table)
    step = attempt_chain.plan_step(context.instance, config.run_id, max_attempts=cap, trigger="optimize_run_job",
                                   memory_url=platform_storage.tuning_memory_database_url(),
                                   spec=chain.spec if chain else None)
    context.log.info(step.describe())
    if step.plan.proposal is None:
        raise ValueError(f"No optimizer step for run {config.run_id}: {step.plan.stop_reason}.")
    context.log.info(f"the auto-optimizer sensor of table {table} launches this re-run on its next tick (turn it on if it is off)")
    context.add_output_metadata({
        "table": table or "",
        "diagnosis": dg.MetadataValue.json(step.diagnosis.to_dict()),
        "rule": step.plan.proposal.rule,
        "change": step.plan.proposal.change,
        "next_attempt": step.attempt + 1,
        "run_config": dg.MetadataValue.json(step.run_config),
        "lessons_of_the_chain": dg.MetadataValue.md("\n".join(f"- {lesson}" for lesson in step.lessons) or "no earlier re-run"),
        "learnt_rule_ranking": dg.MetadataValue.md(ranking_markdown(step.ranking) if step.ranking else "no tuning memory"),
        "learnt_training_steps": step.learnt_steps.describe() if step.learnt_steps else "nothing similar remembered",
        "policy": dg.MetadataValue.md(policy_markdown()),
    })
    return {"run_config": step.run_config, "tags": step.tags}


@dg.job(description="Optimize this run: one optimizer step for a failed run (give its id); the sensor launches the re-run.")
def optimize_run_job():
    plan_optimizer_step()
