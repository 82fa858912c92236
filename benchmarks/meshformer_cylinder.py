"""Mesh transformer vs MeshGraphNet on sciops cylinder-flow data, at an equal training budget.

Every model sees the same training trajectories, the same number of optimizer steps, the same
sampled batches (trajectory indices, time steps and noise come from the same seeds) and the
same optimizer (Adam, warmup + cosine decay, clipping). Each is then rolled out
autoregressively with true boundary conditions over the whole held-out trajectories
(`sciops.eval` rollout: RMSE after 1 step and pooled over steps 1..10, 1..50 and all). The
persistence baseline (keep the initial state on the evolving nodes, true boundaries elsewhere)
is scored with the same formula: a model must beat it to have learned anything.

Models are named presets (`presets()`); run them one per process, one after the other (on a
shared machine, pinned to one core), then print the table from the saved results:

    taskset -c 1 env XLA_FLAGS=--xla_cpu_multi_thread_eigen=false nice -n 5 \
        python benchmarks/meshformer_cylinder.py --data cyl.h5 --models mgn_small --steps 15000
    (the same with --models tf_small, then tf_base; --seed 1 --out <other> for a second seed)
    python benchmarks/meshformer_cylinder.py --data cyl.h5 --summary

The default of 15,000 steps of batch 1 takes ≈ 31 / 6 / 22 minutes for `mgn_small` /
`tf_small` / `tf_base` on one core. `--no-rollouts` measures parameters and throughputs only;
`--noise-std` overrides the training noise of every model (an ablation; default 0.02).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import time
import types

_HEADS4 = "1-hop, 2-hop, dilated-2, global"


def presets():
    """name -> (family, model config, one-line description)."""
    from sciops.models.meshformer import MeshGraphNetConfig, MeshTransformerConfig, Neighbourhood

    heads = ((Neighbourhood(1), Neighbourhood(2), Neighbourhood(1, dilation=2),
              Neighbourhood(1, global_nodes=True)),)

    def tf(width, n_layers, n_heads=4):
        return MeshTransformerConfig(width=width, heads=n_heads, n_layers=n_layers, n_global=4,
                                     laplacian_pe=8, layers=heads)

    return {
        # Pfaff et al. (2021): latent 128, 15 message-passing steps, 2-hidden-layer MLPs
        "mgn_paper": ("meshgraphnet", MeshGraphNetConfig(latent=128, message_passing_steps=15),
                      "MeshGraphNet, paper scale (latent 128, 15 steps)"),
        # the CPU baseline: same architecture, half the width, 6 message-passing steps
        "mgn_small": ("meshgraphnet", MeshGraphNetConfig(latent=64, message_passing_steps=6),
                      "MeshGraphNet, latent 64, 6 steps"),
        "tf_small": ("meshformer", tf(32, 3),
                     f"transformer, width 32, 3 layers, 4 heads ({_HEADS4})"),
        "tf_base": ("meshformer", tf(64, 4),
                    f"transformer, width 64, 4 layers, 4 heads ({_HEADS4})"),
        "tf_wide": ("meshformer", tf(96, 4),
                    f"transformer, width 96, 4 layers, 4 heads ({_HEADS4})"),
    }


def train(family_name, config, train_ds, steps, batch_size, lr, seed=0, log_every=100):
    """Train one model; returns (model, family, info). Batches are drawn from `seed` only, so
    two models trained with the same arguments see the same samples, times and noise."""
    import equinox as eqx
    import jax
    import numpy as np
    import optax

    from sciops.models.meshformer import FAMILIES, prepare

    t_start = time.perf_counter()
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
    # compile on a batch of the right shape, without an update (every model starts from the
    # same state of the batch stream)
    batch = data.take(np.arange(batch_size) % len(data))
    jax.block_until_ready(step(params, state, batch, key))
    compile_s = time.perf_counter() - t_start
    t0 = time.perf_counter()
    losses, window = [], []
    for i in range(steps):
        batch = data.take(rng.choice(len(data), batch_size, replace=len(data) < batch_size))
        key, k = jax.random.split(key)
        params, state, value = step(params, state, batch, k)
        window.append(value)
        if (i + 1) % log_every == 0 or i == steps - 1:
            losses.append((i + 1, float(np.mean(jax.device_get(window)))))
            window = []
            print(f"  step {i + 1}: loss {losses[-1][1]:.4f}, "
                  f"{time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.1f}", flush=True)
    jax.block_until_ready(params)
    elapsed = time.perf_counter() - t0
    model = eqx.combine(params, static)
    n_params = sum(x.size for x in jax.tree.leaves(eqx.filter(model.net, eqx.is_array)))
    return model, fam, {"params": int(n_params), "train_s": elapsed, "compile_s": compile_s,
                        "s_per_step": elapsed / max(steps, 1),
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


def _summary(mse):
    """As `sciops.eval` reports a rollout: 1 step, pooled over 1..10, 1..50 and all steps."""
    import numpy as np

    out = {"1step": float(np.sqrt(mse[0]))}
    for h in (10, 50):
        if len(mse) >= h:
            out[f"rollout{h}"] = float(np.sqrt(np.mean(mse[:h])))
    out["rollout_all"] = float(np.sqrt(np.mean(mse)))
    return out


def persistence(ds, test_rows, evolving_types=(0, 5)):
    """Rollout metrics of 'nothing moves': the state at step 0 on the evolving nodes, the true
    boundary values elsewhere; pressure held at step 0. Means over the test trajectories."""
    import numpy as np

    per = {"velocity": [], "pressure": []}
    for i in test_rows:
        s = {k: np.asarray(v[0]) for k, v in ds.take([i]).items()}
        m = s["node_mask"]
        ev = np.isin(s["node_type"], evolving_types)[m]
        v = s["velocity"][:, m].astype(np.float64)
        pred = np.where(ev[None, :, None], v[:1], v)
        per["velocity"].append(_summary(np.mean((pred[1:] - v[1:]) ** 2, axis=(1, 2))))
        p = s["pressure"][:, m].astype(np.float64)
        per["pressure"].append(_summary(np.mean((p[1:] - p[:1]) ** 2, axis=(1, 2))))
    return {f"{f}_{k}": float(np.mean([r[k] for r in rs])) for f, rs in per.items()
            for k in rs[0]}


def run_model(name, data, steps, batch_size, lr, n_test, out, rollouts=True, seed=0,
              noise_std=None):
    import equinox as eqx
    import numpy as np

    from sciops.data import read_mesh_dataset
    from sciops.eval._mesh_rollout import rollout

    family, cfg, desc = presets()[name]
    if noise_std is not None:  # an ablation of the training noise (default: the preset's 0.02)
        cfg = dataclasses.replace(cfg, noise_std=noise_std)
    path = pathlib.Path(data)
    ds = read_mesh_dataset(path)
    train_ds = ds.subset(slice(0, len(ds) - n_test))
    load0 = os.getloadavg()
    model, fam, info = train(family, cfg, train_ds, steps, batch_size, lr, seed)
    info.update(name=name, description=desc, family=family, steps=steps, batch_size=batch_size,
                lr=lr, seed=seed, noise_std=cfg.noise_std, n_train=len(ds) - n_test,
                n_test=n_test, data=str(path), load_before=load0, load_after_training=os.getloadavg())
    pathlib.Path(out).mkdir(parents=True, exist_ok=True)
    # the trained model, for later evaluation: rebuild with `presets()[name]` and
    # `eqx.tree_deserialise_leaves(path, like)`
    eqx.tree_serialise_leaves(pathlib.Path(out) / f"{name}.eqx", model)
    info["inference_node_steps_per_s"] = _inference_throughput(cfg, model, ds.subset([len(ds) - 1]))
    if rollouts:
        run = types.SimpleNamespace(config=types.SimpleNamespace(model=cfg), model=model, family=fam)
        test_dir = path.with_name(path.stem + "_xdmf")
        rmse = []
        t0 = time.perf_counter()
        for i in range(len(ds) - n_test, len(ds)):
            xdmf = test_dir / f"traj_{i:03d}.xdmf"
            res = rollout(run, xdmf, out_dir=pathlib.Path(out) / name / f"traj_{i:03d}",
                          progress=False)
            rmse.append(res["trajectories"][xdmf.stem])
        info["rollout_s_incl_compile_io"] = time.perf_counter() - t0
        for f in ("velocity", "pressure"):
            for k in ("1step", "rollout10", "rollout50", "rollout_all"):
                vals = [r[f][k] for r in rmse if k in r[f]]
                info[f"{f}_{k}"] = float(np.mean(vals)) if vals else float("nan")
            info[f"{f}_per_trajectory"] = [r[f] for r in rmse]
    info["load_after"] = os.getloadavg()
    pathlib.Path(out).mkdir(parents=True, exist_ok=True)
    (pathlib.Path(out) / f"{name}.json").write_text(json.dumps(info, indent=2))
    print(name, json.dumps({k: v for k, v in info.items() if k != "losses"}), flush=True)
    return info


def summary(data, n_test, out):
    """The table of every `<out>/<model>.json`, with persistence, as markdown."""
    from sciops.data import read_mesh_dataset

    ds = read_mesh_dataset(data)
    pers = persistence(ds, range(len(ds) - n_test, len(ds)))
    res = {p.stem: json.loads(p.read_text()) for p in sorted(pathlib.Path(out).glob("*.json"))
           if p.stem in presets()}
    names = list(res)
    keys = ["velocity_1step", "velocity_rollout10", "velocity_rollout50", "velocity_rollout_all",
            "pressure_1step", "pressure_rollout_all"]
    lines = ["| | " + " | ".join(names) + " | persistence |",
             "|---|" + "---:|" * (len(names) + 1)]
    lines.append("| parameters | " + " | ".join(f"{res[n]['params']:,}" for n in names) + " | 0 |")
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(f"{res[n].get(k, float('nan')):.4g}" for n in names)
                     + f" | {pers[k]:.4g} |")
    for k, fmt in (("train_node_steps_per_s", ".0f"), ("inference_node_steps_per_s", ".0f"),
                   ("s_per_step", ".3f"), ("train_s", ".0f")):
        lines.append(f"| {k} | " + " | ".join(format(res[n][k], fmt) for n in names) + " | |")
    lines.append("| final loss (mean of last window) | "
                 + " | ".join(f"{res[n]['losses'][-1][1]:.4f}" for n in names) + " | |")
    lines.append("| load before → after | " + " | ".join(
        f"{res[n]['load_before'][0]:.1f} → {res[n]['load_after'][0]:.1f}" for n in names) + " | |")
    lines += ["", per_step_table(ds, n_test, out, names)]
    text = "\n".join(lines)
    print(text)
    print("persistence:", json.dumps(pers))
    return res, pers


def per_step_table(ds, n_test, out, names, steps=(1, 5, 10, 20, 50, 100, 149)):
    """Velocity RMSE at single rollout steps (not pooled), per held-out trajectory, read from
    the rollouts' `rmse_per_step.csv`; persistence computed as in `persistence`."""
    import csv

    import numpy as np

    lines = ["| velocity RMSE at step | " + " | ".join(str(s) for s in steps) + " |",
             "|---|" + "---:|" * len(steps)]
    for i in range(len(ds) - n_test, len(ds)):
        s = {k: np.asarray(v[0]) for k, v in ds.take([i]).items()}
        m = s["node_mask"]
        ev = np.isin(s["node_type"], (0, 5))[m]
        v = s["velocity"][:, m].astype(np.float64)
        pers = np.sqrt(np.mean((np.where(ev[None, :, None], v[:1], v) - v) ** 2, axis=(1, 2)))
        rows = {"persistence": {t: pers[t] for t in range(1, len(pers))}}
        for n in names:
            f = pathlib.Path(out) / n / f"traj_{i:03d}" / "rmse_per_step.csv"
            if f.is_file():
                with f.open() as fh:
                    rows[n] = {int(r["step"]): float(r["velocity"]) for r in csv.DictReader(fh)}
        for n, r in rows.items():
            lines.append(f"| traj {i}, {n} | " + " | ".join(
                f"{r[t]:.4f}" if t in r else "" for t in steps) + " |")
    return "\n".join(lines)


