"""A bad setting anywhere in a run is refused by the first step, in seconds, with every problem listed; nothing is
tuned or trained. Each late refusal seen on real runs (minutes of tuning, then a raw traceback) has a case here."""

from __future__ import annotations

import copy
import os

import dagster as dg
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from synth_platform import preflight
from synth_platform.assets import ALL_ASSETS, GenerationConfig, ProfileConfig, ReportConfig, SourceSampleConfig, TuningConfig
from synth_platform.io_managers import SealedFilesystemIOManager
from synth_platform.resources import PlatformStorage, SourceDatabase
from synth_platform.sampling.source import SampleRequest, SourceError
from synth_platform.tuning.study import TuningBudget
from synth_platform_tests.conftest import TINY_RUN_CONFIG

DEFAULTS = {
    "source_sample": SourceSampleConfig().model_dump(),
    "profiled_dataset": ProfileConfig().model_dump(),
    "tuned_hyperparameters": TuningConfig().model_dump(),
    "synthetic_table": GenerationConfig().model_dump(),
    "privacy_utility_report": ReportConfig().model_dump(),
}


def _with(**changes) -> dict:
    configs = copy.deepcopy(DEFAULTS)
    for dotted, value in changes.items():
        asset, key = dotted.split("__")
        configs[asset][key] = value
    return configs


def test_the_defaults_pass():
    assert preflight.config_problems(DEFAULTS) == []
    assert preflight.sample_problems(DEFAULTS, ["age", "income"], 1000, 250) == []


@pytest.mark.parametrize("setting, value", [
    ("source_sample__seed", -1), ("source_sample__seed", 2**32), ("tuned_hyperparameters__seed", 2**31),
    ("privacy_utility_report__seed", -5), ("privacy_utility_report__privacy_rows", 0),
    ("source_sample__holdout_fraction", 0.99), ("source_sample__holdout_fraction", 0.0),
    ("synthetic_table__training_steps", -100), ("synthetic_table__num_rows", -1),
    ("tuned_hyperparameters__n_trials", -1), ("tuned_hyperparameters__plugin", "gpt"),
    ("tuned_hyperparameters__validation_fraction", 1.0), ("privacy_utility_report__mia_auc_max", 0.3),
    ("privacy_utility_report__ks_mean_max", float("nan")), ("profiled_dataset__rare_value_k", 0),
    ("profiled_dataset__column_types", {"age": "banana"}), ("synthetic_table__sampling_steps", 0),
    ("source_sample__privacy_budget_epsilon", -1.0), ("source_sample__privacy_budget_epsilon", float("inf")),
])
def test_each_late_refusal_is_now_a_named_problem(setting, value):
    (problem,) = preflight.config_problems(_with(**{setting: value}))
    asset, key = setting.split("__")
    assert problem.setting.startswith(f"ops.{asset}.config.{key}")
    shown = next(iter(value.values())) if isinstance(value, dict) else value
    assert "must" in problem.message and (repr(shown) in problem.message or f"{shown:,}" in problem.message)


def test_every_problem_is_listed_at_once_with_the_columns_checked_against_the_sample():
    configs = _with(
        source_sample__seed=2**32, synthetic_table__training_steps=-100, privacy_utility_report__privacy_rows=0,
        privacy_utility_report__target_column="Income", profiled_dataset__column_types={"salary": "categorical"},
    )
    problems = preflight.config_problems(configs) + preflight.sample_problems(configs, ["age", "income"], 60, 15)
    settings_named = [p.setting for p in problems]
    assert settings_named == [
        "ops.source_sample.config.seed", "ops.synthetic_table.config.training_steps",
        "ops.privacy_utility_report.config.privacy_rows", "ops.privacy_utility_report.config.target_column",
        "ops.profiled_dataset.config.column_types.salary", "ops.source_sample.config.max_rows",
    ]
    message = str(preflight.PreflightError(problems))
    assert message.startswith("The run was refused before tuning or training: 6 problems")
    assert "Did you mean 'income'?" in message and "at least 80 and 20" in message


