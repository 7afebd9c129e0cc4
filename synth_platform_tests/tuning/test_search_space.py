import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from synth_platform.generation.generators import SUPPORTED_PLUGINS, TRAINING_FREE_PLUGINS, GenerationError
from synth_platform.tuning.search_space import search_space, suggest


def _distributions(plugin):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = suggest(trial, search_space(plugin))
    return params, trial.distributions


def test_ddpm_space_uses_true_log_scales_and_never_searches_budget_or_privacy():
    params, distributions = _distributions("ddpm")
    assert set(params) == {"lr", "batch_size"}
    assert distributions["lr"] == FloatDistribution(1e-5, 3e-3, log=True)
    assert distributions["batch_size"] == CategoricalDistribution([256, 512, 1024])


def test_ctgan_space_keeps_integer_steps_as_keywords():
    params, distributions = _distributions("ctgan")
    assert "n_iter" not in params
    assert distributions["generator_n_units_hidden"] == IntDistribution(50, 150, step=50)
    assert params["generator_n_units_hidden"] % 50 == 0
    assert isinstance(distributions["generator_nonlin"], CategoricalDistribution)


def test_dpgan_space_never_contains_privacy_parameters():
    params, _ = _distributions("dpgan")
    assert not {"epsilon", "delta", "n_iter"} & set(params)
    assert "discriminator_n_iter" not in params  # fixed at 1: the privacy budget holds for one step per batch


def test_log_int_distributions_are_sampled_on_a_log_scale():
    from synthcity.plugins.core.distribution import IntLogDistribution, LogDistribution

    study = optuna.create_study()
    trial = study.ask()
    suggest(trial, [IntLogDistribution(name="units", low=16, high=4096), LogDistribution(name="lr", low=1e-6, high=1e-1)])
    assert trial.distributions["units"] == IntDistribution(16, 4096, log=True)
    assert trial.distributions["lr"] == FloatDistribution(1e-6, 1e-1, log=True)


def test_unknown_plugin_is_refused():
    with pytest.raises(GenerationError, match="Unknown generator 'gpt'"):
        search_space("gpt")


def test_default_params_lie_in_the_space():
    from synth_platform.tuning.search_space import default_params

    assert default_params("ddpm", search_space("ddpm")) == {"lr": 2e-3, "batch_size": 1024}
    ctgan = default_params("ctgan", search_space("ctgan"))
    assert ctgan["batch_size"] == 500 and ctgan["generator_n_units_hidden"] == 150  # synthcity's 500 clipped to 150


@pytest.mark.parametrize("plugin", [p for p in SUPPORTED_PLUGINS if p not in TRAINING_FREE_PLUGINS])
def test_every_supported_plugin_space_maps_one_to_one_onto_optuna(plugin):
    """Each synthcity distribution becomes the Optuna distribution of the same kind, bounds, step and scale, and
    200 random suggestions stay inside it (integers on the step grid, categoricals among the choices)."""
    from synthcity.plugins.core.distribution import (
        CategoricalDistribution as Categorical,
        FloatDistribution as Float,
        IntegerDistribution as Integer,
        IntLogDistribution as IntLog,
        LogDistribution as Log,
    )

    space = search_space(plugin)
    assert space and not {"n_iter", "epsilon", "delta"} & {d.name for d in space}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(200):
        trial = study.ask()
        params = suggest(trial, space)
        for d in space:
            got, value = trial.distributions[d.name], params[d.name]
            if isinstance(d, Categorical):
                assert got == CategoricalDistribution(list(d.choices)) and value in d.choices
            elif isinstance(d, IntLog):
                assert got == IntDistribution(int(d.low), int(d.high), log=True) and d.low <= value <= d.high
            elif isinstance(d, Integer):
                assert got == IntDistribution(int(d.low), int(d.high), step=int(d.step))
                assert d.low <= value <= d.high and (value - d.low) % d.step == 0 and isinstance(value, int)
            elif isinstance(d, Log):
                assert got == FloatDistribution(float(d.low), float(d.high), log=True) and d.low <= value <= d.high
            else:
                assert isinstance(d, Float) and got == FloatDistribution(float(d.low), float(d.high))
        study.tell(trial, 0.0)
    # default parameters (the first trial of every new study) suggest exactly themselves
    from synth_platform.tuning.search_space import default_params

    defaults = default_params(plugin, space)
    study.enqueue_trial(defaults)
    trial = study.ask()
    assert {k: v for k, v in suggest(trial, space).items() if k in defaults} == defaults
