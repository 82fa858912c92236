"""Mesh-based flow data: vortex shedding past a cylinder (incompressible Navier–Stokes) and a
cheap advection–diffusion problem, on unstructured triangular meshes.

`cylinder_flow`: a 2-D channel ``[0, L] × [0, H]`` with a cylinder of varied centre and radius
(Schäfer & Turek's benchmark geometry, 1996, by default L = 1.6 as the MeshGraphNets data set
uses), a parabolic inflow of mean speed $U = \\mathrm{Re}\\,\\nu / D$, no-slip walls and cylinder,
and a do-nothing outflow; solved by `ProjectionNS` (Taylor–Hood P2/P1, BDF2 incremental
pressure correction, semi-implicit convection) and recorded after a spin-up, when the wake
sheds vortices. Node types follow MeshGraphNets' codes (`NodeType`).

`transport`: $\\partial_t c + a\\cdot\\nabla c = D\\Delta c$ on the unit square with solid-body
rotation $a = \\omega\\,(0.5 - y,\\; x - 0.5)$ and a Gaussian initial blob, whose exact solution
(a rotating, spreading Gaussian) gives the boundary data and the accuracy test.

Both write the sciops mesh data-set layout (`sciops.data.write_mesh_dataset`: `points`,
`node_type`, `cells_triangle`, fields `(samples, time, nodes, channels)`), and optionally every
trajectory as an XDMF time series (`<stem>_xdmf/traj_000.xdmf`) for ParaView.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import pathlib

import numpy as np

from .._errors import ConfigError, DataError
from ..data import MeshField, write_mesh_dataset, write_xdmf
from ._gmsh_mesh import BOUNDARY_GROUPS, gmsh_cylinder_mesh
from ._mesh_gen import boundary_nodes, distmesh2d, rectangle_sdf
from ._ns_fem import AdvectionDiffusionP1, ProjectionNS
from ._problem import Problem

__all__ = ["CylinderFlow", "CylinderFlowConfig", "DFG2D2Config", "NodeType", "PROBLEMS", "TransportConfig",
           "cylinder_mesh", "element_mesh", "generate_cylinder_flow", "generate_transport", "lift_saturated", "saved_cylinder_flow",
           "simulate_cylinder_flow", "transport_exact"]


class NodeType(enum.IntEnum):
    """Node labels, numbered as in the MeshGraphNets data sets (Pfaff et al. 2021) so that their
    files and ours share one encoding."""

    NORMAL = 0  # fluid interior: evolves
    OBSTACLE = 1  # cylinder wall (no-slip)
    AIRFOIL = 2
    HANDLE = 3
    INFLOW = 4  # prescribed inflow
    OUTFLOW = 5  # open outflow: evolves
    WALL_BOUNDARY = 6  # channel walls (no-slip)
    SIZE = 9


_GROUP_TYPES = {"wall": NodeType.WALL_BOUNDARY, "inflow": NodeType.INFLOW,
                "outflow": NodeType.OUTFLOW, "obstacle": NodeType.OBSTACLE}


def _check_range(name, r, lo=None):
    if len(r) != 2 or r[0] > r[1] or (lo is not None and r[0] <= lo):
        raise ConfigError(f"data.generate.{name}: expected [low, high] with low <= high"
                          + (f" and low > {lo}" if lo is not None else "") + f", got {list(r)}")


def check_flow_run(c) -> None:
    """ConfigError for the run keys every flow generator has: `n_trajectories`, `n_steps`,
    `dt`, `nu`, `spinup`, `courant`, `workers`."""
    if c.n_trajectories < 1 or c.n_steps < 2:
        raise ConfigError("data.generate: need n_trajectories >= 1 and n_steps >= 2, got "
                          f"{c.n_trajectories}, {c.n_steps}")
    if c.dt <= 0 or c.nu <= 0 or c.spinup < 0 or c.courant <= 0:
        raise ConfigError("data.generate: dt, nu and courant must be positive and "
                          "spinup >= 0")
    if c.workers < 0:
        raise ConfigError(f"data.generate.workers: expected >= 0, got {c.workers}")


@dataclasses.dataclass(frozen=True)
class CylinderFlowConfig:
    """Vortex shedding past a cylinder in a channel (2-D incompressible Navier-Stokes, P2/P1 FEM).

    The keys of `data.generate` / `sciops generate cylinder_flow`, in SI units (lengths in m,
    times in s), as the DFG benchmark channel. The defaults make the CPU training set: one fixed
    geometry (cylinder of radius 0.05 at (0.3, 0.2) in a 1.6 × 0.41 channel), Re drawn in
    [100, 200], 24 trajectories of 300 frames recorded every 0.01 s once the shedding has
    saturated.

    **Fields:**

    - `n_trajectories` [count]: flows, each with its own Reynolds number (and geometry, if the
      ranges below are not single values).
    - `n_steps` [count]: recorded frames per trajectory.
    - `dt` [s]: time between recorded frames (MeshGraphNets uses 0.01).
    - `courant` [1]: the solver takes k substeps per frame, k the smallest with the Courant
      number at the cylinder at most this.
    - `spinup` [s]: least simulated time before recording (the inflow ramps up in 0.5 s).
    - `spinup_max` [s]: most simulated time before recording, saturated or not.
    - `saturation` [1]: the lift amplitude counts as saturated when successive periods agree to
      this fraction.
    - `nu` [m²/s]: kinematic viscosity.
    - `reynolds` [1]: $\\mathrm{Re} = U D/\\nu$ is drawn uniformly from ``[lo, hi]`` per trajectory.
    - `length`, `height` [m]: the channel.
    - `radius` [m]: the cylinder radius is drawn uniformly from ``[lo, hi]``.
    - `center_x`, `center_y` [m]: the cylinder centre is drawn uniformly from these ranges.
    - `h_min` [m]: element edge length at the cylinder (P2 nodes are twice as dense).
    - `h_wake` [m]: element edge length in the wake, at most.
    - `h_max` [m]: element edge length far from the cylinder and its wake.
    - `seed` [-]: seed of the geometries and Reynolds numbers.
    - `workers` [count]: processes solving trajectories in parallel (0: one per core).
    - `xdmf` [-]: also write every trajectory as XDMF next to the HDF5 file.
    """

    n_trajectories: int = 24
    n_steps: int = 300  # recorded frames per trajectory
    dt: float = 0.01  # time between recorded frames (MeshGraphNets uses 0.01)
    courant: float = 1.0  # the solver takes k steps per frame, k the smallest with Courant <= this
    spinup: float = 1.0  # least simulated time before recording (the inflow ramps up in 0.5)
    spinup_max: float = 15.0  # most simulated time before recording, saturated or not
    saturation: float = 0.01  # lift amplitude saturated: successive periods agree to this
    nu: float = 1.0e-3  # kinematic viscosity
    reynolds: tuple[float, float] = (100.0, 200.0)  # Re = U D / nu, drawn per trajectory
    length: float = 1.6
    height: float = 0.41
    radius: tuple[float, float] = (0.05, 0.05)
    center_x: tuple[float, float] = (0.3, 0.3)
    center_y: tuple[float, float] = (0.2, 0.2)
    h_min: float = 0.025  # element edge length at the cylinder (P2 nodes are 2x denser)
    h_wake: float = 0.05  # element edge length in the wake, at most
    h_max: float = 0.08  # element edge length far from the cylinder and its wake
    seed: int = 0
    workers: int = 0  # processes solving trajectories in parallel (0: one per core)
    xdmf: bool = True  # also write every trajectory as XDMF next to the HDF5 file

    def __post_init__(self):
        check_flow_run(self)
        if self.spinup_max < self.spinup:
            raise ConfigError(f"data.generate.spinup_max: must be >= spinup ({self.spinup}), "
                              f"got {self.spinup_max}")
        if not 0 < self.saturation < 1:
            raise ConfigError(f"data.generate.saturation: expected a fraction in (0, 1), got "
                              f"{self.saturation}")
        for name in ("reynolds", "radius", "center_x", "center_y"):
            _check_range(name, getattr(self, name), lo=0.0)
        if not 0 < self.h_min <= min(self.h_wake, self.h_max):
            raise ConfigError("data.generate: need 0 < h_min <= h_wake and h_max, got "
                              f"{self.h_min}, {self.h_wake}, {self.h_max}")
        r, cy = max(self.radius), self.center_y
        if cy[0] - r <= 2 * self.h_min or cy[1] + r >= self.height - 2 * self.h_min:
            raise ConfigError("data.generate.center_y: the cylinder must stay inside the channel "
                              f"(height {self.height}, radius up to {r}), got {list(cy)}")
        if self.center_x[0] - r <= 2 * self.h_min or self.center_x[1] + r >= self.length / 2:
            raise ConfigError("data.generate.center_x: the cylinder must lie in the first half "
                              f"of the channel, got {list(self.center_x)}")


@dataclasses.dataclass(frozen=True)
class DFG2D2Config(CylinderFlowConfig):
    """The DFG 2D-2 benchmark as a `cylinder_flow` preset (`sciops generate dfg_2d_2`):
    Schäfer & Turek (1996), "Benchmark computations of laminar flow around a cylinder": channel
    2.2 × 0.41, cylinder of radius 0.05 at (0.2, 0.2), parabolic inflow of mean speed 1
    (peak 1.5), ν = 1e-3, so Re = 100. Published ranges: Strouhal number 0.295–0.305,
    c_D,max 3.22–3.24, c_L,max 0.99–1.01 (`benchmarks/cylinder_dfg.py` measures them)."""

    n_trajectories: int = 1
    n_steps: int = 400
    spinup_max: float = 20.0
    reynolds: tuple[float, float] = (100.0, 100.0)
    length: float = 2.2
    height: float = 0.41
    radius: tuple[float, float] = (0.05, 0.05)
    center_x: tuple[float, float] = (0.2, 0.2)
    center_y: tuple[float, float] = (0.2, 0.2)
    h_min: float = 0.01
    h_wake: float = 0.02
    h_max: float = 0.05
    workers: int = 1


# the preset's keys are the channel flow's: document them once (`sciops generate dfg_2d_2 --help`)
DFG2D2Config.__doc__ += "\n\n" + CylinderFlowConfig.__doc__[CylinderFlowConfig.__doc__.index("    **Fields:**"):]


def _classify_boundary(pts, tri, length, height, tol):
    node_type = np.full(len(pts), NodeType.NORMAL, np.int32)
    b = boundary_nodes(tri)
    x, y = pts[b, 0], pts[b, 1]
    kind = np.full(b.size, NodeType.OBSTACLE, np.int32)
    kind[x > length - tol] = NodeType.OUTFLOW
    kind[x < tol] = NodeType.INFLOW
    kind[(y < tol) | (y > height - tol)] = NodeType.WALL_BOUNDARY  # corners are walls
    node_type[b] = kind
    return node_type


def cylinder_mesh(length: float, height: float, cx: float, cy: float, r: float, h_min: float,
                  h_max: float, h_wake: float | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A channel-with-cylinder triangular mesh from gmsh (`gmsh_cylinder_mesh`): edge length
    `h_min` on the cylinder, growing to `h_max`, at most `h_wake` in the wake.

    **Returns:** `(points (n, 2), triangles (t, 3), node_type (n,))`, node types from gmsh's
    physical groups (a node on two boundaries, a channel corner, is a wall node).
    """
    pts, tri, boundary = gmsh_cylinder_mesh(length, height, cx, cy, r, h_min, h_max, h_wake,
                                            wake_width=3.0)
    node_type = np.full(len(pts), NodeType.NORMAL, np.int32)
    for name in reversed(BOUNDARY_GROUPS):  # the first group wins
        node_type[np.unique(boundary[name])] = _GROUP_TYPES[name]
    return pts, tri, node_type


