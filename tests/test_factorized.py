"""Factorized spectral weights: both execution paths agree, the formats reconstruct what they
claim, the initial scale matches the dense weights, ranks resolve and fail loudly."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciops._errors import ConfigError
from sciops.nn._factorized import (
    CP,
    TT,
    CPTensor,
    FactorizedSpectralWeight,
    TTTensor,
    Tucker,
    TuckerTensor,
    cp_rank,
    tt_ranks,
    tucker_ranks,
)
from sciops.nn._spectral import DenseSpectralWeight, spectral_conv, weight_mode_shape

FORMATS = [CP, Tucker, TT]


def _cx(key, shape, dtype=jnp.float32):
    kr, ki = jax.random.split(key)
    return jax.lax.complex(jax.random.normal(kr, shape, dtype), jax.random.normal(ki, shape, dtype))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("joint", [True, False])
def test_factorized_equals_reconstructed_float32(fmt, joint, getkey):
    n_modes = (6, 6)
    common = dict(joint=joint, key=getkey())
    direct = FactorizedSpectralWeight(fmt(0.2), 3, 8, 6, n_modes, **common)
    recon = FactorizedSpectralWeight(fmt(0.2), 3, 8, 6, n_modes, reconstruct=True, **common)
    x = _cx(getkey(), (8, *weight_mode_shape(n_modes)))

    @eqx.filter_jit  # one compile per case instead of op-by-op dispatch of every contraction
    def outputs(direct, recon, x):
        return [(direct.contract(x, layer), recon.contract(x, layer),
                 jnp.einsum("imn,iomn->omn", x, direct.dense(layer))) for layer in range(3)]

    for a, b, by_dense in outputs(direct, recon, x):
        scale = float(jnp.max(jnp.abs(b)))
        assert float(jnp.max(jnp.abs(a - b))) <= 1e-5 * scale
        # ... and both equal the contraction with the reconstructed dense weight
        np.testing.assert_allclose(np.asarray(a), np.asarray(by_dense), atol=1e-5 * scale)


@pytest.mark.parametrize("fmt", FORMATS)
def test_factorized_equals_reconstructed_x64(fmt, getkey, x64):
    key = getkey()

    def make(reconstruct):
        w = FactorizedSpectralWeight(fmt(0.3), 2, 5, 4, (4, 6), reconstruct=reconstruct, key=key)
        return jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_array(a) else a, w)

    weight, recon = make(False), make(True)
    x = _cx(getkey(), (5, *weight_mode_shape((4, 6))), jnp.float64)
    a, b = eqx.filter_jit(lambda w, r, x: (w.contract(x, 1), r.contract(x, 1)))(weight, recon, x)
    assert float(jnp.max(jnp.abs(a - b))) <= 1e-13 * float(jnp.max(jnp.abs(b)))


def test_reconstructions_match_independent_formulas(getkey):
    shape = (3, 4, 2, 5)
    rng = np.random.default_rng(0)
    cp = CPTensor(shape, 3, std=1.0, key=getkey())
    f = [np.asarray(a) for a in cp.factors()]
    ref = sum(np.multiply.outer(np.multiply.outer(np.multiply.outer(
        f[0][:, r], f[1][:, r]), f[2][:, r]), f[3][:, r]) for r in range(3))
    np.testing.assert_allclose(np.asarray(cp.to_dense()), ref, rtol=1e-5, atol=1e-6)

    tk = TuckerTensor(shape, 2, std=1.0, key=getkey())
    tt = TTTensor(shape, 2, std=1.0, key=getkey())
    # one compile for both formats' factors and reconstructions (not op-by-op dispatch)
    (tk_factors, tk_dense), (tt_factors, tt_dense) = eqx.filter_jit(
        lambda ts: [(t.factors(), t.to_dense()) for t in ts])((tk, tt))
    core, *u = [np.asarray(a) for a in tk_factors]
    ref = core
    for k, uk in enumerate(u):  # mode-k products, one at a time
        ref = np.moveaxis(np.tensordot(uk, ref, axes=(1, k)), 0, k)
    np.testing.assert_allclose(np.asarray(tk_dense), ref, rtol=1e-5, atol=1e-6)

    g = [np.asarray(a) for a in tt_factors]
    ref = np.empty(shape, complex)
    for idx in np.ndindex(*shape):  # the defining matrix product, entry by entry
        m = np.eye(1)
        for k, i in enumerate(idx):
            m = m @ g[k][:, i, :]
        ref[idx] = m[0, 0]
    np.testing.assert_allclose(np.asarray(tt_dense), ref, rtol=1e-5, atol=1e-6)
    del rng


@pytest.mark.parametrize("fmt", FORMATS)
def test_joint_layer_slice_is_the_dense_slice(fmt, getkey):
    weight = FactorizedSpectralWeight(fmt(0.1), 4, 6, 6, (6, 6), key=getkey())
    x = _cx(getkey(), (6, *weight_mode_shape((6, 6))))

    @eqx.filter_jit  # one compile: the Python-int slices and the traced one in one program
    def slices(w, x, i):
        return (w.tensor.to_dense(), [w.dense(layer) for layer in range(4)], w.contract(x, i),
                w.contract(x, 2))

    full, layers, traced, static = slices(weight, x, jnp.int32(2))
    for layer in range(4):
        np.testing.assert_allclose(np.asarray(layers[layer]), np.asarray(full[layer]),
                                   rtol=1e-5, atol=1e-6)
    # A traced layer index (as inside lax.scan) picks the same slice.
    np.testing.assert_allclose(np.asarray(traced), np.asarray(static), atol=1e-5)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("joint", [True, False])
@pytest.mark.parametrize("rank", [0.05, 0.3])
def test_initial_scale_matches_dense(fmt, joint, rank, getkey):
    n_layers, c, n_modes = 4, 16, (12, 12)
    dense = DenseSpectralWeight(n_layers, c, c, n_modes, key=getkey())
    weight = FactorizedSpectralWeight(fmt(rank), n_layers, c, c, n_modes, joint=joint,
                                      key=getkey())

    @eqx.filter_jit  # one compile per case instead of op-by-op dispatch of the reconstructions
    def stds(dense, weight):
        w = jnp.stack([weight.dense(layer) for layer in range(n_layers)])
        return (jnp.sqrt(jnp.mean(dense.real**2 + dense.imag**2)),
                jnp.sqrt(jnp.mean(jnp.abs(w) ** 2)))

    dense_std, std = (float(s) for s in stds(dense, weight))
    np.testing.assert_allclose(dense_std, math.sqrt(2.0 / (2 * c)), rtol=0.02)
    assert abs(std / dense_std - 1.0) < 0.1, (std, dense_std)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("joint", [True, False])
def test_fractional_rank_sets_parameter_count(fmt, joint, getkey):
    for fraction in (0.01, 0.05, 0.2):
        weight = FactorizedSpectralWeight(fmt(fraction), 4, 32, 32, (16, 16), joint=joint,
                                          key=getkey())
        ratio = weight.param_count() / weight.dense_param_count()
        # CP/TT take the largest rank within budget, Tucker rounds each mode to the nearest
        assert 0.4 * fraction <= ratio <= 1.25 * fraction, (fmt, joint, fraction, ratio)


def test_rank_arithmetic_against_hand_counts():
    assert cp_rank((4, 32, 32, 16, 9), 0.01) == round(0.01 * 4 * 32 * 32 * 16 * 9 / 93)
    assert tucker_ranks((8, 8, 4), 3) == (3, 3, 3)
    assert tucker_ranks((8, 8, 2), 3) == (3, 3, 2)
    assert tt_ranks((2, 8, 8, 2), 5) == (2, 5, 2)
    # Tucker's fraction: core + factors within budget, one step more would exceed it
    shape, f = (4, 16, 16, 8, 5), 0.05
    ranks = tucker_ranks(shape, f)
    params = math.prod(ranks) + sum(n * r for n, r in zip(shape, ranks, strict=False))
    assert params <= f * math.prod(shape)


@pytest.mark.parametrize("fmt, rank, pattern", [
    (CP, 10_000, r"model\.rank: CP rank .* allowed: an int in \[1, \d+\]"),
    (Tucker, 33, r"model\.rank: Tucker rank .* allowed: an int in \[1, 32\]"),
    (TT, 100_000, r"model\.rank: TT rank .* allowed: an int in \[1, \d+\]"),
    (CP, 0, r"model\.rank: .* allowed"),
    (Tucker, -2, r"model\.rank: .* allowed"),
    (TT, 1.5, r"model\.rank: a fractional rank must lie in \(0, 1\]"),
    (CP, 0.0, r"model\.rank: a fractional rank must lie in \(0, 1\]"),
])
def test_bad_rank_names_key_and_range(fmt, rank, pattern, getkey):
    with pytest.raises(ConfigError, match=pattern):
        FactorizedSpectralWeight(fmt(rank), 2, 32, 32, (8, 8), key=getkey(),
                                 rank_name="model.rank")


def test_spectral_conv_gradients_are_real_and_finite(getkey):
    # Real/imaginary parts are real leaves, so optax sees a real gradient with the right sign:
    # one SGD step on ||K v||^2 must decrease it.
    weight = FactorizedSpectralWeight(Tucker(0.2), 2, 4, 4, (4, 4), key=getkey())
    v = jax.random.normal(getkey(), (4, 8, 8))

    @eqx.filter_jit  # one compile instead of op-by-op dispatch of the FFTs and contractions
    def energy(w):
        return jnp.sum(spectral_conv(v, w, 1) ** 2)

    grads = eqx.filter_jit(eqx.filter_grad(energy))(weight)
    leaves = [g for g in jax.tree.leaves(grads) if eqx.is_array(g)]
    assert all(g.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    stepped = eqx.apply_updates(weight, jax.tree.map(lambda g: -1e-3 * g, grads))
    assert float(energy(stepped)) < float(energy(weight))


# ----------------------------------------------------------------- the fno family's TFNO keys


def _toy_dataset(n=8, s=16, seed=0):
    from sciops.data import Dataset

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, s, s)).astype(np.float32)
    return Dataset({"x": x, "y": (2.0 * x + 1.0).astype(np.float32)})


def test_config_rejects_bad_rank_before_building():
    from sciops._config import from_dict
    from sciops.models import family

    fam = family("fno")
    with pytest.raises(ConfigError, match=r"model\.rank: Tucker rank .* allowed: an int in "
                                          r"\[1, 16\]"):
        from_dict(fam.config, {"n_modes": [8, 8], "hidden_channels": 16,
                               "factorization": "tucker", "rank": 17}, "model")
    with pytest.raises(ConfigError, match=r"model\.factorization: expected one of"):
        from_dict(fam.config, {"factorization": "tensor-ring"}, "model")


@pytest.mark.parametrize("factorization, joint", [("cp", True), ("tucker", False), ("tt", True)])
def test_family_builds_factorized_model(factorization, joint, getkey):
    from sciops._config import from_dict
    from sciops.models import family

    fam = family("fno")
    config = from_dict(fam.config, {"n_modes": [8, 8], "hidden_channels": 16, "n_layers": 2,
                                    "factorization": factorization, "rank": 0.1,
                                    "joint": joint}, "model")
    model = fam.build(config, _toy_dataset(), key=getkey())
    weight = model.net.spectral_weight
    assert isinstance(weight, FactorizedSpectralWeight) and weight.joint == joint
    assert weight.param_count() <= 0.11 * weight.dense_param_count()
    # jitted: one compile of the loss instead of op-by-op dispatch of the whole model
    loss, aux = eqx.filter_jit(lambda m, b, k: fam.loss(config, m, b, key=k))(
        model, _toy_dataset().load(), getkey())
    assert np.isfinite(float(loss)) and set(aux) == {"l2", "h1"}


def test_fno_blocks_pieces(getkey):
    from sciops.nn._fno_blocks import (
        FNOBlocks,
        GroupNorm,
        IdentitySkip,
        InstanceNorm,
        LinearSkip,
        SoftGating,
    )

    v = jax.random.normal(getkey(), (8, 12, 12)) * 3.0 + 1.0
    skip = LinearSkip(8, key=getkey())
    perm = jax.random.permutation(getkey(), 144)
    blocks = FNOBlocks(2, 8, LinearSkip, key=getkey())
    spec = jax.random.normal(getkey(), v.shape)

    @eqx.filter_jit  # every piece in one compiled program instead of op-by-op dispatch
    def pieces(v, skip, perm, blocks, spec):
        flat = v.reshape(8, -1)
        inst, group = InstanceNorm(8)(v), GroupNorm(2, 8)(v)
        return dict(
            gated=SoftGating(8)(v), identity=IdentitySkip()(v),
            skip_perm=skip(flat[:, perm]), perm_skip=skip(flat)[:, perm],
            inst_mean=inst.mean(axis=(1, 2)), inst_var=inst.var(axis=(1, 2)),
            group_var=group.reshape(2, -1).var(axis=1),
            block0=blocks(v, spec, 0, last=False),
            expect0=jax.nn.gelu(spec + blocks.skips[0](v) + blocks.bias[0][:, None, None]),
            block1=blocks(v, spec, 1, last=True),
            expect1=spec + blocks.skips[1](v) + blocks.bias[1][:, None, None])

    out = {k: np.asarray(a) for k, a in pieces(v, skip, perm, blocks, spec).items()}
    # soft gating starts as the identity; identity is the identity
    np.testing.assert_array_equal(out["gated"], np.asarray(v))
    np.testing.assert_array_equal(out["identity"], np.asarray(v))
    # a linear skip is pointwise: it commutes with any permutation of the grid points
    np.testing.assert_allclose(out["skip_perm"], out["perm_skip"], rtol=1e-6, atol=1e-6)
    # instance norm: zero mean, unit variance per channel; group norm per group of channels
    np.testing.assert_allclose(out["inst_mean"], 0.0, atol=1e-5)
    np.testing.assert_allclose(out["inst_var"], 1.0, rtol=1e-3)
    np.testing.assert_allclose(out["group_var"], 1.0, rtol=1e-3)
    # a block without MLP or norm and a linear skip is sigma(K v + W v + b)
    np.testing.assert_allclose(out["block0"], out["expect0"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["block1"], out["expect1"], rtol=1e-6, atol=1e-6)


def test_fno_with_blocks_is_resolution_consistent(getkey):
    # Every block piece is pointwise or a grid average, so on a band-limited input the model at
    # 32^2 and at 64^2 agrees on the shared points (up to the nonlinearity's aliasing).
    from sciops.models.fno._fno import FNO
    from sciops.nn._fno_blocks import FNOBlocks, InstanceNorm, SoftGating

    blocks = FNOBlocks(2, 8, SoftGating, 0.5, SoftGating, InstanceNorm, key=getkey())
    net = FNO(1, 1, (6, 6), hidden_channels=8, n_layers=2, lifting_channels=8,
              projection_channels=8, positional_embedding=False, blocks=blocks, key=getkey())
    t64 = (np.arange(64) + 0.5) / 64
    field = lambda t: np.sin(2 * np.pi * t)[:, None] * np.cos(4 * np.pi * t)[None, :]  # noqa: E731
    apply = eqx.filter_jit(lambda net, x: net(x))  # two compiles, not op-by-op dispatch
    fine = apply(net, jnp.asarray(field(t64))[None])
    coarse = apply(net, jnp.asarray(field(t64[1::2]))[None])
    err = float(jnp.max(jnp.abs(fine[:, 1::2, 1::2] - coarse)) / jnp.max(jnp.abs(fine)))
    assert err < 0.05, err


# Each norm and each implementation once (the norm acts on the skip/MLP side, the implementation
# on the spectral side of the same block: a compiled FNO per pair, ~3 s each, so two pairs, not
# all four).
@pytest.mark.parametrize("norm, implementation", [("instance", "factorized"),
                                                  ("group", "reconstructed")])
def test_batched_blocks_and_weights_equal_the_fft_path(norm, implementation, getkey):
    """The batched layout (`FNO.batch`: skips, channel MLPs and norms on `(*spatial, batch, C)`,
    the weights' `contract_batched`) computes what the per-field FFT path computes."""
    from sciops.models.fno._fno import FNO
    from sciops.nn._fno_blocks import FNOBlocks, GroupNorm, InstanceNorm, LinearSkip, SoftGating

    norm_factory = InstanceNorm if norm == "instance" else (lambda c: GroupNorm(2, c))
    blocks = FNOBlocks(3, 8, LinearSkip, 0.5, SoftGating, norm_factory, key=getkey())
    weight = FactorizedSpectralWeight(Tucker(0.5), 3, 8, 8, (6, 6), joint=False,
                                      reconstruct=implementation == "reconstructed", key=getkey())
    net = FNO(1, 2, (6, 6), 8, 3, 8, 8, padding=0.2, spectral_weight=weight, blocks=blocks,
              key=getkey())
    x = jax.random.normal(getkey(), (3, 1, 12, 16))
    ref, batched = eqx.filter_jit(lambda net, x: (jax.vmap(net.fft_forward)(x), net.batch(x)))(net, x)
    np.testing.assert_allclose(np.asarray(batched), np.asarray(ref), rtol=0,
                               atol=2e-5 * float(jnp.abs(ref).max()))
