"""A strided convolutional encoder: a grid field (and an optional vector) to a feature vector."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._mlp import MLP

__all__ = ["ConvEncoder"]


class ConvEncoder(eqx.Module):
    """$x \\mapsto \\mathrm{MLP}([\\mathrm{flatten}(C_L \\circ \\cdots \\circ C_1(x)),\\, e])$ with
    $C_l = \\sigma(\\mathrm{conv}_{3, \\text{stride } 2})$: each layer halves the grid, the head
    sees the flattened coarse features and an optional extra vector $e$ (e.g. the coefficients of
    a parameterised term, as in the multi-task DeepONet branch of Kumar, Goswami et al. 2024).

    Works in 1, 2 or 3 spatial dimensions (the rank of `spatial_shape`). The grid size is fixed
    by the flattening, as for an MLP branch over sensors.

    **Arguments:**

    - `in_channels`: channels of the input field.
    - `spatial_shape`: the grid shape of one input.
    - `out_size`: size of the output vector.
    - `channels`: output channels of the strided convolutions.
    - `extra_size`: length of the extra vector concatenated before the head (0 for none).
    - `width`, `depth`: the head MLP's hidden width and number of hidden layers.
    - `activation`: the nonlinearity, injected.
    - `key`: PRNG key.
    """

    convs: tuple[eqx.nn.Conv, ...]
    head: MLP
    activation: Callable[[Array], Array] = eqx.field(static=True)
    extra_size: int = eqx.field(static=True)

    def __init__(self, in_channels: int, spatial_shape: Sequence[int], out_size: int,
                 channels: Sequence[int] = (16, 32, 64), extra_size: int = 0, width: int = 128,
                 depth: int = 1, activation: Callable[[Array], Array] = jax.nn.gelu, dtype=None,
                 *, key: PRNGKeyArray):
        dims = len(spatial_shape)
        keys = jax.random.split(key, len(channels) + 1)
        sizes = [in_channels, *channels]
        self.convs = tuple(
            eqx.nn.Conv(dims, a, b, kernel_size=3, stride=2, padding=1, key=k, dtype=dtype)
            for a, b, k in zip(sizes[:-1], sizes[1:], keys[:-1], strict=True))
        self.activation = activation
        self.extra_size = extra_size
        grid = list(spatial_shape)
        for _ in channels:  # kernel 3, stride 2, padding 1: n -> floor((n - 1) / 2) + 1
            grid = [(n - 1) // 2 + 1 for n in grid]
        flat = sizes[-1] * int(np.prod(grid))
        self.head = MLP(flat + extra_size, out_size, width, depth, activation, dtype=dtype,
                        key=keys[-1])

    def _features(self, x: Float[Array, "channels *spatial"]) -> Float[Array, " features"]:
        for conv in self.convs:
            x = self.activation(conv(x))
        return x.reshape(-1)

    def __call__(self, x: Float[Array, "channels *spatial"],
                 extra: Float[Array, " extra"] | None = None) -> Float[Array, " out"]:
        h = self._features(x)
        if self.extra_size:
            if extra is None or extra.shape != (self.extra_size,):
                raise ValueError(f"ConvEncoder: expected an extra vector of shape "
                                 f"({self.extra_size},), got "
                                 f"{None if extra is None else extra.shape}")
            h = jnp.concatenate([h, extra])
        return self.head(h)
