"""Convolutions with full and a priori compressed kernels, behind one interface.

A convolution with kernel $W \\in \\mathbb{R}^{C_o \\times C_i \\times k_1 \\times \\cdots \\times k_d}$
can be trained directly in a factored form, so that the network never holds (or computes with)
the dense kernel. Each layer here maps one example `(in_channels, *spatial)` to
`(out_channels, *spatial)` with "same" zero padding and stride 1, in 2-D or 3-D (space, or
space–time); `len(kernel_size)` sets the dimension. Every layer reports its parameter count
(`n_params`) and the floating-point operations of its forward pass (`flops(spatial_shape)`, a
multiply–add counted as two, a bias addition as one, padding ignored), and can materialise the
equivalent dense kernel (`full_kernel()`), which is what the tests compare against.

The forms (with $R$ the rank, $K = \\prod_d k_d$):

| layer | kernel | parameters (without the $C_o$ bias) |
| --- | --- | --- |
| `FullConv` | $W_{oi\\mathbf{x}}$ | $C_o C_i K$ |
| `CPConv` | $\\sum_r V_{or} U_{ri} \\prod_d F^{(d)}_{r x_d}$ | $R (C_i + \\sum_d k_d + C_o)$ |
| `SeparableSumConv` | $\\sum_r \\prod_d F^{(d)}_{oir x_d}$ | $C_o C_i R \\sum_d k_d$ |
| `Tucker2Conv` | $\\sum_{ab} V_{ob} G_{ba\\mathbf{x}} U_{ai}$ | $R C_i + R^2 K + C_o R$ |
| `DepthwiseSeparableConv` | $\\sum_m P_{o,(i,m)} D_{(i,m)\\mathbf{x}}$ | $C_i M K + C_o C_i M$ |

References: V. Lebedev et al., "Speeding-up convolutional neural networks using fine-tuned
CP-decomposition", ICLR 2015 (the CP form: 1×1, one 1-D depthwise filter per axis, 1×1);
J. Jin et al., "Flattened convolutional neural networks for feedforward acceleration", 2014
(1-D filters trained from scratch); Y.-D. Kim et al., "Compression of deep convolutional neural
networks for fast and low power mobile applications", ICLR 2016 (Tucker-2); F. Chollet,
"Xception", CVPR 2017 (depthwise-separable); C. Boukraichi et al., "A priori compression of
convolutional neural networks for wave simulators", 2023 (training such layers from scratch
for wave propagation).

**Initialisation.** Every factor is drawn with variance $1/\\text{fan-in}$ of the stage it
implements, and the last one with $1/(3\\,\\text{fan-in})$, so that each entry of the equivalent
dense kernel has variance $1/(3 C_i K)$, the variance of a dense kernel drawn uniformly from
$\\pm 1/\\sqrt{C_i K}$ (equinox's default), whatever the rank.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .. import _random
from .._errors import ConfigError

__all__ = [
    "AbstractConv",
    "FullConv",
    "CPConv",
    "SeparableSumConv",
    "Tucker2Conv",
    "DepthwiseSeparableConv",
]


def conv_same(x: Float[Array, " channels *spatial"], w: Float[Array, " out in_per_group *kernel"],
              groups: int = 1) -> Float[Array, " out *spatial"]:
    """Stride-1 'same' (zero-padded) convolution of one example, through XLA's convolution.

    Like every deep-learning convolution this is a cross-correlation: the kernel is not flipped.
    """
    nd = x.ndim - 1
    y = jax.lax.conv_general_dilated(x[None], w, window_strides=(1,) * nd, padding="SAME",
                                     feature_group_count=groups)
    return y[0]


def pointwise(x: Float[Array, " channels *spatial"],
              w: Float[Array, " out channels"]) -> Float[Array, " out *spatial"]:
    """A 1×1 convolution: a matrix product over the channel axis (XLA lowers it to a GEMM)."""
    return jnp.tensordot(w, x, axes=1)


def _axis_kernel(f: Float[Array, " out k"], axis: int, nd: int) -> Float[Array, " out 1 *kernel"]:
    """Reshape 1-D filters `(out, k)` into an N-D kernel `(out, 1, 1, .., k, .., 1)` along `axis`."""
    shape = [f.shape[0], 1] + [1] * nd
    shape[2 + axis] = f.shape[1]
    return f.reshape(shape)


def _normal(key, shape, var, dtype):
    return jnp.sqrt(var).astype(dtype) * _random.normal(key, shape, dtype)


def _check(name: str, value, *, kernel: bool = False) -> None:
    if kernel:
        if (not isinstance(value, tuple) or len(value) not in (1, 2, 3)
                or not all(isinstance(k, int) and k >= 1 for k in value)):
            raise ConfigError(f"{name}: expected 1 to 3 positive integers, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: expected a positive integer, got {value!r}")


class AbstractConv(eqx.Module):
    """A stride-1 'same' convolution `(in_channels, *spatial) -> (out_channels, *spatial)`.

    Concrete forms: `FullConv`, `CPConv`, `SeparableSumConv`, `Tucker2Conv`,
    `DepthwiseSeparableConv`. They share `__call__`, `n_params`, `flops` and `full_kernel`, so a
    network takes any of them by injection.
    """

    in_channels: eqx.AbstractVar[int]
    out_channels: eqx.AbstractVar[int]
    kernel_size: eqx.AbstractVar[tuple[int, ...]]
    bias: eqx.AbstractVar[Float[Array, " out"]]

    def __call__(self, x: Float[Array, " channels *spatial"]) -> Float[Array, " out *spatial"]:
        raise NotImplementedError

    @property
    def n_params(self) -> int:
        """The number of trainable scalars (factors and bias)."""
        return sum(a.size for a in jax.tree_util.tree_leaves(eqx.filter(self, eqx.is_array)))

    def flops(self, spatial_shape: tuple[int, ...]) -> int:
        """Floating-point operations of one forward pass on one example of `spatial_shape`."""
        raise NotImplementedError

    def full_kernel(self) -> Float[Array, " out channels *kernel"]:
        """The equivalent dense kernel `(out_channels, in_channels, *kernel_size)`."""
        raise NotImplementedError

    def _add_bias(self, y):
        return y + self.bias.reshape((-1,) + (1,) * len(self.kernel_size))


class FullConv(AbstractConv):
    """A dense convolution $y_o = b_o + \\sum_i W_{oi} \\star x_i$.

    **Arguments:** `in_channels`, `out_channels`, `kernel_size` (a tuple with one entry per
    spatial axis), `weight` (optional given kernel, e.g. one built from factors), `key`.
    """

    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    kernel_size: tuple[int, ...] = eqx.field(static=True)
    weight: Float[Array, " out channels *kernel"]
    bias: Float[Array, " out"]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, ...],
                 dtype=None, *, weight: Array | None = None, key: PRNGKeyArray):
        _check("in_channels", in_channels)
        _check("out_channels", out_channels)
        _check("kernel_size", kernel_size, kernel=True)
        dtype = dtype or jnp.float32
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        shape = (out_channels, in_channels, *kernel_size)
        if weight is None:
            lim = 1.0 / math.sqrt(in_channels * math.prod(kernel_size))
            weight = _random.uniform(key, shape, dtype, -lim, lim)
        elif weight.shape != shape:
            raise ConfigError(f"weight: expected shape {shape}, got {weight.shape}")
        self.weight = jnp.asarray(weight, dtype)
        self.bias = jnp.zeros((out_channels,), dtype)

    def __call__(self, x: Float[Array, " channels *spatial"]) -> Float[Array, " out *spatial"]:
        return self._add_bias(conv_same(x, self.weight))

    def flops(self, spatial_shape: tuple[int, ...]) -> int:
        n = math.prod(spatial_shape)
        return 2 * n * self.out_channels * self.in_channels * math.prod(self.kernel_size) \
            + n * self.out_channels

    def full_kernel(self) -> Float[Array, " out channels *kernel"]:
        return self.weight


class CPConv(AbstractConv):
    """A rank-$R$ CP (canonical polyadic) convolution, the form of Lebedev et al. (2015):

    $$W_{oi x_1 \\ldots x_d} = \\sum_{r=1}^R V_{or}\\, U_{ri} \\prod_{a=1}^d F^{(a)}_{r x_a},$$

    executed as a 1×1 convolution $C_i \\to R$, one depthwise 1-D convolution along each spatial
    axis (each of the $R$ channels with its own filter), and a 1×1 convolution $R \\to C_o$.

    **Arguments:** `in_channels`, `out_channels`, `kernel_size`, `rank` ($R$), `key`.
    `from_factors(U, filters, V)` builds the layer from given factors.
    """

    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    kernel_size: tuple[int, ...] = eqx.field(static=True)
    rank: int = eqx.field(static=True)
    first: Float[Array, " rank channels"]
    filters: tuple[Float[Array, " rank k"], ...]
    last: Float[Array, " out rank"]
    bias: Float[Array, " out"]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, ...],
                 rank: int, dtype=None, *, key: PRNGKeyArray):
        _check("in_channels", in_channels)
        _check("out_channels", out_channels)
        _check("kernel_size", kernel_size, kernel=True)
        _check("rank", rank)
        dtype = dtype or jnp.float32
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.rank = kernel_size, rank
        keys = jax.random.split(key, 2 + len(kernel_size))
        self.first = _normal(keys[0], (rank, in_channels), 1.0 / in_channels, dtype)
        self.filters = tuple(_normal(k_, (rank, k), 1.0 / k, dtype)
                             for k_, k in zip(keys[2:], kernel_size, strict=False))
        self.last = _normal(keys[1], (out_channels, rank), 1.0 / (3 * rank), dtype)
        self.bias = jnp.zeros((out_channels,), dtype)

    @classmethod
    def from_factors(cls, first: Array, filters: tuple[Array, ...], last: Array) -> CPConv:
        """The layer with given factors `first (R, C_i)`, `filters[a] (R, k_a)`, `last (C_o, R)`."""
        rank, c_in = first.shape
        layer = cls(c_in, last.shape[0], tuple(f.shape[1] for f in filters), rank,
                    first.dtype, key=jax.random.key(0))
        return eqx.tree_at(lambda m: (m.first, m.filters, m.last), layer,
                           (first, tuple(filters), last))

    def __call__(self, x: Float[Array, " channels *spatial"]) -> Float[Array, " out *spatial"]:
        nd = len(self.kernel_size)
        h = pointwise(x, self.first)
        for axis, f in enumerate(self.filters):
            h = conv_same(h, _axis_kernel(f, axis, nd), groups=self.rank)
        return self._add_bias(pointwise(h, self.last))

    def flops(self, spatial_shape: tuple[int, ...]) -> int:
        n = math.prod(spatial_shape)
        r = self.rank
        macs = r * self.in_channels + r * sum(self.kernel_size) + self.out_channels * r
        return 2 * n * macs + n * self.out_channels

    def full_kernel(self) -> Float[Array, " out channels *kernel"]:
        w = jnp.einsum("or,ri->ori", self.last, self.first)
        for f in self.filters:
            w = w[..., None] * f.reshape((1, f.shape[0], 1) + (1,) * (w.ndim - 3) + (f.shape[1],))
        return w.sum(axis=1)  # (out, rank, in, *kernel) -> (out, in, *kernel)


class SeparableSumConv(AbstractConv):
    """Every kernel $W_{oi}$ a sum of $R$ separable (outer products of 1-D) filters:

    $$W_{oi x_1 \\ldots x_d} = \\sum_{r=1}^R \\prod_{a=1}^d F^{(a)}_{oir x_a}.$$

    Executed without forming $W$: a grouped convolution along axis 1 produces the $C_i C_o R$
    channels $(i, o, r)$, depthwise convolutions apply the middle axes, and a grouped
    convolution along the last axis sums over $(i, r)$ for each output. This saves parameters
    and work against a dense kernel only while $R \\sum_a k_a < \\prod_a k_a$ (for 3×3 kernels,
    $R = 1$), which is why the CP form, shared across channel pairs, compresses far more.

    **Arguments:** `in_channels`, `out_channels`, `kernel_size` (at least 2 axes), `rank`, `key`.
    """

    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    kernel_size: tuple[int, ...] = eqx.field(static=True)
    rank: int = eqx.field(static=True)
    filters: tuple[Float[Array, " out channels rank k"], ...]
    bias: Float[Array, " out"]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, ...],
                 rank: int, dtype=None, *, key: PRNGKeyArray):
        _check("in_channels", in_channels)
        _check("out_channels", out_channels)
        _check("kernel_size", kernel_size, kernel=True)
        _check("rank", rank)
        if len(kernel_size) < 2:
            raise ConfigError(f"kernel_size: a sum of separable filters needs at least 2 axes, "
                              f"got {kernel_size!r}")
        dtype = dtype or jnp.float32
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.rank = kernel_size, rank
        keys = jax.random.split(key, len(kernel_size))
        # Variance 1/(3 C_i R k_1) for the first axis, 1/k_a for the others: the dense kernel
        # then has variance 1/(3 C_i K) (see the module docstring).
        variances = [1.0 / (3 * in_channels * rank * kernel_size[0])] + \
            [1.0 / k for k in kernel_size[1:]]
        self.filters = tuple(_normal(k_, (out_channels, in_channels, rank, k), v, dtype)
                             for k_, k, v in zip(keys, kernel_size, variances, strict=False))
        self.bias = jnp.zeros((out_channels,), dtype)

    def __call__(self, x: Float[Array, " channels *spatial"]) -> Float[Array, " out *spatial"]:
        nd = len(self.kernel_size)
        c_i, c_o, r = self.in_channels, self.out_channels, self.rank
        spatial = x.shape[1:]
        # Axis 1: input channel i -> channels (i, o, r), a grouped convolution with C_i groups.
        f0 = jnp.transpose(self.filters[0], (1, 0, 2, 3)).reshape(c_i * c_o * r, -1)
        h = conv_same(x, _axis_kernel(f0, 0, nd), groups=c_i)
        # Middle axes: depthwise over the (i, o, r) channels.
        for axis in range(1, nd - 1):
            fa = jnp.transpose(self.filters[axis], (1, 0, 2, 3)).reshape(c_i * c_o * r, -1)
            h = conv_same(h, _axis_kernel(fa, axis, nd), groups=c_i * c_o * r)
        # Last axis: regroup to (o, i, r) and sum over (i, r) within each of the C_o groups.
        h = h.reshape(c_i, c_o, r, *spatial).transpose(1, 0, 2, *range(3, 3 + nd))
        h = h.reshape(c_o * c_i * r, *spatial)
        fl = self.filters[-1].reshape(c_o, c_i * r, self.kernel_size[-1])
        shape = [c_o, c_i * r] + [1] * nd
        shape[-1] = self.kernel_size[-1]
        y = conv_same(h, fl.reshape(shape), groups=c_o)
        return self._add_bias(y)

    def flops(self, spatial_shape: tuple[int, ...]) -> int:
        n = math.prod(spatial_shape)
        macs = self.in_channels * self.out_channels * self.rank * sum(self.kernel_size)
        return 2 * n * macs + n * self.out_channels

    def full_kernel(self) -> Float[Array, " out channels *kernel"]:
        w = self.filters[0]
        for f in self.filters[1:]:
            w = w[..., None] * f.reshape(f.shape[:3] + (1,) * (w.ndim - 3) + (f.shape[3],))
        return w.sum(axis=2)


class Tucker2Conv(AbstractConv):
    """A Tucker-2 convolution (Kim et al., 2016): channels reduced, a small dense core kernel,
    channels restored,

    $$W_{oi\\mathbf{x}} = \\sum_{a=1}^{R_i}\\sum_{b=1}^{R_o} V_{ob}\\, G_{ba\\mathbf{x}}\\, U_{ai},$$

    executed as 1×1 $C_i \\to R_i$, a dense $R_i \\to R_o$ convolution, 1×1 $R_o \\to C_o$.

    **Arguments:** `in_channels`, `out_channels`, `kernel_size`, `rank` (an int for
    $R_i = R_o$ or a pair $(R_i, R_o)$), `key`.
    """

    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    kernel_size: tuple[int, ...] = eqx.field(static=True)
    rank: tuple[int, int] = eqx.field(static=True)
    first: Float[Array, " rank_in channels"]
    core: Float[Array, " rank_out rank_in *kernel"]
    last: Float[Array, " out rank_out"]
    bias: Float[Array, " out"]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, ...],
                 rank: int | tuple[int, int], dtype=None, *, key: PRNGKeyArray):
        _check("in_channels", in_channels)
        _check("out_channels", out_channels)
        _check("kernel_size", kernel_size, kernel=True)
        ranks = (rank, rank) if not isinstance(rank, tuple) else rank
        for r in ranks:
            _check("rank", r)
        dtype = dtype or jnp.float32
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.rank = kernel_size, ranks
        r_i, r_o = ranks
        k1, k2, k3 = jax.random.split(key, 3)
        self.first = _normal(k1, (r_i, in_channels), 1.0 / in_channels, dtype)
        self.core = _normal(k2, (r_o, r_i, *kernel_size), 1.0 / (r_i * math.prod(kernel_size)),
                            dtype)
        self.last = _normal(k3, (out_channels, r_o), 1.0 / (3 * r_o), dtype)
        self.bias = jnp.zeros((out_channels,), dtype)

    def __call__(self, x: Float[Array, " channels *spatial"]) -> Float[Array, " out *spatial"]:
        h = pointwise(x, self.first)
        h = conv_same(h, self.core)
        return self._add_bias(pointwise(h, self.last))

    def flops(self, spatial_shape: tuple[int, ...]) -> int:
        n = math.prod(spatial_shape)
        r_i, r_o = self.rank
        macs = r_i * self.in_channels + r_o * r_i * math.prod(self.kernel_size) \
            + self.out_channels * r_o
        return 2 * n * macs + n * self.out_channels

    def full_kernel(self) -> Float[Array, " out channels *kernel"]:
        return jnp.einsum("ob,ba...,ai->oi...", self.last, self.core, self.first)


class DepthwiseSeparableConv(AbstractConv):
    """A depthwise-separable convolution (Chollet, 2017): each input channel filtered by
    $M$ kernels of its own, then a 1×1 mixing,

    $$W_{oi\\mathbf{x}} = \\sum_{m=1}^M P_{o,(i,m)}\\, D_{(i,m)\\mathbf{x}}.$$

    **Arguments:** `in_channels`, `out_channels`, `kernel_size`, `rank` (the depth multiplier
    $M$), `key`.
    """

    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    kernel_size: tuple[int, ...] = eqx.field(static=True)
    rank: int = eqx.field(static=True)
    depthwise: Float[Array, " hidden 1 *kernel"]
    mix: Float[Array, " out hidden"]
    bias: Float[Array, " out"]

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, ...],
                 rank: int = 1, dtype=None, *, key: PRNGKeyArray):
        _check("in_channels", in_channels)
        _check("out_channels", out_channels)
        _check("kernel_size", kernel_size, kernel=True)
        _check("rank", rank)
        dtype = dtype or jnp.float32
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.rank = kernel_size, rank
        k1, k2 = jax.random.split(key)
        hidden = in_channels * rank
        self.depthwise = _normal(k1, (hidden, 1, *kernel_size), 1.0 / math.prod(kernel_size),
                                 dtype)
        self.mix = _normal(k2, (out_channels, hidden), 1.0 / (3 * hidden), dtype)
        self.bias = jnp.zeros((out_channels,), dtype)

    def __call__(self, x: Float[Array, " channels *spatial"]) -> Float[Array, " out *spatial"]:
        # Grouped convolution with C_i groups and M outputs each: channel (i, m) filters x_i.
        h = conv_same(x, self.depthwise, groups=self.in_channels)
        return self._add_bias(pointwise(h, self.mix))

    def flops(self, spatial_shape: tuple[int, ...]) -> int:
        n = math.prod(spatial_shape)
        hidden = self.in_channels * self.rank
        macs = hidden * math.prod(self.kernel_size) + self.out_channels * hidden
        return 2 * n * macs + n * self.out_channels

    def full_kernel(self) -> Float[Array, " out channels *kernel"]:
        d = self.depthwise[:, 0].reshape(self.in_channels, self.rank, *self.kernel_size)
        p = self.mix.reshape(self.out_channels, self.in_channels, self.rank)
        return jnp.einsum("oim,im...->oi...", p, d)
