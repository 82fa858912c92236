"""Channel-wise tensor products of two multi-channel equivariant features with per-channel path
weights, on full O(3) irreps, and the one place a product form is chosen by name.

For features $x_1 \\in \\mathbb{R}^{C\\times d_1}$, $x_2 \\in \\mathbb{R}^{C\\times d_2}$,

$$y_{ck} = w^{(3)}_{c,k} \\sum_{ij} T_{ijk}\\, w^{(1)}_{c,i} x_{1,ci}\\, w^{(2)}_{c,j} x_{2,cj},$$

with $T$ the fused Clebsch–Gordan tensor (`sciops.nn.fused_cg_tensor`) and learnable weights
constant on each irrep: the weight of path $(l_1p_1, l_2p_2) \\to l_3p_3$ in channel $c$ is the
product $w^{(1)}_{c,l_1p_1} w^{(2)}_{c,l_2p_2} w^{(3)}_{c,l_3p_3}$. That factorised form is
what lets one CP decomposition of $T$ serve every path (TDN's path-weight sharing): with
$T \\approx \\sum_r a_r \\otimes b_r \\otimes c_r$ each channel's inputs are projected onto the $R$
rank-one factors, multiplied and expanded,
$y_c = w^{(3)}_c \\odot \\big[((w^{(1)}_c \\odot x_{1,c}) A) \\odot ((w^{(2)}_c \\odot x_{2,c}) B)\\big]
C^\\top$, at cost $O(CR(d_1+d_2+d_3))$ against $O(C d_1 d_2 d_3)$ for the dense exact form.

With irreps of both parities ($0e+0o+1o+1e+\\dots$, `o3_irreps`) the fused tensor keeps the
antisymmetric couplings (the cross product $1o \\otimes 1o \\to 1e$), which the Gaunt/S2-grid
product cannot represent and which make the tensor much harder to compress than the
spherical-harmonic-parity one.

**Reference:** "Tensor Decomposition Networks for Fast Machine Learning Interatomic Potential
Computations" (2025).
"""

from __future__ import annotations

import os

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._errors import ConfigError
from ._cp_fit import _irreps
from ._tensor_product import (
    AbstractTensorProduct,
    CPTensorProduct,
    E3nnTensorProduct,
    GauntS2TensorProduct,
    SHMatrixTensorProduct,
)

__all__ = ["ChannelwiseTensorProduct", "PRODUCT_FORMS", "make_tensor_product", "o3_irreps",
           "sh_parity_irreps"]

# "exact" is the fastest exact form measured on CPU for both product kinds (the dense matrix
# form; benchmarks/tensor_product_table.py, docs/mlip.md).
PRODUCT_FORMS = ("cp", "e3nn", "sh_matrix", "s2grid", "exact")


def sh_parity_irreps(lmax: int) -> str:
    """``0e+1o+2e+...`` up to `lmax`: the irreps of spherical harmonics (parity $(-1)^l$)."""
    return "+".join(f"{d}{'e' if d % 2 == 0 else 'o'}" for d in range(lmax + 1))


def o3_irreps(lmax: int) -> str:
    """``0e+0o+1o+1e+2e+2o+...`` up to `lmax`: every irrep of O(3) once, both parities."""
    return "+".join(f"{d}{p}" for d in range(lmax + 1)
                    for p in (("e", "o") if d % 2 == 0 else ("o", "e")))


