"""One mesh over the devices of the ``space`` axis: the partitioned sample layout and the
sharded forward of the mesh networks.

`partition` rewrites a prepared mesh data set so that each trajectory's node axis is split
into ``parts`` equal blocks (`sciops.nn.coordinate_bisection` or METIS), each block holding the
nodes one device owns (padded, masked), and every edge list into blocks of the edges whose
receiver the device owns, with local indices into ``[owned | halo | global]`` rows
(`sciops.nn.partition_graph`). Node fields keep their names: the loss, the normalisers and
the node masks act per node and need no change. Added fields:

- ``halo{k}_send`` ``(parts·S_k,)``: the send plan of device shift ``k``;
- ``part_node_index`` ``(parts·n_own,)``: the original id of each slot (marks the layout);
- ``part_node_slot`` ``(n_pad,)``: the slot of each original node (to map results back, and
  to draw per-node noise in the original order so that a partitioned run draws the same
  numbers as a single-device one);
- ``part_sizes`` ``(parts,)``: the real nodes each device owns.

Each partitioned field's ``space_axis`` attribute names the sample axis the driver splits over
the mesh axis ``space``. `sharded_call` runs a network's local forward under `jax.shard_map`
with the halo exchange of `sciops.nn.halo_exchange` (one `ppermute` per device shift).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import numpy as np
from jax.sharding import PartitionSpec as P

from ..._errors import ConfigError, DataError
from ...data import Dataset
from ...nn._dist_fft import space_axis_size
from ...nn._graph_partition import (
    GraphPartition,
    coordinate_bisection,
    halo_exchange,
    metis_partition,
    partition_graph,
)

__all__ = ["PARTITION_FIELD", "is_partitioned", "partition", "sharded_call", "unpartition"]

PARTITION_FIELD = "part_node_index"

Method = Literal["rcb", "metis"]


def is_partitioned(sample) -> bool:
    """True when a sample (or batch) has the partitioned layout of `partition`."""
    return PARTITION_FIELD in sample


def _edge_stems(keys) -> list[str]:
    return sorted(k.removesuffix("_senders") for k in keys if k.endswith("_senders"))


def _mask_key(stem: str) -> str:
    return "mesh_edge_mask" if stem == "mesh" else f"{stem}_mask"


def _node_axis(key: str, shape: tuple[int, ...], n_pad: int) -> int | None:
    """The node axis of a sample field of a mesh data set (None: not a node field)."""
    if key.startswith(("cells_", "graph", "mesh_")) or key in ("n_nodes",):
        return None
    if len(shape) >= 1 and shape[0] == n_pad:
        return 0
    if len(shape) == 3 and shape[1] == n_pad:
        return 1
    return None


def _plan(sample: dict[str, np.ndarray], stems: list[str], parts: int, n_global: int,
          method: Method, at_least: GraphPartition | None, seed: int) -> GraphPartition:
    n = int(sample["n_nodes"])
    n_pad = int(sample["points"].shape[0])
    lists = []
    for stem in stems:
        m = np.asarray(sample[_mask_key(stem)])
        real = m.any(-1) if m.ndim == 2 else m.astype(bool)
        lists.append((np.asarray(sample[f"{stem}_senders"])[real],
                      np.asarray(sample[f"{stem}_receivers"])[real]))
    if method == "rcb":
        part_of = coordinate_bisection(np.asarray(sample["points"])[:n], parts)
    else:
        s, r = lists[stems.index("mesh")] if "mesh" in stems else lists[0]
        part_of = metis_partition(s, r, n, parts, seed=seed)
    return partition_graph(part_of, n_pad, lists, n_global=n_global, parts=parts,
                           at_least=at_least)


def partition(config: Any, dataset: Dataset, parts: int, *, method: Method = "rcb",
              seed: int = 0) -> Dataset:
    """The data set with every trajectory's mesh split into `parts` (see module docstring).

    **Arguments:**

    - `config`: the model config (`MeshTransformerConfig` or `MeshGraphNetConfig`).
    - `dataset`: a mesh data set after `sciops.models.meshformer.prepare`.
    - `parts`: the size of the mesh axis ``space``.
    - `method`: ``"rcb"`` (recursive coordinate bisection) or ``"metis"`` (needs pymetis).

    **Raises:** `DataError` naming the data set when it is not prepared; `ConfigError` for an
    unknown method.
    """
    if method not in ("rcb", "metis"):
        raise ConfigError(f"train.partition: expected 'rcb' or 'metis', got {method!r}")
    stems = _edge_stems(dataset.keys())
    if not stems or "points" not in dataset:
        raise DataError(f"{dataset.name}: partitioning needs a prepared mesh data set "
                        "(sciops.models.meshformer.prepare)")
    if is_partitioned(dataset):
        return dataset
    n_global = int(getattr(config, "n_global", 0))
    rows = np.asarray(dataset.indices)
    samples = [{k: np.asarray(v[int(r)]) for k, v in dataset.arrays.items()} for r in rows]
    plans: list[GraphPartition] = []
    for s in samples:
        plans.append(_plan(s, stems, parts, n_global, method, None, seed))
    if len(plans) > 1:  # one padded layout for all: redo each at the largest sizes
        big = plans[0]
        for p in plans[1:]:
            big = _largest(big, p)
        plans = [_plan(s, stems, parts, n_global, method, big, seed) for s in samples]
    n_pad = int(dataset.shape("points")[0])
    out: dict[str, list[np.ndarray]] = {}
    axes: dict[str, int] = {}
    for s, plan in zip(samples, plans, strict=True):
        slots = plan.node_index.reshape(-1)
        valid = plan.node_valid.reshape(-1)
        for k, v in s.items():
            ax = _node_axis(k, v.shape, n_pad)
            if ax is None:
                continue
            g = np.take(v, slots, axis=ax)
            shape = [1] * g.ndim
            shape[ax] = -1
            out.setdefault(k, []).append(np.where(valid.reshape(shape), g, np.zeros((), g.dtype)))
            axes[k] = ax
        for stem, (ls, lr, take, ok) in zip(stems, plan.edges, strict=True):
            m = np.asarray(s[_mask_key(stem)])
            mk = m.any(-1) if m.ndim == 2 else m.astype(bool)
            real = np.flatnonzero(mk)
            gm = m[real][take.reshape(-1)]
            okf = ok.reshape(-1)
            gm = gm & (okf[:, None] if gm.ndim == 2 else okf)
            for key, val in ((f"{stem}_senders", ls), (f"{stem}_receivers", lr),
                             (_mask_key(stem), None)):
                arr = gm if val is None else val.reshape(-1).astype(np.int32)
                out.setdefault(key, []).append(arr)
                axes[key] = 0
        for k in plan.shifts:
            out.setdefault(f"halo{k}_send", []).append(plan.send[k].reshape(-1).astype(np.int32))
            axes[f"halo{k}_send"] = 0
        out.setdefault(PARTITION_FIELD, []).append(slots.astype(np.int32))
        axes[PARTITION_FIELD] = 0
        out.setdefault("part_node_slot", []).append(plan.node_slot.astype(np.int32))
        out.setdefault("part_sizes", []).append(plan.node_valid.sum(1).astype(np.int32))
        axes["part_sizes"] = 0
    arrays = {k: v for k, v in dataset.arrays.items() if k not in out}
    arrays = {k: np.asarray(v)[rows] for k, v in arrays.items()}
    arrays.update({k: np.stack(v) for k, v in out.items()})
    field_attrs = {k: dict(dataset.field_attrs.get(k, {})) for k in arrays}
    for k, ax in axes.items():
        field_attrs[k]["space_axis"] = ax
    attrs = {**dataset.attrs, "partition": {"parts": int(parts), "method": method,
                                            "halo_nodes": [p.halo_nodes for p in plans],
                                            "sent_rows": [p.sent_rows for p in plans]}}
    return Dataset(arrays, attrs, None, dataset.name, field_attrs)


def _largest(a: GraphPartition, b: GraphPartition) -> GraphPartition:
    """A stand-in partition with the larger of two partitions' padded sizes."""
    send = {k: np.zeros((a.parts, max(a.send[k].shape[1] if k in a.send else 0,
                                       b.send[k].shape[1] if k in b.send else 0)))
            for k in set(a.send) | set(b.send)}
    edges = tuple((np.zeros((a.parts, max(x[0].shape[1], y[0].shape[1]))),) * 4
                  for x, y in zip(a.edges, b.edges, strict=True))
    return GraphPartition(a.parts, max(a.n_own, b.n_own), 0, a.n_global, a.node_index,
                          a.node_valid, a.node_slot, tuple(sorted(send)), send, a.halo_index,
                          edges)


