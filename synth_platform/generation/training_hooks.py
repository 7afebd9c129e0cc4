"""A call after every training epoch of any synthcity generator we fit, with a way to sample the model as trained
so far. Pure logic: no Dagster.

synthcity calls back per epoch only from TabDDPM (its `callbacks`). Its VAE (tvae) and GAN (ctgan, dpgan) loop
over epochs inside one `fit`, so a tuner could neither see how a trial is going nor stop a hopeless one early, and a
long fit logged nothing. Here the VAE's data loader and the GAN's epoch step are wrapped once per process; the
wrappers do nothing unless the calling thread is inside `watching(watcher)`, so fits in other threads, and fits
outside it, run exactly as synthcity wrote them.

`EpochEnd.sample` generates rows from the partly trained model through the plugin's own `generate` (decoding
included), leaving the training untouched: the random number generators (torch, NumPy, Python) and every module's
train/eval mode are restored afterwards, so a fit that is sampled at checkpoints trains bit-identically to one that is
not.

Divergence (a NaN or infinite training loss) is caught at the step it happens, in the same watched threads:

- ddpm: every step's loss passes through `DivergenceGuard.check_step` (TabDDPM's `mixed_loss`, wrapped). On a NaN or
  infinite loss the guard puts back the last good weights (those at the end of the last epoch whose weights were
  finite, or the initial ones), clears the optimizer's moments, halves the learning rate and lets the epoch go on
  (the step itself changes nothing), each time logged; after `max_recoveries` halvings it stops the fit at the end
  of the epoch with the last good weights, or, when no epoch ever ended with good weights, raises `TrainingDiverged`.
- tvae, ctgan, dpgan: synthcity raises at the step on a NaN loss (and we check the losses for infinities); that
  becomes `TrainingDiverged`, which `generators.fit_generator` answers by fitting again with half the learning rate.

A time limit (`EpochWatcher(time_limit=...)`, a `time_budget.FitTimeLimit`) ends a fit after the epoch its hook
says is the last, keeping the model as trained so far: TabDDPM through its own early stop (`should_stop`, as the
guard stops it), the VAE and GAN by `TimeLimitReached` raised at that epoch's end, which `generators.fit_generator`
catches and then marks the plugin fitted (synthcity does so only when its epoch loop runs to the end).
"""

from __future__ import annotations

import math
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

_local = threading.local()
_install_lock = threading.Lock()
_installed = False


@dataclass(frozen=True)
class EpochEnd:
    """What a training callback sees after each epoch."""

    epoch: int  # epochs done, from 1
    n_epochs: int  # epochs the fit was asked for
    loss: float | None  # the latest training loss the plugin logged (TabDDPM), else None
    sample: Callable[[int, int], pd.DataFrame]  # sample(count, seed): rows from the model as trained so far

    @property
    def fraction(self) -> float:
        return self.epoch / max(1, self.n_epochs)


class TrainingDiverged(Exception):
    """A training loss became NaN or infinite and the fit could not go on (raised at the step it happened)."""

    def __init__(self, plugin: str, loss: float, epoch: int, step: int, detail: str = "",
                 recoveries: list[dict] | None = None) -> None:
        self.plugin, self.loss, self.epoch, self.step = plugin, loss, epoch, step
        self.recoveries = list(recoveries or [])
        super().__init__(detail or f"{plugin}: training loss became {loss} at step {step} (epoch {epoch})")

    def __reduce__(self):  # keep the fields through pickling (process pools, Dagster)
        return (type(self), (self.plugin, self.loss, self.epoch, self.step, str(self), self.recoveries))


class TimeLimitReached(Exception):
    """Raised at the end of a VAE or GAN epoch when the fit's time is up; the weights as trained so far stay."""

    def __init__(self, plugin: str, epoch: int) -> None:
        self.plugin, self.epoch = plugin, epoch
        super().__init__(f"{plugin}: the fit's time is up after epoch {epoch}")

    def __reduce__(self):
        return (type(self), (self.plugin, self.epoch))


