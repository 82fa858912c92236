"""Steady 3-D heat conduction in a plate with holes: $-k\\,\\Delta T = q$ on a masked node grid.

The plate is $[0,1]^2 \\times [0, H]$ (layout ``(z, y, x)``). Cylindrical holes through the
thickness are cooling channels: their walls, like the four side faces, are held at $T = 0$; the
top and bottom faces are insulated ($\\partial_z T = 0$). The plate is heated from the top,
$q(z) = q_0 (1 + z/H)$, so the temperature varies through the thickness as well as around the
holes. A design is the number of holes, their centres and radii.

Discretisation: the seven-point Laplacian on the nodes of the mask (every node outside it is a
Dirichlet node); on the insulated faces a mirrored ghost node $T_{-1} = T_1$ keeps second order.
The sparse system is solved directly with scipy. Tested with manufactured solutions (order 2 with
and without a grid-aligned hole). Data follow the 3-D heat-transfer example of the multi-task
DeepONet paper (Kumar, Goswami et al. 2024) at sciops sizes: inputs are the hole mask and the
design vector, the output is the temperature field.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._errors import ConfigError
from ..data import write_hdf5
from ._convergence import NOT_MEASURED, SelfConvergence, compare
from ._geometry import PlateWithHoles, as_mask, cut_fractions, grid_mask
from ._problem import Problem

__all__ = ["HeatConfig", "solve", "plate_mask", "plate_fractions", "generate_arrays", "generate",
           "self_convergence", "discretisation", "PROBLEMS"]


def solve(mask: np.ndarray, source: np.ndarray, spacing: Sequence[int | float],
          neumann_axes: tuple[int, ...] = (0,), conductivity: float = 1.0,
          boundary: np.ndarray | None = None, fractions: np.ndarray | None = None
          ) -> np.ndarray:
    """Solve $-k\\Delta T = q$ on the nodes of `mask` (any number of dimensions).

    **Arguments:**

    - `mask`: 0/1 array, the unknown nodes (the grid faces of the non-Neumann axes must be 0).
    - `source`: $q$ at the nodes, same shape.
    - `spacing`: node spacing per axis.
    - `neumann_axes`: axes whose two end planes are insulated (mirrored ghost nodes); nodes on
      those planes may be unknowns.
    - `conductivity`: $k$.
    - `boundary`: Dirichlet values at the nodes off the mask (default 0), or a function
      ``g(*coords)`` of the node coordinates (index times spacing, one array per axis)
      evaluated where the boundary cuts the grid lines (with `fractions`).
    - `fractions`: ``(ndim, 2, *shape)``, the distance from each node to the boundary along
      axis `a` towards its $+1$ (``[a, 0]``) and $-1$ (``[a, 1]``) neighbour in units of the
      spacing (1 where the neighbour is inside): the Shortley–Weller stencil then places the
      Dirichlet value on the true boundary, second order on curved walls. Default all 1 (the
      first node outside is the wall: a staircase).

    **Returns:** $T$ at every node, equal to the Dirichlet values off the mask (0 for a
    function `boundary`).
    """
    shape = source.shape
    mask = as_mask(mask, shape)
    if len(spacing) != len(shape):
        raise ConfigError(f"heat.solve: spacing has {len(spacing)} entries for a "
                          f"{len(shape)}-D grid")
    for ax in range(len(shape)):
        if ax not in neumann_axes:
            ends = np.take(mask, [0, shape[ax] - 1], axis=ax)
            if ends.any():
                raise ConfigError(f"heat.solve: the mask must exclude the end planes of the "
                                  f"Dirichlet axis {ax}")
    g_fun = boundary if callable(boundary) else None
    g = np.zeros(shape) if boundary is None or g_fun is not None else np.asarray(
        boundary, dtype=np.float64)
    theta = None if fractions is None else np.asarray(fractions, np.float64)
    index = -np.ones(shape, dtype=np.int64)
    index[mask] = np.arange(mask.sum())
    nodes = np.nonzero(mask)
    me = index[nodes]
    rhs = np.asarray(source, dtype=np.float64)[mask] / conductivity
    rows, cols, vals = [me], [me], [np.zeros(me.size)]
    for ax, h in enumerate(spacing):
        for side, step in enumerate((1, -1)):
            if theta is None:
                w = np.full(me.size, 1.0 / h**2)
                t_here = np.ones(me.size)
            else:
                # Shortley–Weller: u'' ~ 2/(h+ + h-) ((u+ - u)/h+ - (u - u-)/h-)
                t_here, t_other = theta[ax, side][nodes], theta[ax, 1 - side][nodes]
                w = 2.0 / (t_here * (t_here + t_other) * h**2)
            nb = [c.copy() for c in nodes]
            nb[ax] = nb[ax] + step
            if ax in neumann_axes:
                # Off the grid: the mirrored ghost equals the node on the other side.
                off = (nb[ax] < 0) | (nb[ax] >= shape[ax])
                nb[ax] = np.where(off, nodes[ax] - step, nb[ax])
            vals[0] = vals[0] + w
            q = index[tuple(nb)]
            inside = q >= 0
            rows.append(me[inside])
            cols.append(q[inside])
            vals.append(-w[inside])
            if g_fun is not None:
                coords = [c[~inside] * hh for c, hh in zip(nodes, spacing, strict=True)]
                coords[ax] = coords[ax] + step * t_here[~inside] * h
                rhs[~inside] += w[~inside] * g_fun(*coords)
            else:
                rhs[~inside] += w[~inside] * g[tuple(c[~inside] for c in nb)]
    matrix = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                           shape=(me.size, me.size))
    out = g.copy()
    out[mask] = spla.spsolve(matrix, rhs)
    return out


def plate_mask(holes, n: int, n_z: int) -> np.ndarray:
    """The ``(n_z, n, n)`` mask of a plate with cylindrical through-holes ``(cx, cy, r)``."""
    plate = PlateWithHoles(tuple(tuple(float(v) for v in h) for h in holes))
    return np.broadcast_to(grid_mask(plate, n), (n_z, n, n)).copy()


def plate_fractions(holes, n: int, n_z: int) -> np.ndarray:
    """Where the hole walls cut the grid lines, ``(3, 2, n_z, n, n)`` (the `fractions` of
    `solve`; 1 along $z$, which the walls never cut)."""
    plate = PlateWithHoles(tuple(tuple(float(v) for v in h) for h in holes))
    out = np.ones((3, 2, n_z, n, n))
    out[1:] = cut_fractions(plate, n)[:, :, None]
    return out


@dataclasses.dataclass(frozen=True)
class HeatConfig:
    """Steady 3-D heat conduction in a plate with 1 to `max_holes` cooling holes: design -> T.

    The keys of `data.generate` / `sciops generate heat3d`. Each design has between 1 and
    `max_holes` holes with centres in $[0.2, 0.8]^2$, radii in `radius`, at least `gap` apart
    (rejection sampling). The design vector holds, per hole slot, ``(present, cx, cy, r)``
    (zeros for absent holes). The problem is nondimensional (plate side 1, conductivity 1).

    **Fields:**

    - `n_samples` [count]: number of designs.
    - `resolution` [nodes]: nodes per side in x and y.
    - `n_z` [nodes]: nodes through the thickness.
    - `thickness` [1]: the plate's thickness $H$ (its side is 1).
    - `max_holes` [count]: the largest number of holes in a design.
    - `radius` [1]: hole radii are drawn uniformly from ``[lo, hi]``.
    - `gap` [1]: the smallest distance between two holes' walls.
    - `source` [1]: $q_0$ of the heating $q(z) = q_0 (1 + z/H)$.
    - `boundary` [-]: ``"fitted"`` (default) puts $T = 0$ where the hole walls cut the grid
      lines (Shortley–Weller stencil, second order); ``"staircase"`` at the first node inside a
      hole (first order; sciops' data before 2026-12: 7.6 % from the 2x-refined solve at
      the defaults, 0.35 % fitted).
    - `refine` [count]: solver nodes per stored cell side in x, y and z (every `refine`-th
      node stored).
    - `convergence_samples` [count]: how many of the first designs `generate` re-solves at 2x
      resolution to record the self-convergence error in the file (0: none).
    - `seed` [-]: seed of the designs.
    """

    n_samples: int = 400
    resolution: int = 25         # nodes per side in x and y
    n_z: int = 6                 # nodes through the thickness
    thickness: float = 0.25
    max_holes: int = 3
    radius: tuple[float, float] = (0.06, 0.12)
    gap: float = 0.04
    source: float = 1.0          # q0
    boundary: Literal["fitted", "staircase"] = "fitted"
    refine: int = 1
    convergence_samples: int = 3
    seed: int = 0

    def __post_init__(self):
        if self.max_holes < 1 or self.resolution < 8 or self.n_z < 2:
            raise ConfigError(f"data.generate: need max_holes >= 1, resolution >= 8, n_z >= 2; "
                              f"got {self.max_holes}, {self.resolution}, {self.n_z}")
        if self.refine < 1 or self.convergence_samples < 0:
            raise ConfigError(f"data.generate: need refine >= 1 and convergence_samples >= 0, "
                              f"got {self.refine} and {self.convergence_samples}")


def _designs(config: HeatConfig, rng: np.random.Generator) -> np.ndarray:
    designs = np.zeros((config.n_samples, config.max_holes, 4))
    for i in range(config.n_samples):
        count = rng.integers(1, config.max_holes + 1)
        placed = []
        while len(placed) < count:
            cx, cy = rng.uniform(0.2, 0.8, 2)
            r = rng.uniform(*config.radius)
            if all(np.hypot(cx - px, cy - py) > r + pr + config.gap for px, py, pr in placed):
                placed.append((cx, cy, r))
        for j, hole in enumerate(placed):
            designs[i, j] = (1.0, *hole)
    return designs


def _solve_designs(config: HeatConfig, designs: np.ndarray, refine: int,
                   progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Masks and temperatures at the stored nodes, solved on the grid `refine` times finer."""
    n, nz = (config.resolution - 1) * refine + 1, (config.n_z - 1) * refine + 1
    h = 1.0 / (n - 1)
    hz = config.thickness / (nz - 1)
    z = np.linspace(0.0, config.thickness, nz)
    q = np.broadcast_to((config.source * (1 + z / config.thickness))[:, None, None], (nz, n, n))
    masks, temps = [], []
    items = designs
    if progress:
        from .._progress import progress as _progress

        items = _progress(designs, desc="heat3d", unit="design", skip=0)
    for d in items:
        holes = [tuple(row[1:]) for row in d if row[0] > 0]
        mask = plate_mask(holes, n, nz)
        fractions = plate_fractions(holes, n, nz) if config.boundary == "fitted" else None
        temp = solve(mask, q, (hz, h, h), neumann_axes=(0,), fractions=fractions)
        masks.append(mask[::refine, ::refine, ::refine])
        temps.append(temp[::refine, ::refine, ::refine])
    return np.stack(masks), np.stack(temps)


