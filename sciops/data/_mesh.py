"""Fields on unstructured meshes: `MeshField` and its padded HDF5 storage."""

from __future__ import annotations

import itertools
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, Float, Int, Shaped

from .._errors import DataError
from ._dataset import Dataset
from ._hdf5 import read_hdf5, write_hdf5

__all__ = ["CELL_NODES", "MeshField", "drawable_mesh", "mesh_field", "plane_section",
           "read_mesh_dataset", "write_mesh_dataset"]

# Nodes per cell for the meshio cell-type names sciops handles.
CELL_NODES = {"vertex": 1, "line": 2, "triangle": 3, "quad": 4, "tetra": 4, "pyramid": 5,
              "wedge": 6, "hexahedron": 8}
"""Nodes per cell for every cell type the mesh layer reads and writes (meshio names)."""

# Edges of the non-simplex cells, as pairs of local node numbers (VTK node ordering); simplices
# (line, triangle, tetra) connect every pair of their nodes.
_CELL_EDGES = {
    "quad": ((0, 1), (1, 2), (2, 3), (3, 0)),
    "hexahedron": ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4),
                   (0, 4), (1, 5), (2, 6), (3, 7)),
}

# Names the padded HDF5 layout uses for the mesh itself; node fields cannot take them.
_RESERVED = ("points", "node_mask", "node_type", "times", "n_nodes")


def _as_array(x):
    return x if isinstance(x, (np.ndarray, jax.Array)) else np.asarray(x)


class MeshField(eqx.Module):
    """Named node fields over time on an unstructured mesh: one trajectory.

    **Arguments:**

    - `points`: node coordinates, shape `(nodes, dim)` with `dim` ∈ {1, 2, 3}.
    - `cells`: cell type (meshio names: ``"triangle"``, ``"quad"``, ``"tetra"``...) → integer
      connectivity of shape `(cells, nodes_per_cell)`.
    - `fields`: field name → values of shape `(time, nodes, channels)`; every field has the
      same number of time steps.
    - `node_type`: optional integer node labels, shape `(nodes,)` (interior, wall, inflow...
      as MeshGraphNets uses them).
    - `times`: optional times of the steps, shape `(time,)`.

    **Raises:** `DataError` naming the array and its shape when shapes disagree or a cell
    refers to a node that does not exist.
    """

    points: Float[Array, "nodes dim"]
    cells: dict[str, Int[Array, "cells corners"]]
    fields: dict[str, Shaped[Array, "time nodes channels"]]
    node_type: Int[Array, " nodes"] | None
    times: Float[Array, " time"] | None

    def __init__(self, points, cells: Mapping[str, Any], fields: Mapping[str, Any] | None = None,
                 node_type=None, times=None):
        self.points = _as_array(points)
        self.cells = {str(k): _as_array(v) for k, v in cells.items()}
        self.fields = {str(k): _as_array(v) for k, v in (fields or {}).items()}
        self.node_type = None if node_type is None else _as_array(node_type)
        self.times = None if times is None else _as_array(times)

    def __check_init__(self):
        p = tuple(self.points.shape)
        if len(p) != 2 or not 1 <= p[1] <= 3:
            raise DataError(f"MeshField: points must have shape (nodes, dim) with dim 1-3, got {p}")
        n = p[0]
        for name, c in self.cells.items():
            if name not in CELL_NODES:
                raise DataError(f"MeshField: unknown cell type {name!r}; known: "
                                f"{', '.join(CELL_NODES)}")
            if c.ndim != 2 or c.shape[1] != CELL_NODES[name]:
                raise DataError(f"MeshField: {name} cells must have shape (cells, "
                                f"{CELL_NODES[name]}), got {tuple(c.shape)}")
            if not np.issubdtype(c.dtype, np.integer):
                raise DataError(f"MeshField: {name} connectivity must be integer, got {c.dtype}")
            if c.size and not isinstance(c, jax.core.Tracer):
                lo, hi = int(c.min()), int(c.max())
                if lo < 0 or hi >= n:
                    raise DataError(f"MeshField: {name} cells refer to nodes {lo}..{hi}, but the "
                                    f"mesh has {n} nodes")
        steps = {}
        for name, f in self.fields.items():
            if name in _RESERVED or name.startswith("cells_"):
                raise DataError(f"MeshField: field name {name!r} is reserved")
            if f.ndim != 3 or f.shape[1] != n:
                raise DataError(f"MeshField: field {name!r} must have shape (time, {n}, "
                                f"channels), got {tuple(f.shape)}")
            steps[name] = int(f.shape[0])
        if len(set(steps.values())) > 1:
            raise DataError(f"MeshField: fields have different numbers of time steps: {steps}")
        if self.node_type is not None:
            if tuple(self.node_type.shape) != (n,) or not np.issubdtype(self.node_type.dtype,
                                                                        np.integer):
                raise DataError(f"MeshField: node_type must be integer of shape ({n},), got "
                                f"{tuple(self.node_type.shape)} {self.node_type.dtype}")
        if self.times is not None:
            n_steps = next(iter(steps.values()), None)
            if self.times.ndim != 1 or (n_steps is not None and self.times.shape[0] != n_steps):
                raise DataError(f"MeshField: times of shape {tuple(self.times.shape)} do not match "
                                f"the {n_steps or 0} time steps of the fields")

    @property
    def n_nodes(self) -> int:
        """The number of nodes."""
        return int(self.points.shape[0])

    @property
    def n_times(self) -> int:
        """Time steps of the fields (0 without fields)."""
        return int(next(iter(self.fields.values())).shape[0]) if self.fields else 0

    def at(self, step: int) -> dict[str, Array]:
        """Every field at time step `step`, shape `(nodes, channels)`."""
        return {k: v[step] for k, v in self.fields.items()}

    def edges(self) -> np.ndarray:
        """The undirected mesh edges from the cells, shape `(edges, 2)`, each as (low, high)
        node numbers, sorted and unique."""
        pairs = []
        for name, c in self.cells.items():
            c = np.asarray(c)
            if name in _CELL_EDGES:
                local = _CELL_EDGES[name]
            elif name in ("line", "triangle", "tetra"):
                local = tuple(itertools.combinations(range(CELL_NODES[name]), 2))
            elif name == "vertex":
                continue
            else:
                raise DataError(f"MeshField.edges: cells of type {name!r} are not supported")
            for a, b in local:
                pairs.append(np.stack([c[:, a], c[:, b]], axis=1))
        if not pairs:
            return np.zeros((0, 2), np.int64)
        e = np.sort(np.concatenate(pairs).astype(np.int64), axis=1)
        return np.unique(e, axis=0)


