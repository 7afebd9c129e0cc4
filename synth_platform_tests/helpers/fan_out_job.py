"""The adult chain up to tuned_hyperparameters as a reconstructable job on the multiprocess executor, so every
step (open, each share of the trials, choice) runs in a process of its own, as on a deployment's executor."""

import dagster as dg

from synth_platform.definitions import CHAINS, defs

FAN_OUT_JOB = "adult_tuning_fan_out"


def tuning_job() -> dg.JobDefinition:
    adult = next(chain for chain in CHAINS if chain.spec.name == "adult")
    job = dg.define_asset_job(FAN_OUT_JOB, selection=dg.AssetSelection.assets(adult.key("tuned_hyperparameters")).upstream(),
                              executor_def=dg.multiprocess_executor)
    return dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def(FAN_OUT_JOB)


def step_times(instance: dg.DagsterInstance, run_id: str) -> dict[str, dict[str, float]]:
    """{step key: {"STEP_START": t, "STEP_SUCCESS": t}} of a run, from its event log."""
    times: dict[str, dict[str, float]] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.event_type_value in ("STEP_START", "STEP_SUCCESS"):
            times.setdefault(event.step_key, {})[event.event_type_value] = record.timestamp
    return times
