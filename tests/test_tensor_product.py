"""Tensor products behind one interface: exact forms agree, all are equivariant, the Gaunt product
keeps exactly the symmetric couplings, and CP's equivariance error is bounded by its fit error."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciops._errors import ConfigError
from sciops.nn._cp_fit import fused_cg_tensor
from sciops.nn._tensor_product import (
    CPTensorProduct,
    E3nnTensorProduct,
    GauntS2TensorProduct,
    SHMatrixTensorProduct,
    equivariance_error,
)

SH2 = "0e+1o+2e"
MIXED = ("0e+1o+1e+2e", "0e+1o+2e", "0e+1o+1e+2e")

# A product applied in one compiled program: op by op, e3nn-jax's path-by-path product
# dispatches (and compiles) every small operation separately.
_apply = eqx.filter_jit(lambda tp, x1, x2: tp(x1, x2))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cp")


@pytest.mark.parametrize("irreps", [(SH2, SH2, SH2), MIXED])
def test_exact_forms_agree(x64, irreps):
    T = fused_cg_tensor(*irreps)
    rng = np.random.default_rng(0)
    x1 = jnp.asarray(rng.normal(size=(3, T.shape[0])))
    x2 = jnp.asarray(rng.normal(size=T.shape[1]))
    ref = np.einsum("ijk,ci,j->ck", T, x1, x2)
    for tp in (E3nnTensorProduct(*irreps), SHMatrixTensorProduct(*irreps)):
        np.testing.assert_allclose(np.asarray(_apply(tp, x1, x2)), ref, atol=1e-12)


@pytest.mark.parametrize("make", [E3nnTensorProduct, SHMatrixTensorProduct, GauntS2TensorProduct])
def test_exact_forms_are_equivariant(make, getkey):
    tp = make(SH2, SH2, SH2)
    assert equivariance_error(tp, key=getkey(), n_rotations=4, n_samples=64) < 1e-5


def test_mixed_parity_product_is_equivariant(getkey):
    tp = E3nnTensorProduct(*MIXED)
    assert equivariance_error(tp, key=getkey(), n_rotations=4, n_samples=64) < 1e-5


def test_gaunt_equals_cg_on_symmetric_paths_and_drops_antisymmetric(x64):
    import e3nn_jax as e3nn

    G = GauntS2TensorProduct(SH2, SH2, SH2).tensor()
    T = fused_cg_tensor(SH2, SH2, SH2)
    sl = e3nn.Irreps(SH2).slices()
    n_paths = 0
    for l1 in range(3):
        for l2 in range(3):
            for l3 in range(3):
                g, t = G[sl[l1], sl[l2], sl[l3]], T[sl[l1], sl[l2], sl[l3]]
                if np.linalg.norm(t) == 0:
                    assert np.linalg.norm(g) < 1e-10
                    continue
                n_paths += 1
                cos = np.sum(g * t) / (np.linalg.norm(g) * np.linalg.norm(t))
                assert cos == pytest.approx(1.0, abs=1e-9), (l1, l2, l3)
    assert n_paths == 11
    # The 0x0->0 path is matched exactly by construction.
    assert G[0, 0, 0] == pytest.approx(T[0, 0, 0], rel=1e-9)
    # Antisymmetric coupling: two vectors. The CG product into 1e is the cross product; the S2
    # product of two l=1 functions has no l=1 part at all.
    a, b = jnp.array([[1.0, 2.0, -0.5]]), jnp.array([0.3, -1.0, 2.0])
    cross = _apply(E3nnTensorProduct("1o", "1o", "1e"), a, b)[0]
    np.testing.assert_allclose(np.asarray(cross) / np.linalg.norm(cross),
                               np.cross(a[0], b) / np.linalg.norm(np.cross(a[0], b)), atol=1e-12)
    # The two l=1 functions as inputs of the SH2 product above (zero 0e and 2e parts): the same
    # functions on the sphere, and the program already compiled for G (a product of its own
    # irreps, "1o" x "1o", would compile another S2 grid, ~3.5 s).
    pa = np.zeros((1, 9))
    pb = np.zeros(9)
    pa[0, sl[1]], pb[sl[1]] = a[0], b
    s2 = GauntS2TensorProduct(SH2, SH2, SH2)(jnp.asarray(pa), jnp.asarray(pb))[0]
    assert np.abs(np.asarray(s2[sl[1]])).max() < 1e-12
    assert np.abs(np.asarray(s2)).max() > 0.1


# The rank-16 fit (ALS + L-BFGS restarts, ~8 s) checks the same bound as rank 10 on the same
# irreps, closer to the exact tensor: slow; ranks 5 and 10 stay in the default run.
@pytest.mark.parametrize("irreps,rank", [("0e+1o", 5), (SH2, 10),
                                         pytest.param(SH2, 16, marks=pytest.mark.slow)])
def test_cp_equivariance_bounded_by_twice_fit_error(irreps, rank, cache, getkey):
    tp = CPTensorProduct(irreps, irreps, irreps, rank, cache_dir=cache)
    T = fused_cg_tensor(irreps, irreps, irreps)
    measured = np.linalg.norm(tp.tensor() - T) / np.linalg.norm(T)
    assert measured == pytest.approx(tp.relative_error, rel=1e-3)
    assert tp.relative_error > 1e-3  # a genuinely approximate product: the bound is not vacuous
    eq = equivariance_error(tp, key=getkey(), n_rotations=8, n_samples=256)
    assert 0 < eq <= 2 * tp.relative_error


def test_cp_at_paper_rank_is_near_exact_for_sh_irreps(cache):
    tp = CPTensorProduct(SH2, SH2, SH2, cache_dir=cache)
    assert tp.rank == 28
    assert tp.relative_error < 1e-3


def test_cp_target_error_and_frozen_factors(cache):
    tp = CPTensorProduct("0e+1o", "0e+1o", "0e+1o", target_error=0.05, cache_dir=cache)
    assert tp.rank == 5 and tp.relative_error <= 0.05
    x1, x2 = jnp.ones((2, 4)), jnp.arange(4.0)
    grads = eqx.filter_grad(lambda m: jnp.sum(m(x1, x2) ** 2))(tp)
    assert float(jnp.abs(grads.A).max()) == 0.0 and float(jnp.abs(grads.C).max()) == 0.0
    # ...while gradients with respect to the inputs flow.
    gx = jax.grad(lambda x: jnp.sum(tp(x, x2) ** 2))(x1)
    assert float(jnp.abs(gx).max()) > 0


def test_bad_configurations():
    with pytest.raises(ConfigError, match="spherical-harmonic parity"):
        GauntS2TensorProduct("0e+1e", SH2, SH2)
    with pytest.raises(ConfigError, match="either rank or target_error"):
        CPTensorProduct(SH2, SH2, SH2, 4, target_error=0.1)
    with pytest.raises(ConfigError, match="multiplicity 1"):
        SHMatrixTensorProduct("2x0e", SH2, SH2)


O3_1 = "0e+0o+1o+1e"  # every O(3) irrep up to l = 1: both parities, so 1o x 1o -> 1e exists


def test_channelwise_exact_forms_agree_with_the_fused_tensor(x64):
    """Two channel-wise features: e3nn-jax path by path, the dense matrix form and the Gaunt
    product (on SH-parity irreps) against the fused tensor contracted channel by channel."""
    from sciops.nn import make_tensor_product

    rng = np.random.default_rng(1)
    for ir, forms in ((O3_1, ("e3nn", "sh_matrix", "exact")), (SH2, ("e3nn", "exact"))):
        T = fused_cg_tensor(ir, ir, ir)
        x1 = jnp.asarray(rng.normal(size=(5, T.shape[0])))
        x2 = jnp.asarray(rng.normal(size=(5, T.shape[1])))
        ref = np.einsum("ijk,ci,cj->ck", T, x1, x2)
        for form in forms:
            got = np.asarray(_apply(make_tensor_product(form, ir, ir, ir), x1, x2))
            np.testing.assert_allclose(got, ref, atol=1e-12, err_msg=form)
    # the Gaunt product channel-wise equals the shared-vector product channel by channel
    g = GauntS2TensorProduct(SH2, SH2, SH2)
    x1 = jnp.asarray(rng.normal(size=(3, 9)))
    x2 = jnp.asarray(rng.normal(size=(3, 9)))
    want = np.stack([np.asarray(g(x1[c:c + 1], x2[c]))[0] for c in range(3)])
    np.testing.assert_allclose(np.asarray(g(x1, x2)), want, atol=1e-12)


def test_full_o3_irreps_have_the_cross_product(x64):
    from sciops.nn import ChannelwiseTensorProduct, o3_irreps

    assert o3_irreps(2) == "0e+0o+1o+1e+2e+2o"
    tp = ChannelwiseTensorProduct(SHMatrixTensorProduct(O3_1, O3_1, O3_1), 2,
                                  key=jax.random.key(0))
    a = np.zeros((2, 8))
    b = np.zeros((2, 8))
    a[:, 2:5] = [1.0, 2.0, -0.5]  # the 1o block
    b[:, 2:5] = [0.3, -1.0, 2.0]
    y = np.asarray(tp(jnp.asarray(a), jnp.asarray(b)))
    cross = np.cross(a[0, 2:5], b[0, 2:5])
    for c in range(2):  # the 1e output block is parallel to the cross product in every channel
        cos = y[c, 5:8] @ cross / (np.linalg.norm(y[c, 5:8]) * np.linalg.norm(cross))
        assert abs(cos) == pytest.approx(1.0, abs=1e-9)
    # per-channel path weights: w1 * w2 * w3 of the irreps on the path, zero where inadmissible
    w = tp.path_weights()
    assert w.shape == (2, 4, 4, 4)
    assert w[1, 2, 2, 3] == pytest.approx(float(tp.w1[1, 2] * tp.w2[1, 2] * tp.w3[1, 3]))
    assert w[0, 2, 2, 2] == 0.0  # 1o x 1o -> 1o violates parity


def test_channelwise_products_are_o3_equivariant(getkey):
    from sciops.nn import make_tensor_product

    for form in ("e3nn", "exact"):
        tp = make_tensor_product(form, O3_1, O3_1, O3_1)
        assert equivariance_error(tp, key=getkey(), n_rotations=4, n_samples=32,
                                  channelwise=True) < 1e-5


def test_channelwise_cp_equivariance_bounded_by_twice_fit_error(cache, getkey):
    """CP on the full-O(3) fused tensor, applied channel-wise through the factor path: the
    measured equivariance error is at most twice the fit error (and the fit is genuinely
    approximate at this rank). In float32, like the file's other equivariance checks: its
    rounding (~1e-7) is far below the fit error (> 1e-2); x64 is needed only for the factor
    path's 1e-10 identity (next test)."""
    tp = CPTensorProduct(O3_1, O3_1, O3_1, 10, cache_dir=cache)
    assert 1e-2 < tp.relative_error < 1
    eq = equivariance_error(tp, key=getkey(), n_rotations=8, n_samples=128, channelwise=True)
    assert 0 < eq <= 2 * tp.relative_error


