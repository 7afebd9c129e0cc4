"""Fit a synthcity generator on the encoded training part and sample synthetic rows. Pure logic: no Dagster here."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from synth_platform.generation.allocator import heap_for_large_allocations
from synth_platform.generation.ddpm_sampling import fast_sampling
from synth_platform.generation.encoder_cache import EncoderCache, reuse_tabular_encoders
from synth_platform.generation.training_hooks import EpochEnd, EpochWatcher, synthcity_callback, watching

os.environ.setdefault("TQDM_DISABLE", "1")

SUPPORTED_PLUGINS = ("ddpm", "ctgan", "tvae", "dpgan", "dummy_sampler")
# synthcity's dummy_sampler resamples real training rows: no model, no privacy. It is the leak baseline that shows
# what the privacy checks and the auto-optimizer do with a generator that copies; never release its output.
TRAINING_FREE_PLUGINS = frozenset({"dummy_sampler"})
SYNTHCITY_CATEGORIES = ["generic", "privacy"]  # where the supported plugins live; the others are never loaded
# synthcity's plugin loader logs at CRITICAL for optional plugins whose extras are not installed (goggle needs dgl):
# noise that reads like a failure. Everything else it logs at CRITICAL still reaches stderr.
_SYNTHCITY_LOADER_NOISE = ("module disabled", "Error importing", "Failed to load plugin")
DP_PLUGINS = frozenset({"dpgan"})
# The plugins whose fit starts with synthcity's TabularEncoder (reused across fits: encoder_cache.py).
ENCODER_PLUGINS = frozenset({"ctgan", "tvae", "dpgan"})
SAMPLE_CHUNK_ROWS = 20_000  # rows generated per call: progress is reported and memory bounded per chunk
# ddpm sampling: a respaced chain through this many of the model's diffusion timesteps (ddpm_sampling.py); the model's
# own count (1000) is synthcity's ancestral sampler.
DEFAULT_SAMPLING_STEPS = 100
DEVICES = ("auto", "cpu", "cuda")
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
DEFAULT_TRAINING_STEPS = {"ddpm": 5000, "ctgan": 2000, "tvae": 2000, "dpgan": 2000, "dummy_sampler": 1}


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


@functools.lru_cache(maxsize=1)
def synthcity_plugins():
    """synthcity's plugin registry (generic and privacy plugins), built once per process, its loader noise muted."""
    import synthcity  # noqa: F401 - its import replaces loguru's sinks with a CRITICAL one on stderr
    from loguru import logger

    logger.remove()
    logger.add(
        sys.stderr,
        level="CRITICAL",
        format="[synthcity][{level}] {message}",
        filter=lambda record: not record["message"].startswith(_SYNTHCITY_LOADER_NOISE),
    )
    from synthcity.plugins import Plugins

    return Plugins(categories=SYNTHCITY_CATEGORIES)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset narrow), not the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_for(workers: int = 1, requested: int = 0) -> int:
    """Torch threads per process: `requested` when set, else the available cores shared by `workers` processes
    (at least one each), so concurrent trials or workers never oversubscribe the cores."""
    if requested < 0:
        raise GenerationError(f"threads must be 0 (automatic) or positive, got {requested}.")
    return requested or max(1, available_cores() // max(1, workers))


def resolve_device(device: str = "auto") -> str:
    """`auto`: cuda when a GPU is visible, else cpu. Asking for cuda without one is an error that says so."""
    import torch

    if device not in DEVICES:
        raise GenerationError(f"Unknown device {device!r}; choose one of {list(DEVICES)}.")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise GenerationError("device 'cuda' was asked for but torch sees no GPU; use 'cpu' or 'auto'.")
    return device


def configure_compute(threads: int = 0, workers: int = 1) -> int:
    """Pin torch's intra-op threads (`threads_for(workers, threads)`); returns the count. The OpenMP wait policy is
    PASSIVE (set when synth_platform is imported): idle threads sleep instead of spinning on a shared core."""
    import torch

    count = threads_for(workers, threads)
    torch.set_num_threads(count)
    return count


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
    on_epoch_end: Callable[[EpochEnd], None] | None = None,
    passthrough: tuple[type[BaseException], ...] = (),
    device: str = "cpu",
    encoder_cache: EncoderCache | None = None,
) -> FittedGenerator:
    """Fit `plugin` on the (NaN-free, encoded) training frame with `params` merged over the plugin defaults.

    `on_epoch_end(EpochEnd)` is called after every training epoch (training_hooks.py: the epoch, ddpm's latest
    training loss, and a way to sample the model as trained so far); it may stop training by raising one of
    `passthrough`, which propagate as they are (e.g. a tuner's prune or deadline signal). Progress is logged about
    every tenth of the epochs. Any other failure becomes one `GenerationError`. `device` is
    `resolve_device`'s answer; `encoder_cache` lets ctgan/tvae/dpgan reuse a fitted data encoder."""
    from synthcity.plugins.core.dataloader import GenericDataLoader

    check_plugin(plugin)
    if training.isna().any().any():
        raise GenerationError("The training frame has missing values; encode it with profiling.encode_for_generation.")
    merged = {**PLUGIN_DEFAULTS.get(plugin, {}), **params}
    if "n_iter" not in merged:
        merged["n_iter"] = epochs_for_steps(plugin, DEFAULT_TRAINING_STEPS[plugin], len(training), merged.get("batch_size"))
    budget = None
    if plugin in TRAINING_FREE_PLUGINS:
        merged = {}  # nothing to train: steps, batches and learning rates do not apply
    elif plugin in DP_PLUGINS:
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
        watcher = EpochWatcher(plugin, int(merged.get("n_iter", 1)), log, on_epoch_end)
        hooks = {"callbacks": [synthcity_callback(watcher)]} if plugin == "ddpm" else {}
        import torch

        extra = {"device": torch.device(device)} if plugin not in TRAINING_FREE_PLUGINS else {}
        model = synthcity_plugins().get(plugin, random_state=seed, workspace=workspace, strict=False, **merged, **hooks, **extra)
        watcher.model = model
        encoders = encoder_cache if plugin in ENCODER_PLUGINS else None
        with watching(watcher), reuse_tabular_encoders(encoders), heap_for_large_allocations():
            model.fit(GenericDataLoader(training))
    except passthrough:
        raise
    except Exception as exc:  # synthcity raises many types; surface one clear error
        raise GenerationError(f"{plugin} failed to fit with {merged}: {type(exc).__name__}: {exc}") from exc
    if plugin == "ddpm":
        clamp_ddpm_denoising_to_training_range(model)
    seconds = time.perf_counter() - start
    log(f"fitted {plugin} in {seconds:.1f} s")
    return FittedGenerator(plugin, merged, model, seconds, budget)


