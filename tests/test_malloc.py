"""sciops.tune_malloc: freed large blocks stay in the process instead of being page-faulted in
again (what XLA's per-step temporaries need on CPU).

The default run checks the allocator's decision itself, which does not depend on the machine:
after `tune_malloc` a 64 MiB block comes from the heap (glibc's chunk header has no IS_MMAPPED
bit) and the same block is handed out again after `free`; by default it is a fresh `mmap`.
The page-fault count that this saves depends on the kernel (transparent huge pages fault
2 MiB at a time, memory cgroups, overcommit) and runs under the `slow` marker.
"""

import os
import platform
import subprocess
import sys

import pytest

from sciops import _malloc

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="tunes glibc's malloc only")

# glibc's malloc_chunk: the size word sits just before the user pointer; bit 0x2 = IS_MMAPPED
CHUNK = """
import ctypes
import importlib.util, sys
spec = importlib.util.spec_from_file_location("_malloc", sys.argv[1])  # stdlib only: no jax
malloc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(malloc)
tuned = malloc.tune_malloc()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
p = libc.malloc(64 << 20)
mmapped = bool(ctypes.c_size_t.from_address(p - ctypes.sizeof(ctypes.c_size_t)).value & 2)
libc.free(p)
q = libc.malloc(64 << 20)
print(tuned, mmapped, p == q)
libc.free(q)
"""

FAULTS = """
import ctypes, resource
import importlib.util, sys
spec = importlib.util.spec_from_file_location("_malloc", sys.argv[1])  # stdlib only: no jax
malloc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(malloc)
tuned = malloc.tune_malloc()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def block():                              # a 64 MiB block, written, freed: XLA's temp buffer
    p = libc.malloc(64 << 20)
    ctypes.memset(p, 1, 64 << 20)
    libc.free(p)
block()                                   # warm up: the heap grows once
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    block()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def _run(script, env_extra):
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-c", script, _malloc.__file__], env=env,
                          capture_output=True,
                          text=True, check=True, timeout=300).stdout.split()


def test_large_blocks_come_from_the_heap_and_are_reused():
    assert _run(CHUNK, {}) == ["True", "False", "True"]  # tuned, heap chunk, same block again
    tuned, mmapped, _ = _run(CHUNK, {"SCIOPS_MALLOC_TUNING": "0"})
    # glibc's default: above its mmap threshold (at most 32 MiB) every block is a fresh mmap
    assert (tuned, mmapped) == ("False", "True")


@pytest.mark.slow  # counts page faults: the kernel's page size and THP policy set the numbers
def test_large_blocks_are_reused_not_faulted_in_again():
    tuned, faults = _run(FAULTS, {})
    untuned, faults_default = _run(FAULTS, {"SCIOPS_MALLOC_TUNING": "0"})
    assert tuned == "True" and untuned == "False"
    # by default every 64 MiB block is a fresh mmap: 16,384 pages of 4 KiB each time
    assert int(faults_default) > 10 * 8_000
    assert int(faults) < 0.02 * int(faults_default)
