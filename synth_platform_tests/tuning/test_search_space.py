import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from synth_platform.generation.generators import GenerationError
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
