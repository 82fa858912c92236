"""Random draws for initialisation and noise, drawn flat and reshaped.

`jax.random.normal(key, shape)` and `jax.random.normal(key, (prod(shape),)).reshape(shape)` give
the same numbers (with `jax_threefry_partitionable`, JAX's default, the counter of an element is
its row-major index), but XLA on the CPU compiles the threefry kernel far more slowly for a
many-axis shape: about 2.4 s for a `(4, 24, 24, 8, 5)` spectral weight against 0.25 s flat
(jax 0.10.2, one core, measured 2026-12-06). Every new shape compiles anew, so building a model
paid seconds per weight tensor: an FNO of width 32 (12x12 modes) took 7.3 s to import and build
before, 2.8 s drawn flat, with bit-identical parameters. The functions here draw flat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["normal", "uniform"]


def normal(key: PRNGKeyArray, shape: Sequence[int] = (), dtype=float) -> Float[Array, "..."]:
    """`jax.random.normal(key, shape, dtype)`, the same numbers, compiled as a 1-D draw.

    `dtype` defaults to `float`, as in JAX: float32, or float64 when `jax_enable_x64` is on.
    """
    shape = tuple(int(s) for s in shape)
    return jax.random.normal(key, (math.prod(shape),), dtype).reshape(shape)


def uniform(key: PRNGKeyArray, shape: Sequence[int] = (), dtype=float,
            minval=0.0, maxval=1.0) -> Float[Array, "..."]:
    """`jax.random.uniform(key, shape, dtype, minval, maxval)`, the same numbers, compiled as a
    1-D draw."""
    shape = tuple(int(s) for s in shape)
    return jax.random.uniform(key, (math.prod(shape),), dtype, minval, maxval).reshape(shape)
