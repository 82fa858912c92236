"""Flow solvers: convergence against exact solutions, exactness on Poiseuille flow, and the
physical invariants of the generated cylinder-flow and transport data sets."""

import dataclasses

import numpy as np
import pytest
from scipy import integrate

from sciops._errors import ConfigError
from sciops.data import read_mesh_dataset, read_xdmf
from sciops.pde import problem
from sciops.pde._ns_fem import ProjectionNS
from sciops.pde.flow import (
    CylinderFlow,
    CylinderFlowConfig,
    DFG2D2Config,
    NodeType,
    TransportConfig,
    cylinder_mesh,
    element_mesh,
    lift_saturated,
    saved_cylinder_flow,
    simulate_cylinder_flow,
    solve_transport,
    square_mesh,
    transport_exact,
)


def _unit_square(n):
    from skfem import MeshTri
    m = MeshTri.init_tensor(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1))
    return m.p.T, m.t.T


def _taylor_green_error(n, dt, t_end=0.3, nu=0.01):
    k = np.pi
    f = lambda t: np.exp(-2 * k * k * nu * t)  # noqa: E731
    u_ex = lambda xy, t: np.stack([-np.cos(k * xy[:, 0]) * np.sin(k * xy[:, 1]) * f(t),  # noqa: E731
                                   np.sin(k * xy[:, 0]) * np.cos(k * xy[:, 1]) * f(t)], 1)
    p_ex = lambda xy, t: -(np.cos(2 * k * xy[:, 0]) + np.cos(2 * k * xy[:, 1])) * f(t) ** 2 / 4  # noqa: E731
    pts, tri = _unit_square(n)
    s = ProjectionNS(pts, tri, nu, dt, lambda xy: np.ones(len(xy), bool),
                     lambda xy: np.zeros(len(xy), bool))
    u, p = s.interpolate(lambda xy: u_ex(xy, 0.0)), p_ex(pts, 0.0)
    steps = int(round(t_end / dt))
    for j in range(steps):
        u, p = s.step(u, p, (j + 1) * dt, u_ex)
    eu = s.vertex_values(u) - u_ex(pts, t_end)
    ep = p - p_ex(pts, t_end)
    ep -= ep.mean()  # pressure is defined up to a constant here
    return np.sqrt((eu**2).sum(1).mean()), np.sqrt((ep**2).mean())


def test_navier_stokes_converges_on_taylor_green_vortex():
    """Refining h and dt together: velocity error falls at least 2.5 orders, pressure 1.5."""
    (u1, p1), (u2, p2) = _taylor_green_error(8, 0.02), _taylor_green_error(16, 0.01)
    order_u, order_p = np.log2(u1 / u2), np.log2(p1 / p2)
    assert u2 < 1e-3
    assert order_u > 2.5, (u1, u2, order_u)
    assert order_p > 1.5, (p1, p2, order_p)


def test_navier_stokes_reproduces_poiseuille_flow_exactly():
    """P2/P1 contains the parabola and the linear pressure: the steady state is kept to round-off."""
    length, height, nu, umax = 1.0, 0.4, 0.01, 1.0
    from skfem import MeshTri
    m = MeshTri.init_tensor(np.linspace(0, length, 11), np.linspace(0, height, 5))
    pts, tri = m.p.T, m.t.T
    u_ex = lambda xy, t=0.0: np.stack([4 * umax * xy[:, 1] * (height - xy[:, 1]) / height**2,  # noqa: E731
                                       0 * xy[:, 1]], 1)
    p_ex = lambda xy: 8 * nu * umax / height**2 * (length - xy[:, 0])  # noqa: E731
    tol = 1e-9
    s = ProjectionNS(pts, tri, nu, 0.05,
                     lambda xy: ~((xy[:, 0] > length - tol) & (xy[:, 1] > tol) & (xy[:, 1] < height - tol)),
                     lambda xy: xy[:, 0] > length - tol)
    u, p = s.interpolate(u_ex), p_ex(pts)
    for j in range(10):
        u, p = s.step(u, p, (j + 1) * 0.05, u_ex)
    np.testing.assert_allclose(s.vertex_values(u), u_ex(pts), atol=1e-10)
    np.testing.assert_allclose(p, p_ex(pts), atol=1e-10)
    # the force on the lower wall is its shear stress nu * 4 umax / H times the wall length,
    # less a sixth of each end edge (dx = 0.1), where the test function falls to 0 at the
    # corner nodes; its normal component is minus the pressure integrated with that function
    xy = s.node_points
    wall = np.nonzero((xy[:, 1] < tol) & (xy[:, 0] > tol) & (xy[:, 0] < length - tol))[0]
    fx, fy = s.force(u, p, wall)
    np.testing.assert_allclose(fx, nu * 4 * umax / height * (length - 2 * 0.1 / 6), rtol=1e-9)
    x = np.linspace(0, length, 100001)
    xi = np.minimum(x, length - x) / 0.1  # quadratic rise to 1 over the end edges
    test_fn = np.where(xi < 1, xi * (3 - 2 * xi), 1.0)
    p_wall = p_ex(np.stack([x, 0 * x], 1))
    np.testing.assert_allclose(fy, -np.trapezoid(p_wall * test_fn, x), rtol=1e-6)