class CylinderFlow:
    """One cylinder flow: the mesh, the solver and the map from one record to the next.

    The saved state is the solver's: the velocity at every Taylor–Hood P2 node (vertices and
    edge midpoints, the vertices of the 4-way refined triangulation `triangles`) and the P1
    pressure interpolated there. `frame(velocity, pressure, t)` runs the solver `substeps`
    steps from a record, afresh (BDF1 then BDF2, history only inside the frame), so a record
    determines the next one exactly.

    **Arguments:**

    - `points` ``(n, 2)``, `triangles` ``(t, 3)``: the solver's (P2 element) mesh of the channel
      ``[0, length] × [0, height]`` with the cylinder as a hole.
    - `center`, `radius`: the cylinder; `u_mean`: the mean inflow speed; `nu`: viscosity.
    - `frame_dt`: time between records; `substeps`: solver steps per record.
    """

    def __init__(self, points: np.ndarray, triangles: np.ndarray, length: float, height: float,
                 center: tuple[float, float], radius: float, u_mean: float, nu: float,
                 frame_dt: float, substeps: int, ramp_time: float = 0.5):
        self.length, self.height, self.u_mean = float(length), float(height), float(u_mean)
        self.center, self.radius, self.frame_dt = tuple(center), float(radius), float(frame_dt)
        self.substeps, self.ramp_time = int(substeps), float(ramp_time)
        self.tol = tol = 1e-6 * height
        self.solver = ProjectionNS(
            points, triangles, nu, frame_dt / substeps,
            velocity_dirichlet=lambda xy: ~((xy[:, 0] > length - tol) & (xy[:, 1] > tol)
                                            & (xy[:, 1] < height - tol)),
            pressure_dirichlet=lambda xy: xy[:, 0] > length - tol)
        self.points = self.solver.node_points
        self.triangles = self.solver.node_triangles()
        self.node_type = _classify_boundary(self.points, self.triangles, length, height, tol)
        self.body_dofs = np.nonzero(self.node_type == NodeType.OBSTACLE)[0]
        # per element: shortest edge, for the Courant number
        e = points[triangles] - points[np.roll(triangles, 1, axis=1)]
        self.h_elem = np.linalg.norm(e, axis=-1).min(1)

    def inflow(self, xy: np.ndarray, t: float) -> np.ndarray:
        """Dirichlet velocity: parabolic inflow of mean `u_mean` (peak 1.5×), ramped up from rest
        over `ramp_time` by a half cosine; zero on the walls; zero on the cylinder except while
        the inflow ramps up, when the cylinder turns (surface speed `u_mean` sin(π t / ramp
        time)). The turn breaks the flow's symmetry, so the wake sheds after about a second
        instead of waiting for round-off to grow; it is over long before recording starts."""
        rt = self.ramp_time
        ramp = 1.0 if t >= rt else 0.5 - 0.5 * np.cos(np.pi * t / rt)
        out = np.zeros((len(xy), 2))
        inflow = xy[:, 0] < self.tol
        yy = xy[inflow, 1]
        out[inflow, 0] = ramp * 6.0 * self.u_mean * yy * (self.height - yy) / self.height**2
        if t < rt:
            d = xy - np.asarray(self.center)
            on = np.hypot(d[:, 0], d[:, 1]) < self.radius * 1.01
            spin = self.u_mean * np.sin(np.pi * t / rt) / self.radius
            out[on] = spin * np.stack([-d[on, 1], d[on, 0]], 1)
        return out

    def frame(self, velocity: np.ndarray, pressure: np.ndarray, t: float
              ) -> tuple[np.ndarray, np.ndarray]:
        """The next record from the record at time `t`: `velocity` ``(nodes, 2)``, `pressure`
        ``(nodes,)`` at the P2 nodes → the same at `t + frame_dt`."""
        u, p = self.solver.node_state(velocity, pressure)
        u, p = self.solver.advance(u, p, t, self.substeps, self.inflow)
        return u.T.copy(), self.solver.pressure_at_nodes(p)

    def coefficients(self, velocity: np.ndarray, pressure: np.ndarray) -> tuple[float, float]:
        """Drag and lift coefficients $c_{D,L} = 2 F_{x,y} / (U^2 D)$ of the state just
        computed by `frame` (the force uses the last step's time derivative)."""
        u, p = self.solver.node_state(velocity, pressure)
        f = self.solver.force(u, p, self.body_dofs)
        scale = 2.0 / (self.u_mean**2 * 2 * self.radius)
        return float(scale * f[0]), float(scale * f[1])

    def courant(self, velocity: np.ndarray) -> float:
        """The largest Courant number $|u|\\,\\Delta t / h$ over the elements (|u| the largest
        nodal speed of the element, h its shortest edge)."""
        speed = np.linalg.norm(velocity, axis=1)
        tri = self.solver.mesh.t.T
        vmax = speed[tri].max(1)  # vertex speeds; midpoints below
        mid = self.solver.vb.facet_dofs[0][self.solver.mesh.t2f].T
        vmax = np.maximum(vmax, speed[mid].max(1))
        return float((vmax * self.solver.dt / self.h_elem).max())


