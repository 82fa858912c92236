"""Shared test setup: 4 virtual CPU devices, seeded keys, one tolerance helper.

The device count must be set before JAX first touches a device, hence at import here.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

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
    return all(np.allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol) for x, y in zip(la, lb))


@pytest.fixture
def x64():
    """Run a numerics check in double precision, restoring the flag afterwards."""
    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", prev)


__all__ = ["tree_allclose", "jnp"]
