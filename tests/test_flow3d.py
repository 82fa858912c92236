"""3-D meshes end to end: tetrahedra through the data layer (HDF5, XDMF, VTU, gmsh .msh,
`convert`), edges and attention neighbourhoods of a tetrahedral mesh against a dense
reference, rigid-motion behaviour of MeshGraphNet's edge features, the mesh models and the
rollout protocol on a tetrahedral mesh; the 3-D flow solver (Poiseuille flow in a pipe, its
convergence order) and the `pipe_flow` data set."""

import dataclasses
import itertools
import json
import types

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciops.data import (
    MeshField,
    convert_file,
    mesh_field,
    read_gmsh,
    read_mesh_dataset,
    read_vtu,
    read_xdmf,
    write_mesh_dataset,
    write_vtu,
    write_xdmf,
)
from sciops.eval._mesh_rollout import rollout
from sciops.models.meshformer import (
    FAMILIES,
    MeshGraphNetConfig,
    MeshTransformerConfig,
    Neighbourhood,
    prepare,
)
from sciops.nn._graph import mesh_edges
from sciops.pde.flow import NodeType


def kuhn_cube(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The unit cube cut into n³ cubes, each into the six Kuhn tetrahedra along its main
    diagonal (a conforming mesh: every square face has the diagonal in the direction of
    increasing coordinates)."""
    g = np.linspace(0.0, 1.0, n + 1)
    pts = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    idx = np.arange((n + 1) ** 3).reshape(n + 1, n + 1, n + 1)
    tets = []
    for i, j, k in itertools.product(range(n), repeat=3):
        for perm in itertools.permutations(range(3)):
            corner = np.array([i, j, k])
            path = [corner.copy()]
            for axis in perm:
                corner[axis] += 1
                path.append(corner.copy())
            tets.append([idx[tuple(c)] for c in path])
    return pts, np.asarray(tets, np.int64)


def cube_edge_count(n: int) -> int:
    """Axis edges 3n(n+1)², one diagonal per square face 3n²(n+1), one body diagonal per cube."""
    return 3 * n * (n + 1) ** 2 + 3 * n * n * (n + 1) + n**3


def synthetic_trajectory(n: int = 3, steps: int = 8, omega: float = 2.0) -> MeshField:
    """A smooth time-dependent 3-D velocity on the Kuhn cube, with node types: inflow x = 0,
    outflow x = 1, other boundary nodes wall."""
    pts, tets = kuhn_cube(n)
    x, y, z = pts.T
    t = 0.05 * np.arange(steps)
    vel = np.stack([np.stack([np.sin(np.pi * y) * np.cos(omega * s), np.sin(np.pi * z) *
                              np.sin(omega * s), 0.5 * np.sin(np.pi * x) + 0.1 * s], 1)
                    for s in t]).astype(np.float32)
    nt = np.zeros(len(pts), np.int32)
    on = (pts == 0) | (pts == 1)
    nt[on.any(1)] = NodeType.WALL_BOUNDARY
    nt[(x == 0) & ~on[:, 1:].any(1)] = NodeType.INFLOW
    nt[(x == 1) & ~on[:, 1:].any(1)] = NodeType.OUTFLOW
    return MeshField(pts.astype(np.float32), {"tetra": tets.astype(np.int32)},
                     {"velocity": vel}, nt, t)


@pytest.mark.parametrize("n", [1, 2])
def test_tetrahedral_mesh_edges_are_counted_and_symmetric(n):
    pts, tets = kuhn_cube(n)
    assert len(tets) == 6 * n**3
    vol = np.abs(np.einsum("ij,ij->i", np.cross(pts[tets[:, 1]] - pts[tets[:, 0]],
                                                pts[tets[:, 2]] - pts[tets[:, 0]]),
                           pts[tets[:, 3]] - pts[tets[:, 0]])).sum() / 6
    assert vol == pytest.approx(1.0)  # the tetrahedra tile the cube
    m = MeshField(pts, {"tetra": tets})
    assert len(m.edges()) == cube_edge_count(n)  # 19 for one cube, 98 for eight
    s, r = mesh_edges(tets, len(pts))
    assert len(s) == 2 * cube_edge_count(n)
    pairs = set(zip(s.tolist(), r.tolist(), strict=True))
    assert all((b, a) in pairs for a, b in pairs) and all(a != b for a, b in pairs)


def test_tetrahedra_round_trip_through_hdf5_xdmf_and_vtu(tmp_path):
    a, b = synthetic_trajectory(3), synthetic_trajectory(2, omega=3.0)
    path = write_mesh_dataset(tmp_path / "tets.h5", [a, b], attrs={"dt": 0.05})
    ds = read_mesh_dataset(path)
    assert ds.attrs["cell_types"] == ["tetra"] and ds.shape("points") == (64, 3)
    for i, m in enumerate((a, b)):
        back = mesh_field(ds, i)
        np.testing.assert_array_equal(back.cells["tetra"], m.cells["tetra"])
        np.testing.assert_array_equal(back.fields["velocity"], m.fields["velocity"])
        np.testing.assert_array_equal(back.points, m.points)
    x = read_xdmf(write_xdmf(tmp_path / "a.xdmf", a))
    np.testing.assert_array_equal(x.cells["tetra"], a.cells["tetra"])
    np.testing.assert_allclose(x.fields["velocity"], a.fields["velocity"])
    np.testing.assert_array_equal(x.node_type, a.node_type)
    v = read_vtu(write_vtu(tmp_path / "a.vtu", a, step=3))
    assert v.points.shape == (64, 3)
    np.testing.assert_allclose(v.fields["velocity"][0], a.fields["velocity"][3])


def _gmsh_box(path, h):
    import gmsh

    gmsh.initialize(argv=[], readConfigFiles=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.model.add("box")
        gmsh.model.occ.addBox(0, 0, 0, 2, 1, 1)
        gmsh.model.occ.synchronize()
        for _, s in gmsh.model.getEntities(2):
            x0, _, _, x1, _, _ = gmsh.model.getBoundingBox(2, s)
            flat = x1 - x0 < 1e-3  # gmsh's boxes have some slack
            name = ("inlet" if flat and x0 < 1 else "outlet" if flat else f"side{s}")
            gmsh.model.addPhysicalGroup(2, [s], name=name)
        gmsh.model.addPhysicalGroup(3, [1], name="fluid")
        gmsh.option.setNumber("Mesh.MeshSizeMax", h)
        gmsh.model.mesh.generate(3)
        gmsh.write(str(path))
        _, _, tags = gmsh.model.mesh.getElements(3)
        n_tets = len(tags[0]) // 4
    finally:
        gmsh.finalize()
    return n_tets


def test_convert_a_gmsh_tetrahedral_mesh_with_physical_groups(tmp_path):
    n_tets = _gmsh_box(tmp_path / "box.msh", 0.4)
    m = read_gmsh(tmp_path / "box.msh")
    assert list(m.cells) == ["tetra"] and len(m.cells["tetra"]) == n_tets  # facets dropped
    assert m.points.shape[1] == 3 and not m.fields
    out = convert_file(tmp_path / "box.msh", tmp_path / "box.h5",
                       node_types="sets:inlet=INFLOW,outlet=OUTFLOW")
    ds = read_mesh_dataset(out)
    back = mesh_field(ds, 0)
    x = np.asarray(back.points)[:, 0]
    nt = np.asarray(back.node_type)
    np.testing.assert_array_equal(nt == NodeType.INFLOW, np.abs(x) < 1e-9)
    np.testing.assert_array_equal(nt == NodeType.OUTFLOW, np.abs(x - 2) < 1e-9)
    assert ds.attrs["import_format"] == "msh" and len(back.cells["tetra"]) == n_tets
    # the same mesh as VTU with a field converts to the same cells
    write_vtu(tmp_path / "box.vtu", MeshField(back.points, back.cells,
                                              {"p": np.asarray(back.points)[None, :, :1]},
                                              back.node_type))
    v = read_mesh_dataset(convert_file(tmp_path / "box.vtu", tmp_path / "box_vtu.h5"))
    np.testing.assert_array_equal(mesh_field(v, 0).cells["tetra"], back.cells["tetra"])


def _dense_reach(adj: np.ndarray, hops: int) -> np.ndarray:
    reach = np.eye(len(adj), dtype=bool)
    for _ in range(hops):
        reach = reach | ((reach.astype(int) @ adj.astype(int)) > 0)
    return reach


def test_khop_dilated_global_and_random_neighbourhoods_on_tetrahedra(tmp_path):
    m = synthetic_trajectory(3)
    ds = read_mesh_dataset(write_mesh_dataset(tmp_path / "t.h5", [m]), lazy=False)
    heads = (Neighbourhood(1), Neighbourhood(2), Neighbourhood(1, dilation=2),
             Neighbourhood(1, random=3, global_nodes=True))
    cfg = MeshTransformerConfig(width=16, heads=4, n_layers=1, n_global=1, layers=(heads,),
                                edge_multiple=64)
    g = {k: v[0] for k, v in prepare(cfg, ds).take([0]).items()}
    n = 64
    adj = np.zeros((n, n), bool)
    s, r = mesh_edges(np.asarray(m.cells["tetra"]), n)
    adj[r, s] = True
    one, two = _dense_reach(adj, 1), _dense_reach(adj, 2)
    mask = np.asarray(g["graph0_mask"])
    snd, rcv = np.asarray(g["graph0_senders"]), np.asarray(g["graph0_receivers"])
    real = mask.any(1)
    got = [set(zip(snd[mask[:, h]].tolist(), rcv[mask[:, h]].tolist(), strict=True))
           for h in range(4)]
    glob = {(n, n)}  # the global node (index n_pad = 64) keeps a self loop in every head
    assert got[0] == {(j, i) for i, j in zip(*np.nonzero(one), strict=True)} | glob
    assert got[1] == {(j, i) for i, j in zip(*np.nonzero(two), strict=True)} | glob
    exactly2 = two & ~one
    assert got[2] == ({(j, i) for i, j in zip(*np.nonzero(exactly2), strict=True)}
                      | {(i, i) for i in range(n)} | glob)
    assert int(exactly2.sum()) > 0 and int(two.sum()) > int(one.sum())
    to_global = {(i, n) for i in range(n)} | {(n, i) for i in range(n)}
    assert got[0] | to_global <= got[3]
    extra = got[3] - got[0] - to_global
    assert 0 < len(extra) <= 3 * n and all(b < n and a < n for a, b in extra)
    assert real.sum() == len(set().union(*got))


def _tiny_models(ds):
    mgn = MeshGraphNetConfig(latent=16, message_passing_steps=2, mlp_depth=1, edge_multiple=64,
                             noise_std=0.0, eval_rollout_steps=3)
    tf = MeshTransformerConfig(width=16, heads=2, n_layers=2, edge_multiple=64, noise_std=0.0,
                               n_global=1, eval_rollout_steps=3,
                               layers=((Neighbourhood(1), Neighbourhood(2, global_nodes=True)),
                                       (Neighbourhood(1, dilation=2), Neighbourhood(1))))
    return {"meshgraphnet": (mgn, FAMILIES["meshgraphnet"].build(mgn, ds, key=jax.random.key(0))),
            "meshformer": (tf, FAMILIES["meshformer"].build(tf, ds, key=jax.random.key(1)))}


@pytest.fixture(scope="module")
def tets(tmp_path_factory):
    root = tmp_path_factory.mktemp("tets")
    trajs = [synthetic_trajectory(3), synthetic_trajectory(3, omega=3.0)]
    path = write_mesh_dataset(root / "tets.h5", trajs, attrs={"dt": 0.05})
    write_xdmf(root / "traj.xdmf", trajs[0])
    ds = read_mesh_dataset(path, lazy=False)
    return root, ds, _tiny_models(ds)


def _rotation(seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_edge_features_under_rigid_motions_of_a_tetrahedral_mesh(tets):
    """MeshGraphNet's edge features (x_s - x_r, |x_s - x_r|): a translation leaves them and the
    prediction unchanged; a rotation turns the vectors and keeps the lengths."""
    _, ds, models = tets
    cfg, model = models["meshgraphnet"]
    sample = {k: v[0] for k, v in prepare(cfg, ds).take([0]).items()}
    rot, shift = _rotation(), np.array([0.3, -1.2, 2.0], np.float32)
    s, r = np.asarray(sample["mesh_senders"]), np.asarray(sample["mesh_receivers"])

    def features(points):
        rel = points[s] - points[r]
        return rel, np.linalg.norm(rel, axis=1)

    rel0, len0 = features(np.asarray(sample["points"], np.float64))
    rel1, len1 = features(np.asarray(sample["points"], np.float64) @ rot.T + shift)
    np.testing.assert_allclose(rel1, rel0 @ rot.T, atol=1e-12)
    np.testing.assert_allclose(len1, len0, atol=1e-12)
    x = model.state_at(sample, 2)
    predict = eqx.filter_jit(lambda m, smp: m.predict(smp, x))
    moved = dict(sample, points=sample["points"] + shift)
    p0 = predict(model, {k: jnp.asarray(v) for k, v in sample.items()})
    p1 = predict(model, {k: jnp.asarray(v) for k, v in moved.items()})
    np.testing.assert_allclose(np.asarray(p1), np.asarray(p0), atol=2e-5)
    moved_r = dict(sample, points=(np.asarray(sample["points"]) @ rot.T).astype(np.float32))
    p2 = predict(model, {k: jnp.asarray(v) for k, v in moved_r.items()})
    assert np.abs(np.asarray(p2) - np.asarray(p0)).max() > 1e-4  # not rotation invariant


@pytest.mark.parametrize("family", ["meshgraphnet", "meshformer"])
def test_models_step_and_roll_out_on_tetrahedra(tets, family, tmp_path):
    root, ds, models = tets
    cfg, model = models[family]
    fam = FAMILIES[family]
    batch = {k: jnp.asarray(v) for k, v in prepare(cfg, ds).take([0, 1]).items()}
    loss, _ = fam.loss(cfg, model, batch, key=jax.random.key(2))
    assert np.isfinite(float(loss)) and float(loss) > 0
    run = types.SimpleNamespace(config=types.SimpleNamespace(model=cfg), model=model, family=fam)
    res = rollout(run, root / "traj.xdmf", out_dir=tmp_path, progress=False)
    m = json.loads((tmp_path / "metrics.json").read_text())["trajectories"]["traj"]
    assert set(m) >= {"model", "persistence", "linear_extrapolation"}
    pred = read_xdmf(tmp_path / "traj_prediction.xdmf")
    truth = read_xdmf(root / "traj.xdmf")
    v = np.asarray(truth.fields["velocity"], np.float64)
    ev = np.isin(np.asarray(truth.node_type), (0, 5))
    u = np.asarray(pred.fields["velocity"])  # frames 1..7 (the rollout starts from frame 1)
    assert list(pred.cells) == ["tetra"] and u.shape == (7, 64, 3) and np.isfinite(u).all()
    np.testing.assert_array_equal(u[:, ~ev], v[1:, ~ev].astype(np.float32))  # true boundary
    assert np.abs(u[1:, ev] - v[2:, ev]).max() > 0  # the model did predict
    assert np.isfinite(res["mean"]["model"]["velocity"]["rollout_all"])
    # persistence's one-step error recomputed from the truth: teacher-forced over every
    # frame, the RMSE over all nodes and channels (the boundary nodes take the truth)
    d = (v[1:] - v[:-1]) * ev[None, :, None]
    assert m["persistence"]["velocity"]["one_step"] == pytest.approx(np.sqrt((d**2).mean()),
                                                                     rel=1e-5)


def test_mixed_cell_types_are_refused(tmp_path):
    m = synthetic_trajectory(1, steps=3)
    tri = np.array([[0, 1, 2]], np.int32)
    mixed = MeshField(m.points, {"tetra": m.cells["tetra"], "triangle": tri}, m.fields,
                      m.node_type, m.times)
    ds = read_mesh_dataset(write_mesh_dataset(tmp_path / "mixed.h5", [mixed]))
    with pytest.raises(Exception, match="mixed cell types"):
        prepare(MeshGraphNetConfig(edge_multiple=8), ds)


_ = dataclasses  # used by the solver tests below
