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
from synth_platform.generation.ddpm_sampling import NonFiniteDraws, fast_sampling
from synth_platform.generation.encoder_cache import EncoderCache, reuse_tabular_encoders
from synth_platform.generation.time_budget import FitTimeLimit, TimeBudget
from synth_platform.generation.training_hooks import (
    DivergenceGuard,
    EpochEnd,
    EpochWatcher,
    TimeLimitReached,
    TrainingDiverged,
    synthcity_callback,
    watching,
)

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
# synthcity's DP-GAN calibrates its noise (opacus, `make_private_with_epsilon` over n_iter epochs) for one private
# discriminator step per batch, but takes `discriminator_n_iter` of them: at 3 the accountant's epsilon for a target
# of 1.0 was 1.82 (measured). Every DP fit takes exactly one, so the stated epsilon is the spent one.
DP_DISCRIMINATOR_STEPS = 1
# The plugins whose fit starts with synthcity's TabularEncoder (reused across fits: encoder_cache.py).
ENCODER_PLUGINS = frozenset({"ctgan", "tvae", "dpgan"})
SAMPLE_CHUNK_ROWS = 20_000  # rows generated per call: progress is reported and memory bounded per chunk
# ddpm sampling: a respaced chain through this many of the model's diffusion timesteps (ddpm_sampling.py); the model's
# own count (1000) is synthcity's ancestral sampler.
DEFAULT_SAMPLING_STEPS = 100
DEVICES = ("auto", "cpu", "cuda")
CLAMP_ATTRIBUTE = "_synth_platform_clamp"  # set on a TabDDPM diffusion whose x̂₀ is clamped: the bounds
# Parameters that are privacy policy, set by the user, never searched or changed by the tuner.
PRIVACY_PARAMETERS = frozenset({"epsilon", "delta"})

# Starting parameters per plugin, overridden by tuned values and by config. ddpm trains for a number of optimizer
# steps (as in the TabDDPM paper) that `epochs_for_steps` turns into synthcity's epochs, with the paper's 1000
# diffusion timesteps (fewer sample faster but, measured on Adult, much worse).
PLUGIN_DEFAULTS: dict[str, dict[str, Any]] = {
    # 100 diffusion timesteps: the TabDDPM paper's tuned Adult value (exp/adult/ddpm_cb_best); at equal fit time on
    # 16,000 Adult rows it matched or beat synthcity's 1000 in two runs (benchmarks/ddpm_timesteps.py, docs/).
    "ddpm": {"num_timesteps": 100, "batch_size": 1024, "lr": 2e-3},
    "ctgan": {"batch_size": 500},
    "tvae": {"batch_size": 500},
    "dpgan": {"batch_size": 500},
}
DEFAULT_TRAINING_STEPS = {"ddpm": 5000, "ctgan": 2000, "tvae": 2000, "dpgan": 2000, "dummy_sampler": 1}
# The learning rate each plugin trains with when none is given (ours for ddpm, synthcity's for the others).
DEFAULT_LEARNING_RATES = {"ddpm": PLUGIN_DEFAULTS["ddpm"]["lr"], "ctgan": 1e-3, "tvae": 1e-3, "dpgan": 1e-3}
# A NaN or infinite training loss: the learning rate is halved at most this many times per fit (ddpm in place,
# from its last good weights; tvae / ctgan by fitting again), each time logged. dpgan is never fitted again: every
# fit spends its privacy budget.
DIVERGENCE_RETRIES = 4
# NaN or infinite sampled rows: a chunk is drawn again with this many other seeds before the sampler changes.
RESEED_ATTEMPTS = 2
# What a diagnosis proposes instead of a diverging plugin (a DP plugin is only replaced by the user: privacy policy).
ALTERNATIVE_PLUGINS = {"ddpm": ("tvae", "ctgan"), "tvae": ("ctgan", "ddpm"), "ctgan": ("tvae", "ddpm"), "dpgan": ()}


