"""Fit a synthcity generator on the encoded training part and sample synthetic rows. Pure logic: no Dagster here."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

os.environ.setdefault("TQDM_DISABLE", "1")

SUPPORTED_PLUGINS = ("ddpm", "ctgan", "tvae", "dpgan")
DP_PLUGINS = frozenset({"dpgan"})
# Parameters that are privacy policy, set by the user, never searched or changed by the tuner.
PRIVACY_PARAMETERS = frozenset({"epsilon", "delta"})

# Starting parameters per plugin, overridden by tuned values and by config. ddpm trains for a number of optimizer
# steps (as in the TabDDPM paper) that `epochs_for_steps` turns into synthcity's epochs, with the paper's 1000
# diffusion timesteps (fewer sample faster but, measured on Adult, much worse).
PLUGIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "ddpm": {"num_timesteps": 1000, "batch_size": 1024, "lr": 2e-3},
    "ctgan": {"batch_size": 500},
    "tvae": {"batch_size": 500},
    "dpgan": {"batch_size": 500},
}
DEFAULT_TRAINING_STEPS = {"ddpm": 6000, "ctgan": 2000, "tvae": 2000, "dpgan": 2000}


class GenerationError(RuntimeError):
    """A generator that could not be fitted or sampled; the message says what to change."""


@dataclass(frozen=True)
class PrivacyPolicy:
    """Differential-privacy budget for DP plugins; ignored (and recorded as none) for the others."""

    epsilon: float = 1.0
    delta: float | None = None  # None: 1 / (10 n), well below 1/n

    def for_rows(self, n_rows: int) -> dict[str, float]:
        if self.epsilon <= 0:
            raise GenerationError(f"epsilon must be positive, got {self.epsilon}.")
        return {"epsilon": float(self.epsilon), "delta": float(self.delta if self.delta is not None else 1.0 / (10 * n_rows))}


@dataclass
class FittedGenerator:
    plugin_name: str
    params: dict[str, Any]
    model: Any = field(repr=False)
    fit_seconds: float = 0.0
    privacy_budget: dict[str, float] | None = None


def check_plugin(plugin: str) -> str:
    if plugin not in SUPPORTED_PLUGINS:
        raise GenerationError(f"Unknown generator {plugin!r}; choose one of {list(SUPPORTED_PLUGINS)}.")
    return plugin


def configure_torch(threads: int | None = None) -> int:
    """Pin torch's thread count (default: all cores); returns it."""
    import torch

    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


def epochs_for_steps(plugin: str, steps: int, n_rows: int, batch_size: int | None = None) -> int:
    """synthcity's `n_iter` (epochs) that gives about `steps` optimizer steps on `n_rows` rows."""
    batch = batch_size or PLUGIN_DEFAULTS.get(plugin, {}).get("batch_size", 500)
    steps_per_epoch = max(1, math.ceil(n_rows / min(batch, n_rows)))
    return max(1, math.ceil(steps / steps_per_epoch))


def fit_generator(
    training: pd.DataFrame,
    plugin: str,
    params: dict[str, Any],
    *,
    seed: int,
    workspace: Path,
    privacy: PrivacyPolicy = PrivacyPolicy(),
    log: Callable[[str], None] = lambda message: None,
) -> FittedGenerator:
    """Fit `plugin` on the (NaN-free, encoded) training frame with `params` merged over the plugin defaults."""
    from synthcity.plugins import Plugins
    from synthcity.plugins.core.dataloader import GenericDataLoader

    check_plugin(plugin)
    if training.isna().any().any():
        raise GenerationError("The training frame has missing values; encode it with profiling.encode_for_generation.")
    merged = {**PLUGIN_DEFAULTS.get(plugin, {}), **params}
    if "n_iter" not in merged:
        merged["n_iter"] = epochs_for_steps(plugin, DEFAULT_TRAINING_STEPS[plugin], len(training), merged.get("batch_size"))
    budget = None
    if plugin in DP_PLUGINS:
        budget = privacy.for_rows(len(training))
        merged.update(budget)
    else:
        merged = {k: v for k, v in merged.items() if k not in PRIVACY_PARAMETERS}
    workspace.mkdir(parents=True, exist_ok=True)
    log(f"fitting {plugin} on {len(training)} rows × {training.shape[1]} columns with {merged}")
    start = time.perf_counter()
    try:
        # strict=False: one sampling pass. synthcity's strict mode silently drops rows outside the training schema
        # and duplicates, and re-samples up to 500 times, which has no time bound on a poorly trained model;
        # decode_from_generation enforces the source's ranges and types instead.
        model = Plugins().get(plugin, random_state=seed, workspace=workspace, strict=False, **merged)
        model.fit(GenericDataLoader(training))
    except Exception as exc:  # synthcity raises many types; surface one clear error
        raise GenerationError(f"{plugin} failed to fit with {merged}: {type(exc).__name__}: {exc}") from exc
    seconds = time.perf_counter() - start
    log(f"fitted {plugin} in {seconds:.1f} s")
    return FittedGenerator(plugin, merged, model, seconds, budget)


def sample(fitted: FittedGenerator, count: int, *, seed: int) -> pd.DataFrame:
    """Draw `count` rows from a fitted generator (seeded)."""
    import torch

    torch.manual_seed(seed)
    try:
        frame = fitted.model.generate(count=count, random_state=seed).dataframe()
    except Exception as exc:
        raise GenerationError(f"{fitted.plugin_name} failed to sample {count} rows: {type(exc).__name__}: {exc}") from exc
    broken = frame.isna().sum()
    if broken.any():
        raise GenerationError(
            f"{fitted.plugin_name} produced missing values in {broken[broken > 0].to_dict()}: training diverged; "
            "lower the learning rate or train longer."
        )
    if len(frame) < count:
        raise GenerationError(f"{fitted.plugin_name} produced {len(frame)} rows, {count} were asked for.")
    return frame.reset_index(drop=True)
