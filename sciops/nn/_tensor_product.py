"""Equivariant tensor products of channel-wise features, behind one interface: CP-decomposed
(TDN), e3nn-jax's full product, the dense matrix form and the S2-grid Gaunt product.

Every product maps $x_1 \\in \\mathbb{R}^{C \\times d_1}$ (C channels of irreps `irreps_in1`) and
either one shared vector $x_2 \\in \\mathbb{R}^{d_2}$ (feature ⊗ edge harmonics) or a second
channel-wise feature $x_2 \\in \\mathbb{R}^{C \\times d_2}$ (a channel-wise product of two
features) to $y \\in \\mathbb{R}^{C \\times d_3}$,

$$y_{ck} = \\sum_{ij} T_{ijk}\\, x_{1,ci}\\, x_{2,(c)j},$$

with $T$ the fused Clebsch–Gordan tensor of `sciops.nn.fused_cg_tensor` (all admissible paths,
weights shared across paths; learnable path weights enter as per-channel, per-$l$ scalings of
$x_1$ and as channel mixing after the product, both equivariant). The forms differ in how they
evaluate $T$:

- `CPTensorProduct`: $T \\approx \\sum_r a_r \\otimes b_r \\otimes c_r$, so
  $y = ((x_1 A) \\odot (x_2 B)) C^\\top$ at cost $O(C R (d_1 + d_3))$ (Tensor Decomposition
  Networks, 2025). Approximate: it reports its relative error.
- `E3nnTensorProduct`: `e3nn.tensor_product` path by path (exact).
- `SHMatrixTensorProduct`: the dense fused tensor as a matrix. With a shared $x_2$ it contracts
  $x_2$ first, $M_{ik} = \\sum_j T_{ijk} x_{2,j}$, then $y = x_1 M$; with a channel-wise $x_2$
  it forms $x_{1,c} \\otimes x_{2,c}$ and multiplies by $T$ reshaped to $(d_1 d_2) \\times d_3$,
  one matrix product at cost $O(C d_1 d_2 d_3)$ (exact).
- `GauntS2TensorProduct`: multiply the two functions on the sphere on a Gauss–Legendre grid and
  project back ("The Price of Freedom", 2025; e3nn-jax's s2grid). Exact for the Gaunt tensor,
  which equals $T$ up to a per-path factor on the paths with $l_1+l_2+l_3$ even and has no
  antisymmetric couplings (no cross product).
"""

from __future__ import annotations

import functools
import os
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .. import _random
from .._errors import ConfigError
from ._cp_fit import _irreps, cp_factors, fused_cg_tensor, paper_rank, rank_for_error

__all__ = [
    "AbstractTensorProduct",
    "CPTensorProduct",
    "E3nnTensorProduct",
    "GauntS2TensorProduct",
    "SHMatrixTensorProduct",
    "equivariance_error",
]


class AbstractTensorProduct(eqx.Module):
    """The interface: `tp(x1, x2)` with `x1: (channels, dim1)` and `x2: (dim2,)` (shared by the
    channels) or `x2: (channels, dim2)` (channel-wise) → `(channels, dim_out)`; `relative_error` is the relative Frobenius error of the tensor it
    evaluates against the exact fused tensor (0 for exact forms, `nan` where it evaluates a
    different tensor, as the Gaunt product does)."""

    irreps_in1: eqx.AbstractVar[str]
    irreps_in2: eqx.AbstractVar[str]
    irreps_out: eqx.AbstractVar[str]
    relative_error: eqx.AbstractVar[float]

    # Fixed tables (CG tensor, CP factors): the training driver never hands them to the
    # optimizer (weight decay would otherwise shrink them); `stop_gradient` guards other loops.
    __sciops_frozen__ = True

    def __call__(self, x1: Float[Array, "channels dim1"],
                 x2: Float[Array, "*channels dim2"]) -> Float[Array, "channels dim_out"]:
        raise NotImplementedError

    def tensor(self) -> np.ndarray:
        """The 3-tensor this product evaluates, recovered from its action on basis vectors."""
        d1, d2 = _irreps(self.irreps_in1).dim, _irreps(self.irreps_in2).dim
        e1 = jnp.eye(d1)
        cols = jax.jit(jax.vmap(lambda e2: self(e1, e2)))(jnp.eye(d2))  # (d2, d1, d3)
        return np.asarray(cols).transpose(1, 0, 2)


def _check(irreps_in1, irreps_in2, irreps_out) -> tuple[str, str, str]:
    try:
        return tuple(str(_irreps(i)) for i in (irreps_in1, irreps_in2, irreps_out))
    except ValueError as e:
        raise ConfigError(f"tensor product irreps: {e}") from None


