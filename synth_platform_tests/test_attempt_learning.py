"""What an optimizer chain learns from its own attempts, on a real Dagster instance with real (tiny) training:
a re-run never fits the parameters an earlier attempt fitted with the same config, a re-run that made its target
metric worse is reverted and its rule not repeated, and every re-run's effect is recorded in the tuning memory."""

import dagster as dg

from synth_platform import attempt_chain, cli
from synth_platform.attempt_chain import ATTEMPT_TAG, CHAIN_TAG, CHANGE_TAG, PARENT_RUN_TAG, RULE_TAG
from synth_platform.definitions import defs
from synth_platform.optimizer.learning import OutcomeMemory
from synth_platform_tests.conftest import tiny_config


def _config(**ops) -> dict:
    return tiny_config(30, **ops)


def _tuning_metadata(instance, run_id: str) -> dict:
    event = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    for record in event:
        materialization = record.event_log_entry.asset_materialization
        if materialization.asset_key == dg.AssetKey(["adult", "tuned_hyperparameters"]):
            return {k: v.value for k, v in materialization.metadata.items()}
    raise AssertionError(f"run {run_id} materialized no tuned_hyperparameters")


def _re_run(instance, parent: str, chain: str, attempt: int, rule: str, **ops) -> dg.ExecuteInProcessResult:
    config = _config(**ops)
    config["ops"].pop("source_sample")
    config["ops"].pop("profiled_dataset", None)
    tags = {CHAIN_TAG: chain, ATTEMPT_TAG: str(attempt), PARENT_RUN_TAG: parent, RULE_TAG: rule, CHANGE_TAG: "set by the test"}
    return defs.resolve_job_def("adult_resynthesis_job").execute_in_process(run_config=config, instance=instance, tags=tags, raise_on_error=False)


def test_a_chain_never_fits_the_same_parameters_twice_and_reverts_a_change_that_made_things_worse():
    with dg.instance_for_test() as instance:
        first = defs.resolve_job_def("adult_synthesis_job").execute_in_process(run_config=_config(), instance=instance, raise_on_error=False)
        chosen = _tuning_metadata(instance, first.run_id)["best_params"]

        # A re-run that changes only the tuning (no new trials, the same final fit): the study's best is what the
        # first run fitted; choosing it again would fit the same generator and leave every metric exactly unchanged
        # (seen: 50 -> 400 trial steps, KS 0.402 -> 0.402). It takes the best parameters not fitted before.
        same_fit = _re_run(instance, first.run_id, first.run_id, 1, "retune_for_correlation", tuned_hyperparameters={"n_trials": 0})
        assert same_fit.success or same_fit.get_asset_check_evaluations()  # it ran to its report
        metadata = _tuning_metadata(instance, same_fit.run_id)
        assert metadata["avoided_parameter_sets"] == 1
        assert metadata["best_params"] != chosen
        reports = {run: attempt_chain.report_of_run(instance, run) for run in (first.run_id, same_fit.run_id)}
        assert attempt_chain.fitted_generator(reports[first.run_id]) != attempt_chain.fitted_generator(reports[same_fit.run_id])

        # A re-run whose change made its target metric worse: dummy_sampler resamples training rows, so the
        # membership AUC that "fewer_steps_for_privacy" targets rises. A new plugin's study has no trial yet: the
        # tuning step falls back to the defaults instead of failing the run.
        worse = _re_run(instance, first.run_id, first.run_id, 2, "fewer_steps_for_privacy",
                        tuned_hyperparameters={"plugin": "dummy_sampler", "n_trials": 0})
        assert "defaults" in _tuning_metadata(instance, worse.run_id)["fallback"]
        recorded = {o.run_id: o for o in OutcomeMemory(cli.memory_url(instance)).chain_outcomes(first.run_id)}
        assert set(recorded) == {same_fit.run_id, worse.run_id}
        assert recorded[worse.run_id].worse and recorded[worse.run_id].target_metric == "membership_inference_auc"

        step = attempt_chain.plan_step(instance, worse.run_id, max_attempts=5, memory_url=cli.memory_url(instance))
        assert step.base_run == first.run_id  # reverted: the next change starts from the parent's config
        assert "fewer_steps_for_privacy" in step.avoided_rules
        assert any("fewer_steps_for_privacy" in lesson and "worse" in lesson for lesson in step.lessons)
        if step.plan.proposal is not None:
            assert step.plan.proposal.rule != "fewer_steps_for_privacy"
            assert step.tags[PARENT_RUN_TAG] == first.run_id
            assert step.tags[CHANGE_TAG].startswith("reverted to attempt 0's config (attempt 2 (fewer_steps_for_privacy): ")
            assert step.plan.proposal.tuning["plugin"] != "dummy_sampler"
        assert step.ranking  # the learnt order, with the evidence the memory holds
