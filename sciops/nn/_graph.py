"""Graph utilities for mesh attention, computed once per mesh on the host (numpy / scipy.sparse).

- connectivity: mesh edges from triangles, K-hop neighbourhoods, dilated neighbourhoods (nodes
  at exactly ``m·d`` hops), global attention nodes linked to every node, random extra edges;
  `Neighbourhood` describes one head's neighbourhood and `head_edge_sets` merges the heads of a
  layer into one edge list with an ``(edges, heads)`` mask;
- positional encodings: Laplacian eigenvectors and random-walk return probabilities;
- padding to fixed sizes (`round_up`, `pad_axis`) so that a jitted step compiles once.

Reference: Garnier et al., "Training Transformers for Mesh-Based Simulations" (2025), Sec. 3
(dilated and K-hop adjacency, global and random connections, per-head/per-layer choices).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp

__all__ = [
    "Neighbourhood",
    "adjacency",
    "dilated_pairs",
    "global_pairs",
    "head_edge_sets",
    "hop_levels",
    "khop_pairs",
    "laplacian_eigenvectors",
    "mesh_edges",
    "pad_axis",
    "random_pairs",
    "random_walk_encoding",
    "round_up",
]


@dataclasses.dataclass(frozen=True)
class Neighbourhood:
    """The nodes one attention head sees (always including the node itself).

    - `hops` (K) and `dilation` (d): nodes at exactly ``m·d`` hops for ``m = 1..K``; with
      ``d = 1`` this is the K-hop neighbourhood (every node within K hops).
    - `random`: number of extra random senders per node (fixed per mesh, seeded).
    - `global_nodes`: attend to and from the model's global nodes (if it has any).
    """

    hops: int = 1
    dilation: int = 1
    random: int = 0
    global_nodes: bool = False

    def __post_init__(self):
        if self.hops < 0 or self.dilation < 1 or self.random < 0:
            raise ValueError(f"Neighbourhood: need hops >= 0, dilation >= 1, random >= 0; got "
                             f"hops={self.hops}, dilation={self.dilation}, random={self.random}")


def mesh_edges(cells: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Directed edges (both directions, no duplicates, no self loops) of a simplicial mesh.

    **Arguments:** `cells` ``(cells, vertices)`` node indices; `n_nodes`.
    **Returns:** `(senders, receivers)`, sorted by receiver then sender.
    """
    cells = np.asarray(cells, dtype=np.int64)
    k = cells.shape[1]
    pairs = [cells[:, [a, b]] for a in range(k) for b in range(k) if a != b]
    p = np.concatenate(pairs)
    a = sp.coo_matrix((np.ones(len(p), bool), (p[:, 1], p[:, 0])), shape=(n_nodes, n_nodes)).tocsr()
    a.sum_duplicates()
    r, s = a.nonzero()
    return s.astype(np.int64), r.astype(np.int64)


def adjacency(senders: np.ndarray, receivers: np.ndarray, n_nodes: int) -> sp.csr_matrix:
    """The symmetric boolean adjacency matrix ``A[r, s]`` of an edge list (self loops dropped)."""
    a = sp.coo_matrix((np.ones(len(senders), bool), (receivers, senders)),
                      shape=(n_nodes, n_nodes)).tocsr()
    a = ((a + a.T) > 0).astype(bool)
    a.setdiag(False)
    a.eliminate_zeros()
    return a.tocsr()


def hop_levels(adj: sp.csr_matrix, max_hops: int) -> list[sp.csr_matrix]:
    """``levels[h]``: boolean matrix of node pairs at hop distance exactly ``h`` (h = 0..max_hops).

    Breadth-first by sparse products: $R_h = R_{h-1} \\lor (R_{h-1} A)$, level $h = R_h \\setminus
    R_{h-1}$; cost O(nnz(R_h) · degree).
    """
    n = adj.shape[0]
    a = adj.astype(np.int32)
    reach = sp.identity(n, dtype=np.int32, format="csr")
    levels = [reach.astype(bool)]
    for _ in range(max_hops):
        new_reach = ((reach + reach @ a) > 0).astype(np.int32)
        levels.append((new_reach - reach).astype(bool).tocsr())
        levels[-1].eliminate_zeros()
        reach = new_reach.tocsr()
    return levels


