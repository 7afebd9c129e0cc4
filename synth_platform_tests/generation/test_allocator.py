"""Large tensors from a reused heap while training and sampling (generation/allocator.py)."""

import contextlib
import json
import subprocess
import sys

import pandas as pd
import pytest

from synth_platform.generation import allocator, generators
from synth_platform.profiling.profile import encode_for_generation, profile_dataframe


# Run in a fresh interpreter: glibc serves a large request from a free heap chunk before it considers mmap, so in a
# process where earlier tests trained (and left large free chunks in the heap) "mmap'ed by default" need not hold.
MMAP_PROBE = r"""
import ctypes, json
import numpy as np
from synth_platform.generation import allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2

def mmapped_while_holding(n_bytes):
    before = libc.mallinfo2().hblkhd  # bytes malloc holds in mmap'ed blocks now
    block = np.ones(n_bytes, dtype=np.uint8)  # numpy allocates through malloc
    grown = libc.mallinfo2().hblkhd - before
    del block
    return grown

size = 48 << 20  # above glibc's largest mmap threshold (32 MiB): always mmap'ed by default
result = {"before": mmapped_while_holding(size)}
with allocator.heap_for_large_allocations() as applied:
    result["applied"] = applied
    with allocator.heap_for_large_allocations():  # nested: the inner exit must not restore mmap yet
        pass
    result["inside"] = mmapped_while_holding(size)
result["after"] = mmapped_while_holding(size)
print(json.dumps(result))
"""


@pytest.mark.skipif(
    not allocator.available(),
    reason="reads glibc's own counters (mallinfo2); on other C libraries heap_for_large_allocations does nothing by design",
)
def test_large_blocks_come_from_the_heap_inside_and_from_mmap_again_after():
    size = 48 << 20
    probe = subprocess.run([sys.executable, "-c", MMAP_PROBE], capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-3000:]
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["before"] >= size
    assert result["applied"] is True
    assert result["inside"] == 0
    assert result["after"] >= size


def test_training_and_sampling_are_bit_identical_with_the_heap_setting(credit, tmp_path, monkeypatch):
    """Only where memory comes from changes: the same seed gives the same rows with and without it."""
    profile = profile_dataframe(credit)
    encoded = encode_for_generation(credit, profile)
    params = {"n_iter": 2, "batch_size": 200, "decoder_n_layers_hidden": 3, "n_units_embedding": 64}

    def rows(workspace) -> pd.DataFrame:
        fitted = generators.fit_generator(encoded, "tvae", params, seed=3, workspace=workspace)
        return generators.sample(fitted, 500, seed=4)

    with_heap = rows(tmp_path / "heap")
    monkeypatch.setattr(generators, "heap_for_large_allocations", contextlib.nullcontext)
    without = rows(tmp_path / "mmap")
    pd.testing.assert_frame_equal(with_heap, without)
