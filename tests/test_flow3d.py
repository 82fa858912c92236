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
from sciops.eval import mesh_rollout as rollout
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


@pytest.mark.parametrize("offset", [None, 0.4, 0.77])
def test_plane_section_of_a_tetrahedral_mesh(offset):
    """The section of the unit cube is the unit square (areas add up to 1, so the triangles
    tile it without overlap), and it interpolates linear fields exactly."""
    from sciops.data import plane_section

    pts, tets = kuhn_cube(3)
    xy, tri, w = plane_section(pts, tets, axis=2, offset=offset)
    a = xy[tri]
    d1, d2 = a[:, 1] - a[:, 0], a[:, 2] - a[:, 0]
    area = 0.5 * np.abs(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0])
    assert area.sum() == pytest.approx(1.0, abs=1e-12) and area.min() > 0
    z = 0.5 if offset is None else offset
    f = pts @ np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(w @ f, xy @ np.array([1.0, 2.0]) + 3 * z, atol=1e-6)


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
    # the figures (a mid-plane section, the GIF) do not depend on the model: drawn and checked
    # with MeshGraphNet only (matplotlib is most of a rollout's time here)
    figures = family == "meshgraphnet"
    res = rollout(run, root / "traj.xdmf", out_dir=tmp_path, progress=False, plots=figures)
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
    if figures:
        assert (tmp_path / "traj_snapshot_velocity_step0006.png").is_file()  # a mid-plane section
        assert (tmp_path / "traj_rollout.gif").is_file()
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



# --- the 3-D flow solver and the pipe_flow data set ----------------------------------------

def poiseuille_error(h: float, length=2.0, radius=0.5, u_mean=0.5, nu=0.1, dt=0.2, frames=40):
    """Steady flow from rest through a straight pipe by `PipeFlow` (no obstacle, steady
    inflow), against Poiseuille's $u_x = 2U(1 - r^2/R^2)$, $p = 8\\nu U (L - x)/R^2$.

    **Returns:** `(relative L2 velocity error, relative max pressure error, last change)`."""
    from skfem import Functional

    from sciops.pde._gmsh_mesh import gmsh_pipe_mesh
    from sciops.pde.pipe_flow import PipeFlow

    pts, tets, boundary = gmsh_pipe_mesh(length, radius, h)
    flow = PipeFlow(pts, tets, boundary, length, radius, None, u_mean, 0.0, 1.0, nu, dt, 1)
    vel, prs = np.zeros((len(flow.points), 3)), np.zeros(len(flow.points))
    for j in range(frames):
        new, prs = flow.frame(vel, prs, j * dt)
        change, vel = np.abs(new - vel).max(), new

    @Functional
    def err2(w):
        exact = 2 * u_mean * (1 - (w.x[1] ** 2 + w.x[2] ** 2) / radius**2)
        return (w["u0"] - exact) ** 2 + w["u1"] ** 2 + w["u2"] ** 2

    vb = flow.solver.vb
    e = err2.assemble(vb, **{f"u{i}": vb.interpolate(vel[:, i]) for i in range(3)})
    # ||u_exact||² = ∫ 4U²(1 - r²/R²)² dA dx = 4U² π R² L / 3
    rel = np.sqrt(e / (4 * u_mean**2 * np.pi * radius**2 * length / 3))
    grad = 8 * nu * u_mean / radius**2
    p_err = np.abs(prs - grad * (length - flow.points[:, 0])).max() / (grad * length)
    return rel, p_err, change


def test_pipe_solver_recovers_poiseuille_flow_at_second_order():
    """The polygonal wall limits P2 to O(h²) in L2: measured relative errors 0.134, 0.062,
    0.031 (order 2.13) at h = 0.5, 0.35, 0.25 on this pipe (R = 0.5, L = 2); the pressure's
    largest error 27 %, 12 %, 7.6 % of the drop."""
    hs = np.array([0.5, 0.35, 0.25])
    res = [poiseuille_error(h) for h in hs]
    errs = np.array([r[0] for r in res])
    order = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert 1.7 < order < 2.6, (errs, order)
    assert errs[-1] < 0.035
    assert all(r[2] < 1e-3 for r in res)  # steady
    p_errs = [r[1] for r in res]
    assert p_errs[-1] < 0.09 and p_errs[0] > p_errs[1] > p_errs[2]  # Poiseuille's pressure drop


@pytest.mark.slow
def test_pipe_solver_poiseuille_order_holds_on_finer_meshes():
    hs = np.array([0.25, 0.18, 0.13])
    errs = np.array([poiseuille_error(h, frames=80)[0] for h in hs])
    order = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    assert 1.7 < order < 2.6, (errs, order)


TINY = dict(n_trajectories=2, n_steps=4, spinup=0.1, h_min=0.12, h_max=0.3, length=2.0,
            obstacle_x=(0.6, 0.7), obstacle_radius=(0.15, 0.2), workers=1, xdmf=True)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    from sciops.pde.pipe_flow import PipeFlowConfig, generate_pipe_flow

    path = tmp_path_factory.mktemp("pipe") / "pipe.h5"
    config = PipeFlowConfig(**TINY)
    generate_pipe_flow(config, path, progress=False)
    return config, path


