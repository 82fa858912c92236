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

from .._errors import ConfigError
from ..data import MeshField, write_mesh_dataset, write_xdmf
from ._mesh_gen import boundary_nodes, circle_sdf, distmesh2d, rectangle_sdf
from ._ns_fem import AdvectionDiffusionP1, ProjectionNS
from ._problem import Problem

__all__ = ["CylinderFlowConfig", "NodeType", "PROBLEMS", "TransportConfig", "cylinder_mesh",
           "generate_cylinder_flow", "generate_transport", "transport_exact"]


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


def _check_range(name, r, lo=None):
    if len(r) != 2 or r[0] > r[1] or (lo is not None and r[0] <= lo):
        raise ConfigError(f"data.generate.{name}: expected [low, high] with low <= high"
                          + (f" and low > {lo}" if lo is not None else "") + f", got {list(r)}")


@dataclasses.dataclass(frozen=True)
class CylinderFlowConfig:
    """Vortex shedding past a cylinder in a channel (2-D incompressible Navier-Stokes, P2/P1 FEM).

    The keys of `data.generate` / `sciops generate cylinder_flow`, in SI units (lengths in m,
    times in s), as the DFG benchmark channel.

    **Fields:**

    - `n_trajectories` [count]: flows, each on its own mesh, Reynolds number and cylinder.
    - `n_steps` [count]: recorded steps per trajectory.
    - `dt` [s]: time step of the solver and of the records (MeshGraphNets uses 0.01).
    - `spinup` [s]: simulated time before recording starts.
    - `nu` [m²/s]: kinematic viscosity.
    - `reynolds` [1]: $\\mathrm{Re} = U D/\\nu$ is drawn uniformly from ``[lo, hi]`` per trajectory.
    - `length`, `height` [m]: the channel.
    - `radius` [m]: the cylinder radius is drawn uniformly from ``[lo, hi]``.
    - `center_x`, `center_y` [m]: the cylinder centre is drawn uniformly from these ranges.
    - `h_min`, `h_max` [m]: mesh edge length at the cylinder and far from it.
    - `seed` [-]: seed of the geometries and Reynolds numbers.
    - `xdmf` [-]: also write every trajectory as XDMF next to the HDF5 file.
    """

    n_trajectories: int = 4
    n_steps: int = 300  # recorded steps per trajectory
    dt: float = 0.01  # time step of the solver and of the records (MeshGraphNets uses 0.01)
    spinup: float = 1.0  # simulated time before recording starts
    nu: float = 1.0e-3  # kinematic viscosity
    reynolds: tuple[float, float] = (100.0, 200.0)  # Re = U D / nu, drawn per trajectory
    length: float = 1.6
    height: float = 0.41
    radius: tuple[float, float] = (0.04, 0.06)
    center_x: tuple[float, float] = (0.25, 0.45)
    center_y: tuple[float, float] = (0.16, 0.25)
    h_min: float = 0.01  # edge length at the cylinder
    h_max: float = 0.035  # edge length far from it
    seed: int = 0
    xdmf: bool = True  # also write every trajectory as XDMF next to the HDF5 file

    def __post_init__(self):
        if self.n_trajectories < 1 or self.n_steps < 2:
            raise ConfigError("data.generate: need n_trajectories >= 1 and n_steps >= 2, got "
                              f"{self.n_trajectories}, {self.n_steps}")
        if self.dt <= 0 or self.nu <= 0 or self.spinup < 0:
            raise ConfigError("data.generate: dt and nu must be positive and spinup >= 0")
        for name in ("reynolds", "radius", "center_x", "center_y"):
            _check_range(name, getattr(self, name), lo=0.0)
        if not 0 < self.h_min <= self.h_max:
            raise ConfigError(f"data.generate: need 0 < h_min <= h_max, got {self.h_min}, {self.h_max}")
        r, cy = max(self.radius), self.center_y
        if cy[0] - r <= 2 * self.h_min or cy[1] + r >= self.height - 2 * self.h_min:
            raise ConfigError("data.generate.center_y: the cylinder must stay inside the channel "
                              f"(height {self.height}, radius up to {r}), got {list(cy)}")
        if self.center_x[0] - r <= 2 * self.h_min or self.center_x[1] + r >= self.length / 2:
            raise ConfigError("data.generate.center_x: the cylinder must lie in the first half "
                              f"of the channel, got {list(self.center_x)}")


