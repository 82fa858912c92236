"""`sciops._random` draws the same numbers as `jax.random`, in the same dtype."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciops import _random


@pytest.mark.parametrize("shape", [(), (7,), (3, 5), (2, 3, 4, 5)])
def test_normal_and_uniform_match_jax_random(shape):
    key = jax.random.key(11)
    np.testing.assert_array_equal(_random.normal(key, shape), jax.random.normal(key, shape))
    np.testing.assert_array_equal(
        _random.uniform(key, shape, minval=-2.0, maxval=3.0),
        jax.random.uniform(key, shape, minval=-2.0, maxval=3.0),
    )


def test_default_dtype_follows_x64(x64):
    key = jax.random.key(0)
    assert _random.normal(key, (2, 3)).dtype == jnp.float64
    assert _random.uniform(key, (2, 3)).dtype == jnp.float64
    np.testing.assert_array_equal(_random.normal(key, (2, 3)), jax.random.normal(key, (2, 3)))


def test_explicit_dtype():
    key = jax.random.key(0)
    assert _random.normal(key, (4, 2), jnp.bfloat16).dtype == jnp.bfloat16
