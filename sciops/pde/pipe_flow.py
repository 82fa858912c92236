"""3-D mesh-based flow data: pulsatile flow through a pipe past a spherical obstacle.

`pipe_flow`: the pipe ``0 ≤ x ≤ L``, ``y² + z² ≤ R²`` (diameter D = 2R = 1 by default) with a
ball of varied radius and position in it, meshed with tetrahedra by gmsh (OpenCASCADE
cylinder minus sphere) and solved by `ProjectionNS` on Taylor–Hood P2/P1 tetrahedra (BDF2
incremental pressure correction, semi-implicit convection; the solver of `cylinder_flow`).
The inflow is Poiseuille's profile $u_x = 2U(t)(1 - r^2/R^2)$ with a pulsating mean speed
$U(t) = U_0(1 + A\\sin 2\\pi t/T)$ (a pulsatile pipe flow, as in blood-flow models), the
Reynolds number $\\mathrm{Re} = U_0 D/\\nu$, amplitude A and period T drawn per trajectory;
no-slip walls and obstacle, a do-nothing outflow. The flow starts from Poiseuille flow at
$U_0$ (the steady state of the pipe without the obstacle) and is recorded after a spin-up.

As in `cylinder_flow`, every unknown the solver evolves is saved: the velocity at every P2
node (vertices and edge midpoints; the cells written are the regular 8-way refinement of
each tetrahedron, whose vertices are those nodes) and the P1 pressure interpolated there,
and each record is computed from the previous record alone (`PipeFlow.frame`), so the data
set is a Markov chain a learned simulator can be measured against exactly.

Verification (`tests/test_flow3d.py`): in a straight pipe with a steady inflow the solver
reaches Poiseuille flow with an L2 velocity error falling as $h^2$ (the polygonal wall);
the default resolution and time step come from the convergence study in
`benchmarks/pipe_flow_convergence.py` (docs/data.md).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from .._errors import ConfigError
from ..data import MeshField
from ._gmsh_mesh import BOUNDARY_GROUPS, gmsh_pipe_mesh
from ._ns_fem import ProjectionNS
from ._problem import Problem
from .flow import _GROUP_TYPES, NodeType, _check_range, _write, check_flow_run, run_tasks

__all__ = ["PROBLEMS", "PipeFlow", "PipeFlowConfig", "build_pipe_flow", "draw_trajectories",
           "generate_pipe_flow", "p2_node_types", "simulate_pipe_flow"]


@dataclasses.dataclass(frozen=True)
class PipeFlowConfig:
    """Pulsatile flow through a pipe past a sphere (3-D incompressible Navier–Stokes, P2/P1
    tetrahedra).

    The keys of `data.generate` / `sciops generate pipe_flow`, nondimensional (lengths in pipe
    diameters when `radius` = 0.5, times in D/U for U = 1). The defaults make a CPU training
    set that generates in minutes on two cores: 8 trajectories of 60 frames every 0.05 on
    meshes of about 4,000 P2 nodes.

    **Fields:**

    - `n_trajectories` [count]: flows, each with its own Re, pulsation and obstacle.
    - `n_steps` [count]: recorded frames per trajectory.
    - `dt` [1]: time between recorded frames.
    - `courant` [1]: the solver takes k substeps per frame, k the smallest with the estimated
      Courant number at the obstacle at most this (the largest measured one is recorded in
      `trajectory_params.max_courant`).
    - `spinup` [1]: simulated time before recording (from Poiseuille flow at $U_0$).
    - `nu` [1]: kinematic viscosity.
    - `reynolds` [1]: $\\mathrm{Re} = U_0 D/\\nu$ drawn uniformly from ``[lo, hi]``.
    - `amplitude` [1]: the pulsation amplitude A, drawn from ``[lo, hi]`` (0: steady inflow).
    - `period` [1]: the pulsation period T, drawn from ``[lo, hi]``.
    - `length`, `radius` [1]: the pipe.
    - `obstacle_radius` [1]: the sphere's radius, drawn from ``[lo, hi]`` (0: no obstacle).
    - `obstacle_x` [1]: the sphere centre's distance from the inflow, drawn from ``[lo, hi]``.
    - `obstacle_offset` [1]: the centre's distance from the axis, drawn from ``[lo, hi]``, in a
      uniformly drawn direction.
    - `h_min` [1]: element edge length on the sphere (P2 nodes are twice as dense).
    - `h_max` [1]: element edge length away from it.
    - `seed` [-]: seed of the draws.
    - `workers` [count]: processes solving trajectories in parallel (0: one per core).
    - `xdmf` [-]: also write every trajectory as XDMF next to the HDF5 file.
    """

    n_trajectories: int = 8
    n_steps: int = 60
    dt: float = 0.05
    courant: float = 1.0
    spinup: float = 1.0
    nu: float = 0.01
    reynolds: tuple[float, float] = (50.0, 100.0)
    amplitude: tuple[float, float] = (0.2, 0.5)
    period: tuple[float, float] = (1.0, 1.5)
    length: float = 3.0
    radius: float = 0.5
    obstacle_radius: tuple[float, float] = (0.15, 0.25)
    obstacle_x: tuple[float, float] = (0.8, 1.2)
    obstacle_offset: tuple[float, float] = (0.0, 0.1)
    h_min: float = 0.08
    h_max: float = 0.25
    seed: int = 0
    workers: int = 0
    xdmf: bool = True

    def __post_init__(self):
        check_flow_run(self)
        for name in ("reynolds", "period", "obstacle_x"):
            _check_range(name, getattr(self, name), lo=0.0)
        for name in ("amplitude", "obstacle_radius", "obstacle_offset"):
            _check_range(name, getattr(self, name))
            if getattr(self, name)[0] < 0:
                raise ConfigError(f"data.generate.{name}: must be >= 0, got "
                                  f"{list(getattr(self, name))}")
        if self.amplitude[1] >= 1:
            raise ConfigError(f"data.generate.amplitude: must stay below 1 (no reversed inflow), "
                              f"got {list(self.amplitude)}")
        if not 0 < self.h_min <= self.h_max or self.h_max >= self.radius:
            raise ConfigError("data.generate: need 0 < h_min <= h_max < radius, got "
                              f"{self.h_min}, {self.h_max}, radius {self.radius}")
        r, off = self.obstacle_radius[1], self.obstacle_offset[1]
        if self.obstacle_radius[1] > 0 and off + r >= self.radius - self.h_min:
            raise ConfigError("data.generate.obstacle_offset: the sphere must stay inside the "
                              f"pipe (radius {self.radius}, sphere radius up to {r}), got "
                              f"{list(self.obstacle_offset)}")
        if self.obstacle_radius[1] > 0 and (self.obstacle_x[0] - r <= self.h_max
                                            or self.obstacle_x[1] + r >= self.length / 2):
            raise ConfigError("data.generate.obstacle_x: the sphere must lie in the first half "
                              f"of the pipe, clear of the inflow, got {list(self.obstacle_x)}")


def _facet_p2_points(points: np.ndarray, facets: np.ndarray) -> np.ndarray:
    """The P2 nodes of boundary facets (simplices): their vertices and edge midpoints."""
    if not len(facets):
        return np.zeros((0, points.shape[1]))
    k = facets.shape[1]
    mids = [0.5 * (points[facets[:, a]] + points[facets[:, b]])
            for a in range(k) for b in range(a + 1, k)]
    return np.concatenate([points[np.unique(facets)], *mids])


def p2_node_types(nodes: np.ndarray, points: np.ndarray, boundary: dict[str, np.ndarray],
                  tol: float) -> np.ndarray:
    """Node types (`NodeType`) of P2 nodes `nodes` ``(m, d)`` from the boundary facets of each
    group of `BOUNDARY_GROUPS` (vertices ``points``): a node on a facet of a group, as one of its
    vertices or edge midpoints within `tol`, takes the group's type, the first group winning
    (the rims of the inflow and outflow are wall); other nodes are NORMAL."""
    from scipy.spatial import cKDTree

    out = np.full(len(nodes), NodeType.NORMAL, np.int32)
    for name in reversed(BOUNDARY_GROUPS):  # the first group wins
        ref = _facet_p2_points(points, boundary[name])
        if len(ref):
            dist, _ = cKDTree(ref).query(nodes)
            out[dist <= tol] = _GROUP_TYPES[name]
    return out


class PipeFlow:
    """One pipe flow: the mesh, the solver and the map from one record to the next.

    **Arguments:**

    - `points` ``(n, 3)``, `tetrahedra` ``(t, 4)``, `boundary`: the element mesh and its
      boundary triangles per group (`gmsh_pipe_mesh`).
    - `length`, `radius`: the pipe; `obstacle`: ``(cx, cy, cz, r)`` or None.
    - `u_mean`: $U_0$; `amplitude`, `period`: the pulsation; `nu`: viscosity.
    - `frame_dt`: time between records; `substeps`: solver steps per record.
    """

    def __init__(self, points: np.ndarray, tetrahedra: np.ndarray,
                 boundary: dict[str, np.ndarray], length: float, radius: float,
                 obstacle: tuple[float, float, float, float] | None, u_mean: float,
                 amplitude: float, period: float, nu: float, frame_dt: float, substeps: int):
        self.length, self.radius, self.u_mean = float(length), float(radius), float(u_mean)
        self.amplitude, self.period = float(amplitude), float(period)
        self.obstacle, self.frame_dt, self.substeps = obstacle, float(frame_dt), int(substeps)
        self.tol = tol = 1e-6 * radius
        fixed = lambda xyz: p2_node_types(xyz, points, boundary, tol) != NodeType.OUTFLOW  # noqa: E731
        self.solver = ProjectionNS(points, tetrahedra, nu, frame_dt / substeps,
                                   velocity_dirichlet=fixed,
                                   pressure_dirichlet=lambda xyz: xyz[:, 0] > length - tol)
        self.points = self.solver.node_points
        self.cells = self.solver.node_cells()
        self.node_type = p2_node_types(self.points, points, boundary, tol)
        self._inflow_bc = self.node_type[self.solver.vel_bc] == NodeType.INFLOW
        self.body_dofs = np.nonzero(self.node_type == NodeType.OBSTACLE)[0]
        e = points[tetrahedra][:, [0, 0, 0, 1, 1, 2]] - points[tetrahedra][:, [1, 2, 3, 2, 3, 3]]
        self.h_elem = np.linalg.norm(e, axis=-1).min(1)  # shortest edge, for the Courant number

    def mean_speed(self, t: float) -> float:
        """$U(t) = U_0 (1 + A \\sin 2\\pi t / T)$."""
        return self.u_mean * (1.0 + self.amplitude * np.sin(2 * np.pi * t / self.period))

    def poiseuille(self, xyz: np.ndarray, t: float) -> np.ndarray:
        """Poiseuille's profile of mean speed $U(t)$ at `xyz` ``(m, 3)``: $u_x = 2U(1 - r^2/R^2)$."""
        out = np.zeros((len(xyz), 3))
        r2 = (xyz[:, 1] ** 2 + xyz[:, 2] ** 2) / self.radius**2
        out[:, 0] = 2.0 * self.mean_speed(t) * np.clip(1.0 - r2, 0.0, None)
        return out

    def boundary_values(self, xyz: np.ndarray, t: float) -> np.ndarray:
        """Dirichlet velocity at the solver's Dirichlet nodes (`xyz` = their coordinates):
        Poiseuille's profile on the inflow, zero on the wall and the obstacle."""
        if len(xyz) != len(self._inflow_bc):
            raise ValueError("PipeFlow.boundary_values: expected the solver's Dirichlet nodes")
        return np.where(self._inflow_bc[:, None], self.poiseuille(xyz, t), 0.0)

    def initial_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Poiseuille flow at $U_0$ with its linear pressure, zero on the wall and obstacle
        (records at the P2 nodes: velocity ``(nodes, 3)``, pressure ``(nodes,)``)."""
        vel = self.poiseuille(self.points, 0.0)  # U(0) = U0
        vel[np.isin(self.node_type, (NodeType.WALL_BOUNDARY, NodeType.OBSTACLE))] = 0.0
        grad = 8.0 * self.solver.nu * self.u_mean / self.radius**2
        return vel, grad * (self.length - self.points[:, 0])

    def frame(self, velocity: np.ndarray, pressure: np.ndarray, t: float
              ) -> tuple[np.ndarray, np.ndarray]:
        """The next record from the record at time `t` (as `CylinderFlow.frame`)."""
        u, p = self.solver.node_state(velocity, pressure)
        u, p = self.solver.advance(u, p, t, self.substeps, self.boundary_values)
        return u.T.copy(), self.solver.pressure_at_nodes(p)

    def drag_coefficient(self, velocity: np.ndarray, pressure: np.ndarray) -> float:
        """$c_D = 2F_x / (U_0^2 \\pi r^2)$ on the obstacle for the state just computed by
        `frame` (NaN without an obstacle)."""
        if self.obstacle is None:
            return float("nan")
        u, p = self.solver.node_state(velocity, pressure)
        f = self.solver.force(u, p, self.body_dofs)
        return float(2.0 * f[0] / (self.u_mean**2 * np.pi * self.obstacle[3] ** 2))

    def courant(self, velocity: np.ndarray) -> float:
        """The largest Courant number $|u|\\,\\Delta t / h$ over the elements (|u| the largest
        speed at the element's P2 nodes, h its shortest edge)."""
        speed = np.linalg.norm(velocity, axis=1)
        vmax = speed[self.solver.vb.element_dofs].max(0)
        return float((vmax * self.solver.dt / self.h_elem).max())


def _substeps(config: PipeFlowConfig, u_mean: float, amplitude: float) -> int:
    # the fastest flow is about the peak inflow 2 U0 (1 + A) sped up past the sphere, where
    # the shortest edges (h_min) are; the factor 2 covers the speed-up (1.5 gave Courant 1.12 at the
    # first default trajectory; trajectory_params.max_courant records the real value)
    peak = 2.0 * 2.0 * u_mean * (1.0 + amplitude)
    return max(1, int(np.ceil(config.dt * peak / (config.courant * config.h_min))))


def build_pipe_flow(config: PipeFlowConfig, reynolds: float, amplitude: float, period: float,
                    obstacle: tuple[float, float, float, float] | None) -> PipeFlow:
    """The mesh (gmsh) and solver of one trajectory, with the substeps the Courant bound sets."""
    c = config
    pts, tets, boundary = gmsh_pipe_mesh(c.length, c.radius, c.h_max, obstacle, c.h_min)
    u_mean = reynolds * c.nu / (2 * c.radius)
    return PipeFlow(pts, tets, boundary, c.length, c.radius, obstacle, u_mean, amplitude, period,
                    c.nu, c.dt, _substeps(c, u_mean, amplitude))


def simulate_pipe_flow(config: PipeFlowConfig, reynolds: float, amplitude: float, period: float,
                       obstacle: tuple[float, float, float, float] | None) -> dict:
    """Solve one trajectory: from Poiseuille flow, `config.spinup` of simulated time, then
    `config.n_steps` records every `config.dt`.

    **Returns:** a dict with `points`, `cells` (tetrahedra on the P2 nodes), `node_type`,
    `velocity` ``(time, nodes, 3)``, `pressure` ``(time, nodes, 1)``, `drag_coefficient`
    ``(time,)``, `times` and `params`.
    """
    c = config
    flow = build_pipe_flow(c, reynolds, amplitude, period, obstacle)
    vel, prs = flow.initial_state()
    n_spin = int(round(c.spinup / c.dt))
    t, j = 0.0, 0
    records, cds, courant = [], [], 0.0
    while True:
        if j >= n_spin:
            # the drag needs a step's time derivative: none for the initial state
            cds.append(flow.drag_coefficient(vel, prs) if j else float("nan"))
            records.append((vel, prs))
            courant = max(courant, flow.courant(vel))
            if len(records) == c.n_steps:
                break
        vel, prs = flow.frame(vel, prs, t)
        j += 1
        t = j * c.dt
        if not np.all(np.isfinite(vel)):
            raise RuntimeError(f"pipe_flow: the trajectory at Re={reynolds:.0f} diverged at "
                               f"t = {t:.3g}; lower courant or raise h_min")
    vel = np.stack([v for v, _ in records])
    prs = np.stack([p for _, p in records])[..., None]
    params = {"reynolds": float(reynolds), "amplitude": float(amplitude),
              "period": float(period), "u_mean": flow.u_mean,
              "obstacle": None if obstacle is None else [float(x) for x in obstacle],
              "n_nodes": int(len(flow.points)), "n_vertices": int(flow.solver.n_vertices),
              "n_elements": int(flow.solver.mesh.t.shape[1]), "substeps": flow.substeps,
              "solver_dt": flow.solver.dt,
              "max_courant": float(courant)}
    return {"points": flow.points, "cells": flow.cells, "node_type": flow.node_type,
            "velocity": vel, "pressure": prs, "drag_coefficient": np.asarray(cds),
            "times": (n_spin + np.arange(c.n_steps)) * c.dt, "params": params}


def _simulate_task(args):
    return simulate_pipe_flow(*args)


def draw_trajectories(config: PipeFlowConfig) -> list[tuple]:
    """The `(reynolds, amplitude, period, obstacle)` of every trajectory, from `config.seed`."""
    c = config
    rng = np.random.default_rng(c.seed)
    out = []
    for _ in range(c.n_trajectories):
        re, amp, per = (rng.uniform(*c.reynolds), rng.uniform(*c.amplitude),
                        rng.uniform(*c.period))
        r, x, off, ang = (rng.uniform(*c.obstacle_radius), rng.uniform(*c.obstacle_x),
                          rng.uniform(*c.obstacle_offset), rng.uniform(0, 2 * np.pi))
        obstacle = (x, off * np.cos(ang), off * np.sin(ang), r) if r > 0 else None
        out.append((re, amp, per, obstacle))
    return out


def generate_pipe_flow(config: PipeFlowConfig, path: str | os.PathLike, *,
                       progress: bool = True) -> None:
    """Solve `config.n_trajectories` pipe flows (in parallel over `config.workers` processes)
    and write them to the HDF5 file `path` (cells ``tetra``, fields ``velocity`` and
    ``pressure``, the obstacle's drag coefficient per frame as an extra array)."""
    c = config
    tasks = [(c, *draw) for draw in draw_trajectories(c)]
    results, seconds, workers = run_tasks(_simulate_task, tasks, c.workers, "pipe_flow",
                                          progress)
    trajectories = [MeshField(r["points"].astype(np.float32),
                              {"tetra": r["cells"].astype(np.int32)},
                              {"velocity": r["velocity"].astype(np.float32),
                               "pressure": r["pressure"].astype(np.float32)},
                              r["node_type"], r["times"]) for r in results]
    params = [r["params"] for r in results]
    extra = {"drag_coefficient": np.stack([r["drag_coefficient"] for r in results]
                                          ).astype(np.float32)}
    _write(path, trajectories, "pipe_flow", c, params,
           {"velocity": "1 (U)", "pressure": "1 (U^2, kinematic)", "drag_coefficient": "1"},
           extra=extra, generation={"seconds": seconds, "workers": workers,
                                    "trajectories_per_hour": 3600 * len(tasks) / seconds})
    if progress:
        import sys
        print(f"pipe_flow: {len(tasks)} trajectories, {params[0]['n_nodes']} nodes, "
              f"{c.n_steps} frames each, in {seconds:.0f} s on {workers} processes",
              file=sys.stderr)


PROBLEMS = {"pipe_flow": Problem("pipe_flow", PipeFlowConfig, generate_pipe_flow)}