def element_mesh(points: np.ndarray, triangles: np.ndarray, n_vertices: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The solver's P2 element mesh from a saved record's node mesh (its 4-way refinement,
    `CylinderFlow.triangles`): nodes ``0 .. n_vertices-1`` are the element vertices, the others
    edge midpoints, and each refined triangle with three midpoints is the middle of an element.

    **Returns:** `(points (n_vertices, 2), triangles (t, 3))`, counter-clockwise.
    """
    tri = np.asarray(triangles)
    is_vertex = tri < n_vertices
    corner = tri[is_vertex.sum(1) == 1]  # (vertex, midpoint, midpoint) in some order
    ends = {}
    for row in corner:
        v = row[row < n_vertices][0]
        for m in row[row >= n_vertices]:
            ends.setdefault(int(m), set()).add(int(v))
    elements = []
    for row in tri[is_vertex.sum(1) == 0]:
        verts = set().union(*(ends[int(m)] for m in row))
        if len(verts) != 3:
            raise ValueError("element_mesh: triangles are not a 4-way refinement with the "
                             f"vertices first (n_vertices={n_vertices})")
        elements.append(sorted(verts))
    el = np.asarray(elements, np.int64)
    p = np.asarray(points, float)[:n_vertices]
    a, b, c = p[el[:, 0]], p[el[:, 1]], p[el[:, 2]]
    cw = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]) < 0
    el[cw] = el[cw][:, [0, 2, 1]]
    return p, el


def saved_cylinder_flow(dataset, position: int) -> CylinderFlow:
    """The `CylinderFlow` (mesh, solver, frame map) that wrote trajectory `position` of a
    `cylinder_flow` data set, rebuilt from the file alone, so that `frame` can be re-run from
    any saved record (the oracle a learned simulator is measured against).

    **Raises:** `DataError` if the file is not a `cylinder_flow` data set with P2 node records.
    """
    from ..data import mesh_field

    attrs = dataset.attrs
    params = attrs.get("trajectory_params", [{}])[position]
    if attrs.get("problem") not in ("cylinder_flow", "dfg_2d_2") or "n_vertices" not in params:
        raise DataError(f"{dataset.name}: not a cylinder_flow data set with P2 node records "
                        "(no trajectory_params.n_vertices)")
    c = attrs["config"]
    m = mesh_field(dataset, position)
    pts, el = element_mesh(np.asarray(m.points), np.asarray(m.cells["triangle"]),
                           params["n_vertices"])
    flow = CylinderFlow(pts, el, c["length"], c["height"], tuple(params["center"]),
                        params["radius"], params["u_mean"], c["nu"], c["dt"], params["substeps"],
                        ramp_time=min(0.5, c["spinup"]) if c["spinup"] > 0 else 0.0)
    err = np.abs(flow.points - np.asarray(m.points, float)).max()
    if err > 1e-5 * c["height"]:
        raise DataError(f"{dataset.name}: trajectory {position}: the rebuilt solver's nodes are "
                        f"not the saved nodes (max distance {err:.3g})")
    return flow


def lift_saturated(cl: np.ndarray, tol: float) -> bool:
    """Whether the lift signal `cl` (one value per record) has reached a steady state: the
    last three peak-to-trough amplitudes of its oscillation agree to the fraction `tol`, or
    the signal has stopped moving (steady flow below the shedding onset)."""
    cl = np.asarray(cl, float)
    if cl.size < 8:
        return False
    d = np.diff(cl)
    if np.abs(d[-5:]).max() < 1e-6 * max(1.0, np.abs(cl[-1])):
        return True
    maxima = np.nonzero((d[:-1] > 0) & (d[1:] <= 0))[0] + 1
    minima = np.nonzero((d[:-1] < 0) & (d[1:] >= 0))[0] + 1
    if maxima.size < 4 or minima.size < 4:
        return False
    amps = []
    for i in maxima[-4:]:
        before = minima[minima < i]
        if before.size:
            amps.append(cl[i] - cl[before[-1]])
    if len(amps) < 3:
        return False
    a = np.asarray(amps[-3:])
    return bool(a.min() > 0 and (a.max() - a.min()) <= tol * a.max())


def _substeps(config: CylinderFlowConfig, u_mean: float) -> int:
    # the fastest flow at the cylinder is about 2.5 U (peak inflow 1.5 U, sped up past the
    # cylinder), and gmsh's edges there come out a little shorter than h_min: with 2.5 U the
    # largest Courant number measured was 1.12 (Re 100) and 1.32 (Re 200) at courant = 1;
    # 3.5 U keeps it below 1 (the data files record it: trajectory_params.max_courant)
    return max(1, int(np.ceil(config.dt * 3.5 * u_mean / (config.courant * config.h_min))))


def simulate_cylinder_flow(config: CylinderFlowConfig, reynolds: float, radius: float,
                           center: tuple[float, float]) -> dict:
    """Solve one trajectory: spin up from rest until the lift amplitude has saturated
    (`lift_saturated`, between `config.spinup` and `config.spinup_max`), then record
    `config.n_steps` frames every `config.dt`.

    **Returns:** a dict with `points`, `triangles`, `node_type`, `velocity` ``(time, nodes, 2)``,
    `pressure` ``(time, nodes, 1)``, `drag_coefficient`, `lift_coefficient` ``(time,)``,
    `times`, and `params` (Re, geometry, substeps, spin-up time, largest Courant number...).
    """
    c = config
    pts, tri, _ = cylinder_mesh(c.length, c.height, center[0], center[1], radius, c.h_min,
                                c.h_max, c.h_wake)
    u_mean = reynolds * c.nu / (2 * radius)
    k = _substeps(c, u_mean)
    flow = CylinderFlow(pts, tri, c.length, c.height, center, radius, u_mean, c.nu, c.dt, k,
                        ramp_time=min(0.5, c.spinup) if c.spinup > 0 else 0.0)
    n = len(flow.points)
    if c.spinup > 0:
        vel, prs = np.zeros((n, 2)), np.zeros(n)
    else:  # no spin-up: start from the steady inflow profile everywhere
        vel, prs = flow.inflow(flow.points, 1.0), np.zeros(n)
        vel[:, 0] = np.where(flow.node_type == NodeType.INFLOW, vel[:, 0], 0.0)
    t, j, cl_spin, saturated = 0.0, 0, [], False
    n_min, n_max = int(round(c.spinup / c.dt)), int(round(c.spinup_max / c.dt))
    while j < n_max:
        if j >= n_min and (saturated := lift_saturated(np.asarray(cl_spin), c.saturation)):
            break
        vel, prs = flow.frame(vel, prs, t)
        j += 1
        t = j * c.dt
        cl_spin.append(flow.coefficients(vel, prs)[1])
        if not np.all(np.isfinite(vel)):
            break
    spin_frames = j
    vels, prss, cds, cls, courant = [vel], [prs], [], [], flow.courant(vel)
    cd0, cl0 = flow.coefficients(vel, prs) if j else (np.nan, np.nan)
    cds.append(cd0), cls.append(cl0)
    for _ in range(c.n_steps - 1):
        vel, prs = flow.frame(vel, prs, t)
        j += 1
        t = j * c.dt
        cd, cl = flow.coefficients(vel, prs)
        vels.append(vel), prss.append(prs), cds.append(cd), cls.append(cl)
        courant = max(courant, flow.courant(vel))
    vel, prs = np.stack(vels), np.stack(prss)[..., None]
    if not (np.all(np.isfinite(vel)) and np.all(np.isfinite(prs))):
        raise RuntimeError(f"cylinder_flow: the trajectory at Re={reynolds:.0f} diverged; "
                           "lower courant or raise h_min")
    params = {"reynolds": float(reynolds), "radius": float(radius),
              "center": [float(center[0]), float(center[1])], "u_mean": float(u_mean),
              "n_nodes": int(n), "n_vertices": int(len(pts)), "substeps": int(k),
              "solver_dt": c.dt / k, "spinup_time": spin_frames * c.dt,
              "saturated": bool(saturated), "max_courant": float(courant)}
    return {"points": flow.points, "triangles": flow.triangles, "node_type": flow.node_type,
            "velocity": vel, "pressure": prs, "drag_coefficient": np.asarray(cds),
            "lift_coefficient": np.asarray(cls),
            "times": (spin_frames + np.arange(c.n_steps)) * c.dt, "params": params}


def _simulate_task(args):
    return simulate_cylinder_flow(*args)


def _workers(requested: int, tasks: int) -> int:
    if requested:
        return min(requested, tasks)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, tasks))


def run_tasks(fn, tasks: list, workers: int, desc: str, progress: bool
              ) -> tuple[list, float, int]:
    """`[fn(task) for task in tasks]` over `workers` processes (0: one per core), with a
    progress bar if `progress`. `fn` must be a module-level function (it is pickled).

    **Returns:** `(results in task order, wall seconds, processes used)`.
    """
    import time

    workers = _workers(workers, len(tasks))
    bar = None
    if progress:
        from .._progress import progress as _progress
        bar = _progress(total=len(tasks), desc=f"{desc} ({workers} processes)",
                        unit="trajectory")
    start = time.perf_counter()
    results = []
    if workers == 1:
        for task in tasks:
            results.append(fn(task))
            if bar is not None:
                bar.update()
    else:
        import concurrent.futures
        import multiprocessing

        # spawn, not fork: the parent may hold JAX's threads, which fork would copy locked
        with concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(fn, task) for task in tasks]
            for _done in concurrent.futures.as_completed(futures):
                if bar is not None:
                    bar.update()
            results = [f.result() for f in futures]
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    return results, seconds, workers


def generate_cylinder_flow(config: CylinderFlowConfig, path: str | os.PathLike, *,
                           progress: bool = True) -> None:
    """Solve `config.n_trajectories` cylinder flows (in parallel over `config.workers`
    processes) and write them to the HDF5 file `path`, with the drag and lift coefficients of
    every frame and the generation time in the attributes."""
    c = config
    rng = np.random.default_rng(c.seed)
    tasks = []
    for _ in range(c.n_trajectories):
        re = rng.uniform(*c.reynolds)
        r = rng.uniform(*c.radius)
        cx, cy = rng.uniform(*c.center_x), rng.uniform(*c.center_y)
        tasks.append((c, re, r, (cx, cy)))
    results, seconds, workers = run_tasks(_simulate_task, tasks, c.workers, "cylinder_flow",
                                          progress)
    trajectories = [MeshField(r["points"].astype(np.float32),
                              {"triangle": r["triangles"].astype(np.int32)},
                              {"velocity": r["velocity"].astype(np.float32),
                               "pressure": r["pressure"].astype(np.float32)},
                              r["node_type"], r["times"]) for r in results]
    params = [r["params"] for r in results]
    extra = {k: np.stack([r[k] for r in results]).astype(np.float32)
             for k in ("drag_coefficient", "lift_coefficient")}
    name = "dfg_2d_2" if isinstance(c, DFG2D2Config) else "cylinder_flow"
    _write(path, trajectories, name, c, params,
           {"velocity": "m/s", "pressure": "m^2/s^2 (kinematic)", "drag_coefficient": "1",
            "lift_coefficient": "1"}, extra=extra,
           generation={"seconds": seconds, "workers": workers,
                       "trajectories_per_hour": 3600 * len(tasks) / seconds})
    if progress:
        import sys
        print(f"cylinder_flow: {len(tasks)} trajectories, {params[0]['n_nodes']} nodes, "
              f"{c.n_steps} frames each, in {seconds:.0f} s on {workers} processes",
              file=sys.stderr)


@dataclasses.dataclass(frozen=True)
class TransportConfig:
    """Advection-diffusion of a Gaussian blob in solid-body rotation on the unit square (P1 FEM).

    The keys of `data.generate` / `sciops generate transport`. Nondimensional: lengths and
    times have unit 1.

    **Fields:**

    - `n_trajectories` [count]: trajectories, each on its own mesh.
    - `n_steps` [count]: recorded steps per trajectory.
    - `dt` [1]: time step of the solver and of the records.
    - `diffusivity` [1]: $D$.
    - `omega` [rad per unit time]: rotation rate of the advecting flow.
    - `sigma` [1]: the initial blob's width is drawn uniformly from ``[lo, hi]``.
    - `h` [1]: mesh edge length.
    - `seed` [-]: seed of the meshes and initial blobs.
    - `xdmf` [-]: also write every trajectory as XDMF next to the HDF5 file.
    """

    n_trajectories: int = 8
    n_steps: int = 100
    dt: float = 0.02
    diffusivity: float = 1.0e-3
    omega: float = 1.0  # rotation rate of the advecting flow (rad per unit time)
    sigma: tuple[float, float] = (0.06, 0.1)  # initial blob width
    h: float = 0.04  # mesh edge length
    seed: int = 0
    xdmf: bool = True

    def __post_init__(self):
        if self.n_trajectories < 1 or self.n_steps < 2 or self.dt <= 0 or self.h <= 0:
            raise ConfigError("data.generate: need n_trajectories >= 1, n_steps >= 2, dt > 0, h > 0")
        _check_range("sigma", self.sigma, lo=0.0)


def transport_exact(xy: np.ndarray, t: float, x0: np.ndarray, sigma0: float, omega: float,
                    diffusivity: float) -> np.ndarray:
    """The exact rotating, spreading Gaussian: $c = \\frac{\\sigma_0^2}{\\sigma^2}
    e^{-|x - x_c(t)|^2 / 2\\sigma^2}$, $\\sigma^2 = \\sigma_0^2 + 2Dt$, $x_c$ = `x0` rotated by
    $\\omega t$ about (0.5, 0.5)."""
    ang = omega * t
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    xc = 0.5 + rot @ (np.asarray(x0) - 0.5)
    s2 = sigma0**2 + 2 * diffusivity * t
    return sigma0**2 / s2 * np.exp(-((xy - xc) ** 2).sum(-1) / (2 * s2))


def square_mesh(h: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An unstructured, uniform triangular mesh of the unit square."""
    corners = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], float)
    return distmesh2d(rectangle_sdf(0.0, 1.0, 0.0, 1.0), lambda p: np.ones(len(p)), h, (0.0, 1.0, 0.0, 1.0),
                      fixed=corners, seed=seed)