def cylinder_mesh(length: float, height: float, cx: float, cy: float, r: float, h_min: float,
                  h_max: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A channel-with-cylinder triangular mesh, graded from `h_min` at the cylinder to `h_max`.

    **Returns:** `(points (n, 2), triangles (t, 3), node_type (n,))`.
    """
    box, circle = rectangle_sdf(0.0, length, 0.0, height), circle_sdf(cx, cy, r)
    fd = lambda p: np.maximum(box(p), -circle(p))  # noqa: E731
    # size grows linearly away from the cylinder (gradient 0.3), capped at h_max
    fh = lambda p: np.minimum(h_min + 0.3 * np.maximum(circle(p), 0), h_max)  # noqa: E731
    corners = np.array([[0, 0], [length, 0], [0, height], [length, height]], float)
    pts, tri = distmesh2d(fd, fh, h_min, (0.0, length, 0.0, height), fixed=corners, seed=seed)
    tol = 1e-3 * h_min
    node_type = np.full(len(pts), NodeType.NORMAL, np.int32)
    b = boundary_nodes(tri)
    x, y = pts[b, 0], pts[b, 1]
    kind = np.full(b.size, NodeType.OBSTACLE, np.int32)
    kind[x > length - tol] = NodeType.OUTFLOW
    kind[x < tol] = NodeType.INFLOW
    kind[(y < tol) | (y > height - tol)] = NodeType.WALL_BOUNDARY  # corners are walls
    node_type[b] = kind
    return pts, tri, node_type


def generate_cylinder_flow(config: CylinderFlowConfig, path: str | os.PathLike, *,
                           progress: bool = True) -> None:
    """Solve `config.n_trajectories` cylinder flows and write them to the HDF5 file `path`."""
    c = config
    rng = np.random.default_rng(c.seed)
    trajectories, params = [], []
    n_spin = int(round(c.spinup / c.dt))
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=c.n_trajectories * (n_spin + c.n_steps - 1), desc="cylinder_flow",
                   unit="step")
    for i in range(c.n_trajectories):
        re = rng.uniform(*c.reynolds)
        r = rng.uniform(*c.radius)
        cx, cy = rng.uniform(*c.center_x), rng.uniform(*c.center_y)
        pts, tri, node_type = cylinder_mesh(c.length, c.height, cx, cy, r, c.h_min, c.h_max,
                                            seed=c.seed * 1000 + i)
        u_mean = re * c.nu / (2 * r)
        params.append({"reynolds": re, "radius": r, "center": [cx, cy], "u_mean": u_mean,
                       "n_nodes": len(pts)})
        tol = 1e-3 * c.h_min
        length, height = c.length, c.height
        solver = ProjectionNS(
            pts, tri, c.nu, c.dt,
            velocity_dirichlet=lambda xy, length=length, height=height, tol=tol: ~(
                (xy[:, 0] > length - tol) & (xy[:, 1] > tol) & (xy[:, 1] < height - tol)),
            pressure_dirichlet=lambda xy, length=length, tol=tol: xy[:, 0] > length - tol)
        ramp_time = min(0.5, c.spinup) if c.spinup > 0 else 0.0

        def bc(xy, t, u_mean=u_mean, ramp_time=ramp_time, tol=tol, height=height):
            # parabolic inflow with mean u_mean (peak 1.5 u_mean), ramped up smoothly from rest
            ramp = 1.0 if t >= ramp_time else 0.5 - 0.5 * np.cos(np.pi * t / ramp_time)
            out = np.zeros((len(xy), 2))
            inflow = xy[:, 0] < tol
            yy = xy[inflow, 1]
            out[inflow, 0] = ramp * 6.0 * u_mean * yy * (height - yy) / height**2
            return out

        u = np.zeros((2, solver.vb.N)) if n_spin else solver.interpolate(lambda xy: bc(xy, 1.0))
        p = np.zeros(len(pts))
        t = 0.0
        for k in range(n_spin):
            t = (k + 1) * c.dt
            u, p = solver.step(u, p, t, bc)
            if bar is not None:
                bar.update()
        vel = [solver.vertex_values(u)]
        prs = [p.copy()]
        for k in range(c.n_steps - 1):
            t = (n_spin + k + 1) * c.dt
            u, p = solver.step(u, p, t, bc)
            vel.append(solver.vertex_values(u))
            prs.append(p.copy())
            if bar is not None:
                bar.update()
        vel, prs = np.stack(vel), np.stack(prs)[..., None]
        if not (np.all(np.isfinite(vel)) and np.all(np.isfinite(prs))):
            raise RuntimeError(f"cylinder_flow: trajectory {i} diverged (Re={re:.0f}); "
                               "reduce dt or h_min")
        times = (n_spin + np.arange(c.n_steps)) * c.dt
        trajectories.append(MeshField(pts.astype(np.float32), {"triangle": tri.astype(np.int32)},
                                      {"velocity": vel.astype(np.float32),
                                       "pressure": prs.astype(np.float32)},
                                      node_type, times))
    if bar is not None:
        bar.close()
    _write(path, trajectories, "cylinder_flow", c, params,
           {"velocity": "m/s", "pressure": "m^2/s^2 (kinematic)"})


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
        from tqdm.auto import tqdm
        iterator = tqdm(iterator, desc="transport", unit="trajectory")
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


def _write(path, trajectories, problem, config, params, units):
    path = pathlib.Path(path)
    attrs = {"problem": problem, "config": dataclasses.asdict(config), "dt": config.dt,
             "trajectory_params": params,
             "node_type_names": {t.name: int(t) for t in NodeType if t != NodeType.SIZE}}
    write_mesh_dataset(path, trajectories, attrs=attrs, units=units)
    if config.xdmf:
        folder = path.with_name(path.stem + "_xdmf")
        for i, m in enumerate(trajectories):
            write_xdmf(folder / f"traj_{i:03d}.xdmf", m)


PROBLEMS = {
    "cylinder_flow": Problem("cylinder_flow", CylinderFlowConfig, generate_cylinder_flow),
    "transport": Problem("transport", TransportConfig, generate_transport),
}
