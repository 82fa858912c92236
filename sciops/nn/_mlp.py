"""A multi-layer perceptron acting on one feature vector (vmap it over nodes, points, atoms)."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["MLP"]


class MLP(eqx.Module):
    """$x \\mapsto W_L\\,\\sigma(\\cdots\\sigma(W_1 x + b_1)\\cdots) + b_L$, with optional LayerNorm
    on the output (as MeshGraphNets uses on every MLP but the decoder).

    **Arguments:**

    - `in_size`, `out_size`: feature sizes.
    - `width`: hidden width; `depth`: number of hidden layers (0 gives one linear map).
    - `activation`: the nonlinearity, injected (default `jax.nn.gelu`).
    - `layer_norm`: apply LayerNorm to the output.
    - `key`: PRNG key.
    """

    layers: tuple[eqx.nn.Linear, ...]
    norm: eqx.nn.LayerNorm | None
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(self, in_size: int, out_size: int, width: int, depth: int,
                 activation: Callable[[Array], Array] = jax.nn.gelu, layer_norm: bool = False,
                 dtype=None, *, key: PRNGKeyArray):
        sizes = [in_size] + [width] * depth + [out_size]
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(eqx.nn.Linear(a, b, key=k, dtype=dtype)
                            for a, b, k in zip(sizes[:-1], sizes[1:], keys, strict=True))
        self.norm = eqx.nn.LayerNorm(out_size, dtype=dtype) if layer_norm else None
        self.activation = activation

    def __call__(self, x: Float[Array, " in_size"]) -> Float[Array, " out_size"]:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        x = self.layers[-1](x)
        if self.norm is not None:
            x = self.norm(x)
        return x
