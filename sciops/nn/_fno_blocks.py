"""Building blocks of the Fourier layer beyond the spectral convolution (the MG-TFNO backbone).

Kossaifi et al. ("Multi-Grid Tensorized Fourier Neural Operator", TMLR 2024, §3.3) improve the
plain FNO layer $\\sigma(Wv + \\mathcal K v)$ with a channel MLP after each spectral convolution,
choices of skip connection, and normalisation. Layer $\\ell$ of `FNOBlocks` computes

$$z = N\\big(\\mathcal K_\\ell v\\big) + S_\\ell(v) + b_\\ell,\\qquad
  \\text{with an MLP: } z \\leftarrow N\\big(M_\\ell(\\sigma(z)) + S'_\\ell(v)\\big),\\qquad
  v \\leftarrow \\sigma(z)\\ \\text{(not after the last layer)},$$

where $S_\\ell$ and $S'_\\ell$ are skip connections (`LinearSkip` $Wv$, `SoftGating`
$\\mathrm{diag}(g)\\,v$, `IdentitySkip` $v$), $M_\\ell$ a pointwise two-layer MLP and $N$ a
normalisation (`InstanceNorm`, `GroupNorm`) or nothing. Every piece is pointwise in space or
normalises over the whole grid, so the layer stays resolution-agnostic. Each is injected as an
object, so a new skip or norm is a new class, not a new string in a switch.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .. import _random
from ._grid import ChannelLinear, ChannelMLP
from ._precision import at_least_float32

__all__ = ["AbstractSkip", "LinearSkip", "SoftGating", "IdentitySkip", "AbstractNorm",
           "InstanceNorm", "GroupNorm", "FNOBlocks"]


class AbstractSkip(eqx.Module):
    """A skip connection $S: (C, *\\text{spatial}) \\to (C, *\\text{spatial})$, pointwise in space.

    `last` applies it to channels-last arrays `(..., C)` (the FNO's batched layout); the
    default moves the channel axis, subclasses override it with the direct form.
    """

    @abc.abstractmethod
    def __call__(self, v: Float[Array, "channels *spatial"]) -> Float[Array, "channels *spatial"]:
        ...

    def last(self, v: Float[Array, "*points channels"]) -> Float[Array, "*points channels"]:
        return jnp.moveaxis(self(jnp.moveaxis(v, -1, 0)), 0, -1)


class LinearSkip(AbstractSkip):
    """$S(v) = Wv$, a 1×1 convolution without bias (torch's Conv init, $\\pm 1/\\sqrt C$)."""

    linear: ChannelLinear

    def __init__(self, channels: int, dtype=None, *, key: PRNGKeyArray):
        self.linear = ChannelLinear(channels, channels, use_bias=False, dtype=dtype, key=key)

    def __call__(self, v):
        return self.linear(v)

    def last(self, v):
        return self.linear.last(v)


class SoftGating(AbstractSkip):
    """$S(v)_c = g_c v_c$, one learned gate per channel, initialised to 1 (Kossaifi et al.)."""

    gate: Float[Array, " channels"]

    def __init__(self, channels: int, dtype=None, *, key: PRNGKeyArray | None = None):
        del key
        self.gate = jnp.ones((channels,), jnp.float32 if dtype is None else dtype)

    def __call__(self, v):
        return v * self.gate.reshape((-1,) + (1,) * (v.ndim - 1))

    def last(self, v):
        return v * self.gate


class IdentitySkip(AbstractSkip):
    """$S(v) = v$ (no parameters)."""

    def __init__(self, channels: int = 0, dtype=None, *, key: PRNGKeyArray | None = None):
        del channels, dtype, key

    def __call__(self, v):
        return v

    def last(self, v):
        return v


class AbstractNorm(eqx.Module):
    """A normalisation over the spatial axes of a channel-first field.

    `batched` applies it to every field of a spatial-major batch `(*spatial, batch, C)` (the
    FNO's batched layout); the default maps the channel-first form over the batch.
    """

    @abc.abstractmethod
    def __call__(self, v: Float[Array, "channels *spatial"]) -> Float[Array, "channels *spatial"]:
        ...

    def batched(self, v: Float[Array, "*spatial batch channels"]
                ) -> Float[Array, "*spatial batch channels"]:
        n_space = v.ndim - 2
        return jax.vmap(lambda u: jnp.moveaxis(self(jnp.moveaxis(u, -1, 0)), 0, -1),
                        in_axes=n_space, out_axes=n_space)(v)


def _group_normalize_batched(v, groups: int, eps: float, scale, shift):
    """`_group_normalize` of every field of a `(*spatial, batch, C)` array."""
    n_space = v.ndim - 2
    g = at_least_float32(v).reshape(*v.shape[:-1], groups, -1)  # statistics in float32
    axes = (*range(n_space), g.ndim - 1)
    mean = g.mean(axis=axes, keepdims=True)
    var = g.var(axis=axes, keepdims=True)
    g = ((g - mean) * jax.lax.rsqrt(var + eps)).reshape(v.shape).astype(v.dtype)
    return g * scale + shift


def _group_normalize(v, groups: int, eps: float, scale, shift):
    g = at_least_float32(v).reshape(groups, -1)  # statistics in float32
    mean = g.mean(axis=1, keepdims=True)
    var = g.var(axis=1, keepdims=True)
    g = ((g - mean) * jax.lax.rsqrt(var + eps)).reshape(v.shape).astype(v.dtype)
    shape = (-1,) + (1,) * (v.ndim - 1)
    return g * scale.reshape(shape) + shift.reshape(shape)


class GroupNorm(AbstractNorm):
    """$\\hat v = (v - \\mu_g)/\\sqrt{\\sigma_g^2 + \\epsilon}\\,\\gamma_c + \\beta_c$ with mean and
    variance over the channels of group $g$ and all grid points (Wu & He, 2018).

    **Arguments:** `groups` (must divide `channels`), `channels`, `eps`.
    """

    scale: Float[Array, " channels"]
    shift: Float[Array, " channels"]
    groups: int = eqx.field(static=True)
    eps: float = eqx.field(static=True)

    def __init__(self, groups: int, channels: int, eps: float = 1e-5, dtype=None):
        if channels % groups:
            raise ValueError(f"GroupNorm: groups={groups} must divide channels={channels}")
        dtype = jnp.float32 if dtype is None else dtype
        self.scale, self.shift = jnp.ones((channels,), dtype), jnp.zeros((channels,), dtype)
        self.groups, self.eps = groups, eps

    def __call__(self, v):
        return _group_normalize(v, self.groups, self.eps, self.scale, self.shift)

    def batched(self, v):
        return _group_normalize_batched(v, self.groups, self.eps, self.scale, self.shift)


class InstanceNorm(AbstractNorm):
    """Instance normalisation: per-channel mean and variance over the grid, then a per-channel
    affine map (Ulyanov et al., 2016); `GroupNorm` with one channel per group."""

    scale: Float[Array, " channels"]
    shift: Float[Array, " channels"]
    eps: float = eqx.field(static=True)

    def __init__(self, channels: int, eps: float = 1e-5, dtype=None):
        dtype = jnp.float32 if dtype is None else dtype
        self.scale, self.shift = jnp.ones((channels,), dtype), jnp.zeros((channels,), dtype)
        self.eps = eps

    def __call__(self, v):
        return _group_normalize(v, v.shape[0], self.eps, self.scale, self.shift)

    def batched(self, v):
        return _group_normalize_batched(v, v.shape[-1], self.eps, self.scale, self.shift)


class FNOBlocks(eqx.Module):
    """The per-layer skips, bias, channel MLPs and norms of an FNO (see the module docstring).

    **Arguments:**

    - `n_layers`, `channels`: number of Fourier layers and their width $C$.
    - `skip`: the class of $S_\\ell$ (`LinearSkip`, `SoftGating`, `IdentitySkip`).
    - `channel_mlp_expansion`: hidden width of $M_\\ell$ as a fraction of $C$; 0 disables it.
    - `channel_mlp_skip`: the class of $S'_\\ell$.
    - `norm`: a factory `channels -> AbstractNorm` (e.g. `InstanceNorm`), or None.
    - `activation`: $\\sigma$.
    - `key`: PRNG key.
    """

    skips: tuple[AbstractSkip, ...]
    bias: Float[Array, "layers channels"]
    mlps: tuple[ChannelMLP, ...] | None
    mlp_skips: tuple[AbstractSkip, ...] | None
    norms: tuple[AbstractNorm, ...] | None
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(self, n_layers: int, channels: int, skip: type[AbstractSkip] = LinearSkip,
                 channel_mlp_expansion: float = 0.0,
                 channel_mlp_skip: type[AbstractSkip] = SoftGating,
                 norm: Callable[[int], AbstractNorm] | None = None,
                 activation: Callable[[Array], Array] = jax.nn.gelu, dtype=None,
                 *, key: PRNGKeyArray):
        k_skip, k_bias, k_mlp, k_mskip = jax.random.split(key, 4)
        dtype = jnp.float32 if dtype is None else dtype
        self.skips = tuple(skip(channels, dtype=dtype, key=k)
                           for k in jax.random.split(k_skip, n_layers))
        # the spectral convolution's bias (torch Conv init, as the plain FNO's skip bias)
        lim = 1.0 / math.sqrt(channels)
        self.bias = _random.uniform(k_bias, (n_layers, channels), dtype, -lim, lim)
        if channel_mlp_expansion > 0:
            hidden = max(1, int(round(channel_mlp_expansion * channels)))
            self.mlps = tuple(ChannelMLP(channels, channels, hidden, activation, dtype=dtype, key=k)
                              for k in jax.random.split(k_mlp, n_layers))
            self.mlp_skips = tuple(channel_mlp_skip(channels, dtype=dtype, key=k)
                                   for k in jax.random.split(k_mskip, n_layers))
        else:
            self.mlps = self.mlp_skips = None
        self.norms = None if norm is None else tuple(norm(channels) for _ in range(n_layers))
        self.activation = activation

    def __call__(self, v: Float[Array, "channels *spatial"], spectral: Float[Array, "channels *spatial"],
                 layer: int, last: bool) -> Float[Array, "channels *spatial"]:
        """Layer `layer` given its input `v` and the spectral convolution `spectral` of `v`."""
        norm = self.norms[layer] if self.norms is not None else (lambda u: u)
        bias = self.bias[layer].reshape((-1,) + (1,) * (v.ndim - 1))
        z = norm(spectral) + self.skips[layer](v) + bias
        if self.mlps is not None:
            z = norm(self.mlps[layer](self.activation(z)) + self.mlp_skips[layer](v))
        return z if last else self.activation(z)

    def batched(self, v: Float[Array, "*spatial batch channels"],
                spectral: Float[Array, "*spatial batch channels"], layer: int, last: bool
                ) -> Float[Array, "*spatial batch channels"]:
        """`__call__` on a spatial-major batch `(*spatial, batch, channels)` (the FNO's layout
        for batches): the same function, with every channel mix a plain matrix product."""
        norm = self.norms[layer].batched if self.norms is not None else (lambda u: u)
        z = norm(spectral) + self.skips[layer].last(v) + self.bias[layer]
        if self.mlps is not None:
            z = norm(self.mlps[layer].last(self.activation(z)) + self.mlp_skips[layer].last(v))
        return z if last else self.activation(z)
