"""Mesh transformer vs MeshGraphNet on sciops cylinder-flow data, scored by the MeshGraphNets
protocol beside the persistence and linear-extrapolation baselines.

Every model sees the same training trajectories, the same number of optimizer steps, the same
sampled batches (trajectory indices, time steps and noise come from the same seeds) and the
same optimizer (Adam, warmup + cosine decay, clipping). Then:

1. **go / no-go**: the teacher-forced one-step velocity RMSE over every frame of (up to 4)
   TRAINING flows against persistence's; a model whose ratio is above `--go-ratio` (0.5) has
   not learned the one-step map, and its rollouts are not scored (`--force-rollouts` scores
   them anyway);
2. **protocol** on the held-out flows (`sciops.eval.mesh_rollout`): teacher-forced one-step
   RMSE pooled over every frame; autoregressive rollout-1 / 50 / all from frame 1 with true
   boundary values; each relative to the inflow speed; persistence and linear extrapolation
   scored the same way;
3. a **learning curve**: the teacher-forced one-step RMSE on one held-out flow (every 5th
   frame) against training time, `--curve-points` times during training.

Models are named presets (`presets()`); run them one per process, one after the other (on a
shared machine, pinned to one core), then print the table from the saved results:

    taskset -c 1 env XLA_FLAGS=--xla_cpu_multi_thread_eigen=false nice -n 5 \
        python benchmarks/meshformer_cylinder.py --data cyl.h5 --models mgn_small --minutes 25
    (the same with --models tf_base; --seed 1 --out <other> for a second seed)
    python benchmarks/meshformer_cylinder.py --data cyl.h5 --summary

`--steps N` trains a fixed number of steps; `--minutes M` trains for a wall-clock budget (equal
wall-clock time is the paper's parity comparison). `--no-rollouts` measures parameters and
throughputs only; `--noise-std` overrides the training noise of every model.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import pathlib
import time

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


def _forced_mse(model, sample, velocity, frames):
    """Teacher-forced one-step squared errors of the model and of persistence on the evolving
    nodes' velocity, summed over the given input frames: (model_sse, persistence_sse, count)."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    step = eqx.filter_jit(lambda m, s, xs: jax.vmap(lambda x: m.step(s, x)[0])(xs))
    ev = np.asarray(model.evolving(sample))
    c = velocity.shape[-1]
    m_sse = p_sse = 0.0
    for a in range(0, len(frames), 32):
        f = frames[a:a + 32]
        pred = np.asarray(step(model, sample, jnp.asarray(model.state_at(sample, f))))[..., :c]
        true = velocity[f + 1]
        m_sse += float(np.sum(((pred - true) ** 2)[:, ev]))
        p_sse += float(np.sum(((velocity[f] - true) ** 2)[:, ev]))
    return m_sse, p_sse, len(frames) * int(ev.sum()) * c


def one_step_vs_persistence(config, model, ds, rows, stride=1):
    """Teacher-forced one-step velocity RMSE over every `stride`-th frame of trajectories
    `rows` (evolving nodes), and persistence's: `(model_rmse, persistence_rmse)`."""
    import jax.numpy as jnp
    import numpy as np

    from sciops.models.meshformer import prepare

    m_sse = p_sse = n = 0.0
    for i in rows:
        sample = {k: jnp.asarray(v[0]) for k, v in prepare(config, ds.subset([i])).take([0]).items()}
        vel = np.asarray(sample["velocity"], np.float32)
        frames = np.arange(0, vel.shape[0] - 1, stride)
        a, b, c = _forced_mse(model, sample, vel, frames)
        m_sse, p_sse, n = m_sse + a, p_sse + b, n + c
    return float(np.sqrt(m_sse / n)), float(np.sqrt(p_sse / n))