@dataclass
class DivergenceGuard:
    """Watches every training step of one TabDDPM fit for a NaN or infinite loss and recovers in place (see the
    module's docstring): back to the last good weights with half the learning rate, at most `max_recoveries` times,
    then a stop at the end of the epoch with the last good weights. Each recovery is logged and kept in `recoveries`
    (JSON-ready dicts)."""

    plugin: str
    max_recoveries: int
    log: Callable[[str], None] = lambda message: None
    recoveries: list[dict] = field(default_factory=list)
    stopped_at_epoch: int | None = None  # the epoch at whose end the fit stopped (recoveries used up)
    _good: list[Any] | None = None  # copies of the parameters of the last good state
    _good_epoch: int = 0  # epochs done at that state (0: the initial weights)
    _diffusion: Any = None
    _frozen: bool = False  # recoveries used up: the rest of this epoch leaves the weights as they are
    _steps: int = 0
    _epoch_clean: bool = True
    _last_finite: tuple[float, float] = (0.0, 0.0)  # the last finite (multinomial, Gaussian) step losses

    def check_step(self, diffusion: Any, tabddpm: Any, epoch: int, loss_multi: Any, loss_gauss: Any) -> tuple[Any, Any]:
        """The step's losses when finite; else, after putting back the last good state, stand-in losses whose
        backward pass leaves every gradient 0 (`_standing_in`). `epoch` counts from 1."""
        self._steps += 1
        if diffusion is not self._diffusion:  # the first step of this fit: the initial weights are good
            self._diffusion, self._good, self._good_epoch = diffusion, _copy_parameters(diffusion), 0
        if self._frozen:
            return self._standing_in(diffusion)
        multi, gauss = float(loss_multi.detach()), float(loss_gauss.detach())
        if math.isfinite(multi + gauss):
            self._last_finite = (multi, gauss)
            return loss_multi, loss_gauss
        self._epoch_clean = False
        self._recover(diffusion, tabddpm, epoch, multi + gauss, f"training loss became {multi + gauss} at step {self._steps}")
        return self._standing_in(diffusion)

    def epoch_end(self, tabddpm: Any, epoch: int) -> bool:
        """At the end of epoch `epoch` (from 1): its weights become the last good state when they are finite and no
        step of the epoch diverged. True when the fit must stop now (recoveries used up)."""
        diffusion = getattr(tabddpm, "diffusion", None)
        if diffusion is None or self._frozen or diffusion is not self._diffusion:
            return self._frozen
        if not _finite_parameters(diffusion):  # the epoch's last update broke the weights (its loss was finite)
            self._recover(diffusion, tabddpm, epoch, math.nan, "the weights became non-finite in the epoch's last step")
        elif self._epoch_clean:
            self._good, self._good_epoch = _copy_parameters(diffusion), epoch
        self._epoch_clean = True
        return self._frozen

    def _recover(self, diffusion: Any, tabddpm: Any, epoch: int, loss: float, what: str) -> None:
        _restore_parameters(diffusion, self._good)
        optimizer = tabddpm.optimizer
        optimizer.state.clear()  # Adam's moments hold the exploding gradients
        old_lr = float(tabddpm.lr)
        record = {"stage": "training", "plugin": self.plugin, "epoch": epoch, "step": self._steps,
                  "loss": _json_number(loss), "restored": _state_name(self._good_epoch), "lr_before": old_lr}
        if len(self.recoveries) < self.max_recoveries:
            tabddpm.lr = old_lr / 2  # TabDDPM anneals the optimizer's rate from this value at every step
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] / 2
            record.update(action="halved_lr", lr_after=tabddpm.lr)
            self.recoveries.append(record)
            self.log(f"{self.plugin}: {what} (epoch {epoch}); put back {_state_name(self._good_epoch)} "
                     f"and halved the learning rate {old_lr:g} → {tabddpm.lr:g} "
                     f"(recovery {len(self.recoveries)} of at most {self.max_recoveries})")
            return
        if self._good_epoch == 0:
            raise TrainingDiverged(
                self.plugin, loss, epoch, self._steps,
                f"{self.plugin}: {what} (epoch {epoch}) with the learning rate halved {len(self.recoveries)} time(s), "
                f"to {old_lr:g}, and no epoch had yet passed without diverging (no trained weights to stop with)",
                self.recoveries)
        tabddpm.lr = 0.0  # the rest of this epoch: no update, no weight decay
        for group in optimizer.param_groups:
            group["lr"] = 0.0
        self._frozen, self.stopped_at_epoch = True, epoch
        record.update(action="stopped_early", lr_after=old_lr)
        self.recoveries.append(record)
        self.log(f"{self.plugin}: {what} (epoch {epoch}) with the learning rate already halved {len(self.recoveries) - 1} "
                 f"time(s); training stops at the end of this epoch with {_state_name(self._good_epoch)}")

    def _standing_in(self, diffusion: Any) -> tuple[Any, Any]:
        """Losses for a step that must change nothing: 0 · Σ parameters (its gradient is 0 for every finite,
        restored parameter) plus the last finite step losses, so TabDDPM's logged loss history (which a tuner reads)
        carries those instead of NaN or a fake 0."""
        zero = sum(p.sum() * 0.0 for p in diffusion.parameters())
        return zero + self._last_finite[0], zero + self._last_finite[1]


