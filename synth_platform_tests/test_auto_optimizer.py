"""The auto-optimizer end to end with real training on a real Dagster instance: the sensor's follow-up runs are
executed here as the daemon would launch them, with default thresholds (none loosened)."""

import dagster as dg
import pytest

from synth_platform import attempt_chain, cli
from synth_platform.attempt_chain import ATTEMPT_TAG, CHAIN_TAG, FAILURE_TAG, PARENT_RUN_TAG, RULE_TAG, TRIGGER_TAG
from synth_platform.definitions import defs
from synth_platform.evaluation.report import copies_of_training
from synth_platform.optimizer.attempts import select_best_attempt
from synth_platform.optimizer.policy import DEFAULT_MAX_ATTEMPTS, POLICY
from synth_platform_tests.conftest import TINY_RUN_CONFIG, tiny_config
from synth_platform_tests.helpers.sensor_ticks import optimizer_tick

UTILITY_RULES = {rule.name for rule in POLICY if rule.failure in ("utility", "correlation")}


def _config(**ops) -> dict:
    return tiny_config(50, **ops)


def _tick(instance, cursor=None):
    return optimizer_tick(instance, cursor)


def _execute(instance, request) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(request.job_name)
    return job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags, raise_on_error=False)


def follow_chain(instance, cursor=None, limit=10):
    """Tick, execute what the sensor requests, repeat until it requests nothing. Returns the executed runs."""
    executed = []
    for _ in range(limit):
        result = _tick(instance, cursor)
        cursor = result.cursor
        if not result.run_requests:
            return executed, cursor
        for request in result.run_requests:
            executed.append((request, _execute(instance, request)))
    raise AssertionError(f"the sensor still requested runs after {limit} ticks: it loops")


def test_an_under_trained_run_is_optimized_until_green_or_the_cap_and_the_best_attempt_is_chosen():
    with dg.instance_for_test() as instance:
        first = defs.resolve_job_def("adult_synthesis_job").execute_in_process(
            run_config=_config(synthetic_table={"training_steps": 10}), instance=instance, raise_on_error=False)
        assert not first.success  # 10 steps of ddpm: the marginals are nowhere near
        failed = {e.check_name for e in first.get_asset_check_evaluations() if not e.passed}
        assert failed & {"ks_mean_within_threshold", "correlation_delta_within_threshold"}

        executed, _ = follow_chain(instance)
        attempts = [(request, run) for request, run in executed if request.job_name == "adult_resynthesis_job"]
        assert 1 <= len(attempts) <= DEFAULT_MAX_ATTEMPTS
        parent = first.run_id
        for number, (request, run) in enumerate(attempts, 1):
            assert request.tags[ATTEMPT_TAG] == str(number) and request.tags[PARENT_RUN_TAG] == parent
            assert request.tags[CHAIN_TAG] == first.run_id and request.tags[TRIGGER_TAG] == "sensor"
            parent = run.run_id
        assert attempts[0][0].tags[RULE_TAG] in UTILITY_RULES
        assert "utility" in attempts[0][0].tags[FAILURE_TAG] or "correlation" in attempts[0][0].tags[FAILURE_TAG]
        first_steps = attempts[0][0].run_config["ops"]["synthetic_table"]["config"]["training_steps"]
        assert first_steps > 10 or attempts[0][0].tags[RULE_TAG] != "train_longer"

        chain = attempt_chain.chain_attempts(instance, first.run_id)
        assert [a.attempt for a in chain] == list(range(len(attempts) + 1))
        expected, green = select_best_attempt(chain)
        best = instance.get_latest_materialization_event(dg.AssetKey(["adult", "best_synthetic_table"]))
        assert best is not None
        metadata = best.asset_materialization.metadata
        assert metadata["chosen_run"].value == expected.run_id and metadata["all_green"].value is green
        if green:  # the green attempt chose itself, in its own run
            assert attempts[-1][1].success and best.run_id == attempts[-1][1].run_id
        else:  # the chain stopped at the cap; a best-attempt run chose among all attempts
            assert executed[-1][0].job_name == "adult_best_attempt_job" and len(attempts) == DEFAULT_MAX_ATTEMPTS
        history = [record.data for record in metadata["history"].records]
        assert [row["verdict"].startswith("chosen, ") for row in history].count(True) == 1
        assert [row["attempt"] for row in history] == [a.attempt for a in chain]
        print(*history, sep="\n")  # shown with -s: how the chain went
        # A not-green best is visible as such: a WARN check, and what still fails by how much.
        best_run = next(run for _, run in [(None, first), *executed] if run.run_id == best.run_id)
        (verdict,) = [e for e in best_run.get_asset_check_evaluations() if e.check_name == "chain_ended_green"]
        assert verdict.passed is green and verdict.severity == dg.AssetCheckSeverity.WARN
        if not green:
            assert "chain ended without green" in verdict.description and " > " in verdict.description
        # every re-run recorded what its change did to its target metric, and none repeated a config or a fit
        from synth_platform.optimizer.learning import OutcomeMemory

        recorded = OutcomeMemory(cli.memory_url(instance)).chain_outcomes(first.run_id)
        assert [o.attempt for o in recorded] == [a.attempt for a in chain if a.attempt > 0 and a.report]
        fits = [attempt_chain.fitted_generator(a.report) for a in chain if a.report]
        assert len(fits) == len(set(fits))


