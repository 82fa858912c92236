"""Per-device memory of the mesh transformer's training step with one mesh split over the
`space` axis, and the bytes its halo exchange moves.

Meshes: structured tetrahedral boxes (each cube of an m×m×m grid cut into 6 tetrahedra, Kuhn's
subdivision; 14 mesh neighbours per interior node), 100k, 300k and 1M nodes; the transformer
attends over the 1-hop neighbourhood with self loops in every head, and has 2 global tokens
linked to every node (both ways) by one head: ≈19 edges per node, 5.6M edges at 300k nodes
(4.2M of them mesh edges). One trajectory
of 2 frames with a 3-component state field.

For each mesh and each of 1, 2, 4, 8 virtual CPU devices (a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=N``, mesh ``{data: 1, space: N}``), the
jitted loss + gradient of `sciops.models.meshformer` on the partitioned sample is compiled, and
XLA's compiled memory analysis gives the per-device bytes (the SPMD program is per device):
``temp + arguments + outputs`` (arguments: that device's block of the sample, the replicated
parameters). Collective bytes per step are summed from the compiled HLO's collective-permutes
(halo exchange, forward and backward) and all-reduces (gradients, global-token sums), per
device, and set beside the halo size (halo rows × width × 4 B × layers × 2 directions of the
gradient). With ``--train`` the 300k-node mesh takes a few Adam steps on 8 devices, timed, with
the process's peak resident memory.

    nice -n 5 python benchmarks/mesh_partition_memory.py --nodes 100000 300000 1000000 \
        --devices 1 2 4 8 --train 300000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

# width 32 and 2 layers: the 300k-node step must fit in a share of a 24 GB machine on the CPU
# (measured ≈ 5.4 kB per edge for width 64 and 4 layers at 8k nodes)
WIDTH, HEADS, LAYERS, N_GLOBAL = 32, 4, 2, 2


def box_tet_mesh(m: int):
    """Nodes and tetrahedra of the unit cube cut into m³ cubes of 6 tetrahedra each."""
    import numpy as np

    g = np.linspace(0.0, 1.0, m + 1)
    pts = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    idx = np.arange((m + 1) ** 3).reshape(m + 1, m + 1, m + 1)
    corner = [idx[i:i + m, j:j + m, k:k + m].ravel() for i in (0, 1) for j in (0, 1)
              for k in (0, 1)]  # corner (i, j, k) at position 4i + 2j + k
    # Kuhn: the 6 paths from corner 000 to 111 along the axes, one tetrahedron each
    paths = [(0, 4, 6, 7), (0, 4, 5, 7), (0, 2, 6, 7), (0, 2, 3, 7), (0, 1, 5, 7), (0, 1, 3, 7)]
    cells = np.concatenate([np.stack([corner[c] for c in p], 1) for p in paths])
    return pts.astype(np.float32), cells.astype(np.int32)


def _dataset(n_target: int):
    import numpy as np

    from sciops.data import Dataset

    m = max(2, round(n_target ** (1 / 3)) - 1)
    pts, cells = box_tet_mesh(m)
    n = len(pts)
    rng = np.random.default_rng(0)
    vel = rng.standard_normal((1, 2, n, 3)).astype(np.float32)
    arrays = {"points": pts[None], "node_mask": np.ones((1, n), bool),
              "node_type": np.zeros((1, n), np.int32), "n_nodes": np.array([n]),
              "cells_tetra": cells[None], "velocity": vel}
    return Dataset(arrays, {"problem": "synthetic box"}, name=f"box{n}")


def _config():
    from sciops.models.meshformer import MeshTransformerConfig, Neighbourhood

    return MeshTransformerConfig(
        state_fields=("velocity",), noise_std=0.0, width=WIDTH, heads=HEADS, n_layers=LAYERS,
        layers=((Neighbourhood(1),) * (HEADS - 1) + (Neighbourhood(1, global_nodes=True),),),
        n_global=N_GLOBAL, coordinates=True, edge_multiple=1024, eval_rollout_steps=0)


def _collective_bytes(hlo: str) -> dict[str, int]:
    """Bytes of the results of collective-permutes and all-reduces in an HLO module text."""
    sizes = {"f32": 4, "f16": 2, "bf16": 2, "s32": 4, "f64": 8, "pred": 1, "u32": 4}
    out = {"collective-permute": 0, "all-reduce": 0, "all-gather": 0, "all-to-all": 0}
    for line in hlo.splitlines():
        line = re.sub(r"/\*.*?\*/", "", line)  # /*index=5*/ comments in tuple shapes
        m = re.search(r"=\s*(\(?[^=]*?\)?)\s+(collective-permute|all-reduce|all-gather|"
                      r"all-to-all)(-start)?\(", line)
        if not m:
            continue
        for dt, dims in re.findall(r"(f32|f16|bf16|s32|f64|pred|u32)\[([\d,]*)\]", m.group(1)):
            count = 1
            for d in filter(None, dims.split(",")):
                count *= int(d)
            out[m.group(2)] += count * sizes[dt]
    return out


def prepare_cached(n_target: int, path: str) -> None:
    """Build the mesh and its graph fields once (host work: minutes on a loaded machine) and
    save them for the per-device-count processes."""
    import numpy as np

    from sciops.models.meshformer import prepare

    prep = prepare(_config(), _dataset(n_target))
    np.savez(path, **{k: np.asarray(v) for k, v in prep.arrays.items()})


def measure(n_target: int, devices: int, train_steps: int, cache: str) -> dict:
    """In a process with `devices` CPU devices: compile (and optionally run) one step."""
    import equinox as eqx
    import jax
    import numpy as np
    import optax

    from sciops.data import Dataset
    from sciops.models.meshformer import FAMILIES, partition_mesh
    from sciops.train import make_mesh

    cfg = _config()
    t0 = time.perf_counter()
    with np.load(cache) as f:
        prep = Dataset({k: f[k] for k in f.files}, {"problem": "synthetic box"},
                       name=f"box{n_target}")
    fam = FAMILIES["meshformer"]
    model = fam.build(cfg, prep, key=jax.random.key(0))
    n_edges = int(prep.arrays["graph0_mask"][0].any(-1).sum())
    data = partition_mesh(cfg, prep, devices) if devices > 1 else prep
    host_s = time.perf_counter() - t0
    mesh = make_mesh({"data": 1, "space": devices})
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    batch = {}
    for k, v in data.arrays.items():
        ax = data.field_attrs.get(k, {}).get("space_axis")
        spec = P("data", *([None] * ax), "space") if ax is not None and devices > 1 else P("data")
        batch[k] = jax.device_put(np.asarray(v), NamedSharding(mesh, spec))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt = optax.adam(1e-4)

    def step(params, opt_state, batch, key):
        loss, grads = jax.value_and_grad(
            lambda p: fam.loss(cfg, eqx.combine(p, static), batch, key=key)[0])(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    with jax.set_mesh(mesh):
        rep = NamedSharding(mesh, P())
        params = jax.device_put(params, rep)
        opt_state = jax.device_put(opt.init(params), rep)
        jitted = jax.jit(step, donate_argnums=(0, 1))
        t0 = time.perf_counter()
        compiled = jitted.lower(params, opt_state, batch, jax.random.key(1)).compile()
        compile_s = time.perf_counter() - t0
        ma = compiled.memory_analysis()
        coll = _collective_bytes(compiled.as_text())
        row = {"nodes": int(prep.arrays["n_nodes"][0]), "edges": n_edges, "devices": devices,
               "temp_bytes": int(ma.temp_size_in_bytes),
               "argument_bytes": int(ma.argument_size_in_bytes),
               "output_bytes": int(ma.output_size_in_bytes),
               "alias_bytes": int(ma.alias_size_in_bytes),
               "collective_bytes": coll, "host_prep_s": round(host_s, 1),
               "compile_s": round(compile_s, 1)}
        if devices > 1:
            part = data.attrs["partition"]
            halo = part["halo_nodes"][0]
            sent = part["sent_rows"][0]
            row.update(halo_nodes=halo, sent_rows=sent,
                       n_own=int(data.arrays["part_node_index"].shape[1] // devices),
                       halo_bytes_per_step=halo * WIDTH * 4 * LAYERS * 2 // devices,
                       padded_halo_bytes_per_step=sent * WIDTH * 4 * LAYERS * 2 // devices)
        if train_steps:
            losses, times = [], []
            key = jax.random.key(2)
            for i in range(train_steps):
                t0 = time.perf_counter()
                params, opt_state, loss = compiled(params, opt_state, batch,
                                                   jax.random.fold_in(key, i))
                losses.append(float(loss))  # blocks
                times.append(time.perf_counter() - t0)
            import resource

            row.update(train_losses=losses, step_s=times,
                       peak_rss_gb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                         / 2**20, 2))
    return row


def main(nodes=(100_000, 300_000, 1_000_000), devices=(1, 2, 4, 8), train=None,
         train_steps=3, out=None) -> list[dict]:
    """Each (nodes, devices) in its own subprocess; returns the rows (and prints a table)."""
    rows = []
    for n in nodes:
        cache = os.path.join(tempfile.gettempdir(), f"mesh_partition_{n}.npz")
        if not os.path.exists(cache):
            t0 = time.perf_counter()
            prepare_cached(n, cache)
            print(f"mesh of {n} nodes prepared in {time.perf_counter() - t0:.0f} s", flush=True)
        for d in devices:
            steps = train_steps if (train == n and d == max(devices)) else 0
            env = dict(os.environ)
            env["XLA_FLAGS"] = " ".join(
                [f for f in env.get("XLA_FLAGS", "").split()
                 if not f.startswith("--xla_force_host_platform_device_count")]
                + [f"--xla_force_host_platform_device_count={d}"])
            cmd = [sys.executable, __file__, "--one", str(n), str(d), str(steps), cache]
            p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if p.returncode:
                print(p.stderr[-3000:], file=sys.stderr)
                rows.append({"nodes": n, "devices": d, "error": p.stderr.strip().splitlines()[-1]})
                continue
            row = json.loads(p.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    _table(rows)
    if out:
        with open(out, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


def _table(rows):
    base = {}
    print(f"{'nodes':>9} {'edges':>9} {'dev':>3} {'per-device MB':>13} {'x ideal':>7} "
          f"{'permute MB':>10} {'halo MB':>8} {'all-reduce MB':>13}")
    for r in rows:
        if "error" in r:
            print(f"{r['nodes']:>9} {'':>9} {r['devices']:>3} error: {r['error']}")
            continue
        total = r["temp_bytes"] + r["argument_bytes"] + r["output_bytes"] - r["alias_bytes"]
        if r["devices"] == 1:
            base[r["nodes"]] = total
        ideal = base.get(r["nodes"], float("nan")) / r["devices"]
        c = r["collective_bytes"]
        print(f"{r['nodes']:>9} {r['edges']:>9} {r['devices']:>3} {total / 1e6:>13.1f} "
              f"{total / ideal:>7.2f} {c['collective-permute'] / 1e6:>10.2f} "
              f"{r.get('padded_halo_bytes_per_step', 0) / 1e6:>8.2f} "
              f"{c['all-reduce'] / 1e6:>13.2f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        n, d, steps = (int(x) for x in sys.argv[2:5])
        print(json.dumps(measure(n, d, steps, sys.argv[5])))
        sys.exit(0)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--train", type=int, default=None,
                    help="train this mesh size for a few steps on the most devices")
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    a = ap.parse_args()
    main(a.nodes, a.devices, a.train, a.train_steps, a.out)
