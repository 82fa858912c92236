"""The toy family's model: a pointwise two-layer map on grids after a frozen normaliser.

y = W2 tanh(W1 (x - mean) / std) + b per grid point; `norm` is frozen (fitted in `build`).
"""

import equinox as eqx
import jax
import jax.numpy as jnp


class Scale(eqx.Module):
    """A frozen scalar normaliser (the driver never hands frozen modules to the optimizer)."""

    __sciops_frozen__ = True
    mean: jax.Array
    std: jax.Array


class Pointwise(eqx.Module):
    norm: Scale
    first: eqx.nn.Linear
    second: eqx.nn.Linear

    def __call__(self, x):
        c = x.shape[0]
        z = (x - jax.lax.stop_gradient(self.norm.mean)) / jax.lax.stop_gradient(self.norm.std)
        h = jax.vmap(self.first, in_axes=1, out_axes=1)(z.reshape(c, -1))
        h = jax.vmap(self.second, in_axes=1, out_axes=1)(jnp.tanh(h))
        return h.reshape(-1, *x.shape[1:])
