"""One mesh over several devices (the `space` axis): partitions and halo plans keep every edge
once with its sender present locally; the sharded mesh transformer (with global tokens) and
MeshGraphNet give the one-device loss and gradients to 1e-5 on 2 and 4 virtual devices, with
`data` and `space` combined; a run checkpointed on 2 devices resumes on 4."""

import json
import shutil

import equinox as eqx
import jax
import numpy as np
import pytest

from sciops.data import read_mesh_dataset
from sciops.models.meshformer import (
    FAMILIES,
    MeshGraphNetConfig,
    MeshTransformerConfig,
    Neighbourhood,
    partition_mesh,
    prepare,
    unpartition,
)
from sciops.nn import coordinate_bisection, metis_partition, partition_graph
from sciops.nn._graph import adjacency, head_edge_sets, mesh_edges
from sciops.pde.flow import TransportConfig, generate_transport
from sciops.train import config_from_dict, fit, make_mesh

TF = MeshTransformerConfig(
    state_fields=("concentration",), noise_std=0.01, width=16, heads=4, n_layers=2,
    n_global=2, laplacian_pe=2, edge_multiple=64,
    layers=((Neighbourhood(1), Neighbourhood(2), Neighbourhood(1, dilation=2),
             Neighbourhood(1, global_nodes=True)), (Neighbourhood(1),)))
MGN = MeshGraphNetConfig(state_fields=("concentration",), noise_std=0.01, latent=16,
                         message_passing_steps=3, mlp_depth=1, edge_multiple=64)
# float32 sums in another order (per-partition segment sums, psums over devices): measured
# differences 5e-8 (transformer) and 5e-7 (MeshGraphNet) on gradients of size ~1
TOL = 1e-5


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("part") / "transport.h5"
    generate_transport(TransportConfig(n_trajectories=4, n_steps=6, h=0.08, dt=0.04,
                                       xdmf=False), path, progress=False)
    return read_mesh_dataset(path, lazy=False)


def _grid_mesh(nx, ny):
    """A structured triangle mesh of the unit square, with node coordinates."""
    x, y = np.meshgrid(np.linspace(0, 1, nx), np.linspace(0, 1, ny), indexing="ij")
    idx = np.arange(nx * ny).reshape(nx, ny)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()
    cells = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    return np.stack([x.ravel(), y.ravel()], 1), cells


@pytest.mark.parametrize("parts", [3, 4])
def test_halo_plan_invariants(parts):
    points, cells = _grid_mesh(13, 11)
    n, n_pad, n_global = len(points), len(points) + 5, 2
    s, r = mesh_edges(cells, n)
    heads = (Neighbourhood(1), Neighbourhood(1, dilation=2), Neighbourhood(1, global_nodes=True))
    gs, gr, _ = head_edge_sets(adjacency(s, r, n), heads, n_global=n_global, first_global=n_pad)
    part_of = coordinate_bisection(points, parts)
    counts = np.bincount(part_of, minlength=parts)
    assert counts.max() - counts.min() <= 2  # one node per bisection level
    plan = partition_graph(part_of, n_pad, [(gs, gr), (s, r)], n_global=n_global, parts=parts)
    first_global = plan.n_own + plan.n_halo
    for (ls, lr, take, valid), (es, er) in zip(plan.edges, [(gs, gr), (s, r)], strict=True):
        # every real edge exactly once, on the part that owns its receiver
        assert np.array_equal(np.sort(take[valid]), np.arange(len(es)))
        for p in range(parts):
            ids = np.concatenate([plan.node_index[p], plan.halo_index[p],
                                  n_pad + np.arange(n_global)])  # original id of each local row
            e = take[p][valid[p]]
            assert np.array_equal(ids[ls[p][valid[p]]], es[e])  # the sender is present locally
            assert np.array_equal(ids[lr[p][valid[p]]], er[e])
            real_r = er[e] < n
            assert np.all(lr[p][valid[p]][real_r] < plan.n_own)  # receivers are owned
            assert np.all(part_of[er[e][real_r]] == p)
            assert np.all(lr[p][valid[p]][~real_r] >= first_global)
    # the send plan delivers each halo slot its node: device q sends send[k][q] to (q+k) % P
    at = plan.n_own
    for k in plan.shifts:
        size = plan.send[k].shape[1]
        for p in range(parts):
            q = (p - k) % parts
            got = plan.node_index[q][plan.send[k][q]]
            want = plan.halo_index[p][at - plan.n_own: at - plan.n_own + size]
            real = want != 0
            assert np.array_equal(got[real], want[real])
        at += size
    # halo = senders of local edges owned elsewhere; the exchange moves only them (+padding)
    assert plan.halo_nodes <= plan.sent_rows < len(points) * (parts - 1)