def self_convergence(config: HeatConfig, n_samples: int = 3) -> SelfConvergence:
    """The first `n_samples` designs against the same ones solved with half the spacing in
    x, y and z (see `sciops.pde._convergence`)."""
    designs = _designs(config, np.random.default_rng(config.seed))[:n_samples]
    return compare(lambda r: _solve_designs(config, designs, config.refine * r)[1],
                   len(designs), reference="the same designs at half the grid spacing")


def discretisation(config: HeatConfig) -> dict:
    """The solver grid of a data set (for the provenance)."""
    return {"scheme": "seven-point Laplacian, mirrored ghost nodes on the insulated faces, "
                      + ("Shortley-Weller boundary-fitted hole walls" if config.boundary == "fitted"
                         else "staircase hole walls"),
            "solver_nodes": [(config.n_z - 1) * config.refine + 1,
                             (config.resolution - 1) * config.refine + 1,
                             (config.resolution - 1) * config.refine + 1],
            "stored_every": config.refine, "solver_tolerance": "direct sparse LU (SuperLU)"}


def generate_arrays(config: HeatConfig, *, progress: bool = False) -> dict[str, np.ndarray]:
    """Solve every design of `config` (reporting progress on stderr with `progress`); returns
    the arrays that `generate` writes."""
    rng = np.random.default_rng(config.seed)
    designs = _designs(config, rng)
    masks, temps = _solve_designs(config, designs, config.refine, progress)
    return {"design": designs.reshape(config.n_samples, -1).astype(np.float32),
            "mask": masks[:, None].astype(np.float32),
            "u": temps[:, None].astype(np.float32),
            "n_holes": designs[:, :, 0].sum(1).astype(np.int32)}


