"""The Fourier neural operator (Li et al., ICLR 2021) on one channel-first field.

$$u = Q \\circ \\mathcal L_L \\circ \\cdots \\circ \\mathcal L_1 \\circ P\\,(a),\\qquad
\\mathcal L_\\ell(v) = \\sigma\\big(W_\\ell v + b_\\ell + \\mathcal K_\\ell v\\big),$$

with $P$ the lifting and $Q$ the projection (pointwise MLPs), $W_\\ell$ a pointwise linear skip,
$\\mathcal K_\\ell$ the spectral convolution (`sciops.nn.spectral_conv`) and $\\sigma$ = GELU, not
applied after the last layer. Every operation is pointwise or acts on a fixed set of Fourier
modes, so the same weights evaluate on any grid fine enough for `n_modes`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ... import _random
from ...nn._fno_blocks import FNOBlocks
from ...nn._grid import ChannelMLP, grid_coordinates, pad_domain, unpad_domain
from ...nn._precision import remat_block, to_compute
from ...nn._spectral import (
    AbstractSpectralWeight,
    DenseSpectralWeight,
    check_modes,
    spectral_conv,
    spectral_conv_batched,
)

__all__ = ["FNO"]


class FNO(eqx.Module):
    """A Fourier neural operator acting on one field `(in_channels, *spatial)`.

    **Arguments:**

    - `in_channels`, `out_channels`: channels of the input and output fields.
    - `n_modes`: Fourier modes kept per spatial axis (full-spectrum count, see
      `sciops.nn._spectral`); its length is the number of spatial axes.
    - `hidden_channels`: width $C$ of the Fourier layers.
    - `n_layers`: number $L$ of Fourier layers.
    - `lifting_channels`, `projection_channels`: hidden widths of $P$ and $Q$ (0: linear).
    - `positional_embedding`: append the cell-centre coordinates as input channels.
    - `padding`: zero-pad each spatial axis by this fraction of its size after the lifting
      (for non-periodic problems), cropped before the projection.
    - `spectral_weight`: the spectral weights of all layers, injected (e.g. a factorized
      tensor); default `DenseSpectralWeight`.
    - `activation`: the nonlinearity $\\sigma$.
    - `blocks`: optional MG-TFNO layer pieces (`sciops.nn.FNOBlocks`: skip type, channel MLP,
      normalisation); when given they replace the pointwise skip $W_\\ell v + b_\\ell$.
    - `key`: PRNG key.
    """

    lifting: ChannelMLP
    spectral_weight: AbstractSpectralWeight
    skip_weight: Float[Array, "layers hidden hidden"] | None
    skip_bias: Float[Array, "layers hidden"] | None
    projection: ChannelMLP
    blocks: FNOBlocks | None
    n_modes: tuple[int, ...] = eqx.field(static=True)
    positional_embedding: bool = eqx.field(static=True)
    padding: float = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(self, in_channels: int, out_channels: int, n_modes: Sequence[int],
                 hidden_channels: int = 32, n_layers: int = 4, lifting_channels: int = 64,
                 projection_channels: int = 64, positional_embedding: bool = True,
                 padding: float = 0.0, spectral_weight: AbstractSpectralWeight | None = None,
                 activation: Callable[[Array], Array] = jax.nn.gelu, dtype=None,
                 blocks: FNOBlocks | None = None, *, key: PRNGKeyArray):
        dtype = jnp.float32 if dtype is None else dtype
        k_lift, k_spec, k_skip, k_proj = jax.random.split(key, 4)
        self.n_modes = tuple(int(m) for m in n_modes)
        self.positional_embedding = bool(positional_embedding)
        self.padding = float(padding)
        self.activation = activation
        n_in = in_channels + (len(self.n_modes) if positional_embedding else 0)
        self.lifting = ChannelMLP(n_in, hidden_channels, lifting_channels, activation,
                                  dtype=dtype, channel_axis=-1, key=k_lift)
        if spectral_weight is None:
            spectral_weight = DenseSpectralWeight(n_layers, hidden_channels, hidden_channels,
                                                  self.n_modes, dtype=dtype, key=k_spec)
        if (spectral_weight.n_layers, spectral_weight.in_channels,
                spectral_weight.out_channels) != (n_layers, hidden_channels, hidden_channels):
            raise ValueError(
                f"spectral_weight: expected {n_layers} layers of {hidden_channels} -> "
                f"{hidden_channels} channels, got {spectral_weight.n_layers} layers of "
                f"{spectral_weight.in_channels} -> {spectral_weight.out_channels}")
        if tuple(spectral_weight.n_modes) != self.n_modes:
            raise ValueError(f"spectral_weight: expected n_modes {self.n_modes}, got "
                             f"{tuple(spectral_weight.n_modes)}")
        self.spectral_weight = spectral_weight
        # pointwise skips W_l, stacked over layers; torch.nn.Conv's default init (as in Li et al.)
        lim = 1.0 / jnp.sqrt(hidden_channels)
        kw, kb = jax.random.split(k_skip)
        self.skip_weight = _random.uniform(kw, (n_layers, hidden_channels, hidden_channels),
                                              dtype, -lim, lim)
        self.skip_bias = _random.uniform(kb, (n_layers, hidden_channels), dtype, -lim, lim)
        self.blocks = blocks
        if blocks is not None:
            if len(blocks.skips) != n_layers:
                raise ValueError(f"blocks: expected {n_layers} layers, got {len(blocks.skips)}")
            self.skip_weight = self.skip_bias = None   # the blocks hold the skips and biases
        self.projection = ChannelMLP(hidden_channels, out_channels, projection_channels,
                                     activation, dtype=dtype, channel_axis=-1, key=k_proj)

    @property
    def n_layers(self) -> int:
        return self.spectral_weight.n_layers

    def __call__(self, x: Float[Array, "in_channels *spatial"]
                 ) -> Float[Array, "out_channels *spatial"]:
        return self.batch(x[None])[0]

    def batch(self, x: Float[Array, "batch in_channels *spatial"]
              ) -> Float[Array, "batch out_channels *spatial"]:
        """The operator on a batch of fields (what training and evaluation call).

        Inside, the batch is stored spatial-major and channels-last, `(*spatial, batch, C)`:
        every channel mix (lifting, skips, channel MLPs, projection) is one matrix product over
        all grid points of all fields, and each truncated DFT contracts adjacent axes
        (`sciops.nn.spectral_conv_batched`), so the layers run without transposes (docs/fno.md,
        "Layout"). No axis holding the batch is merged with another, so a batch sharded over the
        mesh axis ``data`` stays sharded, and on a ``space`` axis (fields split into row slabs)
        XLA partitions the DFT products: only retained modes cross devices (docs/distributed.md).
        """
        spatial = x.shape[2:]
        # a ConfigError at trace time, i.e. before XLA compiles anything
        check_modes(self.n_modes, spatial)
        d = len(spatial)
        x = to_compute(x)  # a training step's compute dtype (sciops.nn.MemoryPolicy)
        v = jnp.moveaxis(x, (0, 1), (d, d + 1))                    # (*spatial, batch, in)
        if self.positional_embedding:
            grid = jnp.moveaxis(grid_coordinates(spatial, x.dtype), 0, -1)[..., None, :]
            v = jnp.concatenate([v, jnp.broadcast_to(grid, (*spatial, x.shape[0], d))], -1)
        v, widths = pad_domain(self.lifting(v), self.padding, n_space=d)
        # an unrolled Python loop over the layers, not lax.scan (docs/fno.md, "Layer loop");
        # each layer is one block for rematerialisation
        for layer in range(self.n_layers):
            v = remat_block(_layer_batched)(self, v, layer)
        v = self.projection(unpad_domain(v, widths))
        return jnp.moveaxis(v, (d, d + 1), (0, 1))

    def fft_forward(self, x: Float[Array, "in_channels *spatial"]
                    ) -> Float[Array, "out_channels *spatial"]:
        """The same operator on one channel-first field through `jnp.fft` (`spectral_conv`):
        the reference `batch` is tested against, and the path to take where FFTs beat DFT
        products (large grids with many modes, e.g. on a GPU); under a ``space`` mesh axis its
        transforms run as the slab-decomposed FFT (`sharded_spectral_conv`)."""
        spatial = x.shape[1:]
        x = to_compute(x)
        if self.positional_embedding:
            x = jnp.concatenate([x, grid_coordinates(spatial, x.dtype)], axis=0)
        v, widths = pad_domain(self.lifting(jnp.moveaxis(x, 0, -1)), self.padding)
        v = jnp.moveaxis(v, -1, 0)
        for layer in range(self.n_layers):
            v = remat_block(_layer_fft)(self, v, layer)
        v = unpad_domain(jnp.moveaxis(v, 0, -1), widths)
        return jnp.moveaxis(self.projection(v), -1, 0)


def _layer_batched(fno: FNO, v: Float[Array, "*spatial batch hidden"], layer: int
                   ) -> Float[Array, "*spatial batch hidden"]:
    """Fourier layer `layer` of `fno` on its spatial-major batch (one remat block)."""
    last = layer == fno.n_layers - 1
    spectral = spectral_conv_batched(v, fno.spectral_weight, layer, fno.n_modes)
    if fno.blocks is not None:
        return fno.blocks.batched(v, spectral, layer, last)
    v = v @ fno.skip_weight[layer].T + fno.skip_bias[layer] + spectral
    return v if last else fno.activation(v)


def _layer_fft(fno: FNO, v: Float[Array, "hidden *spatial"], layer: int
               ) -> Float[Array, "hidden *spatial"]:
    """Fourier layer `layer` of `fno` on one channel-first field, through `jnp.fft`."""
    last = layer == fno.n_layers - 1
    spectral = spectral_conv(v, fno.spectral_weight, layer, fno.n_modes)
    if fno.blocks is not None:
        return fno.blocks(v, spectral, layer, last=last)
    skip = jnp.einsum("oi,i...->o...", fno.skip_weight[layer], v)
    v = skip + fno.skip_bias[layer].reshape((-1,) + (1,) * (v.ndim - 1)) + spectral
    return v if last else fno.activation(v)