def solve_transport(pts, tri, x0, sigma0, omega, diffusivity, dt, n_steps) -> np.ndarray:
    """Concentration at the mesh nodes, ``(n_steps, nodes)``, from the exact initial state."""
    vel = lambda xy: omega * np.stack([0.5 - xy[:, 1], xy[:, 0] - 0.5], 1)  # noqa: E731
    solver = AdvectionDiffusionP1(pts, tri, vel, diffusivity, dt)
    conc = transport_exact(pts, 0.0, x0, sigma0, omega, diffusivity)
    out = [conc]
    bxy = pts[solver.boundary]
    for k in range(1, n_steps):
        g = transport_exact(bxy, k * dt, x0, sigma0, omega, diffusivity)
        conc = solver.step(conc, g)
        out.append(conc)
    return np.stack(out)


def generate_transport(config: TransportConfig, path: str | os.PathLike, *,
                       progress: bool = True) -> None:
    """Solve `config.n_trajectories` transport problems (one mesh each) and write them."""
    c = config
    rng = np.random.default_rng(c.seed)
    trajectories, params = [], []
    iterator = range(c.n_trajectories)
    if progress:
        from .._progress import progress as _progress
        iterator = _progress(iterator, desc="transport", unit="trajectory")
    for i in iterator:
        pts, tri = square_mesh(c.h, seed=c.seed * 1000 + i)
        radius, angle = rng.uniform(0.1, 0.25), rng.uniform(0, 2 * np.pi)
        x0 = 0.5 + radius * np.array([np.cos(angle), np.sin(angle)])
        sigma0 = rng.uniform(*c.sigma)
        conc = solve_transport(pts, tri, x0, sigma0, c.omega, c.diffusivity, c.dt, c.n_steps)
        node_type = np.full(len(pts), NodeType.NORMAL, np.int32)
        node_type[boundary_nodes(tri)] = NodeType.WALL_BOUNDARY  # Dirichlet data: prescribed
        params.append({"x0": x0.tolist(), "sigma0": sigma0, "n_nodes": len(pts)})
        trajectories.append(MeshField(pts.astype(np.float32), {"triangle": tri.astype(np.int32)},
                                      {"concentration": conc[..., None].astype(np.float32)},
                                      node_type, np.arange(c.n_steps) * c.dt))
    _write(path, trajectories, "transport", c, params, {"concentration": "1"})


def _write(path, trajectories, problem, config, params, units, extra=None, generation=None):
    path = pathlib.Path(path)
    attrs = {"problem": problem, "config": dataclasses.asdict(config), "dt": config.dt,
             "trajectory_params": params,
             "node_type_names": {t.name: int(t) for t in NodeType if t != NodeType.SIZE}}
    if generation is not None:
        attrs["generation"] = generation
    write_mesh_dataset(path, trajectories, attrs=attrs, units=units, extra=extra)
    if config.xdmf:
        folder = path.with_name(path.stem + "_xdmf")
        for i, m in enumerate(trajectories):
            write_xdmf(folder / f"traj_{i:03d}.xdmf", m)


PROBLEMS = {
    "cylinder_flow": Problem("cylinder_flow", CylinderFlowConfig, generate_cylinder_flow),
    "dfg_2d_2": Problem("dfg_2d_2", DFG2D2Config, generate_cylinder_flow),
    "transport": Problem("transport", TransportConfig, generate_transport),
}