def write_mesh_dataset(path: str | os.PathLike, trajectories: Sequence[MeshField],
                       attrs: Mapping[str, Any] | None = None,
                       units: Mapping[str, str] | None = None,
                       n_nodes: int | None = None,
                       n_cells: Mapping[str, int] | None = None,
                       extra: Mapping[str, np.ndarray] | None = None) -> pathlib.Path:
    """Write mesh trajectories as one data set, padded to fixed sizes with masks.

    Meshes of different sizes are padded at the end to `n_nodes` nodes and `n_cells[type]`
    cells (default: the largest in the set) so that every batch has one shape and a training
    step compiles once. Layout (`samples` = trajectories):

    - ``points`` `(samples, nodes, dim)`, ``node_mask`` `(samples, nodes)` bool,
      ``n_nodes`` `(samples,)`, ``node_type`` `(samples, nodes)` if given;
    - ``cells_<type>`` `(samples, cells, k)` (padding cells point at node 0) and
      ``cells_<type>_mask`` `(samples, cells)`;
    - one field per node field, `(samples, time, nodes, channels)`, zero on padding nodes;
      ``times`` `(samples, time)` if given;
    - `extra`: further per-trajectory arrays stored as they are, leading axis `samples`
      (such as per-frame force coefficients `(samples, time)`); readers may ignore them.

    **Raises:** `DataError` naming the trajectory that differs from the first in dimension,
    cell types, field names, channels or time steps.
    """
    trajectories = list(trajectories)
    if not trajectories:
        raise DataError(f"{path}: no trajectories to write")
    first = trajectories[0]
    signature = (first.points.shape[1], sorted(first.cells),
                 {k: (v.shape[0], v.shape[2]) for k, v in first.fields.items()},
                 first.node_type is not None, first.times is not None)
    for i, m in enumerate(trajectories):
        sig = (m.points.shape[1], sorted(m.cells),
               {k: (v.shape[0], v.shape[2]) for k, v in m.fields.items()},
               m.node_type is not None, m.times is not None)
        if sig != signature:
            raise DataError(f"{path}: trajectory {i} (dim, cell types, fields (time, channels), "
                            f"node_type, times) = {sig} differs from trajectory 0: {signature}")
    n_max = max(m.n_nodes for m in trajectories)
    if n_nodes is not None:
        if n_nodes < n_max:
            raise DataError(f"{path}: n_nodes={n_nodes} is smaller than the largest mesh "
                            f"({n_max} nodes)")
        n_max = n_nodes
    c_max = {t: max(int(m.cells[t].shape[0]) for m in trajectories) for t in first.cells}
    for t, c in (n_cells or {}).items():
        if t not in c_max or c < c_max[t]:
            raise DataError(f"{path}: n_cells[{t!r}]={c} is smaller than the largest mesh "
                            f"({c_max.get(t, 0)} {t} cells) or the type is absent")
        c_max[t] = c
    n = len(trajectories)

    def padded(arrays, size, axis):
        out = np.zeros((n, *arrays[0].shape[:axis], size, *arrays[0].shape[axis + 1:]),
                       np.asarray(arrays[0]).dtype)
        for i, a in enumerate(arrays):
            idx = (i,) + (slice(None),) * axis + (slice(0, a.shape[axis]),)
            out[idx] = np.asarray(a)
        return out

    arrays: dict[str, np.ndarray] = {
        "points": padded([m.points for m in trajectories], n_max, 0),
        "n_nodes": np.array([m.n_nodes for m in trajectories], np.int32),
        "node_mask": np.arange(n_max)[None] < np.array([[m.n_nodes] for m in trajectories]),
    }
    if first.node_type is not None:
        arrays["node_type"] = padded([m.node_type for m in trajectories], n_max, 0)
    if first.times is not None:
        arrays["times"] = np.stack([np.asarray(m.times) for m in trajectories])
    for t in first.cells:
        arrays[f"cells_{t}"] = padded([m.cells[t].astype(np.int32) for m in trajectories],
                                      c_max[t], 0)
        counts = np.array([[m.cells[t].shape[0]] for m in trajectories])
        arrays[f"cells_{t}_mask"] = np.arange(c_max[t])[None] < counts
    field_attrs: dict[str, dict[str, Any]] = {
        "points": {"layout": "samples nodes dim"}, "node_mask": {"layout": "samples nodes"}}
    for k in first.fields:
        arrays[k] = padded([m.fields[k] for m in trajectories], n_max, 1)
        field_attrs[k] = {"layout": "samples time nodes channels"}
        if units and k in units:
            field_attrs[k]["units"] = units[k]
    for k, a in (extra or {}).items():
        a = np.asarray(a)
        if k in arrays or k in first.fields or a.ndim == 0 or a.shape[0] != n:
            raise DataError(f"{path}: extra array {k!r} of shape {a.shape} clashes with a mesh "
                            f"field or does not have {n} samples")
        arrays[k] = a
        field_attrs[k] = {"layout": "samples " + " ".join(["time"] if a.ndim == 2 else
                                                          [f"d{i}" for i in range(1, a.ndim)])}
        if units and k in units:
            field_attrs[k]["units"] = units[k]
    meta = {"kind": "mesh", "fields": list(first.fields), "cell_types": list(first.cells)}
    return write_hdf5(path, arrays, {**meta, **(attrs or {})}, field_attrs)