def _pairs(m: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    r, s = sp.csr_matrix(m).nonzero()
    return s.astype(np.int64), r.astype(np.int64)


def khop_pairs(adj: sp.csr_matrix, hops: int) -> tuple[np.ndarray, np.ndarray]:
    """Directed pairs ``(sender, receiver)`` with hop distance in ``[1, hops]``."""
    return dilated_pairs(adj, hops, 1)


def dilated_pairs(adj: sp.csr_matrix, hops: int, dilation: int) -> tuple[np.ndarray, np.ndarray]:
    """Directed pairs at hop distance exactly ``m·dilation`` for ``m = 1..hops``."""
    if hops == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    levels = hop_levels(adj, hops * dilation)
    m = levels[dilation].copy()
    for j in range(2, hops + 1):
        m = m + levels[j * dilation]
    return _pairs(m)


def global_pairs(n_nodes: int, first_global: int, n_global: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges between every real node ``[0, n_nodes)`` and every global node (both directions),
    plus edges among the global nodes; global node ``g`` has index ``first_global + g``."""
    nodes = np.arange(n_nodes, dtype=np.int64)
    s, r = [], []
    for g in range(n_global):
        gi = first_global + g
        s += [nodes, np.full(n_nodes, gi)]
        r += [np.full(n_nodes, gi), nodes]
    glob = first_global + np.arange(n_global, dtype=np.int64)
    gs, gr = np.meshgrid(glob, glob, indexing="ij")
    s.append(gs.ravel())
    r.append(gr.ravel())
    return np.concatenate(s), np.concatenate(r)


def random_pairs(n_nodes: int, per_node: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``per_node`` uniformly random senders for every receiver (self pairs resampled away)."""
    r = np.repeat(np.arange(n_nodes, dtype=np.int64), per_node)
    s = rng.integers(0, n_nodes - 1, size=r.size) if n_nodes > 1 else np.zeros_like(r)
    s = np.where(s >= r, s + 1, s) if n_nodes > 1 else s  # skip r itself, uniform over the rest
    return s.astype(np.int64), r


def head_edge_sets(adj: sp.csr_matrix, heads: tuple[Neighbourhood, ...], *, n_global: int = 0,
                   first_global: int | None = None, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One edge list for a layer whose heads see different neighbourhoods.

    **Arguments:**

    - `adj`: the mesh adjacency (``n`` real nodes).
    - `heads`: the neighbourhood of each head.
    - `n_global`, `first_global`: the model's global nodes, indexed ``first_global + g``
      (default right after the real nodes).
    - `seed`: for random edges.

    **Returns:** `(senders, receivers, mask)` with `mask` of shape ``(edges, heads)``: the union
    of the heads' pairs (self loops of real and global nodes included) and which head uses which.
    """
    n = adj.shape[0]
    first_global = n if first_global is None else first_global
    total = max(n, first_global + n_global)
    rng = np.random.default_rng(seed)
    selfs = np.arange(n, dtype=np.int64)
    gself = first_global + np.arange(n_global, dtype=np.int64)
    cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    codes = []
    for spec in heads:
        key = (spec.hops, spec.dilation)
        if key not in cache:
            cache[key] = dilated_pairs(adj, spec.hops, spec.dilation)
        s, r = [selfs, cache[key][0]], [selfs, cache[key][1]]
        if spec.random:
            rs, rr = random_pairs(n, spec.random, rng)
            s.append(rs)
            r.append(rr)
        if n_global:
            if spec.global_nodes:
                gs, gr = global_pairs(n, first_global, n_global)
            else:  # global nodes keep a self loop so that their softmax is never empty
                gs, gr = gself, gself
            s.append(gs)
            r.append(gr)
        s, r = np.concatenate(s), np.concatenate(r)
        codes.append(np.unique(r * total + s))
    union = np.unique(np.concatenate(codes))
    mask = np.stack([np.isin(union, c, assume_unique=True) for c in codes], axis=1)
    return union % total, union // total, mask


def laplacian_eigenvectors(adj: sp.csr_matrix, k: int, *, normalized: bool = True
                           ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` eigenpairs of the graph Laplacian after the trivial one(s).

    $L = I - D^{-1/2} A D^{-1/2}$ (normalised) or $L = D - A$; $L v = \\lambda v$, eigenvalues
    ascending. Their signs are arbitrary: models should flip them at random during training
    (Dwivedi et al., "Benchmarking GNNs", 2020). The eigenvalues of a disconnected graph's
    zero modes are skipped only for the first component (index 0).

    **Returns:** `(eigenvalues (k,), eigenvectors (nodes, k))`; zero-padded if the graph has
    fewer than ``k + 1`` nodes.
    """
    n = adj.shape[0]
    a = sp.csr_matrix(adj, dtype=np.float64)
    deg = np.asarray(a.sum(1)).ravel()
    if normalized:
        dinv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-300)), 0.0)
        lap = sp.identity(n) - sp.diags(dinv) @ a @ sp.diags(dinv)
    else:
        lap = sp.diags(deg) - a
    m = min(k + 1, n)
    if n <= 2000 or m >= n - 1:
        w, v = np.linalg.eigh(lap.toarray())
        w, v = w[:m], v[:, :m]
    else:
        import scipy.sparse.linalg as spla

        # Shift-invert just below 0 finds the smallest eigenvalues quickly and stably.
        w, v = spla.eigsh(sp.csc_matrix(lap), k=m, sigma=-1e-3, which="LM")
        order = np.argsort(w)
        w, v = w[order], v[:, order]
    w, v = w[1:], v[:, 1:]
    if w.size < k:
        w = np.pad(w, (0, k - w.size))
        v = np.pad(v, ((0, 0), (0, k - v.shape[1])))
    return w, v


def random_walk_encoding(adj: sp.csr_matrix, steps: int) -> np.ndarray:
    """Random-walk structural encoding: $p_i^{(m)} = [(D^{-1}A)^m]_{ii}$, ``m = 1..steps``.

    The probability that a random walk returns to its start after m steps (Dwivedi et al.,
    "Graph neural networks with learnable structural and positional representations", 2022).

    **Returns:** ``(nodes, steps)``.
    """
    a = sp.csr_matrix(adj, dtype=np.float64)
    deg = np.asarray(a.sum(1)).ravel()
    rw = sp.diags(np.where(deg > 0, 1.0 / np.maximum(deg, 1e-300), 0.0)) @ a
    out = np.zeros((a.shape[0], steps))
    p = sp.identity(a.shape[0], format="csr")
    for m in range(steps):
        p = (p @ rw).tocsr()
        out[:, m] = p.diagonal()
    return out


def round_up(n: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is ≥ n (buckets padded sizes across meshes)."""
    return int(-(-max(n, 1) // multiple) * multiple)


def pad_axis(x: np.ndarray, size: int, axis: int = 0, fill=0) -> np.ndarray:
    """Pad `x` along `axis` to `size` with `fill` (ValueError if it is already longer)."""
    x = np.asarray(x)
    extra = size - x.shape[axis]
    if extra < 0:
        raise ValueError(f"pad_axis: length {x.shape[axis]} exceeds the padded size {size}")
    if extra == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, extra)
    return np.pad(x, widths, constant_values=fill)