def make_tensor_product(form: str,
                        irreps_in1, irreps_in2, irreps_out, *, rank: int | None = None,
                        target_error: float | None = None,
                        cache_dir: str | os.PathLike | None = None) -> AbstractTensorProduct:
    """The product form a config names: ``cp`` (TDN; `rank` or `target_error`), ``e3nn``
    (e3nn-jax path by path), ``sh_matrix`` (dense matrix form), ``s2grid`` (Gaunt; irreps of
    parity $(-1)^l$ only) or ``exact`` (the fastest exact form measured here: ``sh_matrix``).

    **Raises:** `ConfigError` naming the form for an unknown name or CP options given to an
    exact form.
    """
    if form not in PRODUCT_FORMS:
        raise ConfigError(f"tensor product form: expected one of {', '.join(PRODUCT_FORMS)}, "
                          f"got {form!r}")
    if form == "cp":
        return CPTensorProduct(irreps_in1, irreps_in2, irreps_out, rank,
                               target_error=target_error, cache_dir=cache_dir)
    if rank is not None or target_error is not None:
        raise ConfigError(f"tensor product form {form!r}: rank / target_error apply to 'cp' only")
    cls = {"e3nn": E3nnTensorProduct, "sh_matrix": SHMatrixTensorProduct,
           "s2grid": GauntS2TensorProduct, "exact": SHMatrixTensorProduct}[form]
    return cls(irreps_in1, irreps_in2, irreps_out)


def _irrep_index(irreps: str) -> np.ndarray:
    """For each component of `irreps`, the position of its irrep in the list."""
    ir = _irreps(irreps)
    return np.repeat(np.arange(len(ir)), [m.ir.dim for m in ir])


class ChannelwiseTensorProduct(eqx.Module):
    """A channel-wise product of two features with per-channel path weights (module docstring).

    **Arguments:**

    - `tensor_product`: the form evaluating $T$ (`CPTensorProduct`, `SHMatrixTensorProduct`,
      `E3nnTensorProduct`, ...; e.g. from `make_tensor_product`). Its frozen tables are not
      trained; the path weights are.
    - `channels`: $C$.
    - `key`: PRNG key (weights start at 1 plus a small seeded perturbation, so paths differ).

    **Call:** `x1: (channels, dim1)`, `x2: (channels, dim2)` → `(channels, dim_out)`.
    """

    tp: AbstractTensorProduct
    w1: Float[Array, "channels irreps1"]
    w2: Float[Array, "channels irreps2"]
    w3: Float[Array, "channels irreps_out"]

    def __init__(self, tensor_product: AbstractTensorProduct, channels: int, *,
                 key: PRNGKeyArray):
        if channels < 1:
            raise ConfigError(f"ChannelwiseTensorProduct channels: expected >= 1, got {channels}")
        self.tp = tensor_product
        ks = jax.random.split(key, 3)
        n = [len(_irreps(i)) for i in (tensor_product.irreps_in1, tensor_product.irreps_in2,
                                       tensor_product.irreps_out)]
        self.w1, self.w2, self.w3 = (1.0 + 0.1 * jax.random.normal(k, (channels, m))
                                     for k, m in zip(ks, n, strict=True))

    def __call__(self, x1: Float[Array, "channels dim1"],
                 x2: Float[Array, "channels dim2"]) -> Float[Array, "channels dim_out"]:
        i1, i2, i3 = (_irrep_index(i) for i in (self.tp.irreps_in1, self.tp.irreps_in2,
                                                 self.tp.irreps_out))
        if x1.shape != (self.w1.shape[0], i1.size) or x2.shape != (self.w2.shape[0], i2.size):
            raise ValueError(f"ChannelwiseTensorProduct: expected x1 {(self.w1.shape[0], i1.size)}"
                             f" and x2 {(self.w2.shape[0], i2.size)}, got {x1.shape} and "
                             f"{x2.shape}")
        y = self.tp(x1 * self.w1[:, i1], x2 * self.w2[:, i2])
        return y * self.w3[:, i3]

    def path_weights(self) -> np.ndarray:
        """The effective weight of every path per channel, `(channels, n1, n2, n_out)` (zero where
        the path is not admissible), for inspection and tests."""
        import e3nn_jax as e3nn

        ir1, ir2, ir3 = (e3nn.Irreps(i) for i in (self.tp.irreps_in1, self.tp.irreps_in2,
                                                   self.tp.irreps_out))
        ok = np.array([[[m3.ir in m1.ir * m2.ir for m3 in ir3] for m2 in ir2] for m1 in ir1])
        w = np.einsum("ca,cb,cd->cabd", np.asarray(self.w1), np.asarray(self.w2),
                      np.asarray(self.w3))
        return w * ok[None]


