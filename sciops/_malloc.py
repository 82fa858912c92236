"""Keep glibc's allocator from handing XLA's per-step buffers back to the kernel.

XLA on CPU allocates each executable's temporaries as one block per call (tens of MB for a
training step) and frees it at the end. glibc serves blocks above its mmap threshold (dynamic,
at most 32 MiB) with a fresh ``mmap`` and releases them with ``munmap``; smaller frees at the top
of the heap are trimmed back to the kernel. Either way the next step touches new pages: for
the FNO step of `benchmarks/fno_darcy_vs_neuralop.py` (batch 64 at 16²) about 9,800 page
faults and 16 ms of kernel time per 50 ms step on one core. Raising both thresholds keeps the
memory in the process (freed blocks are reused, page faults drop to ~1 per step): 51 → 42 ms
per step. The cost is that the process keeps its peak heap until it exits.

`tune_malloc` does this with ``mallopt`` at run time, so it works after the interpreter has
started. The training driver and the CLI call it; on other C libraries it does nothing.
Transparent huge pages for the heap can only be asked for before the process starts:
``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` (glibc ≥ 2.35) took the same step to ~34 ms
(docs/benchmarks.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

__all__ = ["tune_malloc"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LIMIT = 2**31 - 1   # mallopt takes an int: 2 GiB; larger blocks still come from mmap

_done: bool | None = None


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds to 2 GiB (once per process).

    **Returns:** whether the thresholds were set: False on a C library other than glibc, or
    when the environment variable ``SCIOPS_MALLOC_TUNING`` is ``0``.
    """
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("SCIOPS_MALLOC_TUNING", "1") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = (libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(_LIMIT)) == 1
              and libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(_LIMIT)) == 1)
    except (OSError, AttributeError):
        return False
    _done = ok
    return ok
