"""Jobs over the synthesis group, and the "optimize this run" job."""

import dagster as dg
from pydantic import Field

from synth_platform import attempt_chain
from synth_platform.assets import GROUP, best_synthetic_table, tuned_hyperparameters
from synth_platform.optimizer.learning import ranking_markdown
from synth_platform.optimizer.policy import policy_markdown
from synth_platform.resources import AutoOptimizerSettings, PlatformStorage

# Runs that train a generator carry this tag; the instance's run queue (dagster.yaml `concurrency`) limits them.
TRAINING_TAG = "synth_platform/training"

synthesis_job = dg.define_asset_job(
    "synthesis_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="The whole chain, from the source table to the privacy/utility report and its checks.",
    tags={TRAINING_TAG: "true"},
)

resynthesis_job = dg.define_asset_job(
    "resynthesis_job",
    selection=dg.AssetSelection.assets(tuned_hyperparameters).downstream(),
    description="Re-tune, re-generate and re-evaluate on the last source sample and profile (used by the auto-optimizer).",
    tags={TRAINING_TAG: "true"},
)

best_attempt_job = dg.define_asset_job(
    "best_attempt_job",
    selection=dg.AssetSelection.assets(best_synthetic_table),
    description="Choose the best attempt of an optimizer chain that ended without an all-green run.",
)


class OptimizeRunConfig(dg.Config):
    run_id: str = Field(default="", description="The failed run to apply one optimizer step to.")
    max_attempts: int = Field(default=0, description="Attempt cap for this step; 0 means the auto_optimizer resource's.")


@dg.op(description="Diagnose a failed run and plan one optimizer step; the auto_optimizer_sensor launches the re-run.")
def plan_optimizer_step(
    context: dg.OpExecutionContext, config: OptimizeRunConfig, auto_optimizer: AutoOptimizerSettings, platform_storage: PlatformStorage
) -> dict:
    if not config.run_id:
        raise ValueError("Give the failed run's id: ops.plan_optimizer_step.config.run_id.")
    cap = config.max_attempts or auto_optimizer.checked_max_attempts()
    step = attempt_chain.plan_step(context.instance, config.run_id, max_attempts=cap, trigger="optimize_run_job",
                                   memory_url=platform_storage.tuning_memory_database_url())
    context.log.info(step.describe())
    if step.plan.proposal is None:
        raise ValueError(f"No optimizer step for run {config.run_id}: {step.plan.stop_reason}.")
    context.log.info("the auto_optimizer_sensor launches this re-run on its next tick (turn the sensor on if it is off)")
    context.add_output_metadata({
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