class GenerationError(RuntimeError):
    """A generator that could not be fitted or sampled; the message says what to change.

    `diagnosis` is None, or for a fit or sampler that diverged (NaN or infinite losses or rows that every recovery
    failed to mend) a JSON-ready dict the caller can act on like a report's failed check (`divergence_diagnosis`):
    stage ("training" / "sampling"), plugin, reason ("nan_loss" / "nan_draws": NaN or infinite), detail, params,
    recoveries tried, suggestion, suggested_params, alternative_plugins (and epoch, step / columns, weights_finite)."""

    def __init__(self, message: str, diagnosis: dict | None = None) -> None:
        super().__init__(message)
        self.diagnosis = diagnosis

    def __reduce__(self):  # keep the diagnosis through pickling (process pools, Dagster)
        return (type(self), (str(self), self.diagnosis))


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
    # What was done about divergence, in order (JSON-ready dicts, each also logged): learning-rate halvings and an
    # early stop while training, other seeds / the clamp / the ancestral sampler while sampling.
    recoveries: list[dict] = field(default_factory=list)
    # A fit given a deadline (`fit_generator(deadline=...)` / `time_limit_s`): `FitTimeLimit.record` (time_limit_s,
    # seconds, epochs, max_epochs, stopped_early_at_epoch: None when it ended at its epoch bound, epoch_seconds,
    # stopped_by); None for a fit without one.
    budget_stop: dict | None = None


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
    divergence_retries: int = DIVERGENCE_RETRIES,
    deadline: float | None = None,
    time_limit_s: float | None = None,
    time_budget: TimeBudget | None = None,
) -> FittedGenerator:
    """Fit `plugin` on the (NaN-free, encoded) training frame with `params` merged over the plugin defaults.

    `on_epoch_end(EpochEnd)` is called after every training epoch (training_hooks.py: the epoch, ddpm's latest
    training loss, and a way to sample the model as trained so far); it may stop training by raising one of
    `passthrough`, which propagate as they are (e.g. a tuner's prune or deadline signal). Progress is logged about
    every tenth of the epochs. `device` is `resolve_device`'s answer; `encoder_cache` lets ctgan/tvae/dpgan reuse a
    fitted data encoder.

    A NaN or infinite training loss is caught at its step (training_hooks.py): ddpm goes back to its last good
    weights with half the learning rate and trains on, tvae and ctgan are fitted again with half the learning rate,
    at most `divergence_retries` halvings, each logged and kept in `FittedGenerator.recoveries`; ddpm then stops
    early with its last good weights. When that fails too (and at once for dpgan, whose every fit spends privacy
    budget) the `GenerationError` carries a `diagnosis`. Any other failure becomes one `GenerationError`.
    `params` of the result are those of the fit that succeeded (tvae / ctgan: the halved learning rate).

    Time limit: `deadline` (a `time.monotonic()` reading) and / or `time_limit_s` (seconds from this call; with both,
    the earlier end). The fit then ends after the epoch whose end lands nearest the deadline (`FitTimeLimit`: within
    half an epoch of it), keeping the model as trained so far, or at `n_iter` epochs, which is only an upper bound
    then (give a large one to let the time decide; not for dpgan, whose noise is calibrated to `n_iter` epochs).
    ddpm's learning-rate decay is stretched to end at the deadline. A refit after a divergence has what is left.
    Progress is logged as the time used and left (with `time_budget`: also the whole run's), each tenth of the fit's
    time, and `FittedGenerator.budget_stop` records what happened."""
    check_plugin(plugin)
    if training.isna().any().any():
        raise GenerationError("The training frame has missing values; encode it with profiling.encode_for_generation.")
    if divergence_retries < 0:
        raise GenerationError(f"divergence_retries must be 0 or more, got {divergence_retries}.")
    merged = {**PLUGIN_DEFAULTS.get(plugin, {}), **params}
    if "n_iter" not in merged:
        merged["n_iter"] = epochs_for_steps(plugin, DEFAULT_TRAINING_STEPS[plugin], len(training), merged.get("batch_size"))
    budget = None
    if plugin in TRAINING_FREE_PLUGINS:
        merged = {}  # nothing to train: steps, batches and learning rates do not apply
    elif plugin in DP_PLUGINS:
        budget = privacy.for_rows(len(training))
        merged.update(budget)
        if merged.get("discriminator_n_iter", 1) != 1:
            log(f"{plugin}: discriminator_n_iter {merged['discriminator_n_iter']} -> {DP_DISCRIMINATOR_STEPS} (the privacy budget holds for that only)")
        merged["discriminator_n_iter"] = DP_DISCRIMINATOR_STEPS
    else:
        merged = {k: v for k, v in merged.items() if k not in PRIVACY_PARAMETERS}
    workspace.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    limits = [d for d in (deadline, None if time_limit_s is None else started + time_limit_s) if d is not None]
    time_limit = None
    if limits and plugin not in TRAINING_FREE_PLUGINS:
        time_limit = FitTimeLimit(min(limits), max_epochs=int(merged.get("n_iter", 1)), plugin=plugin, log=log,
                                  budget=time_budget, started=started)
    within = "" if time_limit is None else f" within {time_limit.limit_s:.0f} s (at most {time_limit.max_epochs} epochs)"
    log(f"fitting {plugin} on {len(training)} rows × {training.shape[1]} columns{within} with {merged}")
    start = time.perf_counter()
    recoveries: list[dict] = []
    attempt = merged
    while True:
        guard = DivergenceGuard(plugin, divergence_retries, log) if plugin == "ddpm" else None
        try:
            model = _fit_once(training, plugin, attempt, seed=seed, workspace=workspace, log=log,
                              on_epoch_end=on_epoch_end, device=device, encoder_cache=encoder_cache, guard=guard,
                              time_limit=time_limit)
            break
        except passthrough:
            raise
        except TrainingDiverged as diverged:
            recoveries += diverged.recoveries
            halvings = sum(1 for r in recoveries if r.get("action") in ("halved_lr", "refit_with_halved_lr"))
            if plugin == "ddpm" or plugin in DP_PLUGINS or halvings >= divergence_retries:
                why = "" if plugin not in DP_PLUGINS else " (a DP fit is never repeated: each fit spends privacy budget)"
                diagnosis = divergence_diagnosis("training", plugin, "nan_loss", str(diverged), attempt, recoveries,
                                                 epoch=diverged.epoch, step=diverged.step or None)
                raise GenerationError(
                    f"{plugin} diverged while training{why}: {str(diverged).removeprefix(plugin + ': ')}. "
                    f"{diagnosis['suggestion'][0].upper()}{diagnosis['suggestion'][1:]}.", diagnosis) from diverged
            lr = float(attempt.get("lr", DEFAULT_LEARNING_RATES[plugin]))
            recoveries.append({"stage": "training", "plugin": plugin, "epoch": diverged.epoch,
                               "loss": diverged.loss if math.isfinite(diverged.loss) else str(diverged.loss),
                               "action": "refit_with_halved_lr", "lr_before": lr, "lr_after": lr / 2})
            log(f"{diverged}; fitting {plugin} again from the start with half the learning rate {lr:g} → {lr / 2:g} "
                f"(recovery {halvings + 1} of at most {divergence_retries})")
            attempt = {**attempt, "lr": lr / 2}
        except Exception as exc:  # synthcity raises many types; surface one clear error
            raise GenerationError(f"{plugin} failed to fit with {attempt}: {type(exc).__name__}: {exc}") from exc
    if guard is not None:
        recoveries += guard.recoveries
    if plugin == "ddpm":
        clamp_ddpm_denoising_to_training_range(model)
    seconds = time.perf_counter() - start
    budget_stop = None if time_limit is None else time_limit.record(time.monotonic() - started)
    stopped = "" if not budget_stop or budget_stop["stopped_early_at_epoch"] is None else (
        f", stopped by its {budget_stop['time_limit_s']:.0f} s time limit after epoch {budget_stop['stopped_early_at_epoch']}")
    log(f"fitted {plugin} in {seconds:.1f} s{stopped}" + (f" after {len(recoveries)} divergence recover(ies)" if recoveries else ""))
    return FittedGenerator(plugin, attempt, model, seconds, budget, recoveries, budget_stop)


