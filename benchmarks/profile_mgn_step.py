"""Where MeshGraphNet's training step spends its time: an XLA profile of the forward pass and of
the gradient, op time summed by kind of op.

The same model and mesh as `peers_graph.py` (paper scale: latent 128, 15 message-passing
steps, 2 hidden layers; a Delaunay mesh of `--nodes` random points). Each function is compiled
and run once, then traced with `jax.profiler` (a Perfetto trace); the trace's op events are
summed by op name with the numeric suffix removed (``dot_general.188`` -> ``dot_general``);
loop and call containers are left out (their body's ops are counted).
The op sum leaves out time between ops, and on a loaded machine the wall time also holds the
time the process waits for a core, so read the ratios of op sums, not the wall times.

    python benchmarks/profile_mgn_step.py --nodes 2000 --threads 1
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import pathlib
import re
import sys
import tempfile
import time


def op_times(trace_dir: str) -> collections.Counter:
    """Op name (suffix removed) -> summed duration in ms, from the Perfetto trace under
    `trace_dir` (events of the XLA runtime and Python frames are left out)."""
    files = sorted(pathlib.Path(trace_dir).rglob("*.trace.json.gz"))
    events = json.load(gzip.open(files[-1]))
    events = events["traceEvents"] if isinstance(events, dict) else events
    out: collections.Counter = collections.Counter()
    for e in events:
        name = e.get("name", "")
        if e.get("ph") != "X" or "dur" not in e or name.startswith("$") or "Thunk" in name \
                or name.startswith(("PjitFunction", "block_until_ready", "CommonPjRt")):
            continue
        kind = re.sub(r"[.\d]+$", "", name)
        if kind not in ("while", "conditional", "call"):  # containers: their ops count themselves
            out[kind] += e["dur"] / 1e3
    return out


def main(nodes: int = 2000, latent: int = 128, steps: int = 15, top: int = 10) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from peers_graph import graph_inputs

    from sciops.models.meshformer import MeshGraphNet

    x, ef, s, r, y = map(jnp.asarray, graph_inputs(nodes))
    mask = jnp.ones(len(s), bool)
    model = MeshGraphNet(x.shape[1], ef.shape[1], y.shape[1], latent, steps, 2,
                         key=jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def loss(p):
        return jnp.mean((eqx.combine(p, static)(x, ef, s, r, mask) - y) ** 2)

    result = {"nodes": nodes, "edges": int(len(s)), "load": os.getloadavg()}
    for name, fn in (("forward", jax.jit(loss)), ("gradient", jax.jit(jax.grad(loss)))):
        jax.block_until_ready(fn(params))
        walls = []
        for _ in range(3):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(params))
            walls.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as d:
            with jax.profiler.trace(d, create_perfetto_trace=True):
                jax.block_until_ready(fn(params))
            ops = op_times(d)
        result[name] = {"wall_ms": 1e3 * float(np.median(walls)), "op_ms": sum(ops.values()),
                        "top": ops.most_common(top)}
    f, g = result["forward"], result["gradient"]
    print(f"MeshGraphNet latent {latent}, {steps} steps, {nodes} nodes, {result['edges']} edges;"
          f" load {result['load'][0]:.1f}")
    for name in ("forward", "gradient"):
        d = result[name]
        print(f"{name}: wall {d['wall_ms']:.0f} ms (median of 3), op time {d['op_ms']:.0f} ms")
        for op, ms in d["top"]:
            print(f"    {ms:8.1f} ms  {op}")
    print(f"gradient / forward: wall {g['wall_ms'] / f['wall_ms']:.2f}x, "
          f"op time {g['op_ms'] / f['op_ms']:.2f}x")
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=2000)
    p.add_argument("--latent", type=int, default=128)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--threads", type=int, default=1, help="XLA CPU threads (pinned)")
    p.add_argument("--json", default=None, help="also write the result here")
    a = p.parse_args()
    if a.threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen"
                                   "=false intra_op_parallelism_threads=1").strip()
    res = main(a.nodes, a.latent, a.steps)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(res, indent=1))
