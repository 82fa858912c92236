"""Shared test setup: 4 virtual CPU devices, seeded keys, one tolerance helper.

The device count must be set before JAX first touches a device, hence at import here.

The tests also compile with XLA's backend optimisation at level 1 instead of the default
(`TEST_XLA_FLAGS`, overridable with the environment variable `SCIOPS_TEST_XLA_FLAGS`; inherited
by the CLI, notebook and multi-process tests' subprocesses): the suite compiles hundreds of small
programs and runs most only a few times, so the full LLVM pipeline costs more than it saves.
Measured on one core: tests/test_fno.py 99 s at the default, 56 s at level 1 (43 s at level 0,
which made the training-heavy notebooks up to 6x slower); the wave-CNN training tests 24 -> 17 s,
its notebook 32 -> 25 s. Benchmarks and users keep XLA's defaults. Code generation may round
differently in the last bits, so a test that compares runs bit for bit must run both with
these flags (test_train's killed subprocess does).

Nothing a test runs writes outside its temporary folders: at import (before matplotlib, IPython
or a notebook kernel read them) the cache, config, data and temporary-file locations point into
one throw-away folder per pytest process, removed when it exits (`SANDBOX_ENV`). Subprocesses and
notebook kernels inherit them: the CP-factor cache of `sciops.nn` ($XDG_CACHE_HOME/sciops/cp),
matplotlib's font cache, IPython's history, Jupyter's kernel connection files and the notebooks'
`tempfile.mkdtemp()` folders are all made fresh, so no run sees another run's files.

Multi-process and notebook tests (`SERIAL_FILES`) run one at a time, in one xdist group,
while the other worker goes on with the rest: two JAX processes with a gloo/gRPC coordinator
and a notebook kernel (several ZMQ ports) never compete for the 2 cores or for ports. Every
other test file is a group of its own, which keeps `--dist loadfile`'s behaviour (module
fixtures built once) under `--dist loadgroup`.
"""

import atexit
import fnmatch
import os
import shutil
import tempfile

TEST_XLA_FLAGS = os.environ.get("SCIOPS_TEST_XLA_FLAGS", "--xla_backend_optimization_level=1")
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
if TEST_XLA_FLAGS not in os.environ["XLA_FLAGS"]:
    os.environ["XLA_FLAGS"] += " " + TEST_XLA_FLAGS

# -- a private home for caches and temporary files -----------------------------------------------
tempfile.gettempdir()  # cached before TMPDIR changes: pytest's own basetemp stays where it was
_SANDBOX = tempfile.mkdtemp(prefix="sciops-tests-")
atexit.register(shutil.rmtree, _SANDBOX, True)
SANDBOX_ENV = {
    "XDG_CACHE_HOME": "cache",          # sciops' CP-factor cache, pip, fontconfig, ...
    "XDG_CONFIG_HOME": "config",        # no user config file changes a test (matplotlibrc, ase)
    "XDG_DATA_HOME": "data",            # jupyter's data folder (kernel connection files)
    "XDG_STATE_HOME": "state",
    "MPLCONFIGDIR": "matplotlib",       # matplotlib's font cache and config
    "IPYTHONDIR": "ipython",            # notebook kernels' history database and profile
    "JUPYTER_RUNTIME_DIR": "jupyter-runtime",
    "TMPDIR": "tmp",                    # subprocesses' and kernels' tempfile.mkdtemp() folders
}
for _var, _sub in SANDBOX_ENV.items():
    os.environ[_var] = os.path.join(_SANDBOX, _sub)
    os.makedirs(os.environ[_var], exist_ok=True)

# -- one compilation cache per pytest process, shared with its subprocesses and kernels ----------
# Many tests compile the same small programs (a tiny FNO's step in-process, then again in a
# `sciops fit` subprocess or a notebook kernel). JAX's persistent cache, in this process's
# throw-away folder (so no run ever reads another run's entries), lets the later ones load the
# executable instead of compiling it: measured 141 -> 119 s wall for test_cli, test_cli_messages,
# test_track, test_run_folder and test_train together (-n0, load 1-4). A cache miss or an entry
# that cannot be read only means compiling again; the programs and results are the same.
_CACHE_ENV = {"JAX_COMPILATION_CACHE_DIR": os.path.join(_SANDBOX, "jax-cache"),
              "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
              "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
if os.environ.get("SCIOPS_TEST_JAX_CACHE", "1") != "0":
    os.environ.update(_CACHE_ENV)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_num_cpu_devices", 4)


# -- scheduling: one serial group for multi-process and notebook tests --------------------------
# glob patterns of test file names; a file matching one runs in the group "serial"
SERIAL_FILES = ("test_distributed*.py", "test_examples_*.py",
                "test_hpc_scripts.py")  # its launcher test trains in two processes


def pytest_configure(config):
    config.addinivalue_line("markers", "xdist_group(name): run in one xdist worker, in order")


def _serial(item) -> bool:
    return any(fnmatch.fnmatch(item.path.name, pattern) for pattern in SERIAL_FILES)


@pytest.hookimpl(tryfirst=True)  # before xdist appends the group name to the test ids
def pytest_collection_modifyitems(config, items):
    for item in items:
        if not any(True for _ in item.iter_markers("xdist_group")):
            item.add_marker(pytest.mark.xdist_group("serial" if _serial(item)
                                                    else item.nodeid.split("::")[0]))
    # The serial group is the longest unit of work: first in the queue (`--no-loadscope-reorder`
    # keeps this order), so that the other worker's files fill the time beside it. A stable sort:
    # the order within (pytest-randomly's shuffle, if asked for) stays.
    items.sort(key=lambda item: not _serial(item))


@pytest.fixture
def getkey():
    """A fresh, deterministic PRNG key on every call (seeded per test)."""
    keys = iter(jax.random.split(jax.random.key(0), 1000))
    return lambda: next(keys)


def tree_allclose(a, b, *, rtol=1e-6, atol=1e-6) -> bool:
    """True if two pytrees have the same structure and all leaves agree.

    Default tolerances 1e-6 suit float32 results of the same computation executed differently
    (sharded vs single device, factored vs reconstructed); pass looser ones for approximations.
    """
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    if ta != tb:
        return False
    return all(np.allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol) for x, y in zip(la, lb, strict=True))


@pytest.fixture
def x64():
    """Run a numerics check in double precision, restoring the flag afterwards."""
    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", prev)


__all__ = ["tree_allclose", "jnp"]