def _fit_once(
    training: pd.DataFrame, plugin: str, params: dict[str, Any], *, seed: int, workspace: Path,
    log: Callable[[str], None], on_epoch_end: Callable[[EpochEnd], None] | None, device: str,
    encoder_cache: EncoderCache | None, guard: DivergenceGuard | None, time_limit: FitTimeLimit | None = None,
) -> Any:
    """One synthcity fit, watched (epochs, divergence, time limit); the fitted plugin."""
    import torch
    from synthcity.plugins.core.dataloader import GenericDataLoader

    # strict=False: one sampling pass. synthcity's strict mode silently drops rows outside the training schema
    # and duplicates, and re-samples up to 500 times, which has no time bound on a poorly trained model;
    # decode_from_generation enforces the source's ranges and types instead.
    watcher = EpochWatcher(plugin, int(params.get("n_iter", 1)), log, on_epoch_end, guard, time_limit)
    hooks = {"callbacks": [synthcity_callback(watcher)]} if plugin == "ddpm" else {}
    extra = {"device": torch.device(device)} if plugin not in TRAINING_FREE_PLUGINS else {}
    model = synthcity_plugins().get(plugin, random_state=seed, workspace=workspace, strict=False, **params, **hooks, **extra)
    watcher.model = model
    encoders = encoder_cache if plugin in ENCODER_PLUGINS else None
    with watching(watcher), reuse_tabular_encoders(encoders), heap_for_large_allocations():
        try:
            model.fit(GenericDataLoader(training))
        except TimeLimitReached:  # a VAE / GAN whose time is up: its weights as trained so far are the model
            model.fitted = True  # what synthcity's fit sets when its epoch loop runs to the end
    return model