def test_metis_partition_is_a_balanced_partition():
    pytest.importorskip("pymetis")
    points, cells = _grid_mesh(16, 16)
    s, r = mesh_edges(cells, len(points))
    part_of = metis_partition(s, r, len(points), 4)
    counts = np.bincount(part_of, minlength=4)
    assert counts.min() > 0.9 * len(points) / 4
    cut = np.mean(part_of[s] != part_of[r])
    assert cut < 0.15  # a 16x16 grid cut in quarters: ~2*16 of 2*(3*15*15+2*15) edge pairs


def _loss_and_grads(family, cfg, model, batch, mesh=None):
    params, static = eqx.partition(model, eqx.is_inexact_array)
    fn = eqx.filter_jit(jax.value_and_grad(
        lambda p, b: FAMILIES[family].loss(cfg, eqx.combine(p, static), b,
                                           key=jax.random.key(3))[0]))
    if mesh is None:
        return fn(params, batch)
    with jax.set_mesh(mesh):
        return fn(params, batch)


@pytest.fixture(scope="module")
def one_device(data):
    """Each family's model, prepared data and single-device loss and gradients."""
    out = {}
    for family, cfg in (("meshformer", TF), ("meshgraphnet", MGN)):
        model = FAMILIES[family].build(cfg, data, key=jax.random.key(0))
        prep = prepare(cfg, data)
        out[family] = (cfg, model, prep, _loss_and_grads(family, cfg, model,
                                                         prep.take(np.arange(2))))
    return out


# each case compiles a sharded step (~10-30 s on a loaded 2-core machine): the default run
# covers the transformer (global tokens: psum'ed softmax) on 4 devices, and MeshGraphNet on
# 2; data x space runs by default with rematerialisation (the last test), plainly when slow
FAST = [("meshformer", {"data": 1, "space": 4}), ("meshgraphnet", {"data": 1, "space": 2})]
SLOW = [("meshformer", {"data": 1, "space": 2}), ("meshformer", {"data": 2, "space": 2}),
        ("meshgraphnet", {"data": 1, "space": 4}), ("meshgraphnet", {"data": 2, "space": 2})]


@pytest.mark.parametrize("family, sizes", FAST + [pytest.param(*c, marks=pytest.mark.slow)
                                                  for c in SLOW],
                         ids=lambda v: v if isinstance(v, str) else
                         "d{data}s{space}".format(**v))
def test_sharded_loss_and_gradients_equal_one_device(family, sizes, one_device):
    cfg, model, prep, (loss1, g1) = one_device[family]
    mesh = make_mesh(sizes)
    part = partition_mesh(cfg, prep, sizes["space"])
    assert part.attrs["partition"]["parts"] == sizes["space"]
    loss2, g2 = _loss_and_grads(family, cfg, model, part.take(np.arange(2)), mesh)
    assert abs(float(loss2) - float(loss1)) <= TOL * abs(float(loss1))
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=TOL, rtol=0)


