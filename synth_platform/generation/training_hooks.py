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
"""

from __future__ import annotations

import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
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


class EpochWatcher:
    """Counts the epochs of one fit, logs progress about every tenth of them (with the time left) and calls
    `on_epoch_end(EpochEnd)` after each; exceptions it raises stop the fit and propagate."""

    def __init__(self, plugin: str, n_epochs: int, log: Callable[[str], None] = lambda message: None,
                 on_epoch_end: Callable[[EpochEnd], None] | None = None) -> None:
        self.plugin, self.n_epochs, self.log, self.on_epoch_end = plugin, max(1, int(n_epochs)), log, on_epoch_end
        self.model: Any = None  # the synthcity plugin being fitted, set before its fit starts
        self.epoch, self.start = 0, time.perf_counter()

    def begin(self) -> None:
        self.epoch, self.start = 0, time.perf_counter()

    def epoch_done(self) -> None:
        self.epoch += 1
        if self.on_epoch_end is not None:
            model = self.model
            self.on_epoch_end(EpochEnd(
                self.epoch, self.n_epochs, latest_loss(model),
                lambda count, seed: sample_while_training(model, count, seed),
            ))
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
            watcher.epoch_done()

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


def _install() -> None:
    """Wrap synthcity's VAE data loader and GAN epoch step, once per process."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from synthcity.plugins.core.models.gan import GAN
        from synthcity.plugins.core.models.vae import VAE

        vae_dataloader, gan_train_epoch = VAE._dataloader, GAN._train_epoch

        def _dataloader(self: Any, *args: Any, **kwargs: Any) -> Any:
            loader = vae_dataloader(self, *args, **kwargs)
            watcher = _current()
            return loader if watcher is None else _EpochEndLoader(loader, watcher)

        def _train_epoch(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = gan_train_epoch(self, *args, **kwargs)
            watcher = _current()
            if watcher is not None:
                watcher.epoch_done()
            return result

        VAE._dataloader, GAN._train_epoch = _dataloader, _train_epoch
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
