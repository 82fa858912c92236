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
"""

import os

TEST_XLA_FLAGS = os.environ.get("SCIOPS_TEST_XLA_FLAGS", "--xla_backend_optimization_level=1")
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
if TEST_XLA_FLAGS not in os.environ["XLA_FLAGS"]:
    os.environ["XLA_FLAGS"] += " " + TEST_XLA_FLAGS

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_num_cpu_devices", 4)


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