def test_node_mesh_is_the_refinement_of_the_element_mesh():
    """Every P2 node is a vertex of the refined triangulation, and the element mesh comes back
    from it (what `saved_cylinder_flow` relies on)."""
    pts, tri, _ = cylinder_mesh(1.6, 0.41, 0.3, 0.2, 0.05, 0.04, 0.1)
    s = ProjectionNS(pts, tri, 1e-3, 0.01, lambda xy: np.ones(len(xy), bool),
                     lambda xy: np.zeros(len(xy), bool))
    nodes, sub = s.node_points, s.node_triangles()
    assert len(nodes) == len(pts) + len(s.mesh.facets.T) and len(sub) == 4 * len(tri)
    assert np.array_equal(np.unique(sub), np.arange(len(nodes)))
    a, b, c = nodes[sub[:, 0]], nodes[sub[:, 1]], nodes[sub[:, 2]]
    area = 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
    assert area.min() > 0
    total = 0.5 * np.abs((pts[tri[:, 1], 0] - pts[tri[:, 0], 0]) * (pts[tri[:, 2], 1] - pts[tri[:, 0], 1])
                         - (pts[tri[:, 1], 1] - pts[tri[:, 0], 1]) * (pts[tri[:, 2], 0] - pts[tri[:, 0], 0])).sum()
    np.testing.assert_allclose(area.sum(), total, rtol=1e-12)
    back_pts, back_tri = element_mesh(nodes, sub, len(pts))
    np.testing.assert_allclose(back_pts, pts, rtol=0, atol=1e-15)
    assert {tuple(sorted(t)) for t in back_tri.tolist()} == {tuple(sorted(t)) for t in tri.tolist()}


def test_lift_saturation_is_detected_from_the_signal():
    t = np.arange(0, 6, 0.01)
    wave = np.sin(2 * np.pi * 3 * t)
    assert lift_saturated(0.9 * wave, 0.01)
    assert lift_saturated(np.full(50, 0.02), 0.01)  # steady flow below the shedding onset
    assert not lift_saturated(np.exp(0.5 * t) * wave, 0.01)  # amplitude growing 5 % a period
    assert lift_saturated(np.exp(0.01 * t) * wave, 0.01)  # growing 0.1 % a period
    assert not lift_saturated(wave[:30], 0.01)  # too few periods to tell


def test_saved_records_determine_the_next_record(tmp_path):
    """The oracle test: re-running the solver one record interval from a SAVED record (the file,
    float32) gives the next saved record to float32 round-off. Saving only the element vertices
    (midpoints interpolated, as before issue 19) leaves a large part of the change undetermined."""
    cfg = CylinderFlowConfig(n_trajectories=1, n_steps=4, spinup=0.6, spinup_max=0.6,
                             h_min=0.04, h_max=0.1, reynolds=(150.0, 150.0), workers=1,
                             xdmf=False)
    path = tmp_path / "cyl.h5"
    problem("cylinder_flow").generate(cfg, path, progress=False)
    ds = read_mesh_dataset(path, lazy=False)
    flow = saved_cylinder_flow(ds, 0)
    s = ds.take([0])
    np.testing.assert_array_equal(flow.node_type, s["node_type"][0])
    vel = s["velocity"][0].astype(np.float64)
    prs = s["pressure"][0, ..., 0].astype(np.float64)
    t = s["times"][0]
    f = flow.solver.mesh.facets
    mids = flow.solver.vb.facet_dofs[0]
    for j in range(3):
        change = np.sqrt(np.mean((vel[j + 1] - vel[j]) ** 2))
        v_next, p_next = flow.frame(vel[j], prs[j], t[j])
        err = np.sqrt(np.mean((v_next - vel[j + 1]) ** 2))
        assert err < 1e-4 * change, (j, err, change)  # float32 storage: measured 2e-6
        np.testing.assert_allclose(p_next, prs[j + 1], atol=1e-5 * np.abs(prs[j + 1]).max())
        vertex_only = vel[j].copy()
        vertex_only[mids] = 0.5 * (vel[j][f[0]] + vel[j][f[1]])
        v_old, _ = flow.frame(vertex_only, prs[j], t[j])
        assert np.sqrt(np.mean((v_old - vel[j + 1]) ** 2)) > 0.1 * change