def _state_name(epoch: int) -> str:
    return "the initial weights" if epoch == 0 else f"the weights after epoch {epoch}"


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _copy_parameters(module: Any) -> list[Any]:
    return [p.detach().clone() for p in module.parameters()]


def _restore_parameters(module: Any, saved: list[Any] | None) -> None:
    import torch

    if saved is None:
        return
    with torch.no_grad():
        for parameter, value in zip(module.parameters(), saved):
            parameter.copy_(value)


def _finite_parameters(module: Any) -> bool:
    import torch

    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


class EpochWatcher:
    """Counts the epochs of one fit, logs progress about every tenth of them (with the time left) and calls
    `on_epoch_end(EpochEnd)` after each; exceptions it raises stop the fit and propagate. With a `guard` (ddpm),
    every training step's loss is checked for divergence; for the other plugins a NaN or infinite loss raises
    `TrainingDiverged` (`diverged`). With a `time_limit` (`time_budget.FitTimeLimit`) the fit ends after the epoch
    whose end it finds nearest its deadline (see the module's docstring), and it logs the progress instead (the
    time used and left, not the epochs, which are only an upper bound then)."""

    def __init__(self, plugin: str, n_epochs: int, log: Callable[[str], None] = lambda message: None,
                 on_epoch_end: Callable[[EpochEnd], None] | None = None, guard: DivergenceGuard | None = None,
                 time_limit: Any = None) -> None:
        self.plugin, self.n_epochs, self.log, self.on_epoch_end = plugin, max(1, int(n_epochs)), log, on_epoch_end
        self.guard, self.time_limit = guard, time_limit
        self.model: Any = None  # the synthcity plugin being fitted, set before its fit starts
        self.epoch, self.start = 0, time.perf_counter()
        self.stop = False  # the guard stops the fit at the end of this epoch

    def begin(self) -> None:
        self.epoch, self.start = 0, time.perf_counter()
        if self.time_limit is not None:
            self.time_limit.begin()

    def diverged(self, loss: float, detail: str) -> TrainingDiverged:
        """The error for a NaN or infinite loss of a plugin without in-place recovery (tvae, ctgan, dpgan)."""
        epoch = self.epoch + 1
        return TrainingDiverged(self.plugin, loss, epoch, 0, f"{self.plugin}: {detail} in epoch {epoch}")

    def epoch_done(self, tabddpm: Any = None) -> None:
        self.epoch += 1
        if self.guard is not None and tabddpm is not None:
            self.stop = self.guard.epoch_end(tabddpm, self.epoch)
        if self.on_epoch_end is not None:
            model = self.model
            self.on_epoch_end(EpochEnd(
                self.epoch, self.n_epochs, latest_loss(model),
                lambda count, seed: sample_while_training(model, count, seed),
            ))
        if self.time_limit is not None:
            if not self.stop and self.time_limit.epoch_end(self.epoch, tabddpm):
                self.stop = True
                if tabddpm is None:  # the VAE and GAN loops have no early stop of their own to ask
                    raise TimeLimitReached(self.plugin, self.epoch)
            return
        n = self.n_epochs
        if self.epoch < n and self.epoch * 10 // n > (self.epoch - 1) * 10 // n:
            elapsed = time.perf_counter() - self.start
            left = elapsed / self.epoch * (n - self.epoch)
            self.log(f"{self.plugin}: epoch {self.epoch}/{n}, {elapsed:.0f} s so far, about {left:.0f} s left")


def latest_loss(model: Any) -> float | None:
    """The last training loss synthcity's TabDDPM logged (every `log_interval` steps), if any."""
    history = getattr(getattr(model, "model", None), "loss_history", None)
    if isinstance(history, list) and history:
        return float(history[-1][-1])
    return None


def synthcity_callback(watcher: EpochWatcher) -> Any:
    """The watcher as a synthcity `Callback`, for the plugins that take `callbacks` (TabDDPM); `watching` starts
    its count and clock, as for the others."""
    from synthcity.utils.callbacks import Callback

    class WatcherCallback(Callback):
        def on_fit_begin(self, model: Any) -> None:
            pass

        def on_epoch_begin(self, model: Any) -> None:
            pass

        def on_epoch_end(self, model: Any) -> None:
            watcher.epoch_done(model)
            if watcher.stop:
                model.should_stop = True  # TabDDPM leaves its epoch loop right after this callback

        def on_fit_end(self, model: Any) -> None:
            pass

    return WatcherCallback()


@contextmanager
def watching(watcher: EpochWatcher) -> Iterator[EpochWatcher]:
    """While inside, VAE and GAN fits in this thread call `watcher.epoch_done()` after every epoch."""
    _install()
    previous = getattr(_local, "watcher", None)
    _local.watcher = watcher
    watcher.begin()
    try:
        yield watcher
    finally:
        _local.watcher = previous


