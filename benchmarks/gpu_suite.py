"""Every side-by-side comparison at GPU sizes in one command, one JSON: the run to make when a GPU
is available (about 10 minutes on one H100), with a `--smoke` mode at tiny sizes that CI runs so
the script cannot rot.

Rows (sciops side always; the peer's side where the peer is installed, on the same device):

- `fno_256`: the default Darcy job's FNO (`fno_time_to_accuracy.py`'s two sides), one training
  step of batch 8 at 256² against neuraloperator's FNO.
- `mgn_300k`: MeshGraphNet (15 message-passing steps, latent 128) on a 300k-node Delaunay mesh,
  one training step and one inference, against PhysicsNeMo's MeshGraphNet
  (`peers_graph.py`'s two sides).
- `attention_300k`: edge-list attention forward+backward on the same mesh (128 channels,
  4 heads) against torch-geometric's `TransformerConv` + output projection.
- `potential_10k`: the TDN potential (CP tensor products, L = 2, 32 channels, 2 layers, cutoff
  4.5 Å) energy and forces of a 10,976-atom periodic fcc copper supercell (no peer row: the
  peers of the potential are compared in the TDN benchmarks).

Each row: warm-up calls (compilation) first, then `--repeats` timed calls, each blocked on its
result (`block_until_ready` / `torch.cuda.synchronize` or `.item()`); the median is reported.
Memory: the device's peak bytes where the backend reports them (`memory_stats` /
`torch.cuda.max_memory_allocated`).

Run: ``python benchmarks/gpu_suite.py [--smoke] [--json gpu_suite.json]`` or
``bash benchmarks/gpu_suite.sh`` (same arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time
import traceback

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SIZES = {
    "full": {"fno_res": 256, "fno_batch": 8, "mesh_nodes": 300_000, "mgn_latent": 128,
             "mgn_layers": 15, "cells": 14},
    # smoke: every row's code path at sizes that compile in seconds (2 message-passing steps)
    "smoke": {"fno_res": 32, "fno_batch": 2, "mesh_nodes": 300, "mgn_latent": 32,
              "mgn_layers": 2, "cells": 2},
}


def _median_seconds(fn, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


PEERS = {"on": True}


def _torch_device():
    if not PEERS["on"]:
        return None, "peers off (--no-peers)"
    try:
        import torch
    except ImportError:
        return None, "torch not installed"
    return ("cuda" if torch.cuda.is_available() else "cpu"), None


def _peer(make, warmup, repeats):
    """Time a peer's callable, or say why it could not run."""
    try:
        fn = make()
    except ImportError as e:
        return {"status": f"not installed ({e.name})"}
    return {"seconds": _median_seconds(fn, warmup, repeats)}


def row_fno(size: dict, warmup: int, repeats: int) -> dict:
    from fno_time_to_accuracy import NeuralopSide, SciopsSide

    rng = np.random.default_rng(0)
    res, batch = size["fno_res"], size["fno_batch"]
    data = {k: rng.standard_normal((batch, 1, res, res)).astype(np.float32) for k in ("x", "y")}
    ours = SciopsSide(data, 1000, 0)

    def step(side):
        def run():
            side.train(data["x"], data["y"])
            side.block()
        return run

    out = {"resolution": res, "batch": batch, "parameters": ours.parameters,
           "sciops": {"seconds": _median_seconds(step(ours), warmup, repeats)}}
    device, why = _torch_device()
    out["neuraloperator"] = ({"status": why} if device is None else
                             _peer(lambda: step(NeuralopSide(data, 1000, 0, device)), warmup,
                                   repeats))
    return out


def row_mesh(size: dict, warmup: int, repeats: int) -> tuple[dict, dict]:
    from peers_graph import (
        graph_inputs,
        physicsnemo_mgn,
        pyg_attention,
        sciops_attention,
        sciops_mgn,
    )

    nodes = size["mesh_nodes"]
    x, efeat, s, r, y = graph_inputs(nodes)
    latent, layers = size["mgn_latent"], size["mgn_layers"]
    train, forward, n_params = sciops_mgn(x, efeat, s, r, y, latent, layers, 1e-4, 0)
    mgn = {"nodes": nodes, "edges": int(len(s)), "parameters": int(n_params),
           "sciops": {"train_step_s": _median_seconds(train, warmup, repeats),
                      "inference_s": _median_seconds(forward, warmup, repeats)}}
    device, why = _torch_device()
    if device is None:
        mgn["physicsnemo"] = {"status": why}
    else:
        try:
            t_train, t_fwd, _ = physicsnemo_mgn(x, efeat, s, r, y, latent, layers, 1e-4, 0,
                                                device)
            mgn["physicsnemo"] = {"train_step_s": _median_seconds(t_train, warmup, repeats),
                                  "inference_s": _median_seconds(t_fwd, warmup, repeats)}
        except ImportError as e:
            mgn["physicsnemo"] = {"status": f"not installed ({e.name})"}
    feats = np.random.default_rng(2).standard_normal((nodes, 128)).astype(np.float32)
    run, _ = sciops_attention(feats, s, r, 4, 0)
    att = {"nodes": nodes, "edges": int(len(s)), "channels": 128, "heads": 4,
           "sciops": {"seconds": _median_seconds(run, warmup, repeats)}}
    att["torch_geometric"] = ({"status": why} if device is None else
                              _peer(lambda: pyg_attention(feats, s, r, 4, 0, device)[0], warmup,
                                    repeats))
    return mgn, att


