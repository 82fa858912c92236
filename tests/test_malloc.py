"""sciops.tune_malloc: freed large blocks stay in the process instead of being page-faulted in
again (what XLA's per-step temporaries need on CPU)."""

import os
import platform
import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, resource
from sciops._malloc import tune_malloc
tuned = tune_malloc()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
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


def _run(env_extra):
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc only")
def test_large_blocks_are_reused_not_faulted_in_again():
    tuned, faults = _run({})
    untuned, faults_default = _run({"SCIOPS_MALLOC_TUNING": "0"})
    assert tuned and not untuned
    # by default every 64 MiB block is a fresh mmap: 16,384 pages of 4 KiB each time
    assert faults_default > 10 * 8_000
    assert faults < 0.02 * faults_default