def train(family_name, config, train_ds, steps, batch_size, lr, seed=0, log_every=100,
          minutes=None, curve=None, curve_points=8):
    """Train one model; returns (model, family, info). Batches are drawn from `seed` only, so
    two models trained with the same arguments see the same samples, times and noise.

    `steps=None` (with `minutes` only) sets no step cap.
    `minutes` (if given) stops training at that wall-clock budget, and the learning rate
    follows the warmup + cosine schedule over the budget's time instead of over `steps` (so a
    run that gets less of a loaded machine still decays its learning rate to the end);
    `curve = (dataset, row)` records the teacher-forced one-step RMSE on that flow
    `curve_points` times, evenly in steps or, with `minutes`, in time (the time it takes is
    not counted as training time)."""
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
    warmup = 100 if steps is None else min(100, steps // 10)
    if minutes is None:
        sched = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, steps, lr * 0.01)
        opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(sched))
    else:  # the same shape of schedule, laid out over the time budget (set before each step)
        opt = optax.chain(optax.clip_by_global_norm(1.0),
                          optax.inject_hyperparams(optax.adam)(learning_rate=0.0))
    state = opt.init(params)

    def timed_lr(state, done, elapsed):
        import jax.numpy as jnp

        frac = min(1.0, elapsed / budget)
        rate = lr * min(1.0, (done + 1) / max(warmup, 1)) * (
            0.01 + 0.99 * 0.5 * (1.0 + np.cos(np.pi * frac)))
        inner = state[1]
        hyper = dict(inner.hyperparams, learning_rate=jnp.asarray(rate, jnp.float32))
        return (state[0], inner._replace(hyperparams=hyper)), rate

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
    budget = None if minutes is None else 60.0 * minutes
    marks = (set(np.linspace(0, steps, curve_points + 1).astype(int)[1:].tolist())
             if curve is not None and budget is None else set())
    time_marks = (list(np.linspace(0, budget, curve_points + 1)[1:-1])
                  if curve is not None and budget is not None else [])
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    paused = 0.0
    losses, window, curve_rows = [], [], []
    done = 0
    for i in itertools.count() if steps is None else range(steps):
        batch = data.take(rng.choice(len(data), batch_size, replace=len(data) < batch_size))
        key, k = jax.random.split(key)
        if budget is not None:
            state, rate = timed_lr(state, i, time.perf_counter() - t0 - paused)
        params, state, value = step(params, state, batch, k)
        window.append(value)
        done = i + 1
        elapsed = time.perf_counter() - t0 - paused
        over = budget is not None and elapsed > budget
        if done % log_every == 0 or done == steps or over:
            losses.append((done, float(np.mean(jax.device_get(window)))))
            window = []
            print(f"  step {done}: loss {losses[-1][1]:.4f}, {elapsed:.0f} s, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
        at_time = bool(time_marks) and elapsed >= time_marks[0]
        if at_time:
            time_marks.pop(0)
        if curve is not None and (done in marks or at_time or done == steps or over):
            jax.block_until_ready(params)
            tc = time.perf_counter()
            m_rmse, p_rmse = one_step_vs_persistence(config, eqx.combine(params, static),
                                                     curve[0], [curve[1]], stride=5)
            curve_rows.append({"step": done, "train_s": elapsed, "one_step": m_rmse,
                               "persistence": p_rmse, "loss": losses[-1][1] if losses else None})
            print(f"  curve: step {done}, {elapsed:.0f} s: one-step {m_rmse:.4g} "
                  f"(persistence {p_rmse:.4g})", flush=True)
            paused += time.perf_counter() - tc
        if over:
            break
    jax.block_until_ready(params)
    elapsed = time.perf_counter() - t0 - paused
    cpu_s = time.process_time() - cpu0
    model = eqx.combine(params, static)
    n_params = sum(x.size for x in jax.tree.leaves(eqx.filter(model.net, eqx.is_array)))
    return model, fam, {"params": int(n_params), "train_s": elapsed, "compile_s": compile_s,
                        "steps_done": done, "s_per_step": elapsed / max(done, 1),
                        "train_cpu_s_incl_curve": cpu_s,
                        "train_node_steps_per_s": done * batch_size * n_nodes / elapsed,
                        "losses": losses, "learning_curve": curve_rows}


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


def _test_file(ds, rows, path):
    """The held-out trajectories as their own mesh data set (units kept), for the rollout."""
    from sciops.data import mesh_field, write_mesh_dataset

    units = {k: str(a["units"]) for k, a in ds.field_attrs.items() if "units" in a}
    if not path.is_file():
        write_mesh_dataset(path, [mesh_field(ds, i) for i in rows], attrs={"dt": ds.attrs.get("dt")},
                           units=units)
    return path


def run_model(name, data, steps, batch_size, lr, n_test, out, rollouts=True, seed=0,
              noise_std=None, minutes=None, go_ratio=0.5, force_rollouts=False, curve_points=8,
              go_flows=4, animation=True):
    import types

    import equinox as eqx

    from sciops.data import read_mesh_dataset
    from sciops.eval import mesh_rollout

    family, cfg, desc = presets()[name]
    if noise_std is not None:  # an ablation of the training noise (default: the preset's 0.02)
        cfg = dataclasses.replace(cfg, noise_std=noise_std)
    path = pathlib.Path(data)
    out = pathlib.Path(out)
    ds = read_mesh_dataset(path)
    n_train = len(ds) - n_test
    train_ds = ds.subset(slice(0, n_train))
    load0 = os.getloadavg()
    model, fam, info = train(family, cfg, train_ds, steps, batch_size, lr, seed,
                             minutes=minutes, curve=(ds, n_train), curve_points=curve_points)
    info.update(name=name, description=desc, family=family, steps=steps, batch_size=batch_size,
                lr=lr, seed=seed, noise_std=cfg.noise_std, n_train=n_train, minutes=minutes,
                n_test=n_test, data=str(path), load_before=load0,
                load_after_training=os.getloadavg())
    out.mkdir(parents=True, exist_ok=True)
    # the trained model, for later evaluation: rebuild with `presets()[name]` and
    # `eqx.tree_deserialise_leaves(path, like)`
    eqx.tree_serialise_leaves(out / f"{name}.eqx", model)
    info["inference_node_steps_per_s"] = _inference_throughput(cfg, model, ds.subset([len(ds) - 1]))
    # go / no-go: the one-step map on the training flows must be well below persistence
    m1, p1 = one_step_vs_persistence(cfg, model, ds, range(min(go_flows, n_train)))
    info.update(train_one_step=m1, train_one_step_persistence=p1, go_ratio=go_ratio,
                go=m1 < go_ratio * p1)
    print(f"{name}: go/no-go: teacher-forced one-step on training flows {m1:.4g} vs "
          f"persistence {p1:.4g} (ratio {m1 / p1:.3f}, threshold {go_ratio}): "
          f"{'GO' if info['go'] else 'NO-GO'}", flush=True)
    if rollouts and (info["go"] or force_rollouts):
        run = types.SimpleNamespace(config=types.SimpleNamespace(model=cfg), model=model,
                                    family=fam)
        test = _test_file(ds, range(n_train, len(ds)), out / "test_flows.h5")
        t0 = time.perf_counter()
        res = mesh_rollout(run, test, out_dir=out / name, progress=False, animation=animation)
        info["rollout_s_incl_compile_io"] = time.perf_counter() - t0
        info["protocol"] = res["mean"]
        info["protocol_per_trajectory"] = res["trajectories"]
        print(res["table"], flush=True)
    info["load_after"] = os.getloadavg()
    (out / f"{name}.json").write_text(json.dumps(info, indent=2))
    print(name, json.dumps({k: v for k, v in info.items()
                            if k not in ("losses", "protocol_per_trajectory")}), flush=True)
    return info


_ROWS = ("one_step", "rollout1", "rollout50", "rollout_all")


def summary(data, n_test, out):
    """The markdown table of every `<out>/<model>.json`, each model beside the persistence
    and linear-extrapolation baselines (read from the same rollout), and the learning curves."""
    out = pathlib.Path(out)
    res = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))
           if p.stem in presets()}
    names = list(res)
    scored = [n for n in names if "protocol" in res[n]]
    base = res[scored[0]]["protocol"] if scored else None
    cols = names + (["persistence", "linear extrap."] if base else [])
    lines = ["| | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    lines.append("| parameters | " + " | ".join(f"{res[n]['params']:,}" for n in names)
                 + (" | 0 | 0 |" if base else " |"))
    fields = list(base["model"]) if base else []
    for f in fields:
        for k in _ROWS:
            for key in (k, f"{k}_rel"):
                if key not in base["model"][f]:
                    continue
                vals = [res[n]["protocol"]["model"][f].get(key) if n in scored else None
                        for n in names]
                vals += [base["persistence"][f].get(key), base["linear_extrapolation"][f].get(key)]
                lines.append(f"| {f} {key} | " + " | ".join(
                    "n/a" if v is None else f"{v:.4g}" for v in vals) + " |")
        k = "rollout_all"
        lines.append(f"| {f} rollout_all / persistence | " + " | ".join(
            f"{res[n]['protocol']['model'][f][k] / base['persistence'][f][k]:.3f}"
            if n in scored else "n/a" for n in names) + " | 1 | "
            + f"{base['linear_extrapolation'][f][k] / base['persistence'][f][k]:.3g} |")
    pad = " | | |" if base else " |"
    lines.append("| go/no-go: one-step on training flows / persistence | " + " | ".join(
        f"{res[n]['train_one_step'] / res[n]['train_one_step_persistence']:.3f} "
        f"({'GO' if res[n]['go'] else 'NO-GO'})" for n in names) + pad)
    for k, fmt in (("train_node_steps_per_s", ".0f"), ("inference_node_steps_per_s", ".0f"),
                   ("s_per_step", ".3f"), ("steps_done", "d"), ("train_s", ".0f")):
        lines.append(f"| {k} | " + " | ".join(format(res[n][k], fmt) for n in names) + pad)
    lines.append("| final loss (mean of last window) | "
                 + " | ".join(f"{res[n]['losses'][-1][1]:.4f}" for n in names) + pad)
    lines.append("| load before → after | " + " | ".join(
        f"{res[n]['load_before'][0]:.1f} → {res[n]['load_after'][0]:.1f}" for n in names) + pad)
    lines += ["", "Learning curves (teacher-forced one-step velocity RMSE on the first held-out "
              "flow, every 5th frame; persistence in brackets):", "",
              "| model | " + " | ".join(["training s → one-step"] * 1) + " |", "|---|---|"]
    for n in names:
        lines.append(f"| {n} | " + ", ".join(
            f"{r['train_s']:.0f} s → {r['one_step']:.4g}" for r in res[n]["learning_curve"])
            + (f" ({res[n]['learning_curve'][-1]['persistence']:.4g})"
               if res[n]["learning_curve"] else "") + " |")
    text = "\n".join(lines)
    print(text)
    return res