def _current() -> EpochWatcher | None:
    return getattr(_local, "watcher", None)


class _EpochEndLoader:
    """Iterates the wrapped data loader; every complete pass is one epoch done."""

    def __init__(self, loader: Any, watcher: EpochWatcher) -> None:
        self.loader, self.watcher = loader, watcher

    def __iter__(self) -> Iterator[Any]:
        yield from self.loader
        self.watcher.epoch_done()

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


_SYNTHCITY_NAN = "NaNs detected"  # how synthcity's GAN and VAE report a NaN loss (a RuntimeError)


def _install() -> None:
    """Wrap synthcity's VAE data loader and loss, GAN epoch step and TabDDPM step loss, once per process."""
    global _installed
    with _install_lock:
        if _installed:
            return
        import torch
        from synthcity.plugins.core.models.gan import GAN
        from synthcity.plugins.core.models.tabular_ddpm.gaussian_multinomial_diffsuion import GaussianMultinomialDiffusion
        from synthcity.plugins.core.models.vae import VAE

        vae_dataloader, vae_loss, gan_train_epoch = VAE._dataloader, VAE._loss_function, GAN._train_epoch
        ddpm_loss = GaussianMultinomialDiffusion.mixed_loss

        def _dataloader(self: Any, *args: Any, **kwargs: Any) -> Any:
            loader = vae_dataloader(self, *args, **kwargs)
            watcher = _current()
            return loader if watcher is None else _EpochEndLoader(loader, watcher)

        def _loss_function(self: Any, *args: Any, **kwargs: Any) -> Any:
            watcher = _current()
            if watcher is None:
                return vae_loss(self, *args, **kwargs)
            try:
                loss = vae_loss(self, *args, **kwargs)
            except RuntimeError as exc:
                if _SYNTHCITY_NAN not in str(exc):
                    raise
                raise watcher.diverged(math.nan, f"training loss became nan ({exc})") from exc
            value = float(loss.detach())
            if not math.isfinite(value):
                raise watcher.diverged(value, f"training loss became {value}")
            return loss

        def _train_epoch(self: Any, *args: Any, **kwargs: Any) -> Any:
            watcher = _current()
            if watcher is None:
                return gan_train_epoch(self, *args, **kwargs)
            try:
                result = gan_train_epoch(self, *args, **kwargs)
            except RuntimeError as exc:
                if _SYNTHCITY_NAN not in str(exc):
                    raise
                raise watcher.diverged(math.nan, f"training loss became nan ({exc})") from exc
            losses = [float(value) for value in result]  # the epoch's mean generator and discriminator losses
            if not all(math.isfinite(value) for value in losses):
                raise watcher.diverged(next(v for v in losses if not math.isfinite(v)),
                                       f"the generator / discriminator losses became {losses}")
            watcher.epoch_done()
            return result

        def _mixed_loss(self: Any, *args: Any, **kwargs: Any) -> Any:
            loss_multi, loss_gauss = ddpm_loss(self, *args, **kwargs)
            watcher = _current()
            if watcher is None or watcher.guard is None or not torch.is_grad_enabled():
                return loss_multi, loss_gauss
            tabddpm = getattr(watcher.model, "model", None)
            if tabddpm is None or getattr(tabddpm, "diffusion", None) is not self:
                return loss_multi, loss_gauss  # not the fit this thread watches
            return watcher.guard.check_step(self, tabddpm, watcher.epoch + 1, loss_multi, loss_gauss)

        VAE._dataloader, VAE._loss_function, GAN._train_epoch = _dataloader, _loss_function, _train_epoch
        GaussianMultinomialDiffusion.mixed_loss = _mixed_loss
        _installed = True


def sample_while_training(model: Any, count: int, seed: int) -> pd.DataFrame:
    """`count` rows from a synthcity plugin in the middle of its fit, through its own `generate` (so decoded as a
    finished model's rows are), without disturbing the fit: random states and module modes are restored."""
    import torch

    layers = [model, getattr(model, "model", None), getattr(getattr(model, "model", None), "model", None)]
    modes = {id(m): (m, m.training) for layer in layers if isinstance(layer, torch.nn.Module) for m in layer.modules()}
    states = torch.get_rng_state(), np.random.get_state(), random.getstate()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    fitted = model.fitted
    model.fitted = True  # synthcity refuses to generate before fit returns; the weights are usable at any epoch
    try:
        with torch.no_grad():
            return model.generate(count=count, random_state=seed).dataframe()
    finally:
        model.fitted = fitted
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        for m, training in modes.values():
            m.training = training