def generate(config: HeatConfig, path, *, progress: bool = True) -> None:
    """Write the data set to the HDF5 file `path`.

    Fields: ``design`` (samples, 4·max_holes); ``mask`` and ``u`` (samples, 1, n_z, n, n) laid
    out ``(z, y, x)``; ``n_holes`` (samples,). Root attribute ``bounds`` = [[0, H], [0, 1],
    [0, 1]]; the discretisation and the measured self-convergence error are in
    ``discretisation`` and ``self_convergence``.
    """
    if progress:
        print(f"heat3d: solving {config.n_samples} designs on {config.n_z}x{config.resolution}^2",
              flush=True)
    start = time.perf_counter()
    arrays = generate_arrays(config, progress=progress)
    seconds = time.perf_counter() - start
    check = self_convergence(config, config.convergence_samples) \
        if config.convergence_samples else None
    layout = {"layout": "samples channels z y x"}
    write_hdf5(path, arrays,
               attrs={"problem": "heat3d", "config": dataclasses.asdict(config),
                      "bounds": [[0.0, config.thickness], [0.0, 1.0], [0.0, 1.0]],
                      "solve_seconds": seconds, "discretisation": discretisation(config),
                      "self_convergence": NOT_MEASURED if check is None else check.as_attrs()},
               field_attrs={"mask": layout, "u": layout,
                            "design": {"description": "per hole slot: present, cx, cy, r"}})


PROBLEMS = {"heat3d": Problem("heat3d", HeatConfig, generate, self_convergence)}
