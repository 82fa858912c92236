"""Spectral convolution: the Fourier layer's global integral operator on a regular grid.

$(\\mathcal K v)(x) = \\mathcal F^{-1}\\big(R \\cdot (\\mathcal F v)\\big)(x)$, where $\\mathcal F$ is the
real FFT over the spatial axes and $R$ is a learned complex tensor acting on the lowest Fourier
modes only (Li et al., "Fourier Neural Operator for Parametric Partial Differential Equations",
ICLR 2021). The modes kept do not depend on the grid, so the same weights act on any
resolution whose Nyquist limit is at least `n_modes`.

Mode convention (as neuraloperator ≥ 1.0): `n_modes[d]` counts the frequencies kept along
spatial axis `d` of the full spectrum. On every axis but the last, these are the
`n_modes[d] - n_modes[d] // 2` frequencies $0, 1, \\dots$ and the `n_modes[d] // 2` frequencies
$-1, -2, \\dots$; on the last axis, whose real FFT is half-sized, the `n_modes[-1] // 2 + 1`
frequencies $0 \\dots$ `n_modes[-1] // 2`. The mode axes of a spectral weight are in that order
(non-negative frequencies first, as `numpy.fft` orders them).

The weights of all Fourier layers live in ONE object, an `AbstractSpectralWeight`, so that a
factorization shared across layers (the joint factorization of Kossaifi et al., MG-TFNO 2023)
has the same interface as per-layer dense weights.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float, Int, PRNGKeyArray

from .._errors import ConfigError

__all__ = [
    "AbstractSpectralWeight",
    "DenseSpectralWeight",
    "check_modes",
    "gather_modes",
    "scatter_modes",
    "dft_matrices",
    "spectral_conv",
    "spectral_conv_dft",
    "weight_mode_shape",
]


def weight_mode_shape(n_modes: Sequence[int]) -> tuple[int, ...]:
    """The shape of the mode axes of a spectral weight: `n_modes` with the last one halved
    (real FFT), e.g. `(8, 8) -> (8, 5)`."""
    return (*n_modes[:-1], n_modes[-1] // 2 + 1)


def check_modes(n_modes: Sequence[int], spatial_shape: Sequence[int],
                what: str = "model.n_modes") -> None:
    """Raise `ConfigError` if `n_modes` does not fit a grid of `spatial_shape`.

    A grid of $s$ points resolves the frequencies $-s/2 \\dots s/2$ (its Nyquist limit), i.e. at
    most $s$ modes; `n_modes[d]` must be in `[1, spatial_shape[d]]` on every axis.
    """
    if len(n_modes) != len(spatial_shape):
        raise ConfigError(f"{what}: expected {len(spatial_shape)} values (one per spatial axis of "
                          f"the {'x'.join(map(str, spatial_shape))} grid), got {list(n_modes)}")
    for d, (m, s) in enumerate(zip(n_modes, spatial_shape, strict=True)):
        if not 1 <= m <= s:
            raise ConfigError(
                f"{what}[{d}] = {m} is above the Nyquist limit of the {s}-point grid axis {d}: "
                f"allowed range [1, {s}] for a grid of shape {tuple(spatial_shape)}")


def gather_modes(x_ft: Complex[Array, "channels *freq"], n_modes: Sequence[int]
                 ) -> Complex[Array, "channels *modes"]:
    """The retained low modes of a real-FFT spectrum (both signs on all axes but the last).

    Sliced and concatenated rather than gathered with an index array: slices lower to cheap
    copies and their transpose (in the gradient) to pads, not scatters.
    """
    n_space = len(n_modes)
    for d, m in enumerate(n_modes[:-1]):
        axis = 1 + d
        pos, neg = m - m // 2, m // 2
        size = x_ft.shape[axis]
        parts = [jax.lax.slice_in_dim(x_ft, 0, pos, axis=axis)]
        if neg:
            parts.append(jax.lax.slice_in_dim(x_ft, size - neg, size, axis=axis))
        x_ft = jnp.concatenate(parts, axis=axis) if len(parts) > 1 else parts[0]
    return jax.lax.slice_in_dim(x_ft, 0, n_modes[-1] // 2 + 1, axis=n_space)


def scatter_modes(y_modes: Complex[Array, "channels *modes"], n_modes: Sequence[int],
                  freq_shape: Sequence[int]) -> Complex[Array, "channels *freq"]:
    """Place retained modes back into a zero real-FFT spectrum of shape `freq_shape`
    (the inverse of `gather_modes` on the retained modes; zeros elsewhere)."""
    n_space = len(n_modes)
    for d, m in enumerate(n_modes[:-1]):
        axis = 1 + d
        pos = m - m // 2
        gap = freq_shape[d] - m
        if gap:
            head = jax.lax.slice_in_dim(y_modes, 0, pos, axis=axis)
            tail = jax.lax.slice_in_dim(y_modes, pos, m, axis=axis)
            zshape = list(y_modes.shape)
            zshape[axis] = gap
            y_modes = jnp.concatenate([head, jnp.zeros(zshape, y_modes.dtype), tail], axis=axis)
    last = freq_shape[-1] - y_modes.shape[n_space]
    pad = [(0, 0)] * n_space + [(0, last)]
    return jnp.pad(y_modes, pad) if last else y_modes


class AbstractSpectralWeight(eqx.Module):
    """The spectral weights $R_\\ell$ of all $L$ Fourier layers of a network, in one object.

    Subclasses choose the storage (dense, CP, Tucker, tensor-train, per layer or jointly
    across layers) and implement `contract`. They declare `n_layers`, `in_channels`,
    `out_channels` and `n_modes` (the full-spectrum mode counts, see the module docstring).
    """

    n_layers: eqx.AbstractVar[int]
    in_channels: eqx.AbstractVar[int]
    out_channels: eqx.AbstractVar[int]
    n_modes: eqx.AbstractVar[tuple[int, ...]]

    def contract(self, x_modes: Complex[Array, "in_channels *modes"],
                 layer: int | Int[Array, ""]) -> Complex[Array, "out_channels *modes"]:
        """$y_{o,k} = \\sum_i R_{\\ell, i, o, k}\\, x_{i,k}$ for every retained mode $k$.

        **Arguments:**

        - `x_modes`: the retained Fourier coefficients of layer `layer`'s input, shape
          `(in_channels, *weight_mode_shape(n_modes))`.
        - `layer`: the layer index $\\ell$, a Python int or a traced int32 scalar (when the
          layers are applied with `jax.lax.scan`).

        **Returns:** the coefficients of the output, shape `(out_channels, *modes)`.
        """
        raise NotImplementedError


class DenseSpectralWeight(AbstractSpectralWeight):
    """Dense complex weights $R \\in \\mathbb C^{L \\times C_{in} \\times C_{out} \\times \\text{modes}}$,
    stored as separate real and imaginary float arrays.

    Stored as two real arrays because `jax.grad` of a real loss with respect to a complex
    parameter is the conjugate of the descent direction, which optax would follow uphill.

    Initialisation: real and imaginary parts i.i.d. normal with variance $1/(C_{in}+C_{out})$,
    so that $|R|$ has the Glorot variance $2/(C_{in}+C_{out})$ (neuraloperator's default for
    its spectral weights; Li et al. used a uniform law scaled by $1/(C_{in}C_{out})$, which
    starts the spectral path near zero).

    **Arguments:**

    - `n_layers`, `in_channels`, `out_channels`: sizes.
    - `n_modes`: modes kept per spatial axis (full-spectrum count).
    - `dtype`: the real dtype of the parameters (default float32).
    - `key`: PRNG key.
    """

    real: Float[Array, "layers in_channels out_channels *modes"]
    imag: Float[Array, "layers in_channels out_channels *modes"]
    n_layers: int = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    n_modes: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, n_layers: int, in_channels: int, out_channels: int,
                 n_modes: Sequence[int], dtype=None, *, key: PRNGKeyArray):
        dtype = jnp.float32 if dtype is None else dtype
        self.n_layers = int(n_layers)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.n_modes = tuple(int(m) for m in n_modes)
        shape = (self.n_layers, self.in_channels, self.out_channels,
                 *weight_mode_shape(self.n_modes))
        std = math.sqrt(1.0 / (self.in_channels + self.out_channels))
        kr, ki = jax.random.split(key)
        self.real = std * jax.random.normal(kr, shape, dtype)
        self.imag = std * jax.random.normal(ki, shape, dtype)

    def complex_weight(self, layer: int | Int[Array, ""]
                       ) -> Complex[Array, "in_channels out_channels *modes"]:
        return jax.lax.complex(self.real[layer], self.imag[layer])

    def contract(self, x_modes: Complex[Array, "in_channels *modes"],
                 layer: int | Int[Array, ""]) -> Complex[Array, "out_channels *modes"]:
        return jnp.einsum("i...,io...->o...", x_modes, self.complex_weight(layer))


def spectral_conv(x: Float[Array, "channels *spatial"], weight: AbstractSpectralWeight,
                  layer: int | Int[Array, ""], n_modes: Sequence[int] | None = None
                  ) -> Float[Array, "out_channels *spatial"]:
    """The Fourier layer's spectral path on one channel-first field.

    $y = \\mathrm{irfftn}\\big(\\mathrm{scatter}(R_\\ell \\cdot \\mathrm{gather}(\\mathrm{rfftn}(x)))\\big)$
    at the input's resolution, with the FFT normalised as `numpy.fft` ("backward"), which makes
    the operator independent of the grid size for band-limited inputs.

    **Arguments:**

    - `x`: the field, shape `(in_channels, *spatial)`.
    - `weight`: the spectral weights of all layers.
    - `layer`: which layer's weights to use.
    - `n_modes`: modes kept (default `weight.n_modes`); checked against the grid's Nyquist
      limit (a `ConfigError` naming `model.n_modes` at trace time, before compilation).

    **Returns:** shape `(out_channels, *spatial)`, the dtype of `x`.
    """
    n_modes = tuple(weight.n_modes if n_modes is None else n_modes)
    spatial = x.shape[1:]
    check_modes(n_modes, spatial)
    from ._dist_fft import sharded_spectral_conv, space_axis_size  # (imports this module)

    if space_axis_size() > 1 and len(spatial) >= 2:
        # the field is split into row slabs over the mesh axis `space`: slab FFT, no gather
        return sharded_spectral_conv(x, weight, layer, n_modes)
    axes = tuple(range(1, 1 + len(spatial)))
    x_ft = jnp.fft.rfftn(x, axes=axes)
    y_modes = weight.contract(gather_modes(x_ft, n_modes), layer)
    freq_shape = (*spatial[:-1], spatial[-1] // 2 + 1)
    y_ft = scatter_modes(y_modes, n_modes, freq_shape)
    return jnp.fft.irfftn(y_ft, s=spatial, axes=axes).astype(x.dtype)


def _frequencies(m: int) -> np.ndarray:
    """The frequencies kept on a full-spectrum axis, in `numpy.fft` order."""
    return np.concatenate([np.arange(m - m // 2), -np.arange(m // 2, 0, -1)]).astype(np.float64)


@functools.lru_cache(maxsize=64)
def dft_matrices(size: int, m: int, last: bool, dtype_name: str):
    """Forward and inverse truncated DFT matrices for one axis of `size` points and `m` modes.

    For a full-spectrum axis: `F[k, j] = exp(-2 pi i k j / s)` for the kept frequencies `k`
    and `G[j, k] = exp(2 pi i k j / s) / s`. For the last (real-FFT) axis: `F[j, k]` with
    `k = 0 .. m // 2` and the real inverse `H[k, j] = c_k exp(2 pi i k j / s) / s` with
    `c_k = 2`, except `c_0 = 1` and `c_{s/2} = 1` (the Hermitian half counted once), whose
    real part is what `irfft` computes. Built in float64 with numpy, stored as (real, imag).
    """
    j = np.arange(size, dtype=np.float64)
    if last:
        k = np.arange(m // 2 + 1, dtype=np.float64)
        fwd = np.exp(-2j * np.pi * np.outer(j, k) / size)                   # (s, mh)
        c = np.where((k == 0) | (2 * k == size), 1.0, 2.0)
        inv = c[:, None] * np.exp(2j * np.pi * np.outer(k, j) / size) / size  # (mh, s)
    else:
        k = _frequencies(m)
        fwd = np.exp(-2j * np.pi * np.outer(k, j) / size)                   # (m, s)
        inv = np.exp(2j * np.pi * np.outer(j, k) / size) / size             # (s, m)
    dtype = np.dtype(dtype_name)
    return tuple(np.ascontiguousarray(a, dtype) for a in (fwd.real, fwd.imag, inv.real, inv.imag))


def spectral_conv_dft(v: Float[Array, "*spatial channels"], weight: AbstractSpectralWeight,
                      layer: int | Int[Array, ""], n_modes: Sequence[int] | None = None
                      ) -> Float[Array, "*spatial out_channels"]:
    """`spectral_conv` on a channels-LAST field, with the transforms done as truncated DFTs.

    The same operator as `spectral_conv` (tested equal): since only `n_modes` of the `s`
    frequencies per axis are kept, the forward and inverse transforms are matrix products
    with `s x m` DFT matrices (`dft_matrices`) instead of full FFTs. On CPUs this is faster
    for the grids and mode counts of this package (measured 1.8x faster for the whole FNO's
    forward + backward at 16^2, 8 modes, and 1.2x at 64^2, 24 modes; docs/fno.md): matrix
    products are XLA's best-optimised CPU kernels, while its FFT computes all `s`
    frequencies and needs the FFT axes last. Channels last makes every channel mix (skips, lifting,
    projection) one plain matrix product too.

    **Arguments:** as `spectral_conv`, with `v` of shape `(*spatial, in_channels)`.

    **Returns:** shape `(*spatial, out_channels)`.
    """
    n_modes = tuple(weight.n_modes if n_modes is None else n_modes)
    spatial = v.shape[:-1]
    check_modes(n_modes, spatial)
    d = len(spatial)
    letters = "abcdefgh"[:d]
    dtype_name = np.dtype(v.dtype).name

    def along(x, mat, axis, new):
        # contract spatial/mode axis `axis` of x (..., channels) with mat[axis_letter, new]
        src = letters + "z"
        dst = letters[:axis] + new + letters[axis + 1:] + "z"
        return jnp.einsum(f"{src},{letters[axis]}{new}->{dst}", x, mat)

    # forward: real DFT on the last spatial axis, complex DFTs on the others
    fr, fi, hr, hi = dft_matrices(spatial[-1], n_modes[-1], True, dtype_name)
    z = jax.lax.complex(along(v, jnp.asarray(fr), d - 1, "K"), along(v, jnp.asarray(fi), d - 1, "K"))
    for axis in range(d - 1):
        gr, gi, _, _ = dft_matrices(spatial[axis], n_modes[axis], False, dtype_name)
        z = along(z, jax.lax.complex(jnp.asarray(gr), jnp.asarray(gi)).T, axis, "K")
    y = jnp.moveaxis(weight.contract(jnp.moveaxis(z, -1, 0), layer), 0, -1)
    for axis in range(d - 1):
        _, _, ir, ii = dft_matrices(spatial[axis], n_modes[axis], False, dtype_name)
        y = along(y, jax.lax.complex(jnp.asarray(ir), jnp.asarray(ii)).T, axis, "K")
    return (along(jnp.real(y), jnp.asarray(hr), d - 1, "K")
            - along(jnp.imag(y), jnp.asarray(hi), d - 1, "K")).astype(v.dtype)