def test_pipe_flow_records_are_the_solvers_unknowns_and_determine_the_next(pipe):
    from sciops.pde.pipe_flow import build_pipe_flow, draw_trajectories

    config, path = pipe
    ds = read_mesh_dataset(path)
    assert ds.attrs["problem"] == "pipe_flow" and ds.attrs["cell_types"] == ["tetra"]
    m = mesh_field(ds, 1)
    params = ds.attrs["trajectory_params"][1]
    flow = build_pipe_flow(config, *draw_trajectories(config)[1])
    np.testing.assert_allclose(np.asarray(m.points), flow.points, atol=1e-6)
    assert len(m.cells["tetra"]) == 8 * params["n_elements"]  # the 8-way refinement
    assert params["n_nodes"] == len(flow.points) > params["n_vertices"]
    vel = np.asarray(m.fields["velocity"], np.float64)
    prs = np.asarray(m.fields["pressure"], np.float64)[..., 0]
    t = np.asarray(m.times)
    for k in range(2):
        nxt, pn = flow.frame(vel[k], prs[k], t[k])
        scale = np.abs(vel[k + 1]).max()
        assert np.abs(nxt - vel[k + 1]).max() < 1e-5 * scale  # float32 records
        assert np.abs(pn - prs[k + 1]).max() < 1e-4 * np.abs(prs[k + 1]).max()
        assert np.abs(vel[k + 1] - vel[k]).max() > 100 * 1e-5 * scale  # the flow does move
    assert params["max_courant"] < 1.0


def test_pipe_flow_boundary_values_and_node_types(pipe):
    config, path = pipe
    ds = read_mesh_dataset(path)
    m = mesh_field(ds, 0)
    p = ds.attrs["trajectory_params"][0]
    x = np.asarray(m.points, np.float64)
    nt = np.asarray(m.node_type)
    vel = np.asarray(m.fields["velocity"], np.float64)
    r = np.hypot(x[:, 1], x[:, 2])
    cx, cy, cz, rad = p["obstacle"]
    d = np.linalg.norm(x - [cx, cy, cz], axis=1)
    ob, wall = nt == NodeType.OBSTACLE, nt == NodeType.WALL_BOUNDARY
    inflow, outflow = nt == NodeType.INFLOW, nt == NodeType.OUTFLOW
    # vertices lie on the surfaces, edge midpoints on chords just inside
    assert np.all(d[ob] < rad + 1e-5) and np.all(d[ob] > rad - config.h_min**2 / rad)
    assert np.all(r[wall] < 0.5 + 1e-5) and np.all(r[wall] > 0.5 - config.h_max**2)
    assert np.all(np.abs(x[inflow, 0]) < 1e-6) and np.all(np.abs(x[outflow, 0] - 2) < 1e-6)
    assert np.all(vel[:, ob | wall] == 0)
    t = np.asarray(m.times)
    u_t = p["u_mean"] * (1 + p["amplitude"] * np.sin(2 * np.pi * t / p["period"]))
    expect = 2 * u_t[:, None] * (1 - r[inflow] ** 2 / 0.25)
    np.testing.assert_allclose(vel[:, inflow, 0], expect, rtol=1e-5, atol=1e-6)
    drag = np.asarray(ds.take([0])["drag_coefficient"][0])
    assert drag.shape == (4,) and np.all(np.isfinite(drag)) and np.all(drag > 0)
    x2 = read_xdmf(path.with_name("pipe_xdmf") / "traj_000.xdmf")
    assert list(x2.cells) == ["tetra"] and x2.fields["velocity"].shape == vel.shape


def test_sciops_generate_pipe_flow_and_bad_keys(tmp_path, capsys):
    from sciops._errors import ConfigError
    from sciops.cli import main
    from sciops.pde.pipe_flow import PipeFlowConfig

    out = tmp_path / "p.h5"
    assert main(["generate", "pipe_flow", "--n-trajectories", "1", "--n-steps", "2",
                 "--spinup", "0", "--h-min", "0.15", "--h-max", "0.35", "--length", "2",
                 "--obstacle-x", "[0.6, 0.7]", "--obstacle-radius", "[0.15, 0.2]", "--xdmf", "false", "--out", str(out),
                 "--no-progress"]) == 0
    ds = read_mesh_dataset(out)
    assert ds.shape("velocity")[0] == 2 and ds.shape("velocity")[2] == 3
    with pytest.raises(ConfigError, match="obstacle_offset"):
        PipeFlowConfig(obstacle_offset=(0.0, 0.3))
    with pytest.raises(ConfigError, match="amplitude"):
        PipeFlowConfig(amplitude=(0.5, 1.2))
    cfg = dataclasses.replace(PipeFlowConfig(), reynolds=(60.0, 60.0))
    assert cfg.reynolds == (60.0, 60.0)