def divergence_diagnosis(
    stage: str, plugin: str, reason: str, detail: str, params: dict[str, Any], recoveries: list[dict], **extra: Any,
) -> dict:
    """What diverged and what to change, JSON-ready (the `diagnosis` of a `GenerationError`, see there).

    The suggested learning rate is a tenth of the lowest one that was tried (the rate only ever goes down), at
    most the plugin's default: halving it did not help, so the next try should change it by more."""
    tried = [float(params["lr"])] if isinstance(params.get("lr"), (int, float)) else []
    tried += [float(r[key]) for r in recoveries for key in ("lr_before", "lr_after") if isinstance(r.get(key), (int, float))]
    tried = [lr for lr in tried if lr > 0] or ([DEFAULT_LEARNING_RATES[plugin]] if plugin in DEFAULT_LEARNING_RATES else [])
    suggested = {"lr": float(f"{min(min(tried) / 10, DEFAULT_LEARNING_RATES[plugin]):.3g}")} if tried else {}
    alternatives = list(ALTERNATIVE_PLUGINS.get(plugin, ()))
    changes = [f"lower the learning rate (lr) to {suggested['lr']:g} or below"] if suggested else []
    changes.append("train fewer steps (training_steps)")
    if alternatives:
        changes.append("use another plugin (" + " or ".join(alternatives) + ")")
    return {
        "stage": stage, "plugin": plugin, "reason": reason, "detail": detail,
        "params": {k: v for k, v in params.items() if isinstance(v, (int, float, str, bool)) or v is None},
        "recoveries": list(recoveries),
        "suggestion": ", ".join(changes[:-1]) + (", or " if len(changes) > 1 else "") + changes[-1],
        "suggested_params": suggested, "alternative_plugins": alternatives, **extra,
    }


def clamp_ddpm_denoising_to_training_range(model: Any) -> tuple[Any, Any] | None:
    """Clip TabDDPM's predicted clean sample x̂₀ to the range of the encoded training data at every reverse step.

    synthcity's sampler never clips x̂₀ (DDPM's `clip_denoised`, Ho et al. 2020, clips it to the data range). An
    undertrained noise model then predicts |x̂₀| far outside the quantile-normal range for a share of rows, and
    those rows come back piled at the columns' minima and maxima *together*, which fakes strong correlations.
    Measured on 10,000 Adult rows, 1,500 steps, 2,000 samples, same fitted model (benchmarks/ddpm_denoising_clamp.py):
    KS mean 0.691 → 0.067, TVD mean 0.459 → 0.091, correlation delta 0.278 → 0.041. Without it, a model trained
    with a high learning rate (0.5 on a table of wide-range datetimes, generation/test_divergence.py) samples NaN rows
    with finite weights; with it, none.
    Returns the (low, high) bounds per numeric column, or None when there is no numeric column. Idempotent.
    """
    import torch

    tabddpm = model.model
    diffusion = tabddpm.diffusion
    if hasattr(diffusion, CLAMP_ATTRIBUTE):  # clamped already: once is enough
        return getattr(diffusion, CLAMP_ATTRIBUTE)
    n_numeric = int(diffusion.num_numerics)
    if n_numeric == 0:
        setattr(diffusion, CLAMP_ATTRIBUTE, None)
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
    setattr(diffusion, CLAMP_ATTRIBUTE, (low, high))
    return low, high


