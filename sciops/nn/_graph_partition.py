"""One graph over many devices: node partitions, halo plans and the halo exchange.

A mesh too large for one device is split over the device-mesh axis ``space``:

1. **Partition** the real nodes into ``parts`` sets: recursive coordinate bisection
   (`coordinate_bisection`, balanced to one node, no dependency) or METIS's multilevel
   k-way partition of the mesh graph (`metis_partition`, the optional ``pymetis`` extra;
   Karypis & Kumar, SIAM J. Sci. Comput. 20, 1998).
2. **Assign every edge to the partition that owns its receiver**, so the per-receiver
   softmax of edge attention and the per-receiver sum of message passing stay local. An edge
   into a global node (a model token replicated on every device) goes to the owner of its
   sender; one between global nodes to partition 0.
3. **Halo**: the senders of a partition's edges that another partition owns. `partition_graph`
   pads every partition to the same sizes (owned nodes, halo slots, edges) with masks, and
   makes a send plan: for each device shift ``k`` (device ``q`` sends to ``(q + k) mod P``)
   the owned rows each device sends, padded to the largest such list over the devices.
4. **Exchange** (`halo_exchange`, inside `jax.shard_map`): one `lax.ppermute` per shift that
   has any halo, of the rows in the plan only: the bytes moved per layer are the (padded)
   halo, never the whole feature array.

A partition's local node axis is ``[owned (n_own) | halo (n_halo) | global (n_global)]``; edge
receivers index the owned and global rows, senders any row. Segments shared by all
partitions (the global nodes') are reduced over the axis by `shared_segment_reduce`
(``pmax`` of the softmax maxima, ``psum`` of its sums and of the aggregated messages).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int

__all__ = ["GraphPartition", "coordinate_bisection", "halo_exchange", "metis_partition",
           "partition_graph", "shared_segment_reduce"]


def coordinate_bisection(points: np.ndarray, parts: int) -> np.ndarray:
    """Recursive coordinate bisection: split the node set at the median of its longest
    coordinate extent, recursively, in proportion to the parts left on each side.

    **Arguments:** `points` ``(nodes, dim)``; `parts` ≥ 1 (any count, not only powers of two).

    **Returns:** ``(nodes,)`` part ids in ``[0, parts)``; part sizes differ by at most one
    node per level (⌈log2 parts⌉ levels).
    """
    points = np.asarray(points, np.float64)
    out = np.zeros(points.shape[0], np.int64)

    def split(ids: np.ndarray, first: int, count: int) -> None:
        if count == 1 or ids.size == 0:
            out[ids] = first
            return
        left = count // 2
        sub = points[ids]
        axis = int(np.argmax(sub.max(0) - sub.min(0))) if ids.size else 0
        # stable: ties broken by node id, so the partition is deterministic
        order = ids[np.lexsort((ids, sub[:, axis]))]
        cut = int(round(ids.size * left / count))
        split(order[:cut], first, left)
        split(order[cut:], first + left, count - left)

    split(np.arange(points.shape[0]), 0, int(parts))
    return out


def metis_partition(senders: np.ndarray, receivers: np.ndarray, n_nodes: int, parts: int,
                    *, seed: int = 0) -> np.ndarray:
    """METIS k-way partition of the graph of an edge list (edges to or from nodes ≥
    `n_nodes`, such as global tokens, are ignored), minimising the edges cut.

    Needs ``pymetis`` (``pip install sciops[partition]``).

    **Returns:** ``(n_nodes,)`` part ids in ``[0, parts)``.
    """
    try:
        import pymetis
    except ImportError:
        raise ImportError("metis_partition needs pymetis: pip install 'sciops[partition]' "
                          "(or use coordinate_bisection)") from None
    import scipy.sparse as sp

    s, r = np.asarray(senders), np.asarray(receivers)
    keep = (s < n_nodes) & (r < n_nodes) & (s != r)
    a = sp.coo_matrix((np.ones(int(keep.sum()), bool), (r[keep], s[keep])),
                      shape=(n_nodes, n_nodes)).tocsr()
    a = ((a + a.T) > 0).tocsr()
    if parts == 1:
        return np.zeros(n_nodes, np.int64)
    opts = pymetis.Options(seed=seed)
    csr = pymetis.CSRAdjacency(a.indptr.astype(np.int64), a.indices.astype(np.int64))
    _, labels = pymetis.part_graph(int(parts), csr, options=opts)
    return np.asarray(labels, np.int64)


@dataclasses.dataclass(frozen=True)
class GraphPartition:
    """A node partition of one graph with its halo plan, padded to equal sizes per part.

    **Fields** (arrays stacked over the parts, the leading axis of length ``parts``):

    - `parts`, `n_own`, `n_halo`, `n_global`: sizes of the local node axis
      ``[owned | halo | global]``.
    - `node_index` ``(parts, n_own)``: the original id of each owned slot (0 where padded);
      `node_valid` ``(parts, n_own)``: which slots hold a node.
    - `node_slot` ``(n_pad,)``: for each original node, its flat slot ``p·n_own + i`` (0 for
      nodes of no part: padding).
    - `shifts`: the device shifts ``k`` with halo traffic; `send[k]` ``(parts, S_k)``: the
      owned rows device ``q`` sends to device ``(q + k) mod parts`` (their order is the
      order of the receiver's halo block for ``k``; padded with row 0).
    - `halo_index` ``(parts, n_halo)``: the original id of each halo slot (0 where padded).
    - `edges`: one entry per edge list given: `(senders, receivers, take, valid)`, each
      ``(parts, e_loc)``: local sender and receiver rows, the position of the edge in the
      original list (0 where padded) and which edge slots hold an edge.
    """

    parts: int
    n_own: int
    n_halo: int
    n_global: int
    node_index: np.ndarray
    node_valid: np.ndarray
    node_slot: np.ndarray
    shifts: tuple[int, ...]
    send: dict[int, np.ndarray]
    halo_index: np.ndarray
    edges: tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], ...]

    @property
    def halo_nodes(self) -> int:
        """Real halo nodes over all parts (the rows one exchange must move, unpadded)."""
        return int(sum(self._halo_counts))

    @property
    def sent_rows(self) -> int:
        """Rows one exchange moves over all devices, padding included: ``parts · Σ_k S_k``."""
        return int(self.parts * sum(v.shape[1] for v in self.send.values()))

    _halo_counts: tuple[int, ...] = ()


def _round(n, multiple) -> int:
    return int(-(-max(int(n), 1) // multiple) * multiple)


def partition_graph(part_of: np.ndarray, n_pad: int,
                    edge_lists: Sequence[tuple[np.ndarray, np.ndarray]], *, n_global: int = 0,
                    parts: int | None = None, node_multiple: int = 8, edge_multiple: int = 256,
                    at_least: GraphPartition | None = None) -> GraphPartition:
    """The padded per-part layout and halo plan of a graph (see the module docstring).

    **Arguments:**

    - `part_of` ``(n,)``: the part of each real node ``0..n-1`` (e.g. `coordinate_bisection`).
    - `n_pad`: the padded node count of the unpartitioned graph; global nodes have ids
      ``n_pad .. n_pad + n_global - 1`` (as `sciops.nn.head_edge_sets` numbers them with
      ``first_global = n_pad``); ids ``n .. n_pad - 1`` are padding and carry no edges.
    - `edge_lists`: ``(senders, receivers)`` of each graph (one halo plan serves them all:
      the union of their senders).
    - `n_global`: the number of global nodes, replicated on every part.
    - `parts`: the number of parts (default ``max(part_of) + 1``).
    - `node_multiple`, `edge_multiple`: padded sizes are multiples of these.
    - `at_least`: a partition of another graph (same parts, as many edge lists) whose padded
      sizes this one must reach (several meshes in one batch share one layout).

    **Raises:** `ValueError` if an edge touches a padding node.
    """
    part_of = np.asarray(part_of, np.int64)
    n = part_of.size
    if parts is None:
        parts = int(part_of.max()) + 1 if n else 1
    counts = np.bincount(part_of, minlength=parts)
    n_own = _round(counts.max(), node_multiple)
    if at_least is not None:
        n_own = max(n_own, at_least.n_own)
    # owned rows: nodes of each part in increasing id
    order = np.argsort(part_of, kind="stable")
    start = np.concatenate([[0], np.cumsum(counts)])
    pos = np.empty(n, np.int64)  # row of each node within its part
    pos[order] = np.arange(n) - np.repeat(start[:-1], counts)
    node_index = np.zeros((parts, n_own), np.int64)
    node_valid = np.zeros((parts, n_own), bool)
    node_index[part_of, pos] = np.arange(n)
    node_valid[part_of, pos] = True
    node_slot = np.zeros(n_pad, np.int64)
    node_slot[:n] = part_of * n_own + pos

    lists = []
    for s, r in edge_lists:
        s, r = np.asarray(s, np.int64), np.asarray(r, np.int64)
        bad = ((s >= n) & (s < n_pad)) | ((r >= n) & (r < n_pad))
        if bad.any():
            raise ValueError(f"partition_graph: edge {int(np.argmax(bad))} touches a padding "
                             f"node (ids {n}..{n_pad - 1})")
        glob_r, glob_s = r >= n_pad, s >= n_pad
        owner = np.where(~glob_r, part_of[np.minimum(r, n - 1)],
                         np.where(~glob_s, part_of[np.minimum(s, n - 1)], 0))
        lists.append((s, r, owner, glob_s, glob_r))

    # halo: per (receiving part p, sending part q) the sorted real senders p needs from q
    need: dict[tuple[int, int], np.ndarray] = {}
    for p in range(parts):
        ids = [s[(owner == p) & ~gs] for s, _, owner, gs, _ in lists]
        ids = np.unique(np.concatenate(ids)) if ids else np.zeros(0, np.int64)
        ids = ids[part_of[ids] != p]
        for q in np.unique(part_of[ids]):
            need[(p, int(q))] = ids[part_of[ids] == q]
    sizes = {k: max((len(v) for (p, q), v in need.items() if (p - q) % parts == k), default=0)
             for k in range(1, parts)}
    if at_least is not None:
        for k, v in at_least.send.items():
            sizes[k] = max(sizes[k], v.shape[1])
    shifts = tuple(k for k in range(1, parts) if sizes[k])
    offset, at = {}, 0
    for k in shifts:
        offset[k], at = at, at + sizes[k]
    n_halo = at
    send = {k: np.zeros((parts, sizes[k]), np.int64) for k in shifts}
    halo_index = np.zeros((parts, max(n_halo, 0)), np.int64)
    halo_row = [dict() for _ in range(parts)]  # part -> {node id: local row}
    halo_counts = []
    for (p, q), ids in need.items():
        k = (p - q) % parts
        send[k][q, :len(ids)] = pos[ids]
        rows = n_own + offset[k] + np.arange(len(ids))
        halo_index[p, rows - n_own] = ids
        halo_row[p].update(zip(ids.tolist(), rows.tolist(), strict=True))
        halo_counts.append(len(ids))

    first_global = n_own + n_halo
    edges = []
    for i, (s, r, owner, _, _) in enumerate(lists):
        e_counts = np.bincount(owner, minlength=parts)
        e_loc = _round(e_counts.max(), edge_multiple)
        if at_least is not None:
            e_loc = max(e_loc, at_least.edges[i][0].shape[1])
        ls = np.zeros((parts, e_loc), np.int64)
        lr = np.zeros((parts, e_loc), np.int64)
        take = np.zeros((parts, e_loc), np.int64)
        valid = np.zeros((parts, e_loc), bool)
        for p in range(parts):
            sel = np.flatnonzero(owner == p)
            es, er = s[sel], r[sel]
            loc_s = np.empty(sel.size, np.int64)
            g = es >= n_pad
            loc_s[g] = first_global + es[g] - n_pad
            mine = ~g & (part_of[np.minimum(es, n - 1)] == p)
            loc_s[mine] = pos[es[mine]]
            other = ~g & ~mine
            if other.any():
                loc_s[other] = np.fromiter((halo_row[p][i] for i in es[other].tolist()),
                                           np.int64, int(other.sum()))
            loc_r = np.where(er >= n_pad, first_global + er - n_pad, pos[np.minimum(er, n - 1)])
            m = sel.size
            ls[p, :m], lr[p, :m], take[p, :m], valid[p, :m] = loc_s, loc_r, sel, True
        edges.append((ls, lr, take, valid))
    return GraphPartition(parts=parts, n_own=n_own, n_halo=n_halo, n_global=int(n_global),
                          node_index=node_index, node_valid=node_valid, node_slot=node_slot,
                          shifts=shifts, send=send, halo_index=halo_index, edges=tuple(edges),
                          _halo_counts=tuple(halo_counts))


def halo_exchange(x: Float[Array, "nodes *channels"], send: Sequence[Int[Array, " _rows"]],
                  shifts: Sequence[int], parts: int, axis_name: str = "space"
                  ) -> Float[Array, "halo *channels"]:
    """The halo rows of this device's partition, from the devices that own them.

    Runs inside `jax.shard_map` over `axis_name`. For each shift ``k``, every device ``q``
    sends ``x[send[k]]`` to device ``(q + k) mod parts`` (`lax.ppermute`); the received blocks,
    concatenated in the order of `shifts`, are the halo rows of `GraphPartition`.

    **Arguments:**

    - `x`: this device's owned rows.
    - `send`: per shift, the owned rows to send (this device's row of `GraphPartition.send`).
    - `shifts`: the shifts (static), as `GraphPartition.shifts`.
    - `parts`: the size of the axis.

    **Returns:** ``(Σ_k S_k, *channels)``, empty when there is no halo.
    """
    blocks = [lax.ppermute(x[idx], axis_name, perm=[(q, (q + k) % parts) for q in range(parts)])
              for k, idx in zip(shifts, send, strict=True)]
    if not blocks:
        return jnp.zeros((0, *x.shape[1:]), x.dtype)
    return jnp.concatenate(blocks)


def shared_segment_reduce(first_shared: int, axis_name: str = "space"
                          ) -> Callable[[Array, str], Array]:
    """A `segment_reduce` for `sciops.nn.segment_softmax`/`edge_attention` on a partition:
    the segments from `first_shared` on (the global nodes, replicated on every device) are
    reduced over `axis_name` (``"max"``: `lax.pmax`, ``"sum"``: `lax.psum`), the others are
    local."""

    def reduce(x: Array, op: str) -> Array:
        shared = x[first_shared:]
        if shared.shape[0] == 0:
            return x
        shared = lax.pmax(shared, axis_name) if op == "max" else lax.psum(shared, axis_name)
        return jnp.concatenate([x[:first_shared], shared])

    return reduce
