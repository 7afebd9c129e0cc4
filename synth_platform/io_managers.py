"""The IO manager of every asset: Dagster's filesystem pickles, sealed (see `sealed_storage`).

`source_sample` and `profiled_dataset` hold source rows, `tuned_hyperparameters` names the Optuna storage; Dagster
keeps every asset value as a pickle under `$DAGSTER_HOME/storage`. This manager writes the same pickles encrypted,
owner-only (0600), so nothing under `$DAGSTER_HOME` holds a readable source value.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager

from synth_platform.sealed_storage import private_directory, seal, unseal, write_private_bytes


class SealedPickleIOManager(PickledObjectFilesystemIOManager):
    extension = ".sealed"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path) -> None:
        write_private_bytes(Path(str(path)), seal(pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)))

    def load_from_path(self, context: dg.InputContext, path) -> Any:
        what = f"the stored value of {context.asset_key.to_user_string() if context.has_asset_key else 'an input'}"
        return pickle.loads(unseal(Path(str(path)).read_bytes(), what=what))


class SealedFilesystemIOManager(dg.ConfigurableIOManagerFactory):
    """Sealed pickles under `base_dir` (empty: the instance's storage directory, as Dagster's own)."""

    base_dir: str = ""

    def create_io_manager(self, context: dg.InitResourceContext) -> SealedPickleIOManager:
        base_dir = self.base_dir or context.instance.storage_directory()  # type: ignore[union-attr]
        private_directory(Path(base_dir))  # compute logs live here too: owner-only, like the sealed values
        return SealedPickleIOManager(base_dir=base_dir)