class CPTensorProduct(AbstractTensorProduct):
    """The fused CG tensor product through a rank-R CP decomposition (TDN).

    $$y_{ck} = \\sum_{r=1}^{R} C_{kr} \\Big(\\sum_i x_{1,ci} A_{ir}\\Big)
    \\Big(\\sum_j x_{2,j} B_{jr}\\Big)$$

    The factors are fitted by `sciops.nn.cp_factors` (cached on disk) and frozen: they are
    array leaves wrapped in `jax.lax.stop_gradient` at use.

    **Arguments:**

    - `irreps_in1`, `irreps_in2`, `irreps_out`: irreps of multiplicity 1 (e.g. ``"0e+1o+2e"``).
    - `rank`: the CP rank; default the paper's schedule $7L^2$ with $L$ the largest output $l$.
    - `target_error`: instead of `rank`, the smallest rank whose relative error is at most this.
    - `cache_dir`: folder of the factor cache (default `~/.cache/sciops/cp`).
    - `dtype`: dtype of the stored factors (default JAX's default float).

    **Reference:** "Tensor Decomposition Networks for Fast Machine Learning Interatomic
    Potential Computations" (2025).
    """

    irreps_in1: str = eqx.field(static=True)
    irreps_in2: str = eqx.field(static=True)
    irreps_out: str = eqx.field(static=True)
    rank: int = eqx.field(static=True)
    relative_error: float = eqx.field(static=True)
    A: Float[Array, "dim1 rank"]
    B: Float[Array, "dim2 rank"]
    C: Float[Array, "dim_out rank"]

    def __init__(self, irreps_in1, irreps_in2, irreps_out, rank: int | None = None, *,
                 target_error: float | None = None,
                 cache_dir: str | os.PathLike | None = None, dtype=None):
        i1, i2, io = _check(irreps_in1, irreps_in2, irreps_out)
        if rank is not None and target_error is not None:
            raise ConfigError("CP tensor product: give either rank or target_error, not both")
        if target_error is not None:
            try:
                rank = rank_for_error(i1, i2, io, target_error, cache_dir=cache_dir)
            except ValueError as e:
                raise ConfigError(f"CP tensor product target_error: {e}") from None
        elif rank is None:
            rank = paper_rank(_irreps(io).lmax)
        if not isinstance(rank, int) or rank < 1:
            raise ConfigError(f"CP tensor product rank: expected a positive integer, got {rank!r}")
        f = cp_factors(i1, i2, io, rank, cache_dir=cache_dir)
        self.irreps_in1, self.irreps_in2, self.irreps_out = i1, i2, io
        self.rank = rank
        self.relative_error = float(f.relative_error)
        self.A = jnp.asarray(f.A, dtype=dtype)
        self.B = jnp.asarray(f.B, dtype=dtype)
        self.C = jnp.asarray(f.C, dtype=dtype)

    def __call__(self, x1: Float[Array, "channels dim1"],
                 x2: Float[Array, "*channels dim2"]) -> Float[Array, "channels dim_out"]:
        A, B, C = (jax.lax.stop_gradient(m) for m in (self.A, self.B, self.C))
        return ((x1 @ A) * (x2 @ B)) @ C.T


class SHMatrixTensorProduct(AbstractTensorProduct):
    """The exact fused product in matrix form: contract the shared vector first,
    $M_{ik} = \\sum_j T_{ijk} x_{2,j}$, then $y = x_1 M$ — cheap when $x_2$ (the edge's
    spherical harmonics) is shared by all channels. $T$ is a frozen leaf."""

    irreps_in1: str = eqx.field(static=True)
    irreps_in2: str = eqx.field(static=True)
    irreps_out: str = eqx.field(static=True)
    relative_error: float = eqx.field(static=True)
    T: Float[Array, "dim1 dim2 dim_out"]

    def __init__(self, irreps_in1, irreps_in2, irreps_out, *, dtype=None):
        self.irreps_in1, self.irreps_in2, self.irreps_out = _check(irreps_in1, irreps_in2,
                                                                   irreps_out)
        self.relative_error = 0.0
        self.T = jnp.asarray(fused_cg_tensor(self.irreps_in1, self.irreps_in2, self.irreps_out),
                             dtype=dtype)

    def __call__(self, x1: Float[Array, "channels dim1"],
                 x2: Float[Array, "*channels dim2"]) -> Float[Array, "channels dim_out"]:
        T = jax.lax.stop_gradient(self.T)
        if x2.ndim == 1:
            return x1 @ jnp.einsum("ijk,j->ik", T, x2)
        c, (d1, d2, d3) = x1.shape[0], T.shape
        return (x1[:, :, None] * x2[:, None, :]).reshape(c, d1 * d2) @ T.reshape(d1 * d2, d3)