def test_transport_converges_at_second_order():
    x0, sigma0, omega, diff = np.array([0.65, 0.5]), 0.08, 1.0, 1e-3
    errors = []
    for h, dt, n in ((0.08, 0.04, 11), (0.04, 0.02, 21), (0.02, 0.01, 41)):
        pts, tri = square_mesh(h, seed=0)
        c = solve_transport(pts, tri, x0, sigma0, omega, diff, dt, n)
        exact = transport_exact(pts, (n - 1) * dt, x0, sigma0, omega, diff)
        errors.append(np.sqrt(np.mean((c[-1] - exact) ** 2)))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert errors[-1] < 5e-3 and np.all(orders > 1.6), (errors, orders)


def test_cylinder_mesh_node_types():
    """gmsh's physical groups give the node types; corners are walls."""
    pts, tri, nt = cylinder_mesh(1.6, 0.41, 0.3, 0.2, 0.05, 0.02, 0.05)
    on_circle = np.abs(np.hypot(pts[:, 0] - 0.3, pts[:, 1] - 0.2) - 0.05) < 1e-9
    assert np.all(nt[on_circle] == NodeType.OBSTACLE) and on_circle.sum() >= 12
    assert on_circle.sum() == (nt == NodeType.OBSTACLE).sum()
    assert np.all(nt[(pts[:, 1] < 1e-9) | (pts[:, 1] > 0.41 - 1e-9)] == NodeType.WALL_BOUNDARY)
    inflow = nt == NodeType.INFLOW
    assert inflow.sum() > 3 and np.allclose(pts[inflow, 0], 0)
    assert np.allclose(pts[nt == NodeType.OUTFLOW, 0], 1.6)
    assert (nt == NodeType.WALL_BOUNDARY).sum() == ((pts[:, 1] < 1e-9) | (pts[:, 1] > 0.41 - 1e-9)).sum()
    # all triangles counter-clockwise, none degenerate, covering the channel minus the disc
    a, b, c = pts[tri[:, 0]], pts[tri[:, 1]], pts[tri[:, 2]]
    area = 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
    assert area.min() > 0.2 * 0.02**2
    n_rim = on_circle.sum()  # the hole is the inscribed polygon
    polygon = 0.5 * n_rim * 0.05**2 * np.sin(2 * np.pi / n_rim)
    np.testing.assert_allclose(area.sum(), 1.6 * 0.41 - polygon, rtol=1e-9)


def test_cylinder_flow_data_set_is_physical(tmp_path):
    cfg = CylinderFlowConfig(n_trajectories=2, n_steps=15, spinup=0.3, spinup_max=0.3,
                             h_min=0.03, h_wake=0.06, h_max=0.08, radius=(0.04, 0.06),
                             reynolds=(100.0, 150.0), center_x=(0.25, 0.35), seed=3, workers=2)
    path = tmp_path / "cyl.h5"
    problem("cylinder_flow").generate(cfg, path, progress=False)
    ds = read_mesh_dataset(path)
    assert len(ds) == 2 and ds.attrs["problem"] == "cylinder_flow"
    params = ds.attrs["trajectory_params"]
    assert params[0]["radius"] != params[1]["radius"]  # several geometries
    assert all(p["max_courant"] <= 1.0 for p in params)
    assert ds.attrs["generation"]["workers"] == 2
    s = ds.take([0])
    n = int(s["n_nodes"][0])
    pts, nt, vel = s["points"][0, :n], s["node_type"][0, :n], s["velocity"][0, :, :n]
    noslip = np.isin(nt, [NodeType.WALL_BOUNDARY, NodeType.OBSTACLE])
    assert np.abs(vel[:, noslip]).max() == 0.0
    u_mean, h = params[0]["u_mean"], 0.41
    inflow = nt == NodeType.INFLOW
    y = pts[inflow, 1]
    np.testing.assert_allclose(vel[-1, inflow, 0], 6 * u_mean * y * (h - y) / h**2, rtol=1e-5)
    # volume flux out equals the flux in (incompressibility); Simpson's rule is exact for the
    # P2 velocity along the inflow and outflow edges (nodes: vertices and midpoints)
    def flux(x0):
        idx = np.nonzero(np.abs(pts[:, 0] - x0) < 1e-6)[0]
        idx = idx[np.argsort(pts[idx, 1])]
        return integrate.simpson(vel[-1, idx, 0], x=pts[idx, 1])
    f_in, f_out = flux(0.0), flux(1.6)
    np.testing.assert_allclose(f_in, u_mean * h, rtol=1e-6)
    assert abs(f_out - f_in) < 0.02 * f_in, (f_in, f_out)
    assert np.isfinite(s["pressure"]).all() and s["pressure"][0, -1, :n].std() > 0
    # per-frame force coefficients, one per record
    assert s["drag_coefficient"].shape == (1, 15) and np.all(s["drag_coefficient"] > 0.5)
    # the XDMF copy holds the same trajectory
    m = read_xdmf(tmp_path / "cyl_xdmf" / "traj_000.xdmf")
    np.testing.assert_array_equal(np.asarray(m.fields["velocity"]), vel)
    np.testing.assert_array_equal(np.asarray(m.node_type), nt)