@settings(max_examples=300, deadline=None, derandomize=not os.environ.get("SYNTH_HYPOTHESIS_EXPLORE"))
@given(
    n_trials=st.integers(-3, 30), trial_steps=st.integers(-10, 500), tuning_rows=st.integers(-5, 5000),
    validation_fraction=st.one_of(st.floats(-0.5, 1.5), st.just(float("nan"))),
    timeout_s=st.one_of(st.floats(-10, 1e4), st.just(float("nan"))), holdout=st.one_of(st.floats(-0.2, 1.2), st.just(float("nan"))), seed=st.integers(-2, 2**33), max_rows=st.integers(-5, 10**6),
)
def test_settings_that_pass_preflight_pass_every_later_validator(n_trials, trial_steps, tuning_rows, validation_fraction, timeout_s, holdout, seed, max_rows):
    """The preflight is never looser than the checks that run later (so nothing it lets through fails after
    minutes): whatever it accepts, TuningBudget and SampleRequest accept too."""
    configs = _with(
        tuned_hyperparameters__n_trials=n_trials, tuned_hyperparameters__trial_steps=trial_steps,
        tuned_hyperparameters__tuning_rows=tuning_rows, tuned_hyperparameters__validation_fraction=validation_fraction,
        tuned_hyperparameters__timeout_s=timeout_s, source_sample__holdout_fraction=holdout, source_sample__seed=seed,
        source_sample__max_rows=max_rows,
    )
    problems = preflight.config_problems(configs)
    tuning = configs["tuned_hyperparameters"]
    if not [p for p in problems if "tuned_hyperparameters" in p.setting]:
        TuningBudget(tuning["n_trials"], tuning["trial_steps"], tuning["tuning_rows"], tuning["validation_fraction"],
                     tuning["timeout_s"], tuning["trial_timeout_s"]).validate()
    if not [p for p in problems if "source_sample" in p.setting]:
        request = SourceSampleConfig(**configs["source_sample"]).to_request()
        if request.max_rows is None or request.max_rows >= 20:
            try:
                request.validate()
            except SourceError as exc:  # only the table name (checked against the schema) may be refused
                pytest.fail(f"preflight passed what the request refuses: {exc}")


@pytest.fixture(scope="module")
def small_source(tmp_path_factory, adult):
    path = tmp_path_factory.mktemp("preflight") / "source.sqlite"
    adult.sample(1000, random_state=0).to_sql("people", sa.create_engine(f"sqlite:///{path}"), index=False)
    return f"sqlite:///{path}"


def test_a_run_with_bad_settings_stops_in_the_first_step_and_names_them_all(small_source, tmp_path):
    config = copy.deepcopy(TINY_RUN_CONFIG)
    config["ops"]["source_sample"]["config"]["table"] = "people"
    config["ops"]["synthetic_table"]["config"]["training_steps"] = -100
    config["ops"]["privacy_utility_report"]["config"].update(privacy_rows=0, target_column="salary")
    config["ops"]["tuned_hyperparameters"]["config"]["seed"] = -1
    resources = {"source_database": SourceDatabase(url=small_source), "platform_storage": PlatformStorage(root=str(tmp_path)),
                 "io_manager": SealedFilesystemIOManager(base_dir=str(tmp_path / "storage"))}
    with dg.instance_for_test() as instance:
        result = dg.materialize(ALL_ASSETS, instance=instance, run_config=config, resources=resources, raise_on_error=False)
        assert not result.success
        (failure,) = result.get_step_failure_events()
        assert failure.step_key == "source_sample"
        message = failure.event_specific_data.error.message
        for setting in ("ops.synthetic_table.config.training_steps", "ops.privacy_utility_report.config.privacy_rows",
                        "ops.privacy_utility_report.config.target_column", "ops.tuned_hyperparameters.config.seed"):
            assert setting in message
        started = {e.step_key for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"}
        assert started == {"source_sample"}  # nothing was tuned or trained


def test_a_too_small_table_is_refused_before_tuning(tmp_path, adult):
    path = tmp_path / "tiny.sqlite"
    adult.head(60).to_sql("people", sa.create_engine(f"sqlite:///{path}"), index=False)
    config = {"ops": {"source_sample": {"config": {"table": "people"}}}}
    resources = {"source_database": SourceDatabase(url=f"sqlite:///{path}"), "platform_storage": PlatformStorage(root=str(tmp_path)),
                 "io_manager": SealedFilesystemIOManager(base_dir=str(tmp_path / "storage"))}
    source_only = [a for a in ALL_ASSETS if a.key == dg.AssetKey("source_sample")]
    result = dg.materialize(source_only, run_config=config, resources=resources, raise_on_error=False)
    message = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "48 training and 12 holdout rows" in message and "at least 80 and 20" in message


def test_a_target_the_report_cannot_compare_is_refused_after_profiling_before_tuning(small_source, tmp_path):
    """A target that exists but is an identifier (or dropped) was found by the report, after tuning and training."""
    config = copy.deepcopy(TINY_RUN_CONFIG)
    config["ops"]["source_sample"]["config"]["table"] = "people"
    config["ops"]["profiled_dataset"] = {"config": {"column_treatments": {"education": "drop"}}}
    config["ops"]["privacy_utility_report"]["config"]["target_column"] = "education"
    resources = {"source_database": SourceDatabase(url=small_source), "platform_storage": PlatformStorage(root=str(tmp_path)),
                 "io_manager": SealedFilesystemIOManager(base_dir=str(tmp_path / "storage"))}
    with dg.instance_for_test() as instance:
        result = dg.materialize(ALL_ASSETS, instance=instance, run_config=config, resources=resources, raise_on_error=False)
        (failure,) = result.get_step_failure_events()
        assert failure.step_key == "profiled_dataset"
        assert "ops.privacy_utility_report.config.target_column: The target column 'education' is not compared by the report" in failure.event_specific_data.error.message