def test_partitioned_prediction_maps_back_to_the_original_nodes(one_device):
    _, model, prep, _ = one_device["meshformer"]
    one = {k: v[0] for k, v in prep.take([1]).items()}
    part = {k: v[0] for k, v in partition_mesh(TF, prep, 4).take([1]).items()}
    n = int(one["n_nodes"])
    predict = eqx.filter_jit(lambda m, s: m.predict(s, m.state_at(s, 2)))
    want = predict(model, one)  # compiled, as below: op by op it took most of this test's time
    with jax.set_mesh(make_mesh({"data": 1, "space": 4})):
        got = predict(model, part)
    np.testing.assert_allclose(np.asarray(unpartition(got, part))[:n], np.asarray(want)[:n],
                               atol=1e-5)
    with jax.set_mesh(make_mesh({"data": 2, "space": 2})), \
            pytest.raises(ValueError, match="made for 4 devices"):
        model.predict(part, model.state_at(part, 2))


def _config(data_path, space, steps):
    return config_from_dict({
        "name": "part", "seed": 0,
        "data": {"path": str(data_path), "n_test": 1},
        "model": {"family": "meshgraphnet", "state_fields": ["concentration"], "latent": 8,
                  "message_passing_steps": 2, "mlp_depth": 1, "edge_multiple": 64,
                  "eval_rollout_steps": 2},
        "train": {"steps": steps, "batch_size": 1, "eval_batch_size": 1, "log_every": 1,
                  "eval_every": 100, "checkpoint_every": 2, "progress": False,
                  # the figures (matplotlib, much of a 3-step run's time) are not what it checks
                  "plots": False,
                  "mesh": {"data": 1, "space": space},
                  "optimizer": {"lr": 1e-3, "schedule": "constant"}}})


def _train_losses(run):
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {x["step"]: x["loss"] for x in lines if x.get("split") == "train"}


def test_checkpoint_restores_on_another_device_count(data, tmp_path):
    """A run on one device, checkpointed at step 2, resumes with its mesh split over 4
    devices: step 3 (sharded, from the restored parameters and optimizer state) gives the
    uninterrupted run's loss."""
    one = tmp_path / "one"
    fit(_config(data.name, 1, 3), out=one)
    four = tmp_path / "four"
    shutil.copytree(one, four)
    shutil.rmtree(four / "checkpoints" / "step_00000003")
    result = fit(_config(data.name, 4, 3), out=four, resume=True)
    a, b = _train_losses(one), _train_losses(four)
    assert sorted(a) == sorted(b) == [1, 2, 3]
    assert b[3] == pytest.approx(a[3], rel=1e-5)
    assert b[2] == a[2]  # kept from the first run, not retrained
    assert result.steps == 3


@pytest.mark.parametrize("sizes", [{"data": 2, "space": 2}, pytest.param(
    {"data": 1, "space": 2}, marks=pytest.mark.slow)], ids=lambda v: "d{data}s{space}".format(**v))
def test_partitioned_step_with_rematerialisation_equals_one_device(sizes, one_device):
    """The memory levers (`train.remat`: `remat_block` around every block) apply on a
    partition too: the halo exchange and the global-token psums sit inside the recomputed
    block's backward pass; by default with the batch split over `data` as well (the one
    data x space check of the default run: a compile each). The reference is the plain
    one-device step: in float32 rematerialisation recomputes the same values
    (tests/test_memory_levers.py: gradients within 6e-8), far inside TOL."""
    from sciops.nn import MemoryPolicy, use_memory_policy

    cfg, model, prep, (loss1, g1) = one_device["meshformer"]
    with use_memory_policy(MemoryPolicy(remat_policy="nothing_saveable")):
        part = partition_mesh(cfg, prep, sizes["space"])
        loss2, g2 = _loss_and_grads("meshformer", cfg, model, part.take(np.arange(2)),
                                    make_mesh(sizes))
    assert abs(float(loss2) - float(loss1)) <= TOL * abs(float(loss1))
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=TOL, rtol=0)
