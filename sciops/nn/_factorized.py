"""Factorized complex tensors (CP, Tucker, tensor train) and the factorized spectral weight.

A Fourier layer's spectral weight is a complex tensor $W \\in \\mathbb{C}^{c_{in} \\times c_{out}
\\times m_1 \\times \\cdots \\times m_d}$ that acts on the truncated Fourier coefficients $\\hat x$ of
one layer's input by $\\hat y_{o,\\mathbf m} = \\sum_i \\hat x_{i,\\mathbf m} W_{i,o,\\mathbf m}$.
Writing $W$ in a low-rank tensor format cuts its parameters by one or two orders of magnitude
(Kossaifi et al., "Multi-Grid Tensorized Fourier Neural Operator for High-Resolution PDEs",
TMLR 2024). With a *joint* factorization the weights of all $L$ layers form one tensor of shape
$(L, c_{in}, c_{out}, m_1, \\dots, m_d)$, factorized once (the paper's global factorization);
a *per-layer* factorization holds $L$ independent tensors of the same format.

Each complex factor is stored as one real array with a leading axis of size 2 (real and
imaginary parts): `jax.grad` of a real loss with respect to a complex leaf returns the conjugate
of the descent direction, so complex leaves would silently train the wrong way under optax.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float, Int, PRNGKeyArray

from .._errors import ConfigError
from ._spectral import (
    AbstractSpectralWeight,
    contract_per_sample,
    lead_matmul,
    mode_matmul,
    modes_first,
    weight_mode_shape,
)

__all__ = [
    "AbstractFactorizedTensor",
    "CPTensor",
    "TuckerTensor",
    "TTTensor",
    "CP",
    "Tucker",
    "TT",
    "FactorizedSpectralWeight",
    "cp_rank",
    "tucker_ranks",
    "tt_ranks",
]

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _complex(a: Float[Array, "2 ..."]) -> Complex[Array, "..."]:
    return jax.lax.complex(a[0], a[1])


def _real(z: np.ndarray) -> np.ndarray:
    return np.stack([z.real, z.imag]).astype(np.float32)


def _cmul(ar, ai, br, bi, op=jnp.multiply):
    """`op` (a product) of complex operands held as (real, imaginary) pairs."""
    return op(ar, br) - op(ai, bi), op(ar, bi) + op(ai, br)


def _crandn(rng: np.random.Generator, shape) -> np.ndarray:
    """Standard complex normal entries, E|z|^2 = 1."""
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2.0)


def _unit_columns(rng: np.random.Generator, n: int, r: int) -> np.ndarray:
    """An (n, r) complex matrix whose columns have norm sqrt(n) exactly (random directions).

    Exact column norms make the Frobenius norm of the reconstructed tensor, hence its empirical
    standard deviation, independent of the draw up to cross terms of relative size
    1/sqrt(#entries); plain Gaussian factors fluctuate by tens of per cent for products of five.
    """
    u = _crandn(rng, (n, r))
    return u * (np.sqrt(n) / np.linalg.norm(u, axis=0, keepdims=True))


def _orthonormal(rng: np.random.Generator, n: int, r: int) -> np.ndarray:
    """An (n, r) complex matrix with orthonormal columns (r <= n)."""
    q, _ = np.linalg.qr(_crandn(rng, (n, r)))
    return q[:, :r]


def _key_rng(key: PRNGKeyArray) -> np.random.Generator:
    # Initialisation runs once on the host: numpy's QR and norms are simpler there, and a seed
    # drawn from the JAX key keeps it reproducible from the caller's key.
    seed = np.asarray(jax.random.randint(key, (4,), 0, 2**31 - 1, dtype=jnp.int32))
    return np.random.default_rng(seed.tolist())


# --------------------------------------------------------------------------- rank arithmetic


def _range_error(name: str, rank, low, high, what: str) -> ConfigError:
    return ConfigError(f"{name}: {what} rank {rank!r} is out of range; allowed: an int in "
                       f"[{low}, {high}] or a fraction of the dense parameter count in (0, 1]")


def _check_fraction(rank, name):
    if isinstance(rank, bool) or not isinstance(rank, (int, float)):
        raise ConfigError(f"{name}: expected an int or a float, got {rank!r}")
    if isinstance(rank, float) and not 0.0 < rank <= 1.0:
        raise ConfigError(f"{name}: a fractional rank must lie in (0, 1], got {rank!r}")


def cp_rank(shape: Sequence[int], rank: int | float, name: str = "rank") -> int:
    """The CP rank $R$ for `rank` (an int, or a float fraction of the dense parameter count).

    A CP tensor of rank $R$ holds $R \\sum_k n_k$ complex entries; the allowed ints are those
    that hold no more entries than the dense tensor, $1 \\le R \\le \\prod_k n_k / \\sum_k n_k$.
    """
    _check_fraction(rank, name)
    dense, per_rank = math.prod(shape), sum(shape)
    high = max(1, dense // per_rank)
    if isinstance(rank, float):
        return max(1, min(high, int(round(rank * dense / per_rank))))
    if not 1 <= rank <= high:
        raise _range_error(name, rank, 1, high, f"CP rank for a tensor of shape {tuple(shape)}:")
    return rank


def tucker_ranks(shape: Sequence[int], rank: int | float, name: str = "rank") -> tuple[int, ...]:
    """Tucker ranks $(r_1, \\dots, r_d)$, $r_k \\le n_k$.

    An int gives $r_k = \\min(r, n_k)$ (allowed $1 \\le r \\le \\max_k n_k$). A fraction $f$ scales
    every mode alike: solve $\\prod_k c\\,n_k + \\sum_k c\\,n_k^2 = f \\prod_k n_k$ (core plus factors
    hold a fraction $f$ of the dense entries) for the continuous scale $c$, then round each
    $r_k = c\\,n_k$ to the nearest integer in $[1, n_k]$. The rounding can overshoot the budget
    by a few per cent; it is the rule tensorly uses, so `rank=0.42` on a $(32, 32, 16, 9)$ weight
    gives neuraloperator's ranks $(26, 26, 13, 7)$ and equal parameter counts.
    """
    _check_fraction(rank, name)
    if isinstance(rank, int):
        if not 1 <= rank <= max(shape):
            raise _range_error(name, rank, 1, max(shape),
                               f"Tucker rank for a tensor of shape {tuple(shape)}:")
        return tuple(min(rank, n) for n in shape)
    budget = rank * math.prod(shape)

    def params(c):  # continuous and increasing in c
        return math.prod(c * n for n in shape) + sum(c * n * n for n in shape)

    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if params(mid) <= budget else (lo, mid)
    return tuple(max(1, min(n, int(round(lo * n)))) for n in shape)


def _tt_max_ranks(shape) -> list[int]:
    return [min(math.prod(shape[:k]), math.prod(shape[k:])) for k in range(1, len(shape))]


def _tt_params(shape, inner) -> int:
    r = [1, *inner, 1]
    return sum(r[k] * n * r[k + 1] for k, n in enumerate(shape))


def tt_ranks(shape: Sequence[int], rank: int | float, name: str = "rank") -> tuple[int, ...]:
    """Inner tensor-train ranks $(r_1, \\dots, r_{d-1})$ ($r_0 = r_d = 1$).

    An int $r$ gives $r_k = \\min(r, \\min(\\prod_{j<k} n_j, \\prod_{j \\ge k} n_j))$ (allowed up to the
    largest of those caps). A fraction $f$ takes the largest common $r$ whose cores
    ($\\sum_k r_{k-1} n_k r_k$ entries) stay within $f \\prod_k n_k$.
    """
    _check_fraction(rank, name)
    caps = _tt_max_ranks(shape)

    def ranks_at(r):
        return tuple(min(r, c) for c in caps)

    if isinstance(rank, int):
        if not 1 <= rank <= max(caps):
            raise _range_error(name, rank, 1, max(caps),
                               f"TT rank for a tensor of shape {tuple(shape)}:")
        return ranks_at(rank)
    budget = rank * math.prod(shape)
    best = 1
    for r in range(1, max(caps) + 1):
        if _tt_params(shape, ranks_at(r)) > budget:
            break
        best = r
    return ranks_at(best)


# ------------------------------------------------------------------------ factorized tensors


class AbstractFactorizedTensor(eqx.Module):
    """A complex tensor of shape `shape` held in a factorized format.

    Concrete formats give their complex factors, the slice along the first mode (to pick one
    layer out of a joint factorization without reconstructing anything), the reconstruction and
    the direct contraction with a spectral input.
    """

    shape: eqx.AbstractVar[tuple[int, ...]]

    @abc.abstractmethod
    def factors(self) -> list[Complex[Array, "..."]]:
        """The complex factors (the stored real/imaginary pairs combined)."""

    @abc.abstractmethod
    def _slice0(self, f: list, index) -> list:
        """Factors of the order-(d-1) tensor $T[\\text{index}, \\dots]$."""

    @abc.abstractmethod
    def _dense(self, f: list) -> Complex[Array, "..."]:
        """Reconstruct the full tensor from complex factors."""

    @abc.abstractmethod
    def _contract(self, x: Complex[Array, "..."], f: list) -> Complex[Array, "..."]:
        """$y_{o\\mathbf m} = \\sum_i x_{i\\mathbf m} T_{io\\mathbf m}$ straight from the factors."""

    def _factors_at(self, layer) -> list:
        f = self.factors()
        return f if layer is None else self._slice0(f, layer)

    def to_dense(self, layer: Int[Array, ""] | int | None = None) -> Complex[Array, "..."]:
        """The full tensor, or its slice `layer` along the first mode."""
        return self._dense(self._factors_at(layer))

    def contract(self, x: Complex[Array, "in *modes"],
                 layer: Int[Array, ""] | int | None = None) -> Complex[Array, "out *modes"]:
        """Contract an input `(in, *modes)` with the tensor `(in, out, *modes)` (or with its slice
        `layer` of a joint `(layers, in, out, *modes)` tensor) without forming it."""
        return self._contract(x, self._factors_at(layer))

    def contract_batched(self, z: Float[Array, "2 modes batch in"], layer, mode_shape
                         ) -> Float[Array, "2 modes batch out"]:
        """`contract` on a batch in the mode-major real layout of
        `sciops.nn._spectral.truncated_dft` (modes flattened, of shape `mode_shape`). This
        default contracts sample by sample; formats with a batched form override it."""
        return contract_per_sample(lambda x: self.contract(x, layer), z, mode_shape)

    def modes_first(self, layer: Int[Array, ""] | int | None = None
                    ) -> tuple[Float[Array, "modes in out"], Float[Array, "modes in out"]]:
        """The real and imaginary parts of the `(in, out, *modes)` tensor (or of its slice
        `layer`) with the modes flattened onto the leading axis, as `mode_matmul` takes them."""
        w = self.to_dense(layer)
        return modes_first(jnp.real(w)), modes_first(jnp.imag(w))

    def param_count(self) -> int:
        """Number of real parameters (two per complex entry)."""
        return sum(int(a.size) for a in jax.tree_util.tree_leaves(self) if eqx.is_array(a))


def _spectral_letters(order: int) -> tuple[str, str, str]:
    """Index letters for the input channel, output channel and the spectral modes."""
    modes = _LETTERS[14:14 + order - 2]  # o..: never collide with the rank letters a..n below
    return "i", "h", modes


class CPTensor(AbstractFactorizedTensor):
    """$T_{n_1 \\dots n_d} = \\sum_{r=1}^R \\prod_k U^{(k)}_{n_k r}$ (canonical polyadic form).

    **Arguments:**

    - `shape`: the tensor shape $(n_1, \\dots, n_d)$.
    - `rank`: an int $R$ or a fraction of the dense parameter count (see `cp_rank`).
    - `std`: the target standard deviation of the reconstructed entries, $\\sqrt{E|T|^2}$.
    - `key`: PRNG key.
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    rank: int = eqx.field(static=True)
    weights: tuple[Float[Array, "2 n r"], ...]

    def __init__(self, shape: Sequence[int], rank: int | float, *, std: float,
                 key: PRNGKeyArray, name: str = "rank"):
        self.shape = tuple(int(n) for n in shape)
        self.rank = cp_rank(self.shape, rank, name)
        rng = _key_rng(key)
        # Balanced scale s per factor: each of the R rank-one terms then has E|.|^2 =
        # s^(2d) = std^2 / R, and their sum has variance std^2.
        s = (std**2 / self.rank) ** (0.5 / len(self.shape))
        self.weights = tuple(jnp.asarray(_real(s * _unit_columns(rng, n, self.rank)))
                             for n in self.shape)

    def factors(self):
        return [_complex(w) for w in self.weights]

    def _slice0(self, f, index):
        # Row `index` of the first factor scales the columns of the second.
        return [f[1] * f[0][index][None, :], *f[2:]]

    def _dense(self, f):
        letters = _LETTERS[:len(f)]
        return jnp.einsum(",".join(f"{c}z" for c in letters) + "->" + letters, *f)

    def _contract(self, x, f):
        i, o, m = _spectral_letters(len(f))
        ops = [f"{c}z" for c in (i, o, *m)]
        return jnp.einsum(f"{i}{m}," + ",".join(ops) + f"->{o}{m}", x, *f, optimize="optimal")


class TuckerTensor(AbstractFactorizedTensor):
    """$T = G \\times_1 U^{(1)} \\times_2 \\cdots \\times_d U^{(d)}$ (Tucker form).

    The core $G$ is $(r_1, \\dots, r_d)$, the factors $U^{(k)}$ are $(n_k, r_k)$. Initialised with
    orthonormal factors scaled by $\\sqrt{n_k / r_k}$ and a core of entries with $E|G|^2 = $
    `std`$^2$, so the reconstructed tensor has $\\|T\\|_F^2 = \\prod_k n_k \\cdot$ `std`$^2$.

    **Arguments:** as `CPTensor`; `rank` as in `tucker_ranks`.
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    ranks: tuple[int, ...] = eqx.field(static=True)
    core: Float[Array, "2 ..."]
    weights: tuple[Float[Array, "2 n r"], ...]

    def __init__(self, shape: Sequence[int], rank: int | float, *, std: float,
                 key: PRNGKeyArray, name: str = "rank"):
        self.shape = tuple(int(n) for n in shape)
        self.ranks = tucker_ranks(self.shape, rank, name)
        rng = _key_rng(key)
        core = _crandn(rng, self.ranks)
        core *= std * np.sqrt(core.size) / np.linalg.norm(core)
        self.core = jnp.asarray(_real(core))
        self.weights = tuple(jnp.asarray(_real(np.sqrt(n / r) * _orthonormal(rng, n, r)))
                             for n, r in zip(self.shape, self.ranks, strict=False))

    def factors(self):
        return [_complex(self.core), *(_complex(w) for w in self.weights)]

    def _slice0(self, f, index):
        core = jnp.tensordot(f[1][index], f[0], axes=(0, 0))
        return [core, *f[2:]]

    def _dense(self, f):
        d = len(f) - 1
        r, n = _LETTERS[:d], _LETTERS[d:2 * d]
        return jnp.einsum(r + "," + ",".join(f"{a}{b}" for a, b in zip(n, r, strict=False)) + "->" + n, *f,
                          optimize="optimal")

    def _contract(self, x, f):
        d = len(f) - 1
        i, o, m = _spectral_letters(d)
        r = _LETTERS[:d]
        ops = [f"{a}{b}" for a, b in zip((i, o, *m), r, strict=False)]
        return jnp.einsum(f"{i}{m},{r}," + ",".join(ops) + f"->{o}{m}", x, *f, optimize="optimal")

    def _real_factors(self, layer):
        """The factors of the tensor (or of its slice `layer`) as (real, imaginary) pairs:
        core, input, output, then the mode factors."""
        return [(jnp.real(a), jnp.imag(a)) for a in self._factors_at(layer)]

    def _mode_core(self, core, u_modes):
        """$G'_{\\mathbf m a c} = \\sum G_{ac\\mathbf r} \\prod_k U^{(k)}_{m_k r_k}$: the core with its mode
        ranks expanded to the modes, mode-major `(modes, r_in, r_out)`, as (real, imag) pairs.

        One product per mode axis, each contracting the leading axis of the running array (the
        core permuted once to (mode ranks, r_in, r_out)), batched over the modes already done.
        """
        r_in, r_out = core[0].shape[:2]
        order = (*range(2, core[0].ndim), 0, 1)
        x = tuple(jnp.transpose(c, order) for c in core)              # (r_m..., r_in, r_out)
        done = ()
        for u in u_modes:
            n, r = u[0].shape
            x = _cmul(*u, *(a.reshape(*done, r, -1) for a in x), lead_matmul)
            done = (*done, n)
        return tuple(a.reshape(-1, r_in, r_out) for a in x)

    def modes_first(self, layer=None):
        """The reconstruction in the mode-major layout, in real arithmetic: `_mode_core`, then
        the output factor (one product) and the input factor (batched over the modes)."""
        core, u_in, u_out, *u_modes = self._real_factors(layer)
        g = self._mode_core(core, u_modes)                             # (modes, a, c)
        n_modes, r_in, r_out = g[0].shape
        g = _cmul(*(a.reshape(-1, r_out) for a in g), *(u.T for u in u_out), jnp.matmul)
        g = tuple(a.reshape(n_modes, r_in, -1) for a in g)             # (modes, a, out)
        return _cmul(*u_in, *g, lead_matmul)                           # (modes, in, out)

    def contract_batched(self, z, layer, mode_shape=None):
        """`contract` for a batch in the mode-major real layout of
        `sciops.nn._spectral.truncated_dft`, never forming the weight: the input factor on
        every coefficient (one product), the mode-expanded core mode by mode (`_mode_core`,
        batched over the modes), then the output factor (one product). Cheaper than forming
        the weight when the batch times the ranks is small against the channel counts."""
        core, u_in, u_out, *u_modes = self._real_factors(layer)
        g = self._mode_core(core, u_modes)                             # (modes, a, c)
        t = _cmul(z[0], z[1], *u_in, jnp.matmul)                       # (modes, batch, a)
        t = _cmul(*t, *g, jnp.matmul)                                  # (modes, batch, c)
        return jnp.stack(_cmul(*t, *(u.T for u in u_out), jnp.matmul))  # (2, modes, batch, out)


class TTTensor(AbstractFactorizedTensor):
    """$T_{n_1 \\dots n_d} = G^{(1)}_{n_1} G^{(2)}_{n_2} \\cdots G^{(d)}_{n_d}$ (tensor train).

    Core $G^{(k)}$ is $(r_{k-1}, n_k, r_k)$ with $r_0 = r_d = 1$. Initialised left-orthonormal
    (each core reshaped to $(r_{k-1} n_k, r_k)$ has orthonormal columns, scaled by
    $\\sqrt{r_{k-1} n_k / r_k}$), so the last core alone sets $\\|T\\|_F$, which is fixed to
    $\\sqrt{\\prod_k n_k}\\cdot$ `std`.

    **Arguments:** as `CPTensor`; `rank` as in `tt_ranks`.
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    ranks: tuple[int, ...] = eqx.field(static=True)
    cores: tuple[Float[Array, "2 r n s"], ...]

    def __init__(self, shape: Sequence[int], rank: int | float, *, std: float,
                 key: PRNGKeyArray, name: str = "rank"):
        self.shape = tuple(int(n) for n in shape)
        self.ranks = tt_ranks(self.shape, rank, name)
        rng = _key_rng(key)
        r = [1, *self.ranks, 1]
        cores, scale = [], 1.0
        for k, n in enumerate(self.shape[:-1]):
            alpha = np.sqrt(r[k] * n / r[k + 1])
            q = _orthonormal(rng, r[k] * n, r[k + 1]).reshape(r[k], n, r[k + 1])
            cores.append(alpha * q)
            scale *= alpha**2
        last = _crandn(rng, (r[-2], self.shape[-1], 1))
        # ||T||^2 = prod(alpha_k^2) * ||G_last||^2 for left-orthonormal leading cores.
        last *= np.sqrt(math.prod(self.shape) * std**2 / scale) / np.linalg.norm(last)
        cores.append(last)
        self.cores = tuple(jnp.asarray(_real(c)) for c in cores)

    def factors(self):
        return [_complex(c) for c in self.cores]

    def _slice0(self, f, index):
        first = jnp.tensordot(f[0][0, index], f[1], axes=(0, 0))[None]
        return [first, *f[2:]]

    def _dense(self, f):
        d = len(f)
        r, n = _LETTERS[:d + 1], _LETTERS[d + 1:2 * d + 1]
        ops = [f"{r[k]}{n[k]}{r[k + 1]}" for k in range(d)]
        out = jnp.einsum(",".join(ops) + f"->{r[0]}{n}{r[d]}", *f, optimize="optimal")
        return out[0, ..., 0]

    def _contract(self, x, f):
        d = len(f)
        i, o, m = _spectral_letters(d)
        r = _LETTERS[:d + 1]
        ops = [f"{r[k]}{c}{r[k + 1]}" for k, c in enumerate((i, o, *m))]
        out = jnp.einsum(f"{i}{m}," + ",".join(ops) + f"->{r[0]}{o}{m}{r[d]}", x, *f,
                         optimize="optimal")
        return out[0, ..., 0]


# ------------------------------------------------------------- factorization specifications


class _Factorization(eqx.Module):
    rank: int | float = eqx.field(static=True)

    def make(self, shape, *, std, key, name="rank") -> AbstractFactorizedTensor:
        return self.tensor_type(shape, self.rank, std=std, key=key, name=name)


class CP(_Factorization):
    """CP factorization with `rank` (int, or fraction of the dense parameter count)."""

    tensor_type = CPTensor


class Tucker(_Factorization):
    """Tucker factorization with `rank` (int, or fraction of the dense parameter count)."""

    tensor_type = TuckerTensor


class TT(_Factorization):
    """Tensor-train factorization with `rank` (int, or fraction of the dense parameter count)."""

    tensor_type = TTTensor


# --------------------------------------------------------------- the factorized spectral weight


class FactorizedSpectralWeight(AbstractSpectralWeight):
    """The spectral weights of all `n_layers` Fourier layers in a factorized format.

    Layer $\\ell$ maps truncated coefficients $\\hat x \\in \\mathbb{C}^{c_{in} \\times \\mathbf m}$ to
    $\\hat y_{o\\mathbf m} = \\sum_i \\hat x_{i\\mathbf m} W^{(\\ell)}_{io\\mathbf m}$ where

    - joint: $W^{(\\ell)} = \\mathcal W[\\ell]$, one factorized tensor
      $\\mathcal W \\in \\mathbb{C}^{L \\times c_{in} \\times c_{out} \\times \\mathbf m}$ for all layers
      (Kossaifi et al.'s global factorization);
    - per layer: $W^{(\\ell)}$ are $L$ independent factorized tensors (stacked leaves, so a
      traced `layer` index inside `lax.scan` works for both).

    **Arguments:**

    - `factorization`: `CP(rank)`, `Tucker(rank)` or `TT(rank)`.
    - `n_layers`, `in_channels`, `out_channels`: sizes.
    - `n_modes`: modes kept per spatial axis (full-spectrum count, `sciops.nn._spectral`); a
      layer's coefficient block has shape `weight_mode_shape(n_modes)`.
    - `joint`: one tensor over all layers (True) or one per layer (False).
    - `reconstruct`: form $W^{(\\ell)}$ and contract (True), or contract the input with the
      factors directly, never forming $W^{(\\ell)}$ (False). Both give the same output to rounding.
    - `std`: $\\sqrt{E|W|^2}$ of the reconstructed weights; default $\\sqrt{2/(c_{in} + c_{out})}$,
      that of `DenseSpectralWeight`, so a factorized FNO starts at the dense FNO's scale.
    - `rank_name`: the config key named in rank errors (e.g. ``model.rank``).
    - `key`: PRNG key.
    """

    tensor: AbstractFactorizedTensor
    n_layers: int = eqx.field(static=True)
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    n_modes: tuple[int, ...] = eqx.field(static=True)
    joint: bool = eqx.field(static=True)
    reconstruct: bool = eqx.field(static=True)

    def __init__(self, factorization: _Factorization, n_layers: int, in_channels: int,
                 out_channels: int, n_modes: Sequence[int], *, joint: bool = True,
                 reconstruct: bool = False, std: float | None = None, key: PRNGKeyArray,
                 rank_name: str = "rank"):
        self.n_layers, self.in_channels, self.out_channels = n_layers, in_channels, out_channels
        self.n_modes, self.joint, self.reconstruct = tuple(n_modes), joint, reconstruct
        std = math.sqrt(2.0 / (in_channels + out_channels)) if std is None else std
        layer_shape = (in_channels, out_channels, *weight_mode_shape(self.n_modes))
        if joint:
            self.tensor = factorization.make((n_layers, *layer_shape), std=std, key=key,
                                             name=rank_name)
        else:
            keys = jax.random.split(key, n_layers)
            tensors = [factorization.make(layer_shape, std=std, key=k, name=rank_name)
                       for k in keys]
            self.tensor = jax.tree.map(lambda *a: jnp.stack(a), *tensors)

    def _layer(self, layer):
        if self.joint:
            return self.tensor, layer
        return jax.tree.map(lambda a: a[layer], self.tensor), None

    def contract(self, x_modes: Complex[Array, "in_channels *modes"],
                 layer: Int[Array, ""] | int) -> Complex[Array, "out_channels *modes"]:
        """Layer `layer`'s spectral multiplication of the coefficients `x_modes`."""
        x = x_modes
        tensor, index = self._layer(layer)
        if self.reconstruct:
            w = tensor.to_dense(index)
            return jnp.einsum("i...,io...->o...", x, w)
        return tensor.contract(x, index)

    def contract_batched(self, z, layer):
        """With `reconstruct`, layer `layer`'s weight is formed once for the whole batch and
        applied as mode-wise real matrix products; otherwise the batch is contracted with the
        factors (`AbstractFactorizedTensor.contract_batched`: batched for Tucker, sample by
        sample for the other formats)."""
        tensor, index = self._layer(layer)
        if self.reconstruct:
            return mode_matmul(z, *tensor.modes_first(index))
        return tensor.contract_batched(z, index, weight_mode_shape(self.n_modes))

    def dense(self, layer: Int[Array, ""] | int) -> Complex[Array, "in_channels out_channels *modes"]:
        """Layer `layer`'s full weight $W^{(\\ell)}$ (for inspection and tests)."""
        tensor, index = self._layer(layer)
        return tensor.to_dense(index)

    def param_count(self) -> int:
        """Real parameters of all layers' spectral weights."""
        return self.tensor.param_count()

    def dense_param_count(self) -> int:
        """Real parameters of the dense weights this factorization replaces."""
        return (2 * self.n_layers * self.in_channels * self.out_channels
                * math.prod(weight_mode_shape(self.n_modes)))
