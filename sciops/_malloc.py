"""Keep glibc's allocator from handing XLA's per-step buffers back to the kernel.

XLA on CPU allocates each executable's temporaries as one block per call (tens to hundreds of
MB for a training step) and frees it at the end. glibc serves a block above its mmap threshold
(dynamic, at most 32 MiB) with a fresh ``mmap`` and releases it with ``munmap``, trims freed
memory at the top of the heap back to the kernel, and gives every thread that allocates its own
arena, whose heaps are at most 64 MiB: a larger block allocated on one of XLA's worker threads
is always a fresh ``mmap``. Either way the next step touches new pages. Measured (one process,
this repository's 2-core CPU machine):

- the FNO step of `benchmarks/fno_darcy_vs_neuralop.py` (batch 64 at 16², one thread): about
  9,800 page faults and 16 ms of kernel time per 50 ms step; with the thresholds raised, ~1
  fault per step and 42 ms;
- ``sciops fit configs/darcy.yaml train.steps=150`` (both cores): 10.5 M page faults and 25 s of
  kernel time in 80 s; with the thresholds raised and one arena, 0.29 M faults, 2.6 s, 70 s.

`tune_malloc` raises the mmap and trim thresholds and limits glibc to one arena, with
``mallopt`` at run time, so it works after the interpreter has started (threads that already
have an arena keep it: call it before JAX starts computing). The cost is that the process keeps
its peak heap until it exits. The training driver and the CLI call it; on other C libraries it
does nothing. Transparent huge pages for the heap can only be asked for before the process
starts: ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` (glibc >= 2.35; docs/benchmarks/fno.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

__all__ = ["malloc_tuning_state", "tune_malloc"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_LIMIT = 2**31 - 1   # mallopt takes an int: 2 GiB; larger blocks still come from mmap

_done: bool | None = None
_state = "glibc malloc defaults"


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds to 2 GiB and use one arena (once per process).

    **Returns:** whether the allocator was tuned: False on a C library other than glibc, or
    when the environment variable ``SCIOPS_MALLOC_TUNING`` is ``0`` (``SCIOPS_MALLOC_ARENAS=0``
    keeps glibc's per-thread arenas and sets only the thresholds).
    """
    global _done, _state
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("SCIOPS_MALLOC_TUNING", "1") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    keep_arenas = os.environ.get("SCIOPS_MALLOC_ARENAS") == "0"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = (libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(_LIMIT)) == 1
              and libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(_LIMIT)) == 1
              and (keep_arenas or libc.mallopt(_M_ARENA_MAX, ctypes.c_int(1)) == 1))
    except (OSError, AttributeError):
        return False
    if ok:
        _state = ("mmap/trim thresholds raised to 2 GiB, "
                  + ("glibc's per-thread arenas kept" if keep_arenas else "one arena"))
    _done = ok
    return ok


def malloc_tuning_state() -> str:
    """What `tune_malloc` has set in this process, in words (for benchmark reports)."""
    return _state
