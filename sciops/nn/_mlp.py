"""A multi-layer perceptron acting on one feature vector (vmap it over nodes, points, atoms)."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
from jaxtyping import Array, Float, PRNGKeyArray

from ._precision import remat_block

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

    def __call__(self, x: Float[Array, " in_size"], *, remat_layers: bool = False
                 ) -> Float[Array, " out_size"]:
        """The MLP on one feature vector; with `remat_layers` each hidden layer is one block
        for `sciops.nn.remat_block` (for an MLP that is itself a model's stack of blocks)."""
        hidden = remat_block(_hidden_layer) if remat_layers else _hidden_layer
        for layer in self.layers[:-1]:
            x = hidden(layer, self.activation, x)
        x = self.layers[-1](x)
        if self.norm is not None:
            x = self.norm(x)
        return x


def _hidden_layer(layer: eqx.nn.Linear, activation: Callable[[Array], Array],
                  x: Float[Array, " in_size"]) -> Float[Array, " width"]:
    return activation(layer(x))