def unpartition(values, sample) -> Any:
    """Node values of a partitioned sample (node axis first) in the original node order."""
    return values[sample["part_node_slot"]]


def sharded_call(fn: Callable[..., Any], modules: Any, x: Any, data: Any, sample) -> Any:
    """``fn(modules, x, data, halo)`` on each device's partition, under `jax.shard_map` over
    the mesh axis ``space``; `halo(h)` returns the halo rows of owned rows `h`.

    `modules` (parameters) enter replicated; `x` and `data` (pytrees of arrays whose leading
    axis is the partitioned one) and the result are split over ``space``.

    **Raises:** `ValueError` when the sample was partitioned for another number of devices
    than the current mesh's ``space`` axis.
    """
    parts = space_axis_size()
    stored = int(sample["part_sizes"].shape[0])
    if stored != parts:
        raise ValueError(f"partitioned mesh sample: made for {stored} devices on the mesh "
                         f"axis 'space', the current mesh has {parts}")
    shifts = tuple(sorted(int(k[4:-5]) for k in sample if k.startswith("halo")
                          and k.endswith("_send")))
    sends = tuple(sample[f"halo{k}_send"] for k in shifts)
    params, static = eqx.partition(modules, eqx.is_array)

    def local(params, x, data, sends):
        m = eqx.combine(params, static)
        return fn(m, x, data, lambda h: halo_exchange(h, sends, shifts, parts))

    spec = P("space")
    return jax.shard_map(local, in_specs=(P(), spec, spec, spec), out_specs=spec,
                         check_vma=False)(params, x, data, sends)
