"""Multi-head attention restricted to the edges of a graph, on an edge list (memory O(edges)).

The kernels are plain functions over arrays (`segment_softmax`, `edge_attention`, and the dense
reference `dense_masked_attention`); `EdgeAttention` holds the projections and calls them.
Edges are directed pairs ``senders[e] -> receivers[e]``: node ``receivers[e]`` attends to node
``senders[e]``. A per-edge, per-head mask lets every head see its own neighbourhood (one head on
the mesh edges, another on 2-hop edges, a third on global nodes...) while all heads share one
padded edge list.

Reference: Garnier et al., "Training Transformers for Mesh-Based Simulations" (2025), whose
attention is restricted to the mesh adjacency (plus augmentations) rather than all node pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .. import _random
from ._precision import at_least_float32

# Index and mask arrays may come straight from host-side graph building (numpy).
_A = Array | np.ndarray

__all__ = ["EdgeAttention", "dense_masked_attention", "edge_attention", "segment_softmax"]


def segment_softmax(logits: Float[_A, "edges heads"], segment_ids: Int[_A, " edges"],
                    num_segments: int, mask: Bool[_A, "edges heads"] | None = None, *,
                    segment_reduce: Callable[[Array, str], Array] | None = None
                    ) -> Float[Array, "edges heads"]:
    """Softmax of edge logits over the edges that share a segment (a receiving node).

    $$\\alpha_e = \\frac{\\exp(s_e - m_{r(e)})}{\\sum_{e': r(e')=r(e)} \\exp(s_{e'} - m_{r(e)})},
    \\qquad m_r = \\max_{e: r(e)=r} s_e .$$

    Masked-out edges get weight 0; a segment with no unmasked edge gets all-zero weights
    (not NaN), so padded nodes are harmless.

    **Arguments:**

    - `logits`: per-edge, per-head scores.
    - `segment_ids`: the receiving node of every edge, in ``[0, num_segments)``.
    - `num_segments`: the number of (padded) nodes.
    - `mask`: which edge-head pairs exist (default all).
    - `segment_reduce`: on a partitioned graph, ``segment_reduce(values, op)`` combines the
      per-segment maxima (``op="max"``) and sums (``"sum"``) of segments that span devices
      (`sciops.nn.shared_segment_reduce`); default: every segment is local.

    **Returns:** the attention weights, same shape as `logits`.
    """
    if mask is None:
        mask = jnp.ones(logits.shape, bool)
    dtype, logits = logits.dtype, at_least_float32(logits)  # exp and sums: float32 at least
    neg = jnp.asarray(-jnp.inf, logits.dtype)
    masked = jnp.where(mask, logits, neg)
    # The maximum is a constant shift that cancels in the ratio: no gradient needs to flow.
    seg_max = jax.ops.segment_max(jax.lax.stop_gradient(masked), segment_ids,
                                  num_segments=num_segments)
    if segment_reduce is not None:
        seg_max = segment_reduce(seg_max, "max")
    # Empty segments give -inf maxima; replace them so no inf - inf = NaN appears below.
    seg_max = jnp.where(jnp.isfinite(seg_max), seg_max, 0.0)
    ex = jnp.where(mask, jnp.exp(masked - seg_max[segment_ids]), 0.0)
    denom = jax.ops.segment_sum(ex, segment_ids, num_segments=num_segments)
    if segment_reduce is not None:
        denom = segment_reduce(denom, "sum")
    denom = denom[segment_ids]
    return (ex / jnp.where(denom > 0, denom, 1.0)).astype(dtype)


def edge_attention(q: Float[_A, "nodes heads dim"], k: Float[_A, "nodes heads dim"],
                   v: Float[_A, "nodes heads vdim"], senders: Int[_A, " edges"],
                   receivers: Int[_A, " edges"], mask: Bool[_A, "edges heads"], *,
                   segment_reduce: Callable[[Array, str], Array] | None = None
                   ) -> Float[Array, "nodes heads vdim"]:
    """Scaled dot-product attention over graph edges.

    $$y_i = \\sum_{e: r(e)=i} \\alpha_e\\, v_{s(e)}, \\qquad
    \\alpha = \\operatorname{segment\\_softmax}\\big(q_{r(e)}\\cdot k_{s(e)} / \\sqrt{d}\\big).$$

    Everything is gathered per edge, so time and memory are O(edges · heads · dim), never
    O(nodes²). A padded edge is one whose mask is False in every head.

    **Arguments:**

    - `q`, `k`, `v`: per-node queries, keys, values split into heads.
    - `senders`, `receivers`: the edge list (indices into the node axis).
    - `mask`: which heads use each edge.
    - `segment_reduce`: combines receivers that span devices on a partitioned graph (see
      `segment_softmax`); the aggregated messages of those receivers are summed by it too.

    **Returns:** per-node attention outputs; a node with no edge in a head gets zeros there.
    """
    n = q.shape[0]
    scale = 1.0 / math.sqrt(q.shape[-1])
    logits = jnp.einsum("ehd,ehd->eh", q[receivers], k[senders]) * scale
    alpha = segment_softmax(logits, receivers, n, mask, segment_reduce=segment_reduce)
    msgs = alpha[..., None] * v[senders]
    out = jax.ops.segment_sum(msgs, receivers, num_segments=n)
    return out if segment_reduce is None else segment_reduce(out, "sum")


def dense_masked_attention(q: Float[_A, "nodes heads dim"], k: Float[_A, "nodes heads dim"],
                           v: Float[_A, "nodes heads vdim"],
                           adjacency: Bool[_A, "heads nodes nodes"]
                           ) -> Float[Array, "nodes heads vdim"]:
    """The O(nodes²) reference: full attention with non-edges masked to $-\\infty$.

    `adjacency[h, i, j]` is True when node `i` attends to node `j` in head `h`. Rows with no
    True entry give zeros (as `edge_attention`).
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    logits = jnp.einsum("ihd,jhd->hij", q, k) * scale
    logits = jnp.where(adjacency, logits, -jnp.inf)
    row_max = jnp.max(logits, axis=-1, keepdims=True)
    row_max = jnp.where(jnp.isfinite(row_max), row_max, 0.0)
    ex = jnp.where(adjacency, jnp.exp(logits - row_max), 0.0)
    denom = ex.sum(-1, keepdims=True)
    alpha = ex / jnp.where(denom > 0, denom, 1.0)
    return jnp.einsum("hij,jhd->ihd", alpha, v)


class EdgeAttention(eqx.Module):
    """Multi-head self-attention of node features along graph edges.

    $y = W_O \\,[\\operatorname{edge\\_attention}(W_Q x, W_K x, W_V x)]_{\\text{heads}}$.

    **Arguments:**

    - `size`: feature size (input and output).
    - `heads`: number of heads; `size` must be divisible by it.
    - `key`: PRNG key.
    """

    wq: Float[Array, "in heads dim"]
    wk: Float[Array, "in heads dim"]
    wv: Float[Array, "in heads dim"]
    wo: Float[Array, "heads dim out"]
    bo: Float[Array, " out"]
    heads: int = eqx.field(static=True)

    def __init__(self, size: int, heads: int, dtype=None, *, key: PRNGKeyArray):
        if size % heads:
            raise ValueError(f"EdgeAttention: size {size} is not divisible by heads {heads}")
        dtype = dtype or jnp.float32
        dh = size // heads
        kq, kk, kv, ko = jax.random.split(key, 4)
        lim = 1.0 / math.sqrt(size)
        init = lambda k, shape: _random.uniform(k, shape, dtype, -lim, lim)  # noqa: E731
        self.wq = init(kq, (size, heads, dh))
        self.wk = init(kk, (size, heads, dh))
        self.wv = init(kv, (size, heads, dh))
        self.wo = init(ko, (heads, dh, size))
        self.bo = jnp.zeros((size,), dtype)
        self.heads = heads

    def __call__(self, x: Float[_A, "nodes channels"], senders: Int[_A, " edges"],
                 receivers: Int[_A, " edges"], mask: Bool[_A, "edges heads"], *,
                 segment_reduce: Callable[[Array, str], Array] | None = None
                 ) -> Float[Array, "nodes channels"]:
        q = jnp.einsum("nc,chd->nhd", x, self.wq)
        k = jnp.einsum("nc,chd->nhd", x, self.wk)
        v = jnp.einsum("nc,chd->nhd", x, self.wv)
        y = edge_attention(q, k, v, senders, receivers, mask, segment_reduce=segment_reduce)
        return jnp.einsum("nhd,hdc->nc", y, self.wo) + self.bo