def clamp_ddpm_denoising_to_training_range(model: Any) -> tuple[Any, Any] | None:
    """Clip TabDDPM's predicted clean sample x̂₀ to the range of the encoded training data at every reverse step.

    synthcity's sampler never clips x̂₀ (DDPM's `clip_denoised`, Ho et al. 2020, clips it to the data range). An
    undertrained noise model then predicts |x̂₀| far outside the quantile-normal range for a share of rows, and
    those rows come back piled at the columns' minima and maxima *together*, which fakes strong correlations.
    Measured on 10,000 Adult rows, 1,500 steps, 2,000 samples, same fitted model (benchmarks/ddpm_denoising_clamp.py):
    KS mean 0.691 → 0.067, TVD mean 0.459 → 0.091, correlation delta 0.278 → 0.041.
    Returns the (low, high) bounds per numeric column, or None when there is no numeric column.
    """
    import torch

    tabddpm = model.model
    diffusion = tabddpm.diffusion
    n_numeric = int(diffusion.num_numerics)
    if n_numeric == 0:
        return None
    # The model's own training tensor: numeric columns first, in the encoding the model was trained on.
    trained_on = tabddpm.dataloader.dataset.tensors[0][:, :n_numeric]
    low, high = trained_on.min(dim=0).values, trained_on.max(dim=0).values
    unclamped = diffusion.gaussian_p_mean_variance  # bound method of this instance

    def clamped_p_mean_variance(model_output, x, t, model_kwargs=None):
        out = unclamped(model_output, x, t, model_kwargs=model_kwargs)
        x0 = torch.clamp(out["pred_xstart"], low.to(x.device), high.to(x.device))
        out["mean"], _, _ = diffusion.gaussian_q_posterior_mean_variance(x_start=x0, x_t=x, t=t)
        out["pred_xstart"] = x0
        return out

    diffusion.gaussian_p_mean_variance = clamped_p_mean_variance
    return low, high


