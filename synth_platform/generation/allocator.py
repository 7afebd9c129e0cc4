"""Large tensors from a reused heap while training on CPU. Pure logic: no Dagster.

glibc's malloc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh `mmap`, and hands it
back with `munmap` when freed. Training on CPU allocates tensors of that size at every step (gradients, Adam's
intermediates, the activations of wide layers), so each step pays the kernel for zeroed pages again: a
`torch.sqrt` of a 3,432 × 3,432 weight takes 20 ms into a fresh tensor and 3.5 ms into a reused one on this
machine (profiled on a 5-layer tvae decoder of synthcity's search space, whose skip connections double the width per
layer: 17 M parameters). While inside `heap_for_large_allocations`, malloc keeps such blocks in its heap and reuses
them; on leaving, the heap is trimmed and mmap allowed again. The arithmetic is untouched (results are bit-identical);
only where the memory comes from changes. On a C library other than glibc nothing happens.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import platform
import threading
from typing import Iterator

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
GLIBC_DEFAULT_MMAP_MAX = 65_536
TRIM_THRESHOLD_INSIDE = 1 << 30  # never give the top of the heap back mid-training
TRIM_THRESHOLD_AFTER = 64 << 20  # glibc's own dynamic ceiling (twice the largest mmap threshold)

_lock = threading.Lock()
_depth = 0


@functools.cache  # platform.libc_ver() reads the interpreter's binary: once per process, not per fit or chunk
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def available() -> bool:
    """Whether this process's C library lets `heap_for_large_allocations` do anything."""
    return _glibc() is not None


@contextlib.contextmanager
def heap_for_large_allocations() -> Iterator[bool]:
    """While inside, large allocations are served from (and freed back to) malloc's heap instead of fresh mmaps.
    Nested or concurrent uses (threads of one process) share one setting; the last to leave restores mmap and trims
    the heap. Yields whether the setting applies here (glibc)."""
    global _depth
    libc = _glibc()
    if libc is None:
        yield False
        return
    with _lock:
        if _depth == 0:
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_INSIDE)
            libc.mallopt(M_MMAP_MAX, 0)
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(M_MMAP_MAX, GLIBC_DEFAULT_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_AFTER)
                libc.malloc_trim(0)  # give the freed blocks back to the system
