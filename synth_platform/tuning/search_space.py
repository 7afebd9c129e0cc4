"""Adapter from synthcity's `Plugin.hyperparameter_space()` to Optuna 5 `trial.suggest_*`.

synthcity's own helper passes `step` positionally (an error on Optuna 5) and samples log ranges linearly; this one
uses keyword `step` and true log scales. Pure logic: no Dagster here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import optuna

from synth_platform.generation.generators import DP_PLUGINS, PLUGIN_DEFAULTS, PRIVACY_PARAMETERS, check_plugin, synthcity_plugins

if TYPE_CHECKING:  # synthcity (and torch) are imported on first use, so loading the definitions stays fast
    from synthcity.plugins.core.distribution import Distribution

# Never searched: the training budget (`n_iter`, set from a step budget) and privacy policy (epsilon, delta).
ALWAYS_FIXED = frozenset({"n_iter"}) | PRIVACY_PARAMETERS


def space_overrides(plugin: str) -> dict[str, Distribution | None]:
    """Per-plugin narrowing of synthcity's spaces, by parameter name (None: not searched).

    ddpm: learning rate and batch sizes of the TabDDPM paper; the number of diffusion timesteps is fixed (it sets
    the sampling cost; 100, the paper's tuned Adult value, `generators.PLUGIN_DEFAULTS`). dpgan: `discriminator_n_iter` is not searched (fixed at 1,
    `generators.DP_DISCRIMINATOR_STEPS`: the privacy budget holds for one discriminator step per batch only).
    """
    from synthcity.plugins.core.distribution import CategoricalDistribution, LogDistribution

    if plugin == "ddpm":
        return {
            "lr": LogDistribution(name="lr", low=1e-5, high=3e-3),
            "batch_size": CategoricalDistribution(name="batch_size", choices=[256, 512, 1024]),
            "num_timesteps": None,
        }
    if plugin in DP_PLUGINS:  # one private discriminator step per batch: the only count the privacy budget holds for
        return {"discriminator_n_iter": None}
    return {}


def search_space(plugin: str) -> list[Distribution]:
    """The plugin's space with the overrides applied and the fixed parameters removed."""
    check_plugin(plugin)
    overrides = space_overrides(plugin)
    space = []
    for distribution in synthcity_plugins().get_type(plugin).hyperparameter_space():
        if distribution.name in ALWAYS_FIXED:
            continue
        replacement = overrides.get(distribution.name, distribution)
        if replacement is not None:
            space.append(replacement)
    return space


def default_params(plugin: str, space: list[Distribution]) -> dict[str, Any]:
    """The plugin's own defaults (ours over synthcity's) for the searched parameters, clipped into the space: the
    first trial of a new study, so tuning never ends worse than the defaults."""
    import inspect

    from synthcity.plugins.core.distribution import CategoricalDistribution

    signature = inspect.signature(synthcity_plugins().get_type(plugin).__init__)
    defaults = {name: p.default for name, p in signature.parameters.items() if p.default is not inspect.Parameter.empty}
    defaults.update(PLUGIN_DEFAULTS.get(plugin, {}))
    params: dict[str, Any] = {}
    for d in space:
        if d.name not in defaults:
            continue
        value = defaults[d.name]
        if isinstance(d, CategoricalDistribution):
            if value in d.choices:
                params[d.name] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            params[d.name] = type(value)(min(max(value, d.low), d.high))
    return params


def suggest(trial: optuna.Trial, space: list[Distribution]) -> dict[str, Any]:
    """Ask the trial for one value per distribution, on the distribution's own scale."""
    from synthcity.plugins.core.distribution import (
        CategoricalDistribution,
        FloatDistribution,
        IntegerDistribution,
        IntLogDistribution,
        LogDistribution,
    )

    params: dict[str, Any] = {}
    for d in space:
        if isinstance(d, CategoricalDistribution):
            params[d.name] = trial.suggest_categorical(d.name, list(d.choices))
        elif isinstance(d, IntLogDistribution):
            params[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high), log=True)
        elif isinstance(d, IntegerDistribution):
            params[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high), step=int(d.step))
        elif isinstance(d, LogDistribution):
            params[d.name] = trial.suggest_float(d.name, float(d.low), float(d.high), log=True)
        elif isinstance(d, FloatDistribution):
            params[d.name] = trial.suggest_float(d.name, float(d.low), float(d.high))
        else:
            raise TypeError(f"No Optuna equivalent for {type(d).__name__} ({d.name}).")
    return params
