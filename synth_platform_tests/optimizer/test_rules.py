import pytest

from synth_platform.generation.generators import DEFAULT_TRAINING_STEPS
from synth_platform.optimizer.rules import MAX_TRAINING_STEPS, MIN_TRAINING_STEPS, propose_adjustment

KS, CORR, MIA, DUP = ("ks_mean_within_threshold", "correlation_delta_within_threshold",
                      "membership_inference_auc_within_threshold", "duplicate_rate_within_threshold")


@pytest.mark.parametrize(
    ("failed", "tuning", "generation", "failure", "expected_tuning", "expected_generation"),
    [
        ([KS], {}, {}, "utility", {"n_trials": 4}, {"training_steps": 2 * DEFAULT_TRAINING_STEPS["ddpm"]}),
        ([CORR], {"plugin": "tvae", "n_trials": 4}, {"training_steps": 1000}, "utility",
         {"plugin": "tvae", "n_trials": 6}, {"training_steps": 2000}),
        ([MIA], {"plugin": "ddpm"}, {"training_steps": 8000}, "privacy", {"plugin": "dpgan"}, {"training_steps": 0}),
        ([MIA], {"plugin": "dpgan"}, {"training_steps": 2000}, "privacy", {"plugin": "dpgan"}, {"training_steps": 1000}),
        ([DUP], {}, {"training_steps": 4000}, "privacy", {}, {"training_steps": 2000}),
        ([KS, MIA], {}, {}, "privacy", {"plugin": "dpgan"}, {"training_steps": 0}),  # privacy first
        ([KS, DUP], {}, {"training_steps": 4000}, "privacy", {}, {"training_steps": 2000}),
    ],
)
def test_rule_table(failed, tuning, generation, failure, expected_tuning, expected_generation):
    adjustment = propose_adjustment(failed, tuning, generation)
    assert adjustment.failure == failure
    assert adjustment.tuning == expected_tuning
    assert adjustment.generation == expected_generation
    assert adjustment.change


def test_no_change_when_a_bound_is_reached_or_nothing_failed():
    assert propose_adjustment([KS], {}, {"training_steps": MAX_TRAINING_STEPS}) is None
    assert propose_adjustment([DUP], {}, {"training_steps": MIN_TRAINING_STEPS}) is None
    assert propose_adjustment([], {}, {}) is None


def test_inputs_are_not_mutated():
    tuning, generation = {"n_trials": 3}, {"training_steps": 100}
    propose_adjustment([KS], tuning, generation)
    assert tuning == {"n_trials": 3} and generation == {"training_steps": 100}