def row_potential(size: dict, warmup: int, repeats: int) -> dict:
    import functools

    import jax
    import jax.numpy as jnp
    from ase.build import bulk

    from sciops.models.mlip import (
        EnergyScale,
        Graph,
        TDNPotential,
        energy_forces_stress,
        neighbor_list,
    )
    from sciops.nn import CPTensorProduct

    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(size["cells"])
    cutoff, lmax = 4.5, 2
    centers, neighbors, shifts = neighbor_list(atoms.positions, cutoff, atoms.cell.array, True)
    graph = Graph(jnp.asarray(centers), jnp.asarray(neighbors),
                  jnp.asarray(shifts, jnp.float32), jnp.ones(len(centers), bool))
    scale = EnergyScale(jnp.zeros(119), jnp.asarray(1.0), jnp.asarray(len(centers) / len(atoms)),
                        jnp.zeros(119, bool).at[29].set(True))
    model = TDNPotential(cutoff, lmax, 32, 2, 8, 32, 32,
                         functools.partial(CPTensorProduct, rank=7 * lmax ** 2), scale,
                         key=jax.random.key(0))
    pos = jnp.asarray(atoms.positions, jnp.float32)
    species = jnp.asarray(atoms.numbers)
    mask = jnp.ones(len(atoms), bool)
    cell = jnp.asarray(atoms.cell.array, jnp.float32)
    fn = jax.jit(lambda m, p: energy_forces_stress(m, p, species, mask, cell, graph))

    def run():
        jax.block_until_ready(fn(model, pos))

    return {"atoms": len(atoms), "edges": int(len(centers)),
            "sciops": {"energy_forces_s": _median_seconds(run, warmup, repeats)}}


def _peak_bytes() -> dict:
    out = {}
    try:
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            out["jax"] = int(stats["peak_bytes_in_use"])
    except Exception:  # noqa: BLE001 - memory stats are optional diagnostics
        pass
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            out["torch"] = int(torch.cuda.max_memory_allocated())
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per side (median)")
    ap.add_argument("--only", default=None, help="comma-separated rows: fno,mesh,potential")
    ap.add_argument("--no-peers", action="store_true", help="time the sciops sides only")
    ap.add_argument("--json", default="gpu_suite.json")
    a = ap.parse_args(argv)
    PEERS["on"] = not a.no_peers
    import jax

    size = SIZES["smoke" if a.smoke else "full"]
    repeats = a.repeats or (2 if a.smoke else 10)
    warmup = 1 if a.smoke else 3
    rows = (a.only or "fno,mesh,potential").split(",")
    result = {"mode": "smoke" if a.smoke else "full", "sizes": size, "repeats": repeats,
              "jax_devices": [str(d) for d in jax.devices()], "host": platform.node(),
              "torch_device": _torch_device()[0], "rows": {}, "errors": {}}
    t0 = time.perf_counter()
    builders = {"fno": lambda: {"fno_256": row_fno(size, warmup, repeats)},
                "mesh": lambda: dict(zip(("mgn_300k", "attention_300k"),
                                         row_mesh(size, warmup, repeats), strict=True)),
                "potential": lambda: {"potential_10k": row_potential(size, warmup, repeats)}}
    for name in rows:
        try:
            result["rows"].update(builders[name]())
        except Exception as e:  # noqa: BLE001 - one failing row must not lose the others
            result["errors"][name] = "".join(traceback.format_exception_only(e)).strip()
            print(f"row {name} failed: {result['errors'][name]}", file=sys.stderr)
        print(f"{name}: done at {time.perf_counter() - t0:.0f} s", flush=True)
    result["peak_bytes"] = _peak_bytes()
    result["wall_s"] = time.perf_counter() - t0
    result["loadavg_end"] = os.getloadavg()
    pathlib.Path(a.json).write_text(json.dumps(result, indent=1))
    print(json.dumps(result["rows"], indent=1))
    print(f"wrote {a.json} ({result['wall_s']:.0f} s)")
    return result


if __name__ == "__main__":
    sys.exit(1 if main()["errors"] else 0)
