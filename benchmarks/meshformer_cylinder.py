"""Mesh transformer vs MeshGraphNet on sciops cylinder-flow data, at an equal training budget.

Both models see the same trajectories, the same number of optimizer steps, batch and optimizer
(Adam, warmup + cosine); then each is rolled out autoregressively (true boundary conditions)
over the whole test trajectories. Prints parameters, training throughput and rollout
throughput (node-steps per second), and the rollout RMSE (1-step, rollout-10/50/all) of
velocity, with the transformer/MGN ratio.

    nice -n 5 python benchmarks/meshformer_cylinder.py --steps 1500
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import time
import types


def train(family_name, config, train_ds, steps, batch_size, lr, seed=0):
    import equinox as eqx
    import jax
    import numpy as np
    import optax

    from sciops.models.meshformer import FAMILIES, prepare

    fam = FAMILIES[family_name]
    data = prepare(config, train_ds).in_memory()
    model = fam.build(config, data, key=jax.random.key(seed))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    sched = optax.warmup_cosine_decay_schedule(0.0, lr, min(100, steps // 10), steps, lr * 0.01)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(sched))
    state = opt.init(params)

    @eqx.filter_jit
    def step(params, state, batch, key):
        (value, _), g = jax.value_and_grad(
            lambda p: fam.loss(config, eqx.combine(p, static), batch, key=key), has_aux=True)(params)
        u, state = opt.update(g, state, params)
        return optax.apply_updates(params, u), state, value

    rng = np.random.default_rng(seed)
    key = jax.random.key(seed + 1)
    n_nodes = int(np.asarray(data.take(np.arange(len(data)))["node_mask"]).sum() / len(data))
    batch = data.take(rng.choice(len(data), batch_size, replace=len(data) < batch_size))
    params, state, value = step(params, state, batch, key)  # compile
    jax.block_until_ready(value)
    t0 = time.perf_counter()
    losses = []
    for i in range(steps):
        batch = data.take(rng.choice(len(data), batch_size, replace=len(data) < batch_size))
        key, k = jax.random.split(key)
        params, state, value = step(params, state, batch, k)
        if i % 100 == 0 or i == steps - 1:
            losses.append((i, float(value)))
    jax.block_until_ready(params)
    elapsed = time.perf_counter() - t0
    model = eqx.combine(params, static)
    n_params = sum(x.size for x in jax.tree.leaves(eqx.filter(model.net, eqx.is_array)))
    return model, fam, {"params": int(n_params), "train_s": elapsed,
                        "train_node_steps_per_s": steps * batch_size * n_nodes / elapsed,
                        "losses": losses}


def _inference_throughput(config, model, one, repeats=10):
    """Node-steps per second of a compiled single step (median of `repeats` timed calls)."""
    import equinox as eqx
    import jax
    import numpy as np

    from sciops.models.meshformer import prepare

    sample = {k: v[0] for k, v in prepare(config, one).take([0]).items()}
    x = model.state_at(sample, 0)
    step = eqx.filter_jit(lambda m, s, x: m.step(s, x)[0])
    jax.block_until_ready(step(model, sample, x))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(step(model, sample, x))
        times.append(time.perf_counter() - t0)
    return float(sample["node_mask"].sum()) / float(np.median(times))


def main(steps: int = 1500, batch_size: int = 2, lr: float = 1e-3,
         data: str = "data/cache/bench_cylinder_flow.h5", out: str = "runs/bench_meshformer",
         rollouts: bool = True):
    """`rollouts=False` measures parameters and throughputs only (no accuracy comparison)."""
    import numpy as np

    from sciops.data import read_mesh_dataset
    from sciops.eval._mesh_rollout import rollout
    from sciops.models.meshformer import MeshGraphNetConfig, MeshTransformerConfig, Neighbourhood
    from sciops.pde.flow import CylinderFlowConfig, generate_cylinder_flow

    path = pathlib.Path(data)
    if not path.is_file():
        generate_cylinder_flow(CylinderFlowConfig(n_trajectories=6, n_steps=150, spinup=1.0),
                               path, progress=True)
    ds = read_mesh_dataset(path)
    n_test = 2
    train_ds = ds.subset(slice(0, len(ds) - n_test))
    configs = {
        "meshgraphnet": MeshGraphNetConfig(latent=128, message_passing_steps=15, mlp_depth=2),
        "meshformer": MeshTransformerConfig(
            width=64, heads=4, n_layers=4, n_global=4, laplacian_pe=8,
            layers=((Neighbourhood(1), Neighbourhood(2), Neighbourhood(1, dilation=2),
                     Neighbourhood(1, global_nodes=True)),)),
    }
    results = {}
    test_dir = path.with_name(path.stem + "_xdmf")
    load0 = os.getloadavg()
    for name, cfg in configs.items():
        model, fam, info = train(name, cfg, train_ds, steps, batch_size, lr)
        run = types.SimpleNamespace(config=types.SimpleNamespace(model=cfg), model=model, family=fam)
        info["inference_node_steps_per_s"] = _inference_throughput(cfg, model, ds.subset([len(ds) - 1]))
        results[name] = info
        if not rollouts:
            print(name, json.dumps({k: v for k, v in info.items() if k != "losses"}), flush=True)
            continue
        rmse = {}
        t0 = time.perf_counter()
        total_node_steps = 0
        for i in range(len(ds) - n_test, len(ds)):
            xdmf = test_dir / f"traj_{i:03d}.xdmf"
            res = rollout(run, xdmf, out_dir=pathlib.Path(out) / name / f"traj_{i:03d}",
                          progress=False)
            r = res["trajectories"][xdmf.stem]
            rmse[xdmf.stem] = r
            n = int(np.asarray(ds.take([i])["n_nodes"])[0])
            total_node_steps += n * r["velocity"]["steps"]
        info["rollout_s_incl_compile_io"] = time.perf_counter() - t0
        info["rollout_node_steps_per_s_incl_compile_io"] = total_node_steps / info["rollout_s_incl_compile_io"]
        for f in ("velocity", "pressure"):
            for k in ("1step", "rollout10", "rollout50", "rollout_all"):
                vals = [r[f][k] for r in rmse.values() if k in r[f]]
                info[f"{f}_{k}"] = float(np.mean(vals)) if vals else float("nan")
        results[name] = info
        print(name, json.dumps({k: v for k, v in info.items() if k != "losses"}), flush=True)
    results["load_before"] = load0
    results["load_after"] = os.getloadavg()
    mgn, tf = results["meshgraphnet"], results["meshformer"]
    print(f"\n{'':34s}{'meshformer':>14s}{'MeshGraphNet':>14s}{'ratio':>8s}")
    keys = ["params", "train_node_steps_per_s", "inference_node_steps_per_s"]
    if rollouts:
        keys += ["velocity_1step", "velocity_rollout10", "velocity_rollout50", "velocity_rollout_all",
                 "pressure_rollout_all"]
    for k in keys:
        print(f"{k:34s}{tf[k]:14.4g}{mgn[k]:14.4g}{tf[k] / mgn[k]:8.3f}")
    print(f"steps={steps} batch={batch_size} lr={lr}; load {load0} -> {results['load_after']}")
    pathlib.Path(out).mkdir(parents=True, exist_ok=True)
    (pathlib.Path(out) / "results.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--data", default="data/cache/bench_cylinder_flow.h5")
    p.add_argument("--out", default="runs/bench_meshformer")
    p.add_argument("--no-rollouts", action="store_true", help="throughput only")
    a = p.parse_args()
    main(a.steps, a.batch_size, a.lr, a.data, a.out, not a.no_rollouts)
