"""Mesh transformer and MeshGraphNet: permutation equivariance, padding invariance, training
on solver data beating persistence, and clear errors."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sciops._errors import ConfigError, DataError
from sciops.data import Dataset, read_mesh_dataset
from sciops.models.meshformer import (
    FAMILIES,
    MeshGraphNetConfig,
    MeshTransformerConfig,
    Neighbourhood,
    prepare,
)
from sciops.pde.flow import TransportConfig, generate_transport

TF = MeshTransformerConfig(
    state_fields=("concentration",), output_fields=(), noise_std=0.0, width=16, heads=4,
    n_layers=2, n_global=1, random_walk_pe=3, edge_multiple=64,
    layers=((Neighbourhood(1), Neighbourhood(2), Neighbourhood(1, dilation=2),
             Neighbourhood(1, global_nodes=True)), (Neighbourhood(1),)))
MGN = MeshGraphNetConfig(state_fields=("concentration",), output_fields=(), noise_std=0.0,
                         latent=16, message_passing_steps=3, mlp_depth=1, edge_multiple=64)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("mf") / "transport.h5"
    generate_transport(TransportConfig(n_trajectories=4, n_steps=12, h=0.08, dt=0.04,
                                       xdmf=False), path, progress=False)
    return read_mesh_dataset(path, lazy=False)


@pytest.fixture(scope="module")
def models(data):
    return {"transformer": FAMILIES["meshformer"].build(TF, data, key=jax.random.key(0)),
            "meshgraphnet": FAMILIES["meshgraphnet"].build(MGN, data, key=jax.random.key(1))}


def _one(ds, i=0):
    return {k: v[0] for k, v in ds.take([i]).items()}


def _permuted(sample, perm):
    """The same trajectory with its nodes renumbered: new node j is old node perm[j]."""
    n = int(sample["n_nodes"])
    inv = np.empty(n, int)
    inv[perm] = np.arange(n)
    out = dict(sample)
    for k in ("points", "node_type", "node_mask"):
        out[k] = sample[k].copy()
        out[k][:n] = sample[k][:n][perm]
    out["concentration"] = sample["concentration"].copy()
    out["concentration"][:, :n] = sample["concentration"][:, :n][:, perm]
    cells = sample["cells_triangle"].copy()
    m = sample["cells_triangle_mask"]
    cells[m] = inv[cells[m]]
    out["cells_triangle"] = cells
    return out


def _as_ds(samples):
    return Dataset({k: np.stack([s[k] for s in samples]) for k in samples[0]}, {})


@pytest.mark.parametrize("cfg", [TF, MGN], ids=["transformer", "meshgraphnet"])
def test_node_permutation_equivariance(cfg, data, models):
    model = models["transformer" if isinstance(cfg, MeshTransformerConfig) else "meshgraphnet"]
    s = _one(data)
    n = int(s["n_nodes"])
    perm = np.random.default_rng(0).permutation(n)
    ds = prepare(cfg, _as_ds([s, _permuted(s, perm)]))
    a, b = (_one(ds, i) for i in range(2))
    predict = eqx.filter_jit(lambda m, smp, x: m.predict(smp, x))
    ya = predict(model, a, a["concentration"][3])
    yb = predict(model, b, b["concentration"][3])
    np.testing.assert_allclose(np.asarray(yb)[:n], np.asarray(ya)[:n][perm], atol=2e-5)
    assert float(jnp.abs(ya[:n]).max()) > 1e-3  # not trivially zero


@pytest.mark.parametrize("cfg", [TF, MGN], ids=["transformer", "meshgraphnet"])
def test_padding_does_not_change_real_nodes(cfg, data, models):
    model = models["transformer" if isinstance(cfg, MeshTransformerConfig) else "meshgraphnet"]
    s = _one(data, 1)
    n_pad = s["points"].shape[0] + 37
    p = {}
    for k, v in s.items():
        if k in ("points", "node_type", "node_mask"):
            p[k] = np.concatenate([v, np.zeros((37, *v.shape[1:]), v.dtype)])
        elif k == "concentration":
            p[k] = np.concatenate([v, 5.0 * np.ones((v.shape[0], 37, 1), v.dtype)], 1)
        else:
            p[k] = v
    assert p["points"].shape[0] == n_pad
    a = _one(prepare(cfg, _as_ds([s])))
    b = _one(prepare(dataclasses.replace(cfg, edge_multiple=1000), _as_ds([p])))
    assert b["mesh_senders"].shape[0] % 1000 == 0 and b["mesh_senders"].shape[0] > a["mesh_senders"].shape[0]
    predict = eqx.filter_jit(lambda m, smp, x: m.predict(smp, x))
    n = int(s["n_nodes"])
    ya = predict(model, a, a["concentration"][2])
    yb = predict(model, b, b["concentration"][2])
    np.testing.assert_allclose(np.asarray(yb)[:n], np.asarray(ya)[:n], atol=2e-5)


def test_transformer_learns_transport_better_than_persistence(data):
    cfg = dataclasses.replace(TF, width=32, n_global=0, random_walk_pe=0, laplacian_pe=4,
                              layers=((Neighbourhood(1), Neighbourhood(2)),))
    fam = FAMILIES["meshformer"]
    train, test = prepare(cfg, data.subset(slice(0, 3))), prepare(cfg, data.subset(slice(3, 4)))
    model = fam.build(cfg, train, key=jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt = optax.adam(3e-3)
    state = opt.init(params)

    @eqx.filter_jit
    def step(params, state, batch, key):
        (value, _), g = jax.value_and_grad(
            lambda p: fam.loss(cfg, eqx.combine(p, static), batch, key=key), has_aux=True)(params)
        u, state = opt.update(g, state, params)
        return optax.apply_updates(params, u), state, value

    batch = train.take(np.arange(3))
    key = jax.random.key(1)
    losses = []
    for _ in range(120):
        key, k = jax.random.split(key)
        params, state, value = step(params, state, batch, k)
        losses.append(float(value))
    model = eqx.combine(params, static)
    m = eqx.filter_jit(lambda m, b: fam.metrics(cfg, m, b))(model, test.take([0]))
    tb = test.take([0])
    c, mask = tb["concentration"][0], tb["node_mask"][0]
    persistence = np.sqrt(np.mean((c[1:] - c[:-1])[:, mask] ** 2))
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:5])
    # 120 steps on 3 small trajectories: measured 0.80x persistence (1-step RMSE, held-out mesh)
    assert float(m["rmse_1step_concentration"][0]) < 0.9 * persistence, (m, persistence)
    assert np.isfinite(float(m["rmse_rollout11"][0]))


def test_parameter_counts_and_sixth_of_mgn():
    """Paper-scale MeshGraphNet vs the default transformer: the latter has < 1/6 the parameters."""
    from sciops.models.meshformer import MeshGraphNet, MeshTransformer
    # shapes only (eval_shape): no parameters are drawn
    mgn = eqx.filter_eval_shape(MeshGraphNet, 2 + 9, 3, 3, 128, 15, 2, key=jax.random.key(0))
    tf = eqx.filter_eval_shape(MeshTransformer, 2 + 9 + 2, 3, 64, 4, 4, 2, 1, 0, (0, 0, 0, 0),
                               key=jax.random.key(0))
    count = lambda m: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(m) if hasattr(x, "shape"))  # noqa: E731
    # MeshGraphNet by hand: 2-hidden-layer MLPs of width 128 with LayerNorm (not on the decoder)
    mlp = lambda i, o, ln=True: (i * 128 + 128) + (128 * 128 + 128) + (128 * o + o) + (2 * o if ln else 0)  # noqa: E731
    expect = mlp(11, 128) + mlp(3, 128) + 15 * (mlp(384, 128) + mlp(256, 128)) + mlp(128, 3, False)
    assert count(mgn) == expect
    assert count(tf) * 6 <= count(mgn)


def test_errors_name_the_problem(data, models, getkey):
    with pytest.raises(ConfigError, match="divisible"):
        MeshTransformerConfig(width=30, heads=4)
    with pytest.raises(ConfigError, match="n_global"):
        MeshTransformerConfig(layers=((Neighbourhood(global_nodes=True),),))
    with pytest.raises(ConfigError, match="output_fields"):
        MeshGraphNetConfig(state_fields=("a",), output_fields=("a",))
    with pytest.raises(DataError, match="'velocity' is not in the data set"):
        FAMILIES["meshgraphnet"].build(MeshGraphNetConfig(), data, key=getkey())
    model = models["meshgraphnet"]
    with pytest.raises(DataError, match="prepare"):
        FAMILIES["meshgraphnet"].loss(MGN, model, data.take([0]), key=getkey())
    with pytest.raises(DataError, match="not a mesh data set"):
        prepare(MGN, Dataset({"x": np.zeros((2, 3))}, {}))


@pytest.mark.parametrize("depth", [0, 2])
def test_split_edge_update_equals_mlp_on_concatenation(depth, getkey):
    """MeshGraphNet's edge update applies the first layer's node blocks per node, then gathers:
    it must equal the edge MLP on the per-edge concatenation [e, v_s, v_r]."""
    from sciops.models.meshformer._mgn import ProcessorBlock, _edge_update

    block = ProcessorBlock(16, depth, key=getkey())
    v, e = jax.random.normal(getkey(), (30, 16)), jax.random.normal(getkey(), (80, 16))
    rng = np.random.default_rng(0)
    s, r = rng.integers(0, 30, 80), rng.integers(0, 30, 80)
    ref = jax.vmap(block.edge_mlp)(jnp.concatenate([e, v[s], v[r]], -1))
    out = _edge_update(block.edge_mlp, e, v, s, r)
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), atol=2e-5)
    assert float(jnp.abs(ref).max()) > 0.1


def test_loss_scores_output_fields_on_every_node(data, getkey):
    """State changes are learned on the evolving nodes only, output fields (pressure) on every
    real node: with two time steps (t = 0 is the only draw) and no noise the loss is
    $\\frac{1}{C}\\sum_c \\mathrm{mean}_{i \\in S_c} (\\hat y_{ic} - y_{ic})^2$ with $S_c$ the
    evolving nodes for the state channel and all real nodes for the output channel."""
    s = _one(data, 2)
    s["concentration"] = s["concentration"][:2]
    s["extra"] = np.random.default_rng(0).normal(size=s["concentration"].shape).astype(np.float32)
    raw = _as_ds([s])
    # one message-passing step: the rule is the loss's, not the network's (a third of the
    # compilation of each of the three losses below)
    cfg = dataclasses.replace(MGN, output_fields=("extra",), message_passing_steps=1)
    fam = FAMILIES["meshgraphnet"]
    model = fam.build(cfg, raw, key=getkey())
    batch = prepare(cfg, raw).take([0])
    # compiled (the config static): op-by-op dispatch of the network is slower than one compile
    loss = eqx.filter_jit(lambda c, m, b, k: fam.loss(c, m, b, key=k)[0])
    value = loss(cfg, model, batch, getkey())
    b = {k: v[0] for k, v in batch.items()}
    pred = np.asarray(eqx.filter_jit(lambda m, b: m.predict(b, b["concentration"][0]))(model, b))
    t_state = np.asarray(model.delta_norm.encode(b["concentration"][1] - b["concentration"][0]))
    t_out = np.asarray(model.out_norm.encode(b["extra"][1]))
    ev, real = np.asarray(model.evolving(b)), b["node_mask"]
    assert 0 < ev.sum() < real.sum()  # walls exist and do not evolve
    err_state = np.mean((pred[ev, 0] - t_state[ev, 0]) ** 2)
    err_out_all = np.mean((pred[real, 1] - t_out[real, 0]) ** 2)
    err_out_ev = np.mean((pred[ev, 1] - t_out[ev, 0]) ** 2)
    np.testing.assert_allclose(float(value), 0.5 * (err_state + err_out_all), rtol=1e-5)
    assert abs(err_out_all - err_out_ev) > 1e-2 * err_out_all  # the two rules differ here
    # the output fields' own weight: (err_state + w err_out) / (1 + w); 0 drops them
    for w in (0.0, 0.25):
        cw = dataclasses.replace(cfg, output_loss_weight=w)
        v = loss(cw, model, batch, getkey())
        np.testing.assert_allclose(float(v), (err_state + w * err_out_all) / (1 + w), rtol=1e-5)
    with pytest.raises(ConfigError, match="output_loss_weight"):
        dataclasses.replace(cfg, output_loss_weight=-1.0)


def test_normalisers_see_the_noisy_inputs(data, getkey):
    """With training noise sigma on the fluid nodes, the input normaliser's variance is the
    data's plus sigma^2 times the fluid share of the nodes, and the target (change) normaliser
    sees the noise-correcting targets x^{t+1} - (x^t + noise): on a field constant in time
    its variance is sigma^2 times the fluid share of the evolving nodes."""
    s = _one(data, 0)
    s["concentration"] = np.broadcast_to(s["concentration"][:1], s["concentration"].shape).copy()
    raw = _as_ds([s])
    sigma = 0.3
    cfg = dataclasses.replace(MGN, noise_std=sigma)
    model = FAMILIES["meshgraphnet"].build(cfg, raw, key=getkey())
    real = s["node_mask"]
    fluid = real & (s["node_type"] == 0)
    x = s["concentration"][0, real, 0].astype(np.float64)
    share = fluid.sum() / real.sum()
    want = np.sqrt(x.var() + sigma**2 * share)
    np.testing.assert_allclose(float(model.state_norm.std[0]), want, rtol=0.05)
    ev = np.asarray(model.evolving(s))
    np.testing.assert_allclose(float(model.delta_norm.std[0]),
                               sigma * np.sqrt(fluid.sum() / ev.sum()), rtol=0.05)
    clean = FAMILIES["meshgraphnet"].build(MGN, raw, key=getkey())  # no noise: no change
    assert float(clean.delta_norm.std[0]) < 1e-6


def test_one_step_metric_imposes_boundary_values(data, models):
    """The training metric's one-step RMSE takes the true values on non-evolving nodes (as a
    rollout does): only the evolving nodes' errors count, over all real nodes' channels."""
    fam, model = FAMILIES["meshgraphnet"], models["meshgraphnet"]
    batch = prepare(MGN, data).take([1])
    m = eqx.filter_jit(lambda m, b: fam.metrics(MGN, m, b))(model, batch)
    b = {k: v[0] for k, v in batch.items()}
    c, real = b["concentration"], b["node_mask"]
    ev = np.asarray(model.evolving(b))
    ts = np.unique(np.linspace(0, len(c) - 2, min(8, len(c) - 1)).astype(int))
    errs = []
    step = eqx.filter_jit(lambda m, b, x: m.step(b, x)[0])  # one compile, not op by op
    for t in ts:
        nxt = np.asarray(step(model, b, c[t]))
        errs.append(np.sqrt(np.sum((nxt[ev] - c[t + 1][ev]) ** 2) / real.sum()))
    np.testing.assert_allclose(float(m["rmse_1step_concentration"][0]), np.mean(errs), rtol=1e-4)
