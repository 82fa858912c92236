"""Host-side graph preparation: from a padded mesh data set to padded edge lists and encodings.

Run once per data set (`prepare`), before batching: a jitted step then sees fixed-size arrays
(edges padded to a multiple of `edge_multiple`, masks marking the real ones) and compiles once
per size bucket. Adds, per trajectory:

- ``mesh_senders``, ``mesh_receivers`` `(edges,)`, ``mesh_edge_mask`` `(edges,)`: the mesh
  edges in both directions (MeshGraphNet, and the transformer's edge statistics);
- transformer only: ``graph{g}_senders``, ``graph{g}_receivers`` `(edges_g,)` and
  ``graph{g}_mask`` `(edges_g, heads)` for each distinct layer connectivity ``g``;
  ``pe_laplacian`` `(nodes, k)`, ``pe_random_walk`` `(nodes, k)` when configured.
"""

from __future__ import annotations

import numpy as np

from ..._errors import DataError
from ...data import Dataset
from ...nn._graph import (
    adjacency,
    head_edge_sets,
    laplacian_eigenvectors,
    mesh_edges,
    random_walk_encoding,
    round_up,
)
from ._config import MeshGraphNetConfig, MeshTransformerConfig

__all__ = ["cell_array", "prepare", "trajectory_graphs"]

_MESH_KEYS = ("points", "node_mask", "n_nodes")


def cell_array(sample: dict[str, np.ndarray]) -> np.ndarray:
    """The (unpadded) simplicial cells of one trajectory sample of a mesh data set."""
    blocks = []
    for k, v in sample.items():
        if k.startswith("cells_") and not k.endswith("_mask"):
            mask = sample.get(f"{k}_mask")
            blocks.append(np.asarray(v)[np.asarray(mask, bool)] if mask is not None else v)
    if not blocks:
        raise DataError("mesh data set: no cells_<type> field")
    if len({b.shape[1] for b in blocks}) > 1:
        raise DataError("mesh data set: mixed cell types are not supported by the mesh models")
    return np.concatenate(blocks).astype(np.int64)


def trajectory_graphs(config: MeshTransformerConfig | MeshGraphNetConfig,
                      sample: dict[str, np.ndarray], *, seed: int = 0) -> dict[str, np.ndarray]:
    """The unpadded graph arrays of one trajectory (see the module docstring)."""
    n = int(sample["n_nodes"])
    n_pad = int(np.shape(sample["points"])[0])
    cells = cell_array(sample)
    if cells.size and cells.max() >= n:
        raise DataError(f"mesh data set: a cell refers to node {cells.max()}, but the mesh has "
                        f"{n} nodes")
    s, r = mesh_edges(cells, n)
    out = {"mesh_senders": s, "mesh_receivers": r}
    if isinstance(config, MeshTransformerConfig):
        adj = adjacency(s, r, n)
        distinct, _ = config.connectivities()
        for g, heads in enumerate(distinct):
            gs, gr, gm = head_edge_sets(adj, heads, n_global=config.n_global, first_global=n_pad,
                                        seed=seed + 7919 * g)
            out[f"graph{g}_senders"], out[f"graph{g}_receivers"], out[f"graph{g}_mask"] = gs, gr, gm
        if config.laplacian_pe:
            out["pe_laplacian"] = laplacian_eigenvectors(adj, config.laplacian_pe)[1]
        if config.random_walk_pe:
            out["pe_random_walk"] = random_walk_encoding(adj, config.random_walk_pe)
    return out


def prepare(config: MeshTransformerConfig | MeshGraphNetConfig, dataset: Dataset) -> Dataset:
    """Add the padded graph fields the model needs to a mesh data set (see module docstring).

    Fields stay lazy; the graph fields are computed for the samples of this view only.

    **Raises:** `DataError` naming the data set when it is not a sciops mesh data set.
    """
    missing = [k for k in _MESH_KEYS if k not in dataset]
    if missing:
        raise DataError(f"{dataset.name}: not a mesh data set (missing {', '.join(missing)}); "
                        "the mesh models read the layout of sciops.data.write_mesh_dataset")
    if any(k.startswith("graph") or k.startswith("mesh_senders") for k in dataset.keys()):
        return dataset  # already prepared
    rows = np.asarray(dataset.indices)
    n_rows = int(next(iter(dataset.arrays.values())).shape[0])
    per = []
    mesh_keys = [k for k in dataset.keys() if k in _MESH_KEYS or k.startswith("cells_")]
    seed = getattr(config, "graph_seed", 0)
    for row in rows:
        sample = {k: np.asarray(dataset.arrays[k][int(row)]) for k in mesh_keys}
        per.append(trajectory_graphs(config, sample, seed=seed + int(row)))
    n_pad = int(dataset.shape("points")[0])
    extra: dict[str, np.ndarray] = {}
    for key in per[0] if per else []:
        if key.startswith("pe_"):
            k = per[0][key].shape[1]
            arr = np.zeros((n_rows, n_pad, k), np.float32)
            for row, g in zip(rows, per, strict=False):
                arr[row, : g[key].shape[0]] = g[key]
            extra[key] = arr
        elif key.endswith("_senders"):
            stem = key.removesuffix("_senders")
            size = round_up(max(len(g[key]) for g in per), config.edge_multiple)
            snd = np.zeros((n_rows, size), np.int32)
            rcv = np.zeros((n_rows, size), np.int32)
            mkey = "mesh_edge_mask" if stem == "mesh" else f"{stem}_mask"
            heads = per[0][mkey].shape[1:] if mkey in per[0] else ()
            msk = np.zeros((n_rows, size, *heads), bool)
            for row, g in zip(rows, per, strict=False):
                e = len(g[key])
                snd[row, :e], rcv[row, :e] = g[key], g[f"{stem}_receivers"]
                msk[row, :e] = g[mkey] if mkey in g else True
            extra[key], extra[f"{stem}_receivers"], extra[mkey] = snd, rcv, msk
    arrays = dict(dataset.arrays)
    arrays.update(extra)
    return Dataset(arrays, dataset.attrs, dataset.indices, dataset.name)

