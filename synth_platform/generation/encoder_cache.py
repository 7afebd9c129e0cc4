"""Fit synthcity's tabular data encoder once per (data, encoder settings) and reuse it. Pure logic: no Dagster.

synthcity's ctgan, tvae and dpgan start every fit by fitting a `TabularEncoder` on the training frame: a Bayesian
Gaussian mixture per continuous column (mode-specific normalisation) and a one-hot encoder per discrete one. On
Adult that is ~200 s of a fit whose epochs take seconds, and a tuning study pays it again in every trial. Here the
fitted encoder is kept, keyed by a hash of exactly the frame synthcity hands to it (values, dtypes, row order),
the encoder's settings and the synthcity version: the trials of a study (which share one fit/validation split),
the final fit and optimizer re-runs on the same training part, and the other plugins with the same encoder
settings all fit it once. With a directory it is pickled there, so a later run or another worker process on the
same data reuses it. Any change to the data or the settings is another key, hence a fresh fit, so an encoding is
always identical to the one synthcity would have fitted itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

# The synthcity modules that build a TabularEncoder inside a fit, by the name they imported it under.
ENCODER_USERS = ("synthcity.plugins.core.models.tabular_gan", "synthcity.plugins.core.models.tabular_vae")
_patch_lock = threading.RLock()


def frame_digest(frame: pd.DataFrame) -> str:
    """A hash of a frame's column names, dtypes and values (row order included)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def encoder_key(reference_digest: str, settings: dict[str, Any]) -> str:
    from importlib.metadata import version

    payload = json.dumps({"data": reference_digest, "settings": settings, "synthcity": version("synthcity")}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass
class EncoderCache:
    """Fitted encoders in memory and, with `directory`, on disk."""

    directory: Path | None = None
    log: Callable[[str], None] = lambda message: None
    fits: int = 0  # encoders this cache fitted
    loads: int = 0  # encoders it read from disk (the rest of the hits came from memory)
    hits: int = 0  # requests answered without fitting
    _memory: dict[str, Any] = field(default_factory=dict)

    def path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"tabular_encoder_{key}.pkl"

    def get(self, data: pd.DataFrame, settings: dict[str, Any], fit: Callable[[], Any]) -> Any:
        """The encoder for (`data`, `settings`): from memory, else from disk, else `fit()` (then stored)."""
        key = encoder_key(frame_digest(data), settings)
        if key in self._memory:
            self.hits += 1
            return self._memory[key]
        path = self.path(key)
        if path is not None and path.exists():
            try:
                with path.open("rb") as handle:
                    encoder = pickle.load(handle)
            except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
                self.log(f"ignoring unreadable encoder cache {path.name} ({type(exc).__name__}); fitting again")
            else:
                self.loads += 1
                self.hits += 1
                self.log(f"reusing the tabular encoder {path.name} (fitted by an earlier run)")
                self._memory[key] = encoder
                return encoder
        start = time.perf_counter()
        encoder = fit()
        self.fits += 1
        self.log(f"fitted the tabular encoder on {len(data)} rows in {time.perf_counter() - start:.1f} s; reused from now on")
        self._memory[key] = encoder
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                pickle.dump(encoder, handle, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)  # atomic: a concurrent reader sees no file or the whole file
        return encoder


@contextlib.contextmanager
def reuse_tabular_encoders(cache: EncoderCache | None) -> Iterator[None]:
    """While inside, every TabularEncoder that synthcity's GAN and VAE models fit comes from `cache` (fitted there
    on first use). With no cache, nothing changes."""
    if cache is None:
        yield
        return
    import importlib

    from synthcity.plugins.core.models.tabular_encoder import TabularEncoder

    class CachedTabularEncoder:
        """Stands in for the constructor call `TabularEncoder(**settings).fit(X)` in synthcity's models."""

        def __init__(self, **settings: Any) -> None:
            self.settings = settings

        def fit(self, raw_data: pd.DataFrame, discrete_columns: list | None = None) -> Any:
            settings = {**self.settings, "discrete_columns": discrete_columns}
            return cache.get(raw_data, settings, lambda: TabularEncoder(**self.settings).fit(raw_data, discrete_columns))

    with _patch_lock:
        modules = [importlib.import_module(name) for name in ENCODER_USERS]
        originals = [module.TabularEncoder for module in modules]
        for module in modules:
            module.TabularEncoder = CachedTabularEncoder
        try:
            yield
        finally:
            for module, original in zip(modules, originals):
                module.TabularEncoder = original
