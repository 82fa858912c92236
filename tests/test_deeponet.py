"""DeepONet family: Cartesian vs pointwise forms, masks, loss conventions, per-task metrics,
bad input, transfer partitioning, and that training learns."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sciops._errors import ConfigError, DataError
from sciops.data import Dataset
from sciops.models import family
from sciops.models.deeponet import DeepONetConfig, build, grid_points, loss, metrics, predict
from sciops.pde.darcy_masked import DarcyMaskedConfig
from sciops.pde.darcy_masked import generate_arrays as darcy_arrays
from sciops.pde.fisher import FisherConfig
from sciops.pde.fisher import generate_arrays as fisher_arrays

SMALL = dict(branch_width=32, branch_depth=2, trunk_width=32, trunk_depth=2, latent=16)


@pytest.fixture(scope="module")
def darcy():
    arrays = darcy_arrays(DarcyMaskedConfig(n_samples=120, resolution=16))
    return Dataset(arrays, {"bounds": [[0, 1], [0, 1]],
                            "geometries": ["square", "disk", "triangle", "l_shape", "cross"]})


@pytest.fixture(scope="module")
def fisher():
    arrays = fisher_arrays(FisherConfig(n_samples=30, n_x=16, n_t=6, steps_per_output=2))
    return Dataset(arrays, {"bounds": [[0, 1], [0, 1]], "tasks": ["fisher", "nws", "zeldovich"]})


def _darcy_config(**kw):
    base = dict(input_key="f", mask_key="mask", task_key="geometry",
                task_names=("square", "disk", "triangle", "l_shape", "cross"), **SMALL)
    return DeepONetConfig(**{**base, **kw})


def test_registered():
    fam = family("deeponet")
    assert fam.config is DeepONetConfig and fam.build is build


@pytest.mark.parametrize("branch", ["mlp", "cnn"])
def test_cartesian_and_pointwise_agree(darcy, getkey, branch):
    config = _darcy_config(mask_in_loss=False, branch=branch, cnn_channels=(4, 8))
    model = build(config, darcy, key=getkey())
    batch = darcy.take(np.arange(6))
    grid = predict(config, model, batch)                        # (6, 1, 16, 16)
    nodes = grid_points(model.bounds, model.grid_shape)         # (256, 2), C order
    rng = np.random.default_rng(0)
    idx = np.stack([rng.choice(256, 50, replace=False) for _ in range(6)])
    pts = nodes[idx]                                            # different points per sample
    one = lambda f, m, p: model(f, None, m, p)  # noqa: E731
    pointwise = jax.vmap(one)(jnp.asarray(batch["f"]), jnp.asarray(batch["mask"]),
                              jnp.asarray(pts))
    flat = np.asarray(grid).reshape(6, 1, 256)
    expected = np.take_along_axis(flat, idx[:, None, :], axis=2)
    np.testing.assert_allclose(pointwise, expected, rtol=1e-5, atol=1e-6)


def test_exact_zero_outside_and_loss_ignores_outside(darcy, getkey):
    config = _darcy_config()
    model = build(config, darcy, key=getkey())
    batch = darcy.take(np.arange(10))
    pred = np.asarray(predict(config, model, batch))
    outside = batch["mask"] == 0
    assert outside.any() and np.all(pred[outside] == 0.0)
    assert np.all(pred[~outside] != 0.0)
    noisy = dict(batch, u=np.where(outside, 5.0, batch["u"]).astype(np.float32))
    l1, _ = loss(config, model, batch)
    l2, _ = loss(config, model, noisy)
    assert float(l1) == float(l2)
    m1, m2 = metrics(config, model, batch), metrics(config, model, noisy)
    np.testing.assert_array_equal(m1["l2"], m2["l2"])


def test_relative_l2_conventions(darcy, getkey):
    batch = darcy.take(np.arange(10))
    for form in ("per_sample", "global"):
        config = _darcy_config(loss=form)
        model = build(config, darcy, key=getkey())
        value, aux = loss(config, model, batch)
        pred = np.asarray(predict(config, model, batch), np.float64)
        m, u = batch["mask"], batch["u"].astype(np.float64)
        err = ((m * (pred - u)) ** 2).sum((1, 2, 3))
        ref = ((m * u) ** 2).sum((1, 2, 3))
        expected = np.sqrt(err / ref).mean() if form == "per_sample" else np.sqrt(
            err.sum() / ref.sum())
        np.testing.assert_allclose(float(value), expected, rtol=1e-5)
        out = metrics(config, model, batch)
        np.testing.assert_allclose(out["l2"], np.sqrt(err / ref), rtol=1e-5)
        np.testing.assert_allclose(np.sqrt(out["sq_err"].mean() / out["sq_ref"].mean()),
                                   np.sqrt(err.sum() / ref.sum()), rtol=1e-5)


def test_per_task_metrics(fisher, getkey):
    names = ("fisher", "nws", "zeldovich")
    config = DeepONetConfig(input_key="u0", coeff_key="coeffs", task_key="task",
                            task_names=names, **SMALL)
    model = build(config, fisher, key=getkey())
    assert model.n_coeffs == 4
    batch = fisher.take(np.arange(12))
    out = {k: np.asarray(v) for k, v in metrics(config, model, batch).items()}
    for k, name in enumerate(names):
        mine = batch["task"] == k
        np.testing.assert_array_equal(out[f"l2/{name}"][mine], out["l2"][mine])
        assert np.all(np.isnan(out[f"l2/{name}"][~mine]))
    renamed = DeepONetConfig(input_key="u0", coeff_key="coeffs", task_key="task",
                             task_names=("a", "b", "c"), **SMALL)
    assert "l2/b" in metrics(renamed, model, batch)


def test_coefficients_change_the_prediction(fisher, getkey):
    config = DeepONetConfig(input_key="u0", coeff_key="coeffs", **SMALL)
    model = build(config, fisher, key=getkey())
    batch = fisher.take(np.arange(3))
    other = dict(batch, coeffs=np.roll(batch["coeffs"], 1, axis=0))
    diff = np.abs(predict(config, model, batch) - predict(config, model, other)).max()
    assert diff > 1e-4


def test_bad_input(darcy, fisher, getkey):
    wrong_mask = Dataset(dict(darcy.take(np.arange(5)), mask=np.ones((5, 1, 8, 8), np.float32)),
                         darcy.attrs)
    with pytest.raises(DataError, match=r"mask 'mask'.*\(1, 8, 8\).*\(1, 16, 16\)"):
        build(_darcy_config(), wrong_mask, key=getkey())
    config = DeepONetConfig(input_key="u0", coeff_key="coeffs", **SMALL)
    model = build(config, fisher, key=getkey())
    batch = fisher.take(np.arange(3))
    bad = dict(batch, coeffs=np.zeros((3, 5), np.float32))
    with pytest.raises(DataError, match=r"coeffs: per-sample shape \(5,\).*\(4,\)"):
        metrics(config, model, bad)
    with pytest.raises(DataError, match="'coeffs' has shape"):
        model(jnp.asarray(batch["u0"][0]), jnp.zeros(3))
    with pytest.raises(ConfigError, match="latent"):
        DeepONetConfig(latent=0)
    with pytest.raises(ConfigError, match="task_names: required"):
        DeepONetConfig(task_key="task")
    with pytest.raises(DataError, match=r"task ids 0..2.*names 2 task"):
        build(DeepONetConfig(task_key="task", task_names=("a", "b")), fisher, key=getkey())
    with pytest.raises(DataError, match="no field 'nope'"):
        build(DeepONetConfig(input_key="nope"), fisher, key=getkey())


def _train(config, data, steps, key, lr=3e-3, spec=None):
    model = build(config, data, key=key)
    spec = eqx.is_inexact_array if spec is None else spec
    params, frozen = eqx.partition(model, spec)
    opt = optax.adam(optax.cosine_decay_schedule(lr, steps))
    state = opt.init(params)

    @eqx.filter_jit
    def step(params, frozen, state, batch):
        def f(p):
            return loss(config, eqx.combine(p, frozen), batch)[0]
        value, grads = eqx.filter_value_and_grad(f)(params)
        updates, state = opt.update(grads, state, params)
        return eqx.apply_updates(params, updates), state, value

    n = len(data)
    for i in range(steps):
        idx = np.random.default_rng(i).choice(n, 16, replace=False)
        params, state, _ = step(params, frozen, state, data.take(idx))
    return model, eqx.combine(params, frozen)


def test_training_learns_masked_poisson(darcy, getkey):
    # Poisson on masked domains is linear in f: a small DeepONet gets well below the initial
    # error in 300 steps (measured 0.39 on held-out samples of the boundary-fitted data that
    # sciops.pde.darcy_masked writes since its walls are placed where the boundary cuts the
    # grid lines; 0.27 on the earlier staircase data; the untrained model is ~1).
    config = _darcy_config(branch_depth=1, latent=32)
    train, test = darcy.subset(np.arange(100)), darcy.subset(np.arange(100, 120))
    model0, model = _train(config, train, 300, getkey())
    before = np.mean(metrics(config, model0, test.load())["l2"])
    after = np.mean(metrics(config, model, test.load())["l2"])
    assert before > 0.9 and after < 0.45, (before, after)


def test_transfer_partition_freezes_the_rest(darcy, getkey):
    # Fine-tune only the branch's last layer and the output bias (transfer.trainable paths):
    # every other leaf, normalisers included, is bit-for-bit unchanged after training.
    from sciops.train import trainable_filter

    config = _darcy_config()
    key = getkey()
    spec = trainable_filter(build(config, darcy, key=key), ["branch.layers[-1]", "bias"])
    start, tuned = _train(config, darcy, 5, key, spec=spec)
    changed = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                           eqx.filter(start, eqx.is_array), eqx.filter(tuned, eqx.is_array))
    assert changed.branch.layers[-1].weight and changed.bias
    assert not any(jax.tree.leaves(changed.trunk))
    assert not any(jax.tree.leaves(changed.branch.layers[:-1]))
    assert not any(jax.tree.leaves((changed.field_norm, changed.out_norm)))
    with pytest.raises(ConfigError, match="names no part"):
        trainable_filter(start, ["brunch"])


def test_pointwise_family(darcy, getkey):
    # A data set of scattered observations: per-sample query points and values at them.
    arrays = darcy.take(np.arange(12))
    nodes = grid_points(((0, 1), (0, 1)), (16, 16))
    rng = np.random.default_rng(1)
    idx = np.stack([rng.choice(256, 40, replace=False) for _ in range(12)])
    points = nodes[idx].astype(np.float32)
    values = np.take_along_axis(arrays["u"].reshape(12, 1, 256), idx[:, None], 2)
    data = Dataset({"f": arrays["f"], "xy": points, "u": values}, {"bounds": [[0, 1], [0, 1]]})
    config = DeepONetConfig(input_key="f", points_key="xy", **SMALL)
    model = build(config, data, key=getkey())
    assert model.grid_shape == ()
    batch = data.load()
    # the model called on each sample (one compiled vmap instead of 12 op-by-op calls)
    direct = np.asarray(eqx.filter_jit(jax.vmap(lambda f, p: model(f, None, None, p)))(
        jnp.asarray(batch["f"]), jnp.asarray(points)))
    expected = np.linalg.norm((direct - values).reshape(12, -1), axis=1) / np.linalg.norm(
        values.reshape(12, -1), axis=1)
    np.testing.assert_allclose(metrics(config, model, batch)["l2"], expected, rtol=1e-5)
    with pytest.raises(DataError, match="'xy' has per-sample shape"):
        build(config, Dataset(dict(batch, xy=points[:, :30]), data.attrs), key=getkey())


@pytest.mark.parametrize("shape", [(7,), (16, 9), (5, 6, 7)])
def test_conv_encoder_any_rank(getkey, shape):
    # The head's input size is computed from the stride-2 arithmetic; a wrong size would fail
    # here. The extra vector (coefficients) reaches the output.
    from sciops.nn import ConvEncoder

    enc = ConvEncoder(2, shape, 5, channels=(3, 4), extra_size=2, width=8, depth=1,
                      key=getkey())
    x = jax.random.normal(getkey(), (2, *shape))
    call = eqx.filter_jit(lambda enc, x, extra: enc(x, extra))  # one compile, not op by op
    a = call(enc, x, jnp.zeros(2))
    b = call(enc, x, jnp.ones(2))
    assert a.shape == (5,) and float(jnp.abs(a - b).max()) > 1e-4
    with pytest.raises(ValueError, match=r"extra vector of shape \(2,\)"):
        enc(x, jnp.ones(3))
