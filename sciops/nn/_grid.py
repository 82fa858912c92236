"""Pointwise layers, domain padding and positional channels for fields on regular grids.

sciops stores and passes fields channel-first, `(channels, *spatial)`, and the layers here
act on that layout by default. Inside its layers the dense FNO works channels-LAST,
`(*spatial, channels)`, where every channel mix is one plain matrix product (faster on CPU,
see `sciops.nn._spectral.spectral_conv_dft`): the pointwise layers take `channel_axis=-1`
for that, and `pad_domain`/`unpad_domain` act on channels-last fields. Pointwise (1×1)
layers are resolution-agnostic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .. import _random

__all__ = ["ChannelLinear", "ChannelMLP", "grid_coordinates", "pad_domain", "unpad_domain"]


def grid_coordinates(spatial_shape: Sequence[int], dtype=jnp.float32
                     ) -> Float[Array, "dims *spatial"]:
    """The cell-centre coordinates $((j + 1/2)/s)$ of a grid on the unit cube, one channel per
    axis (axis order of the field, e.g. `(y, x)` for a `(channels, ny, nx)` field).

    Cell centres, not nodes $j/s$: a physical point keeps its coordinate when the grid is
    refined by any factor, matching `sciops.pde.darcy`'s cell-centred data.
    """
    axes = [(jnp.arange(s, dtype=dtype) + 0.5) / s for s in spatial_shape]
    return jnp.stack(jnp.meshgrid(*axes, indexing="ij"), axis=0)


def pad_domain(x: Float[Array, "*spatial channels"], fraction: float, n_space: int | None = None
               ) -> tuple[Float[Array, "*padded channels"], tuple[int, ...]]:
    """Zero-pad every spatial axis at its end by `round(fraction * size)` points.

    The spatial axes are the first `n_space` axes (default: all but the last, the channels;
    `x.ndim - 2` for the FNO's spatial-major batches `(*spatial, batch, channels)`).

    The FFT treats a field as periodic; a non-periodic problem (Darcy's Dirichlet boundary)
    couples opposite boundaries through that wrap-around. Padding puts a buffer in between
    that the network learns to use (Li et al. 2021 pad their Darcy FNO the same way).

    **Returns:** the padded field and the pad widths (for `unpad_domain`).
    """
    n_space = x.ndim - 1 if n_space is None else n_space
    widths = tuple(int(round(fraction * s)) for s in x.shape[:n_space])
    if not any(widths):
        return x, widths
    return jnp.pad(x, [(0, w) for w in widths] + [(0, 0)] * (x.ndim - n_space)), widths


def unpad_domain(x: Float[Array, "*padded channels"], widths: Sequence[int]
                 ) -> Float[Array, "*spatial channels"]:
    """Crop the padding added by `pad_domain`."""
    for d, w in enumerate(widths):
        if w:
            x = jax.lax.slice_in_dim(x, 0, x.shape[d] - w, axis=d)
    return x


class ChannelLinear(eqx.Module):
    """$y_o(x) = \\sum_i W_{oi} v_i(x) + b_o$ at every grid point (a 1×1 convolution).

    Initialised like `torch.nn.Conv` / `eqx.nn.Linear`: uniform in $\\pm 1/\\sqrt{C_{in}}$.
    `channel_axis` is 0 for `(channels, *spatial)` fields or -1 for `(*spatial, channels)`.
    """

    weight: Float[Array, "out_channels in_channels"]
    bias: Float[Array, " out_channels"] | None
    channel_axis: int = eqx.field(static=True)

    def __init__(self, in_channels: int, out_channels: int, use_bias: bool = True,
                 dtype=None, channel_axis: int = 0, *, key: PRNGKeyArray):
        if channel_axis not in (0, -1):
            raise ValueError(f"channel_axis: expected 0 or -1, got {channel_axis}")
        self.channel_axis = channel_axis
        dtype = jnp.float32 if dtype is None else dtype
        kw, kb = jax.random.split(key)
        lim = 1.0 / math.sqrt(in_channels)
        self.weight = _random.uniform(kw, (out_channels, in_channels), dtype, -lim, lim)
        self.bias = (_random.uniform(kb, (out_channels,), dtype, -lim, lim)
                     if use_bias else None)

    def last(self, x: Float[Array, "*points in_channels"]) -> Float[Array, "*points out_channels"]:
        """The map on a channels-last array, whatever `channel_axis` says."""
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias

    def __call__(self, x: Float[Array, "..."]) -> Float[Array, "..."]:
        if self.channel_axis == -1:
            return self.last(x)
        y = jnp.einsum("oi,i...->o...", self.weight, x)
        if self.bias is not None:
            y = y + self.bias.reshape((-1,) + (1,) * (x.ndim - 1))
        return y


class ChannelMLP(eqx.Module):
    """A pointwise MLP $W_2\\,\\sigma(W_1 v + b_1) + b_2$ on a field (the FNO's
    lifting $P$ and projection $Q$).

    **Arguments:**

    - `in_channels`, `out_channels`: channel counts.
    - `hidden_channels`: width of the hidden layer; `0` gives a single linear map.
    - `activation`: the nonlinearity (default GELU).
    - `channel_axis`: 0 for channel-first fields, -1 for channels-last.
    - `key`: PRNG key.
    """

    layers: tuple[ChannelLinear, ...]
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int,
                 activation: Callable[[Array], Array] = jax.nn.gelu, dtype=None,
                 channel_axis: int = 0, *, key: PRNGKeyArray):
        sizes = [in_channels] + ([hidden_channels] if hidden_channels else []) + [out_channels]
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(ChannelLinear(a, b, dtype=dtype, channel_axis=channel_axis, key=k)
                            for a, b, k in zip(sizes[:-1], sizes[1:], keys, strict=True))
        self.activation = activation

    def __call__(self, x: Float[Array, "..."]) -> Float[Array, "..."]:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)

    def last(self, x: Float[Array, "*points in_channels"]) -> Float[Array, "*points out_channels"]:
        """The MLP on a channels-last array, whatever `channel_axis` says."""
        for layer in self.layers[:-1]:
            x = self.activation(layer.last(x))
        return self.layers[-1].last(x)