def read_mesh_dataset(path: str | os.PathLike, **kwargs) -> Dataset:
    """Read a data set written by `write_mesh_dataset` (arguments as `read_hdf5`)."""
    dataset = read_hdf5(path, **kwargs)
    missing = [k for k in ("points", "node_mask", "n_nodes") if k not in dataset]
    if dataset.attrs.get("kind") != "mesh" or missing:
        raise DataError(f"{path}: not a sciops mesh data set (kind "
                        f"{dataset.attrs.get('kind')!r}, missing {missing})")
    return dataset


def mesh_field(dataset: Dataset, position: int) -> MeshField:
    """Trajectory `position` of a mesh data set as a `MeshField`, with the padding removed."""
    s = {k: v[0] for k, v in dataset.take([position]).items()}
    n = int(s["n_nodes"])
    cells = {k.removeprefix("cells_"): s[k][s[f"{k}_mask"]] for k in s
             if k.startswith("cells_") and not k.endswith("_mask")}
    names = dataset.attrs.get("fields", [])
    fields = {k: s[k][:, :n] for k in names if k in s}
    return MeshField(s["points"][:n], cells, fields,
                     s["node_type"][:n] if "node_type" in s else None, s.get("times"))


def plane_section(points, tetrahedra, axis: int = 2, offset: float | None = None):
    """The cut of a tetrahedral mesh by the plane ``x[axis] = offset`` as a triangle mesh, for
    drawing a 3-D field in 2-D.

    Each tetrahedron the plane crosses contributes a triangle (one vertex on the other side)
    or a quadrilateral split in two (two on each side); the section's points lie on the mesh
    edges, where node values interpolate linearly.

    **Arguments:** `points` ``(n, 3)``; `tetrahedra` ``(t, 4)``; `axis`; `offset` (default
    the middle of the mesh along `axis`, nudged off the nodes).

    **Returns:** `(xy (m, 2), triangles (k, 3), weights)`: the in-plane coordinates (the other
    two axes in order), the triangles and a sparse ``(m, n)`` matrix with
    ``weights @ values`` the node values on the section.

    **Raises:** `DataError` if the plane misses the mesh.
    """
    import scipy.sparse as sp

    pts = np.asarray(points, np.float64)
    tet = np.asarray(tetrahedra, np.int64)
    lo, hi = pts[:, axis].min(), pts[:, axis].max()
    if offset is None:  # the middle, moved off any node so that no edge lies in the plane
        offset = 0.5 * (lo + hi) + 1e-7 * (hi - lo)
    phi = pts[:, axis] - offset
    side = phi[tet] >= 0
    k = side.sum(1)
    tris = []
    single = (k == 1) | (k == 3)
    if single.any():  # the lone vertex and the three edges from it
        t, sd = tet[single], side[single]
        lone = np.where(k[single] == 1, np.argmax(sd, 1), np.argmin(sd, 1))
        others = np.array([[j for j in range(4) if j != i] for i in range(4)])[lone]
        a = t[np.arange(len(t)), lone]
        tris.append(np.stack([np.stack([a, t[np.arange(len(t)), others[:, j]]], 1)
                              for j in range(3)], 1))  # (c, 3 corners, 2 ends)
    double = k == 2
    if double.any():  # the quadrilateral p1-n1, p1-n2, p2-n2, p2-n1, split along a diagonal
        t, sd = tet[double], side[double]
        order = np.argsort(~sd, axis=1, kind="stable")  # positives first
        p1, p2, n1, n2 = (t[np.arange(len(t)), order[:, j]] for j in range(4))
        quad = [np.stack(e, 1) for e in ((p1, n1), (p1, n2), (p2, n2), (p2, n1))]
        tris.append(np.stack([quad[0], quad[1], quad[2]], 1))
        tris.append(np.stack([quad[0], quad[2], quad[3]], 1))
    if not tris:
        raise DataError(f"plane_section: the plane x[{axis}] = {offset:.4g} misses the mesh "
                        f"(it spans {lo:.4g} .. {hi:.4g})")
    corners = np.concatenate(tris)  # (triangles, 3, 2)
    ends = np.sort(corners.reshape(-1, 2), axis=1)
    uniq, inverse = np.unique(ends, axis=0, return_inverse=True)
    triangles = inverse.reshape(-1, 3)
    a, b = uniq[:, 0], uniq[:, 1]
    w = phi[a] / (phi[a] - phi[b])
    m = len(uniq)
    weights = sp.csr_matrix((np.concatenate([1 - w, w]),
                             (np.tile(np.arange(m), 2), np.concatenate([a, b]))),
                            shape=(m, len(pts)))
    xyz = weights @ pts
    keep = [j for j in range(3) if j != axis]
    return xyz[:, keep], triangles, weights


def drawable_mesh(points, cells):
    """What a 2-D plot of node values on a mesh draws: a 2-D triangle mesh as it is; a
    tetrahedral mesh by its section through the middle of the last axis (`plane_section`).

    **Returns:** `(xy (m, 2), triangles (k, 3), weights)` with `weights` `None` (the node
    values themselves) or the sparse ``(m, nodes)`` interpolation onto the section; `None` for
    other meshes (nothing to draw).
    """
    points, cells = np.asarray(points), np.asarray(cells)
    if points.ndim != 2 or cells.ndim != 2:
        return None
    if points.shape[1] == 2 and cells.shape[1] == 3:
        return points, cells, None
    if points.shape[1] == 3 and cells.shape[1] == 4:
        return plane_section(points, cells, axis=2)
    return None