def is_clamped(model: Any) -> bool:
    """Has `clamp_ddpm_denoising_to_training_range` been applied to this fitted ddpm plugin?"""
    return hasattr(model.model.diffusion, CLAMP_ATTRIBUTE)


def iter_sample(
    fitted: FittedGenerator, count: int, *, seed: int, log: Callable[[str], None] = lambda message: None,
    sampling_steps: int = DEFAULT_SAMPLING_STEPS, chunk_rows: int = SAMPLE_CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """`count` rows as a stream of chunks of at most `chunk_rows` (each with its own seed from `seed`), so any
    number of rows is generated in memory bounded by one chunk. ddpm samples by a respaced chain through
    `sampling_steps` timesteps (its own timestep count: synthcity's ancestral sampler). Progress is logged.

    A chunk with NaN or infinite values is not given out: it is drawn again (`_draw_chunk`) with other seeds, then
    (ddpm) with x̂₀ clamped to the training range if the model was not, then with synthcity's ancestral sampler;
    what helped stays on for the chunks after it. Each recovery is logged and added to `fitted.recoveries`. When
    none helps, or the model's weights are not finite (nothing can), `GenerationError` with a `diagnosis`."""
    import numpy as np

    if count < 1:
        raise GenerationError(f"Asked for {count} synthetic rows; ask for at least one.")
    if chunk_rows < 1 or sampling_steps < 1:
        raise GenerationError(f"chunk_rows and sampling_steps must be positive, got {chunk_rows} and {sampling_steps}.")
    sizes = [min(chunk_rows, count - start) for start in range(0, count, chunk_rows)]
    # One independent seed per chunk (synthcity re-seeds every generate call: equal seeds give equal chunks).
    chunk_seeds = np.random.SeedSequence(seed).generate_state(len(sizes)).tolist()
    steps = sampling_steps
    done, start = 0, time.perf_counter()
    for size, chunk_seed in zip(sizes, chunk_seeds):
        chunk, steps = _draw_chunk(fitted, size, chunk_seed, steps, chunk_rows, log)
        if len(chunk) < size:
            raise GenerationError(f"{fitted.plugin_name} produced {len(chunk)} rows, {size} were asked for.")
        done += size
        if len(sizes) > 1 and done < count:
            elapsed = time.perf_counter() - start
            log(f"sampled {done}/{count} rows, {elapsed:.0f} s so far, about {elapsed / done * (count - done):.0f} s left")
        yield chunk.reset_index(drop=True)


def _draw_chunk(
    fitted: FittedGenerator, size: int, seed: int, steps: int, chunk_rows: int, log: Callable[[str], None],
) -> tuple[pd.DataFrame, int]:
    """One chunk of `size` finite rows and the sampling steps that gave them, trying in turn: the chunk's seed;
    `RESEED_ATTEMPTS` other seeds (a rare overflow in some draws); ddpm only: x̂₀ clamped to the training range
    when the model was not (`clamp_ddpm_denoising_to_training_range`; unclamped, a high learning rate gives NaN
    rows from finite weights), then synthcity's ancestral sampler (every timestep) instead of the respaced chain."""
    import numpy as np

    plugin = fitted.plugin_name
    is_ddpm = plugin == "ddpm"
    model_steps = int(fitted.model.model.diffusion.num_timesteps) if is_ddpm else steps
    other_seeds = np.random.SeedSequence([seed, 1]).generate_state(RESEED_ATTEMPTS + 2).tolist()
    plan: list[tuple[str, int, int]] = [("draw", steps, seed)]
    plan += [("other_seed", steps, other) for other in other_seeds[:RESEED_ATTEMPTS]]
    if is_ddpm and not is_clamped(fitted.model):
        plan.append(("clamp_denoising", steps, other_seeds[RESEED_ATTEMPTS]))
    if is_ddpm and steps < model_steps:
        plan.append(("ancestral_sampler", model_steps, other_seeds[RESEED_ATTEMPTS + 1]))
    failures: list[dict] = []
    for action, attempt_steps, attempt_seed in plan:
        if action == "clamp_denoising":
            clamp_ddpm_denoising_to_training_range(fitted.model)
        sampler = fast_sampling(fitted.model, attempt_steps, chunk_rows) if is_ddpm else contextlib.nullcontext()
        try:
            with sampler, heap_for_large_allocations():
                chunk = fitted.model.generate(count=size, random_state=attempt_seed).dataframe()
            rows, columns = _non_finite(chunk)
        except NonFiniteDraws as exc:
            rows, columns = exc.rows, exc.columns
        except Exception as exc:
            raise GenerationError(f"{plugin} failed to sample {size} rows: {type(exc).__name__}: {exc}") from exc
        if not rows:
            if failures:
                record = {"stage": "sampling", "plugin": plugin, "action": action, "seed": attempt_seed,
                          "sampling_steps": attempt_steps, "failed_attempts": failures}
                fitted.recoveries.append(record)
                log(f"{plugin}: the chunk of {size} rows came out finite after {_describe(action, attempt_steps)}")
            return chunk, attempt_steps
        failures.append({"action": action, "seed": attempt_seed, "sampling_steps": attempt_steps,
                         "non_finite_rows": rows, "columns": columns})
        log(f"{plugin}: {rows} of {size} sampled rows hold NaN or infinite values (in {columns[:10]}) "
            f"after {_describe(action, attempt_steps)}")
        if action == "draw" and not _finite_weights(fitted.model):
            break  # the weights themselves are NaN or infinite: no seed or sampler can help
    weights_finite = _finite_weights(fitted.model)
    what = ("the model's weights are NaN or infinite: its training diverged" if not weights_finite
            else f"every recovery ({', '.join(_describe(f['action'], f['sampling_steps']) for f in failures[1:])}) "
                 "still gave NaN or infinite rows")
    diagnosis = divergence_diagnosis(
        "sampling", plugin, "nan_draws", f"{plugin} sampled NaN or infinite values in columns {failures[-1]['columns']}: {what}",
        fitted.params, fitted.recoveries + [{"stage": "sampling", "plugin": plugin, "action": "failed", "failed_attempts": failures}],
        columns=failures[-1]["columns"], weights_finite=weights_finite)
    raise GenerationError(
        f"{plugin} failed to sample {size} finite rows: {failures[-1]['non_finite_rows']} held NaN or infinite values "
        f"(columns {failures[-1]['columns'][:10]}); {what}. {diagnosis['suggestion'][0].upper()}{diagnosis['suggestion'][1:]}.",
        diagnosis)


def _describe(action: str, steps: int) -> str:
    return {"draw": "the first draw", "other_seed": "a draw with another seed",
            "clamp_denoising": "clamping the denoised x̂₀ to the training range",
            "ancestral_sampler": f"synthcity's ancestral sampler ({steps} steps)"}[action]


def _non_finite(chunk: pd.DataFrame) -> tuple[int, list[str]]:
    """Rows of a sampled chunk with a missing or infinite value, and the columns that hold them."""
    import numpy as np

    bad = chunk.isna()
    numeric = chunk.select_dtypes("number")
    if numeric.shape[1]:
        bad[numeric.columns] |= ~np.isfinite(numeric.to_numpy(dtype=float))
    return int(bad.any(axis=1).sum()), [str(c) for c in bad.columns[bad.any(axis=0)]]


def _finite_weights(model: Any) -> bool:
    """Are all parameters of the plugin's torch modules finite (True when it has none: dummy_sampler)?"""
    import torch

    inner = getattr(model, "model", None)
    inner = getattr(inner, "diffusion", inner)  # ddpm: the sampling network (TabDDPM's unused EMA copy aside)
    if not isinstance(inner, torch.nn.Module):
        return True
    return all(bool(torch.isfinite(p).all()) for p in inner.parameters())


def sample(
    fitted: FittedGenerator, count: int, *, seed: int, log: Callable[[str], None] = lambda message: None,
    sampling_steps: int = DEFAULT_SAMPLING_STEPS, chunk_rows: int = SAMPLE_CHUNK_ROWS,
) -> pd.DataFrame:
    """`count` rows from a fitted generator in one frame (see `iter_sample`)."""
    chunks = list(iter_sample(fitted, count, seed=seed, log=log, sampling_steps=sampling_steps, chunk_rows=chunk_rows))
    return pd.concat(chunks, ignore_index=True)