def main(models=("mgn_small", "tf_base"), steps: int | None = None, batch_size: int = 1,
         lr: float = 1e-3, data: str = "data/cache/bench_cylinder_flow.h5", n_test: int = 2,
         out: str = "runs/bench_meshformer", rollouts: bool = True, seed: int = 0,
         noise_std: float | None = None, n_trajectories: int = 10, minutes: float | None = None,
         go_ratio: float = 0.5, force_rollouts: bool = False, curve_points: int = 8,
         go_flows: int = 4, animation: bool = True):
    """Train and score each preset in `models` (one after the other), then print the table.

    A missing `data` file is generated first: `n_trajectories` cylinder flows (solver seed 0,
    so a larger set starts with the same flows as a smaller one). `steps` defaults to 15,000;
    with a time budget (`minutes`) and no `steps`, training runs until the budget is spent,
    however many steps that is (a step cap would stop a fast model early, its learning rate
    not yet decayed, and break the equal-wall-clock comparison)."""
    if steps is None and minutes is None:
        steps = 15000
    path = pathlib.Path(data)
    if not path.is_file():
        from sciops.pde.flow import CylinderFlowConfig, generate_cylinder_flow

        generate_cylinder_flow(CylinderFlowConfig(n_trajectories=n_trajectories, xdmf=False),
                               path, progress=True)
    for name in models:
        run_model(name, path, steps, batch_size, lr, n_test, out, rollouts, seed, noise_std,
                  minutes, go_ratio, force_rollouts, curve_points, go_flows, animation)
    return summary(path, n_test, out) if rollouts else None


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mgn_small,tf_base",
                   help="comma-separated presets: " + ", ".join(presets()))
    p.add_argument("--steps", type=int, default=None,
                   help="optimizer steps (default 15000; with --minutes: no cap, the time "
                   "budget alone ends training)")
    p.add_argument("--minutes", type=float, default=None,
                   help="stop training after this many minutes (equal wall-clock budgets)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise-std", type=float, default=None,
                   help="training input noise on fluid nodes (default: the preset's, 0.02)")
    p.add_argument("--go-ratio", type=float, default=0.5,
                   help="score rollouts only if the training flows' one-step RMSE is below this "
                   "fraction of persistence's (default 0.5)")
    p.add_argument("--force-rollouts", action="store_true", help="score rollouts after a NO-GO")
    p.add_argument("--curve-points", type=int, default=8, help="learning-curve points")
    p.add_argument("--go-flows", type=int, default=4,
                   help="training flows of the go/no-go check (every frame; default 4)")
    p.add_argument("--no-animation", action="store_true", help="no GIF of the rollouts")
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
             not a.no_rollouts, a.seed, a.noise_std, a.n_trajectories, a.minutes, a.go_ratio,
             a.force_rollouts, a.curve_points, a.go_flows, not a.no_animation)
