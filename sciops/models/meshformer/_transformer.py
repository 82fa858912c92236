"""The mesh transformer: node encoder, pre-norm blocks of edge-restricted attention and a gated
MLP, node decoder (Garnier et al., "Training Transformers for Mesh-Based Simulations", 2025)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from ... import _random
from ...nn import MLP, remat_block, to_compute
from ...nn._attention import EdgeAttention
from ...nn._graph_partition import shared_segment_reduce
from ._partition import is_partitioned, sharded_call

_A = Array | np.ndarray  # host-built index/mask arrays may be numpy

__all__ = ["GatedMLP", "MeshTransformer", "TransformerBlock"]


class GatedMLP(eqx.Module):
    """$x \\mapsto W_2\\,(\\mathrm{gelu}(W_1 x) \\odot W_3 x)$ (Shazeer, "GLU variants improve
    transformers", 2020)."""

    w1: eqx.nn.Linear
    w3: eqx.nn.Linear
    w2: eqx.nn.Linear

    def __init__(self, size: int, hidden: int, *, key: PRNGKeyArray):
        k1, k2, k3 = jax.random.split(key, 3)
        self.w1 = eqx.nn.Linear(size, hidden, key=k1)
        self.w3 = eqx.nn.Linear(size, hidden, key=k3)
        self.w2 = eqx.nn.Linear(hidden, size, key=k2)

    def __call__(self, x: Float[_A, " channels"]) -> Float[Array, " channels"]:
        return self.w2(jax.nn.gelu(self.w1(x)) * self.w3(x))


class TransformerBlock(eqx.Module):
    """Pre-norm block: $h \\leftarrow h + \\mathrm{Attn}(\\mathrm{LN}(h))$,
    $h \\leftarrow h + \\mathrm{GMLP}(\\mathrm{LN}(h))$."""

    norm1: eqx.nn.LayerNorm
    attention: EdgeAttention
    norm2: eqx.nn.LayerNorm
    mlp: GatedMLP

    def __init__(self, width: int, heads: int, mlp_ratio: int, *, key: PRNGKeyArray):
        ka, km = jax.random.split(key)
        self.norm1 = eqx.nn.LayerNorm(width)
        self.attention = EdgeAttention(width, heads, key=ka)
        self.norm2 = eqx.nn.LayerNorm(width)
        self.mlp = GatedMLP(width, mlp_ratio * width, key=km)

    def __call__(self, h: Float[_A, "nodes channels"], senders: Int[_A, " edges"],
                 receivers: Int[_A, " edges"], mask: Bool[_A, "edges heads"], *,
                 segment_reduce=None) -> Float[Array, "nodes channels"]:
        """`segment_reduce`: on a partitioned mesh, the reduction of receivers that span
        devices (`sciops.nn.shared_segment_reduce`)."""
        h = h + self.attention(jax.vmap(self.norm1)(h), senders, receivers, mask,
                               segment_reduce=segment_reduce)
        return h + jax.vmap(self.mlp)(jax.vmap(self.norm2)(h))


class MeshTransformer(eqx.Module):
    """Node features → per-node outputs through attention along (augmented) mesh edges.

    **Arguments:**

    - `in_size`, `out_size`: node input and output features.
    - `width`, `heads`, `n_layers`, `mlp_ratio`: transformer sizes.
    - `encoder_depth`: hidden layers of the encoder and decoder MLPs.
    - `n_global`: learned global tokens appended after the (padded) nodes.
    - `layer_graph`: for each layer, which of the graphs passed to `__call__` it uses.
    - `key`: PRNG key.
    """

    encoder: MLP
    blocks: tuple[TransformerBlock, ...]
    norm: eqx.nn.LayerNorm
    decoder: MLP
    global_tokens: Float[Array, "globals channels"] | None
    layer_graph: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, in_size: int, out_size: int, width: int, heads: int, n_layers: int,
                 mlp_ratio: int, encoder_depth: int, n_global: int, layer_graph: tuple[int, ...],
                 *, key: PRNGKeyArray):
        ke, kd, kg, *kb = jax.random.split(key, 3 + n_layers)
        self.encoder = MLP(in_size, width, width, encoder_depth, key=ke)
        self.blocks = tuple(TransformerBlock(width, heads, mlp_ratio, key=k) for k in kb)
        self.norm = eqx.nn.LayerNorm(width)
        self.decoder = MLP(width, out_size, width, encoder_depth, key=kd)
        self.global_tokens = (0.02 * _random.normal(kg, (n_global, width)) if n_global
                              else None)
        self.layer_graph = tuple(layer_graph)

    def __call__(self, x: Float[_A, "nodes features"], graphs: tuple
                 ) -> Float[Array, "nodes out"]:
        """`graphs[g] = (senders (edges_g,), receivers (edges_g,), mask (edges_g, heads))`, one
        per distinct layer connectivity (their edge counts differ); global tokens have indices
        ≥ nodes."""
        return self._forward(x, graphs)

    def _forward(self, x, graphs, halo=None):
        """`__call__`; with `halo` (a partition, `local_call`) every block runs on the rows
        ``[owned | halo(owned) | global]`` and keeps the owned and global ones, the global
        tokens' softmax and messages reduced over the devices."""
        n = x.shape[0]
        h = jax.vmap(self.encoder)(to_compute(x))  # a training step's compute dtype
        glob = None if self.global_tokens is None else self.global_tokens.astype(h.dtype)
        for block, g in zip(self.blocks, self.layer_graph, strict=False):
            rows = [h] if halo is None else [h, halo(h)]
            first = sum(r.shape[0] for r in rows)
            reduce = None if halo is None else shared_segment_reduce(first)
            rows = rows + ([glob] if glob is not None else [])
            # rematerialised under train.remat
            out = remat_block(block)(jnp.concatenate(rows) if len(rows) > 1 else rows[0],
                                     *graphs[g], segment_reduce=reduce)
            h = out[:n]
            glob = None if glob is None else out[first:]
        return jax.vmap(self.decoder)(jax.vmap(self.norm)(h))

    # The field that `sciops.models.meshformer.prepare` adds for this network.
    prepared_field = "graph0_senders"

    def on_sample(self, x: Float[_A, "nodes features"], sample: dict, edge_norm=None
                  ) -> Float[Array, "nodes out"]:
        """The network on one prepared mesh sample: reads its ``graph{g}_*`` fields (edge
        features are not used: `edge_norm` is accepted for the common signature)."""
        n_graphs = max(self.layer_graph) + 1
        graphs = tuple((sample[f"graph{g}_senders"], sample[f"graph{g}_receivers"],
                        sample[f"graph{g}_mask"]) for g in range(n_graphs))
        if is_partitioned(sample):
            return sharded_call(MeshTransformer.local_call, self, x, graphs, sample)
        return self(x, graphs)

    def local_call(self, x: Float[_A, "own features"], graphs: tuple, halo
                   ) -> Float[Array, "own out"]:
        """The network on one device's partition of a mesh (inside `jax.shard_map`; see
        `sciops.models.meshformer.partition`): `x` holds the owned nodes, `graphs` the local
        edge lists over ``[owned | halo | global]`` rows, `halo(h)` fetches the halo rows of
        owned features before every block. The global tokens are replicated; their softmax and
        messages are reduced over the devices. Equals `__call__` on the whole mesh."""
        return self._forward(x, graphs, halo)
