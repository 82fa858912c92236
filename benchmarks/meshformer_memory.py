"""Peak memory of forward + backward for edge-list attention vs dense masked attention.

Meshes: triangulated m×m grids (≈10k, 30k, 100k nodes; 1-hop neighbourhoods with self loops,
≈7 edges per node). Memory comes from XLA's compiled memory analysis
(`jax.jit(grad).lower(...).compile().memory_analysis()`: temporaries + arguments + outputs), so
dense attention can be analysed at sizes where it would not fit. Two models: one attention
layer on given q, k, v (the kernel; 4 heads × 16), and the full mesh transformer (4 layers,
width 64) for the sparse side. The 100k-node transformer step is also run and timed.

    nice -n 5 python benchmarks/meshformer_memory.py
"""

from __future__ import annotations

import json
import os
import time


def grid_mesh(m):
    import numpy as np

    idx = np.arange(m * m).reshape(m, m)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    cells = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    xy = np.stack(np.meshgrid(np.linspace(0, 1, m), np.linspace(0, 1, m), indexing="ij"), -1)
    return xy.reshape(-1, 2), cells


def _bytes(compiled):
    ma = compiled.memory_analysis()
    return int(ma.temp_size_in_bytes + ma.argument_size_in_bytes + ma.output_size_in_bytes)


def main(sizes=(100, 173, 316), run_largest=True):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from sciops.models.meshformer import MeshTransformer
    from sciops.nn import (
        Neighbourhood,
        adjacency,
        dense_masked_attention,
        edge_attention,
        head_edge_sets,
        mesh_edges,
    )

    rows = []
    heads, dh = 4, 16
    for m in sizes:
        pts, cells = grid_mesh(m)
        n = m * m
        s, r = mesh_edges(cells, n)
        snd, rcv, mask = head_edge_sets(adjacency(s, r, n), (Neighbourhood(1),) * heads)
        e = len(snd)
        q = jax.ShapeDtypeStruct((n, heads, dh), jnp.float32)

        def sparse_loss(q, k, v, snd=snd, rcv=rcv, mask=mask):
            return jnp.sum(edge_attention(q, k, v, snd, rcv, mask) ** 2)

        def dense_loss(q, k, v, adj):
            return jnp.sum(dense_masked_attention(q, k, v, adj) ** 2)

        t0 = time.perf_counter()
        sparse = _bytes(jax.jit(jax.grad(sparse_loss, argnums=(0, 1, 2))).lower(q, q, q).compile())
        adj = jax.ShapeDtypeStruct((heads, n, n), jnp.bool_)
        dense = _bytes(jax.jit(jax.grad(dense_loss, argnums=(0, 1, 2))).lower(q, q, q, adj).compile())
        model = MeshTransformer(2, 2, 64, heads, 4, 2, 1, 0, (0, 0, 0, 0), key=jax.random.key(0))
        params, static = eqx.partition(model, eqx.is_array)
        x = jax.ShapeDtypeStruct((n, 2), jnp.float32)

        def tf_loss(p, x, static=static, snd=snd, rcv=rcv, mask=mask):
            return jnp.sum(eqx.combine(p, static)(x, ((snd, rcv, mask),)) ** 2)

        tf_compiled = jax.jit(jax.grad(tf_loss)).lower(params, x).compile()
        tf_mem = _bytes(tf_compiled)
        row = {"nodes": n, "edges": e, "attention_sparse_MiB": sparse / 2**20,
               "attention_dense_MiB": dense / 2**20, "transformer_sparse_MiB": tf_mem / 2**20,
               "compile_s": time.perf_counter() - t0}
        if run_largest and m == sizes[-1]:
            xr = jnp.asarray(pts, jnp.float32)
            g = tf_compiled(params, xr)
            jax.block_until_ready(g)
            t0 = time.perf_counter()
            jax.block_until_ready(tf_compiled(params, xr))
            row["transformer_fwd_bwd_s"] = time.perf_counter() - t0
        rows.append(row)
        print(json.dumps(row), flush=True)
    nodes = np.array([r["nodes"] for r in rows], float)
    out = {"rows": rows, "load": os.getloadavg()}
    for k in ("attention_sparse_MiB", "transformer_sparse_MiB", "attention_dense_MiB"):
        out[f"slope_{k}"] = float(np.polyfit(np.log(nodes), np.log([r[k] for r in rows]), 1)[0])
    print(f"\n{'nodes':>8s}{'edges':>10s}{'sparse attn MiB':>17s}{'dense attn MiB':>16s}"
          f"{'ratio':>9s}{'transformer MiB':>17s}")
    for r in rows:
        print(f"{r['nodes']:8d}{r['edges']:10d}{r['attention_sparse_MiB']:17.1f}"
              f"{r['attention_dense_MiB']:16.1f}{r['attention_dense_MiB'] / r['attention_sparse_MiB']:9.0f}"
              f"{r['transformer_sparse_MiB']:17.1f}")
    print(f"log-log slopes: sparse attention {out['slope_attention_sparse_MiB']:.3f}, "
          f"transformer {out['slope_transformer_sparse_MiB']:.3f}, dense {out['slope_attention_dense_MiB']:.3f}; "
          f"load {out['load']}")
    return out


if __name__ == "__main__":
    main()