def test_cylinder_flow_sheds_vortices(tmp_path):
    """Past the onset the lift oscillates with a Strouhal number f D / U near 0.3
    (Schäfer & Turek 1996 report 0.295-0.305 at Re = 100 on a finer mesh)."""
    cfg = CylinderFlowConfig(n_trajectories=1, n_steps=100, spinup=1.2, spinup_max=1.2,
                             reynolds=(100.0, 100.0), workers=1, xdmf=False)
    problem("cylinder_flow").generate(cfg, tmp_path / "c.h5", progress=False)
    cl = read_mesh_dataset(tmp_path / "c.h5").take([0])["lift_coefficient"][0]
    assert cl.std() > 0.05
    crossings = np.nonzero(np.diff(np.sign(cl - cl.mean())))[0]
    period = 2 * np.mean(np.diff(crossings)) * cfg.dt
    strouhal = 0.1 / period / 1.0
    assert 0.25 < strouhal < 0.33, strouhal


def test_bad_generator_config_is_a_config_error():
    with pytest.raises(ConfigError, match="center_y"):
        CylinderFlowConfig(center_y=(0.02, 0.2))
    with pytest.raises(ConfigError, match="sigma"):
        TransportConfig(sigma=(0.2, 0.1))


def test_dfg_2d_2_preset_is_the_benchmark_geometry():
    """The preset is Schäfer & Turek's 2D-2 case: channel 2.2 × 0.41, cylinder r = 0.05 at
    (0.2, 0.2), parabolic inflow of mean 1 (peak 1.5), ν = 1e-3, so Re = U D / ν = 100."""
    c = dataclasses.replace(DFG2D2Config(), h_min=0.03, h_wake=0.06, h_max=0.1)
    assert problem("dfg_2d_2").config is DFG2D2Config
    pts, tri, nt = cylinder_mesh(c.length, c.height, c.center_x[0], c.center_y[0],
                                 c.radius[0], c.h_min, c.h_max, c.h_wake)
    np.testing.assert_allclose([pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(),
                                pts[:, 1].max()], [0, 2.2, 0, 0.41], atol=1e-12)
    r = np.hypot(pts[nt == NodeType.OBSTACLE, 0] - 0.2, pts[nt == NodeType.OBSTACLE, 1] - 0.2)
    np.testing.assert_allclose(r, 0.05, rtol=1e-9)
    u_mean = c.reynolds[0] * c.nu / (2 * c.radius[0])
    assert u_mean == pytest.approx(1.0)
    flow = CylinderFlow(pts, tri, c.length, c.height, (0.2, 0.2), 0.05, u_mean, c.nu, c.dt, 1)
    y = np.linspace(0, 0.41, 101)
    u = flow.inflow(np.stack([np.zeros_like(y), y], 1), 1.0)[:, 0]
    assert u.max() == pytest.approx(1.5, rel=1e-3)
    assert integrate.simpson(u, x=y) / 0.41 == pytest.approx(1.0, rel=1e-9)


@pytest.mark.slow
def test_dfg_2d_2_on_a_coarse_mesh_is_near_the_published_ranges():
    """DFG 2D-2 on a coarse mesh (2,566 nodes): the Strouhal number and c_D,max near the
    published 0.295-0.305 and 3.22-3.24; the lift amplitude (published c_L,max 0.99-1.01) is
    under-resolved on this mesh: measured 0.665, so the band only guards against a regression
    (`benchmarks/cylinder_dfg.py dfg` measures all three on finer meshes)."""
    c = dataclasses.replace(DFG2D2Config(), h_min=0.02, h_wake=0.04, h_max=0.1, n_steps=120)
    out = simulate_cylinder_flow(c, 100.0, 0.05, (0.2, 0.2))
    cl, cd = out["lift_coefficient"], out["drag_coefficient"]
    assert out["params"]["saturated"] and out["params"]["max_courant"] <= 1.0
    crossings = np.nonzero(np.diff(np.sign(cl - cl.mean())))[0]
    strouhal = 0.1 / (2 * np.mean(np.diff(crossings)) * c.dt)
    amplitude = (cl.max() - cl.min()) / 2
    print(f"DFG 2D-2 coarse: St {strouhal:.4f}, c_D,max {cd.max():.4f}, c_L amplitude "
          f"{amplitude:.4f}, spin-up {out['params']['spinup_time']:.2f} s")
    assert 0.27 < strouhal < 0.32, strouhal
    assert 2.9 < cd.max() < 3.4, cd.max()
    assert 0.55 < amplitude < 1.2, amplitude