@pytest.fixture(scope="module")
def leaking_run():
    """synthcity's dummy_sampler resamples real training rows: a generator that memorises everything."""
    with dg.instance_for_test() as instance:
        run = defs.resolve_job_def("adult_synthesis_job").execute_in_process(
            run_config=_config(tuned_hyperparameters={"plugin": "dummy_sampler", "n_trials": 1}),
            instance=instance, raise_on_error=False)
        yield instance, run


def test_a_memorising_run_fails_privacy_and_moves_to_a_private_configuration(leaking_run):
    instance, run = leaking_run
    failed = {e.check_name for e in run.get_asset_check_evaluations() if not e.passed}
    assert {"membership_inference_auc_within_threshold", "duplicate_rate_within_threshold"} <= failed
    result = _tick(instance, None)
    (request,) = result.run_requests
    assert request.tags[RULE_TAG] == "dp_for_memorisation"
    assert request.tags[FAILURE_TAG].startswith("several (privacy+duplicates")
    tuning = request.run_config["ops"]["tuned_hyperparameters"]["config"]
    assert tuning["plugin"] == "dpgan" and tuning["epsilon"] == 1.0  # the policy's epsilon, unchanged

    private = _execute(instance, request)
    report = attempt_chain.report_of_run(instance, private.run_id)
    assert report["generator"]["privacy_budget"]["epsilon"] == 1.0
    assert report["verdicts"]["membership_inference_auc_within_threshold"]["passed"]
    assert report["verdicts"]["duplicate_rate_within_threshold"]["passed"]
    following = _tick(instance, result.cursor)
    for later in following.run_requests:  # whatever comes next keeps differential privacy
        if later.job_name == "adult_resynthesis_job":
            assert later.run_config["ops"]["tuned_hyperparameters"]["config"]["plugin"] == "dpgan"


def test_optimize_this_run_as_a_job_and_from_the_cli(leaking_run, monkeypatch, capsys):
    instance, run = leaking_run
    planned = defs.resolve_job_def("optimize_run_job").execute_in_process(
        run_config={"ops": {"plan_optimizer_step": {"config": {"run_id": run.run_id}}}}, instance=instance)
    output = planned.output_for_node("plan_optimizer_step")
    # dp_for_memorisation, or when the test before has run its dpgan attempt, the next untried privacy rule
    assert output["tags"][RULE_TAG] in {"dp_for_memorisation", "retune_with_tighter_privacy"}
    assert output["tags"][TRIGGER_TAG] == "optimize_run_job"
    tick = _tick(instance, None)  # the sensor launches the planned step (beside its own requests)
    manual = [r for r in tick.run_requests if r.tags.get(TRIGGER_TAG) == "optimize_run_job"]
    assert len(manual) == 1 and f"manual-{planned.run_id}" in manual[0].run_key
    assert manual[0].run_config == output["run_config"]
    assert _tick(instance, tick.cursor).run_requests == []  # handled once

    missing = defs.resolve_job_def("optimize_run_job").execute_in_process(
        run_config={"ops": {"plan_optimizer_step": {"config": {"run_id": "no-such-run"}}}}, instance=instance, raise_on_error=False)
    assert not missing.success

    monkeypatch.setenv("DAGSTER_HOME", instance.root_directory)
    assert cli.main(["optimize", run.run_id, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "dp_for_memorisation" in printed and "Membership-inference AUC" in printed and "dry run" in printed
    assert cli.main(["optimize", "no-such-run"]) == 2
    assert cli.main(["history", run.run_id]) == 0
    assert "| chosen, " in capsys.readouterr().out  # the attempt the chain keeps
    assert cli.main(["policy"]) == 0 and "`dp_for_memorisation`" in capsys.readouterr().out


def test_the_deduplication_step_removes_training_copies_and_keeps_the_row_count():
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("adult_synthesis_job").execute_in_process(
            run_config=_config(synthetic_table={"drop_training_copies": True}), instance=instance, raise_on_error=False)
        table = result.output_for_node("synthetic_table")
        profiled = result.output_for_node("profiled_dataset")
    assert table.training_copies["drop_training_copies"] is True
    assert {"training_copies_removed", "regeneration_rounds", "rows_short"} <= set(table.training_copies)
    assert len(table.frame) == TINY_RUN_CONFIG["ops"]["synthetic_table"]["config"]["num_rows"] - table.training_copies["rows_short"]
    assert not copies_of_training(table.frame, profiled.training, profiled.profile).any()


def test_an_attempt_that_fails_before_its_report_ends_the_chain_with_a_best_attempt_choice():
    with dg.instance_for_test() as instance:
        tags = {CHAIN_TAG: "first-run-id", ATTEMPT_TAG: "1", PARENT_RUN_TAG: "first-run-id"}
        errored = defs.resolve_job_def("adult_resynthesis_job").execute_in_process(
            run_config={"ops": {"tuned_hyperparameters": {"config": {"plugin": "no_such_plugin"}}}},
            instance=instance, tags=tags, raise_on_error=False)
        assert not errored.success
        tick = _tick(instance, None)
        (request,) = tick.run_requests
        assert request.job_name == "adult_best_attempt_job" and request.run_config["ops"]["best_synthetic_table"]["config"]["chain"] == "first-run-id"
        assert "failed before its report" in request.tags["synth_platform/chain_stopped"]
        assert _tick(instance, tick.cursor).run_requests == []