class E3nnTensorProduct(AbstractTensorProduct):
    """The exact fused product by `e3nn.tensor_product` (path by path, e3nn-jax's own CG
    coefficients and component normalisation), paths into the same irrep summed with weight
    $1/\\sqrt{n_{l_3}}$ as in `fused_cg_tensor`."""

    irreps_in1: str = eqx.field(static=True)
    irreps_in2: str = eqx.field(static=True)
    irreps_out: str = eqx.field(static=True)
    relative_error: float = eqx.field(static=True)

    def __init__(self, irreps_in1, irreps_in2, irreps_out):
        self.irreps_in1, self.irreps_in2, self.irreps_out = _check(irreps_in1, irreps_in2,
                                                                   irreps_out)
        self.relative_error = 0.0

    def __call__(self, x1: Float[Array, "channels dim1"],
                 x2: Float[Array, "*channels dim2"]) -> Float[Array, "channels dim_out"]:
        import e3nn_jax as e3nn

        io = e3nn.Irreps(self.irreps_out)
        a = e3nn.IrrepsArray(self.irreps_in1, x1)
        b = e3nn.IrrepsArray(self.irreps_in2, jnp.broadcast_to(x2, x1.shape[:-1] + x2.shape[-1:]))
        paths = e3nn.tensor_product(a, b, filter_ir_out=io, regroup_output=False)
        counts: dict = {}
        for _, ir in paths.irreps:
            counts[ir] = counts.get(ir, 0) + 1
        dst = {ir: s for (_, ir), s in zip(io, io.slices(), strict=True)}
        out = jnp.zeros(x1.shape[:-1] + (io.dim,), x1.dtype)
        for (_, ir), s in zip(paths.irreps, paths.irreps.slices(), strict=True):
            out = out.at[..., dst[ir]].add(paths.array[..., s] / np.sqrt(counts[ir]))
        return out