def iter_sample(
    fitted: FittedGenerator, count: int, *, seed: int, log: Callable[[str], None] = lambda message: None,
    sampling_steps: int = DEFAULT_SAMPLING_STEPS, chunk_rows: int = SAMPLE_CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """`count` rows as a stream of chunks of at most `chunk_rows` (each with its own seed from `seed`), so any
    number of rows is generated in memory bounded by one chunk. ddpm samples by a respaced chain through
    `sampling_steps` timesteps (its own timestep count: synthcity's ancestral sampler). Progress is logged."""
    import numpy as np

    if count < 1:
        raise GenerationError(f"Asked for {count} synthetic rows; ask for at least one.")
    if chunk_rows < 1 or sampling_steps < 1:
        raise GenerationError(f"chunk_rows and sampling_steps must be positive, got {chunk_rows} and {sampling_steps}.")
    sizes = [min(chunk_rows, count - start) for start in range(0, count, chunk_rows)]
    # One independent seed per chunk (synthcity re-seeds every generate call: equal seeds give equal chunks).
    chunk_seeds = np.random.SeedSequence(seed).generate_state(len(sizes)).tolist()
    fast = fast_sampling(fitted.model, sampling_steps, chunk_rows) if fitted.plugin_name == "ddpm" else contextlib.nullcontext()
    done, start = 0, time.perf_counter()
    with fast:
        for size, chunk_seed in zip(sizes, chunk_seeds):
            try:
                with heap_for_large_allocations():
                    chunk = fitted.model.generate(count=size, random_state=chunk_seed).dataframe()
            except Exception as exc:
                raise GenerationError(f"{fitted.plugin_name} failed to sample {size} rows: {type(exc).__name__}: {exc}") from exc
            broken = chunk.isna().sum()
            if broken.any():
                raise GenerationError(
                    f"{fitted.plugin_name} produced missing values in {broken[broken > 0].to_dict()}: training "
                    "diverged; lower the learning rate or train longer."
                )
            if len(chunk) < size:
                raise GenerationError(f"{fitted.plugin_name} produced {len(chunk)} rows, {size} were asked for.")
            done += size
            if len(sizes) > 1 and done < count:
                elapsed = time.perf_counter() - start
                log(f"sampled {done}/{count} rows, {elapsed:.0f} s so far, about {elapsed / done * (count - done):.0f} s left")
            yield chunk.reset_index(drop=True)


def sample(
    fitted: FittedGenerator, count: int, *, seed: int, log: Callable[[str], None] = lambda message: None,
    sampling_steps: int = DEFAULT_SAMPLING_STEPS, chunk_rows: int = SAMPLE_CHUNK_ROWS,
) -> pd.DataFrame:
    """`count` rows from a fitted generator in one frame (see `iter_sample`)."""
    chunks = list(iter_sample(fitted, count, seed=seed, log=log, sampling_steps=sampling_steps, chunk_rows=chunk_rows))
    return pd.concat(chunks, ignore_index=True)