def main(models=("mgn_small", "tf_small", "tf_base"), steps: int = 15000, batch_size: int = 1,
         lr: float = 1e-3, data: str = "data/cache/bench_cylinder_flow.h5", n_test: int = 2,
         out: str = "runs/bench_meshformer", rollouts: bool = True, seed: int = 0,
         noise_std: float | None = None, n_trajectories: int = 10):
    """Train and score each preset in `models` (one after the other), then print the table.

    A missing `data` file is generated first: `n_trajectories` coarse cylinder flows (solver
    seed 0, so a larger set starts with the same flows as a smaller one)."""
    path = pathlib.Path(data)
    if not path.is_file():
        from sciops.pde.flow import CylinderFlowConfig, generate_cylinder_flow

        generate_cylinder_flow(CylinderFlowConfig(n_trajectories=n_trajectories, n_steps=150,
                                                  spinup=1.0, h_min=0.02, h_max=0.05),
                               path, progress=True)
    for name in models:
        run_model(name, path, steps, batch_size, lr, n_test, out, rollouts, seed, noise_std)
    return summary(path, n_test, out) if rollouts else None


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mgn_small,tf_small,tf_base",
                   help="comma-separated presets: " + ", ".join(presets()))
    p.add_argument("--steps", type=int, default=15000)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise-std", type=float, default=None,
                   help="training input noise on fluid nodes (default: the preset's, 0.02)")
    p.add_argument("--data", default="data/cache/bench_cylinder_flow.h5")
    p.add_argument("--n-test", type=int, default=2, help="the last N trajectories are held out")
    p.add_argument("--n-trajectories", type=int, default=10,
                   help="flows to generate when --data does not exist yet (default 10)")
    p.add_argument("--out", default="runs/bench_meshformer")
    p.add_argument("--no-rollouts", action="store_true", help="throughput only")
    p.add_argument("--summary", action="store_true", help="only print the table of saved results")
    a = p.parse_args()
    if a.summary:
        summary(a.data, a.n_test, a.out)
    else:
        main(tuple(a.models.split(",")), a.steps, a.batch_size, a.lr, a.data, a.n_test, a.out,
             not a.no_rollouts, a.seed, a.noise_std, a.n_trajectories)
