"""benchmarks/fidelity.py: its account of how a plain plugin's fit ended (the footnotes of its table), on records of
the platform's own FitTimeLimit driven by a hand-set clock; --ours-set settings, and what of them it shows."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from synth_platform.generation.time_budget import FitTimeLimit

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "fidelity.py"


@pytest.fixture(scope="module")
def fidelity():
    spec = importlib.util.spec_from_file_location("fidelity_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    path = list(sys.path)  # the script puts the repository and benchmarks/ first on the import path
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)
    sys.path[:] = path


def fit_record(*, n_iter: int, loop_epochs: int, epoch_s: float, limit_s: float) -> dict:
    """A training loop of at most `loop_epochs` epochs (fewer than n_iter: the plugin's own early stop) under a
    FitTimeLimit of `limit_s` seconds whose every epoch takes `epoch_s`."""
    now = [0.0]
    limit = FitTimeLimit(limit_s, max_epochs=n_iter, clock=lambda: now[0], started=0.0)
    for epoch in range(1, loop_epochs + 1):
        now[0] += epoch_s
        if limit.epoch_end(epoch):
            break
    return limit.record()


def test_a_plugin_that_stopped_itself_is_not_said_to_have_run_all_its_epochs(fidelity):
    # seen: tvae ended at 641 s of an 810 s limit by synthcity's patience, and the table said "all 1000 default epochs"
    note = fidelity.plain_fit_note(fit_record(n_iter=1000, loop_epochs=500, epoch_s=1.282, limit_s=810), 1000)
    assert note == "ended by its own early stop after epoch 500 of 1000, 641 s into its time limit (810 s)"


def test_a_fit_cut_at_its_deadline_says_where(fidelity):
    note = fidelity.plain_fit_note(fit_record(n_iter=2000, loop_epochs=2000, epoch_s=1.0, limit_s=810), 2000)
    assert note == "cut by the time limit (810 s) after epoch 810 of 2000"


def test_a_fit_that_ran_every_epoch_says_so(fidelity):
    note = fidelity.plain_fit_note(fit_record(n_iter=1000, loop_epochs=1000, epoch_s=0.144, limit_s=810), 1000)
    assert note == "all 1000 default epochs within the time limit (810 s)"


def test_a_fit_whose_hook_never_fired_is_not_called_time_limited(fidelity):
    note = fidelity.plain_fit_note(fit_record(n_iter=10, loop_epochs=0, epoch_s=1.0, limit_s=810), 10)
    assert note.startswith("not time-limited")


def test_ours_settings_are_read_per_op_with_json_values(fidelity):
    settings = fidelity.parse_settings(["tuned_hyperparameters.objective=fidelity", "synthetic_table.num_rows=500",
                                        "privacy_utility_report.fidelity_checks_blocking=true"])
    assert settings == {"tuned_hyperparameters": {"objective": "fidelity"}, "synthetic_table": {"num_rows": 500},
                        "privacy_utility_report": {"fidelity_checks_blocking": True}}
    config = fidelity.run_config("penguins", budget=2, seed=3, max_rows=0, verbose=False, settings=settings)
    assert config["ops"]["tuned_hyperparameters"]["config"] == {"seed": 3, "objective": "fidelity"}
    assert config["ops"]["synthetic_table"]["config"] == {"time_budget_minutes": 2, "seed": 3, "num_rows": 500}


@pytest.mark.parametrize("item", ["objective=fidelity", "tuned_hyperparameters.objective", ".objective=x",
                                  "tuned_hyperparameters.=x", "tuned_hyperparameters.objective="])
def test_a_setting_not_of_the_form_op_key_value_is_refused_with_an_example(fidelity, item):
    with pytest.raises(ValueError, match="OP.KEY=VALUE, e.g. tuned_hyperparameters.objective=fidelity"):
        fidelity.parse_settings([item])


def test_a_source_setting_is_never_shown_in_a_footnote_or_the_command(fidelity):
    secret = "Jane Q. Doe"
    item = f'source_sample.filters=[{{"column": "name", "op": "==", "value": "{secret}"}}]'
    assert fidelity.shown_setting(item) == "source_sample.filters=(withheld)"
    assert fidelity.shown_setting("tuned_hyperparameters.objective=fidelity") == "tuned_hyperparameters.objective=fidelity"
    for argv in (["fidelity.py", "--ours-set", item, "--ours-set", "tuned_hyperparameters.objective=fidelity"],
                 ["fidelity.py", f"--ours-set={item}", "--ours-set=tuned_hyperparameters.objective=fidelity"]):
        command = fidelity.shown_command(argv)
        assert secret not in command and "source_sample.filters=(withheld)" in command
        assert "tuned_hyperparameters.objective=fidelity" in command
    assert fidelity.shown_command(["fidelity.py", "--datasets", "adult", "--budget-minutes=15"]) == (
        "fidelity.py --datasets adult --budget-minutes=15")