class GauntS2TensorProduct(AbstractTensorProduct):
    """The Gaunt tensor product on an S2 grid: $y = \\mathcal{P}_{L_3}[f_1 f_2]$ with
    $f = \\sum_{lm} x_{lm} Y_{lm}$ sampled on a Gauss–Legendre grid fine enough that the product
    and its projection are exact, scaled so that the $0\\otimes0\\to0$ path matches the fused CG
    tensor.

    Only irreps of the spherical-harmonic parity $p = (-1)^l$ live on the sphere; other irreps
    are a `ConfigError`. Couplings with $l_1+l_2+l_3$ odd (the antisymmetric ones, such as the
    cross product $1o \\otimes 1o \\to 1e$) are absent.

    **Reference:** Xie et al., "The Price of Freedom: Exploring Expressivity and Runtime
    Tradeoffs in Equivariant Tensor Products" (2025); Luo et al., "Enabling Efficient Equivariant
    Operations in the Fourier Basis via Gaunt Tensor Products" (ICLR 2024).
    """

    irreps_in1: str = eqx.field(static=True)
    irreps_in2: str = eqx.field(static=True)
    irreps_out: str = eqx.field(static=True)
    relative_error: float = eqx.field(static=True)
    res_beta: int = eqx.field(static=True)
    res_alpha: int = eqx.field(static=True)
    scale: float = eqx.field(static=True)

    def __init__(self, irreps_in1, irreps_in2, irreps_out):
        import e3nn_jax as e3nn

        i1, i2, io = _check(irreps_in1, irreps_in2, irreps_out)
        for name, irr in (("irreps_in1", i1), ("irreps_in2", i2), ("irreps_out", io)):
            bad = [str(ir) for _, ir in e3nn.Irreps(irr) if ir.p != (-1) ** ir.l]
            if bad:
                raise ConfigError(f"S2-grid tensor product {name}={irr}: irreps {bad} do not have "
                                  f"the spherical-harmonic parity (-1)^l, so they do not live on "
                                  f"the sphere")
        self.irreps_in1, self.irreps_in2, self.irreps_out = i1, i2, io
        self.relative_error = float("nan")
        degree = sum(e3nn.Irreps(i).lmax for i in (i1, i2, io))
        # Gauss–Legendre with n nodes integrates degree 2n-1 in cos(beta) exactly; n+1 uniform
        # alpha nodes integrate trigonometric degree n; the integrand has degree l1+l2+l3.
        self.res_beta = degree // 2 + 2
        self.res_alpha = 2 * (degree // 2) + 3
        # Scale so that the 0e x 0e -> 0e path equals the fused CG tensor's: the Gaunt
        # coefficient of that path is only the sphere-normalisation constant of Y_00.
        self.scale = 1.0
        if all(e3nn.Irreps(i)[0].ir == e3nn.Irrep("0e") for i in (i1, i2, io)):
            e1 = np.zeros((1, e3nn.Irreps(i1).dim))
            e2 = np.zeros(e3nn.Irreps(i2).dim)
            e1[0, 0] = e2[0] = 1.0
            scalar = np.asarray(_gaunt(i1, i2, io, self.res_beta, self.res_alpha, e1, e2))
            self.scale = float(fused_cg_tensor(i1, i2, io)[0, 0, 0] / scalar[0, 0])

    def __call__(self, x1: Float[Array, "channels dim1"],
                 x2: Float[Array, "*channels dim2"]) -> Float[Array, "channels dim_out"]:
        return self.scale * _gaunt(self.irreps_in1, self.irreps_in2, self.irreps_out,
                                   self.res_beta, self.res_alpha, x1, x2)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _gaunt(i1, i2, io, res_beta, res_alpha, x1, x2):
    # jitted: op by op, e3nn-jax's grid transforms (Legendre tables included) take seconds
    import e3nn_jax as e3nn

    kw = dict(quadrature="gausslegendre", p_val=1, p_arg=-1)
    with warnings.catch_warnings():
        # e3nn-jax 0.21 computes its Legendre table with jax.scipy.special.lpmn_values, which jax
        # 0.10 deprecates (a warning raised once, at trace time); the values are unaffected.
        warnings.filterwarnings("ignore", message=".*lpmn_values.*", category=DeprecationWarning)
        f1 = e3nn.to_s2grid(e3nn.IrrepsArray(i1, jnp.asarray(x1)), res_beta, res_alpha, **kw)
        f2 = e3nn.to_s2grid(e3nn.IrrepsArray(i2, jnp.asarray(x2)), res_beta, res_alpha, **kw)
        g2 = f2.grid_values if jnp.ndim(x2) == 2 else f2.grid_values[None]
        prod = f1.replace_values(f1.grid_values * g2)
        return e3nn.from_s2grid(prod, e3nn.Irreps(io)).array


def equivariance_error(tp: AbstractTensorProduct, *, key: PRNGKeyArray, n_rotations: int = 8,
                       n_samples: int = 256, channels: int = 4,
                       channelwise: bool = False) -> float:
    """The measured equivariance error of a product, worst over random group elements:

    $$\\max_g \\sqrt{\\frac{\\sum \\|f(D_1(g)x_1, D_2(g)x_2) - D_3(g) f(x_1, x_2)\\|^2}
    {\\sum \\|f(x_1, x_2)\\|^2}},$$

    sums over `n_samples` Gaussian inputs of `channels` channels (`x2` shared by the channels, or
    with `channelwise` one per channel); half of the group elements are rotations composed with
    the inversion $-I$ (improper rotations).

    For a product evaluating $\\hat T = T + E$ with $T$ equivariant the numerator equals the
    contraction of $E - g\\cdot E$, so the expected value is at most $2\\|E\\|/\\|T\\|$: twice the
    relative approximation error.
    """
    import e3nn_jax as e3nn

    i1, i2, io = (e3nn.Irreps(i) for i in (tp.irreps_in1, tp.irreps_in2, tp.irreps_out))
    k_rot, k1, k2 = jax.random.split(key, 3)
    rots = e3nn.rand_matrix(k_rot, (n_rotations,))
    signs = jnp.where(jnp.arange(n_rotations) % 2 == 1, -1.0, 1.0)
    x1 = _random.normal(k1, (n_samples, channels, i1.dim))
    x2 = _random.normal(k2, (n_samples, channels, i2.dim) if channelwise else (n_samples, i2.dim))
    errors = _rotation_errors(tp, x1, x2, rots * signs[:, None, None], (i1, i2, io))
    return float(jnp.max(errors))


@eqx.filter_jit
def _rotation_errors(tp, x1, x2, group, irreps):
    """`equivariance_error`'s relative error for each group element, as one compiled program
    (the Wigner matrices of e3nn-jax op by op cost a compilation per operation)."""
    f = jax.vmap(tp)
    y = f(x1, x2)

    def one(g):
        D1, D2, D3 = (jnp.asarray(i.D_from_matrix(g), x1.dtype) for i in irreps)
        y_rot = f(x1 @ D1.T, x2 @ D2.T)
        return jnp.sqrt(jnp.sum((y_rot - y @ D3.T) ** 2) / jnp.sum(y ** 2))

    return jax.lax.map(one, group)