def test_channelwise_cp_factor_path_is_the_weighted_dense_contraction(x64, cache):
    """The factor path with path weights equals the weighted dense contraction of A, B, C."""
    from sciops.nn import ChannelwiseTensorProduct

    tp = CPTensorProduct(O3_1, O3_1, O3_1, 10, cache_dir=cache)
    m = ChannelwiseTensorProduct(tp, 3, key=jax.random.key(2))
    rng = np.random.default_rng(3)
    x1, x2 = (jnp.asarray(rng.normal(size=(3, 8))) for _ in range(2))
    That = np.einsum("ir,jr,kr->ijk", tp.A, tp.B, tp.C)
    i = np.repeat(np.arange(4), [1, 1, 3, 3])
    want = np.einsum("ijk,ci,cj->ck", That, np.asarray(x1) * np.asarray(m.w1)[:, i],
                     np.asarray(x2) * np.asarray(m.w2)[:, i]) * np.asarray(m.w3)[:, i]
    np.testing.assert_allclose(np.asarray(_apply(m, x1, x2)), want, rtol=1e-10, atol=1e-10)


def test_make_tensor_product_errors():
    from sciops.nn import make_tensor_product

    with pytest.raises(ConfigError, match="expected one of cp, e3nn, sh_matrix, s2grid, exact"):
        make_tensor_product("fast", SH2, SH2, SH2)
    with pytest.raises(ConfigError, match="rank / target_error apply to 'cp' only"):
        make_tensor_product("exact", SH2, SH2, SH2, rank=4)
    with pytest.raises(ConfigError, match="do not have the spherical-harmonic parity"):
        make_tensor_product("s2grid", O3_1, O3_1, O3_1)
