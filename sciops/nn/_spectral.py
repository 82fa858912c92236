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

from .. import _random
from .._errors import ConfigError
from ._precision import at_least_float32

__all__ = [
    "AbstractSpectralWeight",
    "DenseSpectralWeight",
    "check_modes",
    "gather_modes",
    "scatter_modes",
    "dft_matrices",
    "spectral_conv",
    "spectral_conv_batched",
    "contract_per_sample",
    "spectral_conv_dft",
    "truncated_dft",
    "inverse_truncated_dft",
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

    def contract_batched(self, z: Float[Array, "2 modes batch in_channels"],
                         layer: int | Int[Array, ""]) -> Float[Array, "2 modes batch out_channels"]:
        """`contract` for a batch, in the mode-major real layout of `truncated_dft`.

        `z[0]` and `z[1]` are the real and imaginary parts of the retained coefficients, the
        modes flattened in the order of the weight's mode axes. This default goes through
        `contract` (per sample, complex); formats that can do better override it.
        """
        return contract_per_sample(lambda x: self.contract(x, layer), z,
                                   weight_mode_shape(self.n_modes))


def contract_per_sample(contract, z: Float[Array, "2 modes batch in_channels"],
                        mode_shape: Sequence[int]) -> Float[Array, "2 modes batch out_channels"]:
    """A per-sample complex `contract((in, *modes)) -> (out, *modes)` applied to a batch in the
    mode-major real layout of `truncated_dft` (the generic `contract_batched`)."""
    x = jax.lax.complex(z[0], z[1])                                      # (modes, batch, in)
    x = jnp.moveaxis(x, 0, -1).reshape(*x.shape[1:], *mode_shape)        # (batch, in, *modes)
    y = jax.vmap(contract)(x)                                            # (batch, out, *modes)
    y = jnp.moveaxis(y.reshape(*y.shape[:2], -1), -1, 0)                 # (modes, batch, out)
    return jnp.stack([jnp.real(y), jnp.imag(y)]).astype(z.dtype)


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
        self.real = std * _random.normal(kr, shape, dtype)
        self.imag = std * _random.normal(ki, shape, dtype)

    def complex_weight(self, layer: int | Int[Array, ""]
                       ) -> Complex[Array, "in_channels out_channels *modes"]:
        return jax.lax.complex(self.real[layer], self.imag[layer])

    def contract(self, x_modes: Complex[Array, "in_channels *modes"],
                 layer: int | Int[Array, ""]) -> Complex[Array, "out_channels *modes"]:
        return jnp.einsum("i...,io...->o...", x_modes, self.complex_weight(layer))

    def contract_batched(self, z, layer):
        return mode_matmul(z, *(modes_first(w[layer]) for w in (self.real, self.imag)))


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
    x_ft = jnp.fft.rfftn(at_least_float32(x), axes=axes)  # jnp.fft has no bfloat16
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
    """`spectral_conv` on one channels-LAST field, with the transforms done as truncated DFTs
    (`spectral_conv_batched` with a batch of one)."""
    return spectral_conv_batched(v[..., None, :], weight, layer, n_modes)[..., 0, :]


def modes_first(w: Float[Array, "in_channels out_channels *modes"]
                ) -> Float[Array, "modes in_channels out_channels"]:
    """A spectral weight with its modes flattened onto the leading axis (`mode_matmul`'s form)."""
    return jnp.moveaxis(w.reshape(*w.shape[:2], -1), -1, 0)


def mode_matmul(z: Float[Array, "2 modes batch in_channels"],
                wr: Float[Array, "modes in_channels out_channels"],
                wi: Float[Array, "modes in_channels out_channels"]
                ) -> Float[Array, "2 modes batch out_channels"]:
    """$y_k = x_k W_k$ for every mode $k$ in real arithmetic, $W = W_r + iW_i$: three batched real
    matrix products `(batch, in) @ (in, out)` over the modes (Gauss's form of the complex
    product, in kernels that every backend runs well)."""
    zr, zi = z[0], z[1]
    # three products instead of four (Gauss): xW = (k1 - k3) + i (k1 + k2)
    k1 = (zr + zi) @ wr
    k2 = zr @ (wi - wr)
    k3 = zi @ (wr + wi)
    return jnp.stack([k1 - k3, k1 + k2])


def lead_matmul(mat: Float[Array, "rows cols"], x: Float[Array, "*lead cols *rest"],
                n_lead: int | None = None) -> Float[Array, "*lead rows *rest"]:
    """`mat` applied to axis `n_lead` of `x` (default: the second to last), batched over the
    axes before it (the matrix broadcast): no axis of `x` is moved or merged, so a batch axis
    among the trailing ones keeps its sharding."""
    n_lead = x.ndim - 2 if n_lead is None else n_lead
    if n_lead == 0:
        return jnp.tensordot(mat, x, axes=(1, 0))
    lead = tuple(range(n_lead))
    mats = jnp.broadcast_to(mat, (*x.shape[:n_lead], *mat.shape))
    return jax.lax.dot_general(mats, x, (((n_lead + 1,), (n_lead,)), (lead, lead)))


@functools.lru_cache(maxsize=64)
def _axis_matrices(spatial: tuple[int, ...], n_modes: tuple[int, ...], dtype_name: str):
    """The real matrices of `truncated_dft` and `inverse_truncated_dft`, one per spatial axis.

    A complex map $A = A_r + iA_i$ acting on values stored as (real, imaginary) pairs is the
    real block matrix $[[A_r, -A_i], [A_i, A_r]]$; the block order of rows and columns is chosen
    so that every product contracts adjacent axes of the running array (see `truncated_dft`).
    """
    dtype = np.dtype(dtype_name)
    d = len(spatial)
    fr, fi, hr, hi = dft_matrices(spatial[-1], n_modes[-1], True, "float64")
    fwd = [np.concatenate([fr.T, fi.T], 0)]                    # (2K, s): rows (part, k)
    inv_last = np.concatenate([hr.T, -hi.T], 1)                # (s, 2K): Re(sum_k y_k H_kj)
    inv = []
    for axis in range(d - 1):
        gr, gi, ir, ii = dft_matrices(spatial[axis], n_modes[axis], False, "float64")
        m, s = gr.shape
        f = np.zeros((2, m, s, 2))                             # rows (part', m), cols (j, part)
        f[0, :, :, 0], f[0, :, :, 1], f[1, :, :, 0], f[1, :, :, 1] = gr, -gi, gi, gr
        g = np.zeros((s, 2, 2, m))                             # rows (j, part'), cols (part, m)
        g[:, 0, 0], g[:, 0, 1], g[:, 1, 0], g[:, 1, 1] = ir, -ii, ii, ir
        fwd.append(f.reshape(2 * m, 2 * s))
        inv.append(g.reshape(2 * s, 2 * m))
    # forward: last axis first, then axes d-2 .. 0; inverse: axes 0 .. d-2, then the last
    fwd = fwd[:1] + fwd[1:][::-1]
    return (tuple(a.astype(dtype) for a in fwd), tuple(a.astype(dtype) for a in inv)
            + (inv_last.astype(dtype),))


def truncated_dft(v: Float[Array, "*spatial batch channels"], n_modes: Sequence[int]
                  ) -> Float[Array, "2 modes batch channels"]:
    """The retained Fourier coefficients of a batch of fields, as one product per spatial axis.

    Equals `gather_modes(rfftn(v))` (tested), with the real and imaginary parts stacked on a
    leading axis and the modes flattened in the order of a spectral weight's mode axes. The
    fields are stored spatial-major, `(*spatial, batch, channels)`: the last spatial axis is
    transformed by a batched product over the other spatial axes, then each earlier axis,
    together with the (real, imaginary) axis that follows it, is contracted by a product over
    the axes before it. Every product contracts adjacent axes of a row-major array, so nothing
    is transposed, and the output is already mode-major for the mode-wise weights.
    """
    n_modes = tuple(n_modes)
    d = len(n_modes)
    spatial, (b, c) = v.shape[:d], v.shape[d:]
    fwd, _ = _axis_matrices(tuple(spatial), n_modes, np.dtype(v.dtype).name)
    mode_shape = weight_mode_shape(n_modes)
    # batch and channels travel as one trailing axis, the batch major (so a batch sharded over
    # devices stays sharded); it is never merged with a mode or spatial axis
    x = lead_matmul(jnp.asarray(fwd[0]), v.reshape(*spatial, b * c), d - 1)  # (*lead, 2K, bc)
    for mat, axis in zip(fwd[1:], range(d - 2, -1, -1), strict=True):
        # merge the axis with the (real, imaginary) axis after it
        x = x.reshape(*spatial[:axis], 2 * spatial[axis], *mode_shape[axis + 1:], b * c)
        x = lead_matmul(jnp.asarray(mat), x, axis)
    return x.reshape(2, -1, b, c)


def inverse_truncated_dft(y: Float[Array, "2 modes batch channels"], spatial: Sequence[int],
                          n_modes: Sequence[int]) -> Float[Array, "*spatial batch channels"]:
    """The real fields whose retained coefficients are `y` and whose other coefficients are 0
    (`irfftn(scatter_modes(y))`, tested), in `truncated_dft`'s layouts."""
    spatial, n_modes = tuple(spatial), tuple(n_modes)
    b, c = y.shape[-2:]
    _, inv = _axis_matrices(spatial, n_modes, np.dtype(y.dtype).name)
    mode_shape = weight_mode_shape(n_modes)
    x = y
    for axis, mat in enumerate(inv):
        x = x.reshape(*spatial[:axis], 2 * mode_shape[axis], *mode_shape[axis + 1:], b * c)
        x = lead_matmul(jnp.asarray(mat), x, axis)
    return x.reshape(*spatial, b, c)


def spectral_conv_batched(v: Float[Array, "*spatial batch channels"],
                          weight: AbstractSpectralWeight, layer: int | Int[Array, ""],
                          n_modes: Sequence[int] | None = None
                          ) -> Float[Array, "*spatial batch out_channels"]:
    """`spectral_conv` on a batch of fields stored spatial-major, `(*spatial, batch, channels)`.

    The same operator (tested equal), computed as truncated DFTs (`truncated_dft`): since only
    `n_modes` of the $s$ frequencies per axis are kept, each transform is a product with an
    $s \\times m$ matrix per axis instead of a full FFT, and the mode-wise weights act on the
    whole batch at once (`AbstractSpectralWeight.contract_batched`). On CPUs this layout runs
    the whole FNO as matrix products without a transpose (docs/fno.md, "Layout: how it runs fast on a CPU").
    """
    n_modes = tuple(weight.n_modes if n_modes is None else n_modes)
    d = len(n_modes)
    spatial = v.shape[:d]
    check_modes(n_modes, spatial)
    # the transforms sum over whole grid axes: float32 at least (a bfloat16 step casts back)
    z = truncated_dft(at_least_float32(v), n_modes)
    return inverse_truncated_dft(weight.contract_batched(z, layer), spatial,
                                 n_modes).astype(v.dtype)
