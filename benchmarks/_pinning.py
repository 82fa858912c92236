"""Give a benchmark process, and so both sides of a side-by-side comparison, the same cores.

Must run before jax is imported: XLA sizes its thread pools from the process's CPU affinity when
it starts. Torch is told separately with `torch.set_num_threads`.
"""

from __future__ import annotations

import os
import sys


def pin_threads(threads: int) -> None:
    """Restrict the process to the first `threads` cores it may use (and, with one thread,
    turn off XLA's multi-threaded Eigen pool as well)."""
    if "jax" in sys.modules:
        print("note: jax was imported before pin_threads(); its thread count is not pinned",
              file=sys.stderr)
    allowed = sorted(os.sched_getaffinity(0))
    if threads > len(allowed):
        raise SystemExit(f"--threads {threads}: only {len(allowed)} cores are available")
    os.sched_setaffinity(0, allowed[:threads])
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
        os.environ["XLA_FLAGS"] = flags.strip()


def tune_allocator(enabled: bool = True) -> str:
    """Raise glibc's malloc thresholds for the whole process, so for both sides alike
    (`sciops.tune_malloc`, what `sciops fit` does), and say what the allocator runs with."""
    from sciops import malloc_tuning_state, tune_malloc

    if enabled and not tune_malloc():
        return "glibc malloc defaults (tuning unavailable here)"
    state = malloc_tuning_state()
    if "hugetlb=1" in os.environ.get("GLIBC_TUNABLES", ""):
        state += ", GLIBC_TUNABLES hugetlb=1 (transparent huge pages for the heap)"
    return state + " (both sides)"
