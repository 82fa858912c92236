"""Full vs a priori compressed convolutions in the wave simulator (Boukraichi et al., 2023).

One data set (the package's own leapfrog solver), one architecture, one training recipe; only
the hidden convolutions change. For each form it reports conv parameters, conv FLOPs per step,
peak compiled memory of a training step, training wall time, one-step and 50-step rollout
relative L2 on held-out trajectories and on training trajectories (the train/test gap), the
growth of a tiny perturbation over a 50-step rollout (the stability of the learned time
stepping), and CPU inference time of one simulator step on a batch, measured side by side: the
models' timing repeats are interleaved so that machine load hits all of them alike.

Run: ``python benchmarks/wavecnn_compression.py [--steps 1500] [--json out.json]``; forms can
be trained in separate processes (``--forms full:0`` and ``--forms cp:4,tucker:4``), their
JSONs merged, and timed side by side with ``--reuse merged.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from sciops.data import read_hdf5
from sciops.models import GRID_BASELINES, GridBaseline, family, simulate_frames
from sciops.models.wavecnn import WaveCNNConfig, rollout
from sciops.pde import problem
from sciops.pde.wave import WaveConfig

# The per-kernel 1-D sums (("separable", 1), 2.5x fewer conv parameters) cost about as much
# per training step as the dense model on CPU; pass them with --forms to include them.
FORMS = [("full", 0), ("cp", 4), ("cp", 8), ("cp", 16), ("tucker", 4), ("depthwise", 1)]


def _data(path: pathlib.Path, resolution: int) -> pathlib.Path:
    if not path.exists():
        cfg = WaveConfig(n_samples=100, resolution=resolution, n_frames=60, frame_dt=0.02,
                         frequency=3.0, sponge_width=10, seed=0)
        problem("wave").generate(cfg, path, progress=False)
    return path


def _train(cfg, train, steps, batch_size, lr, seed, curve_every=0, curve_sets=()):
    """Train `steps` AdamW steps; with `curve_every`, also evaluate on `curve_sets` (name,
    dataset) every `curve_every` steps, outside the timed part, for a learning curve against
    cumulative training seconds (used for the equal-wall-time comparison)."""
    fam = family("wavecnn")
    model = fam.build(cfg, train, key=jax.random.key(seed))
    opt = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, lr, max(steps // 10, 1), steps),
                      weight_decay=1e-4)
    opt = optax.chain(optax.clip_by_global_norm(1.0), opt)
    state = opt.init(eqx.filter(model, eqx.is_array))

    def step(model, state, batch, key):
        grads, aux = eqx.filter_grad(lambda m: fam.loss(cfg, m, batch, key=key),
                                     has_aux=True)(model)
        updates, state = opt.update(grads, state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), state, aux

    data = {k: jnp.asarray(v) for k, v in train.load().items()}
    rng = np.random.default_rng(seed)
    key = jax.random.key(seed + 1)
    example = {k: v[:batch_size] for k, v in data.items()}
    jstep = eqx.filter_jit(step)
    compiled = jax.jit(lambda p, s, b, k: step(eqx.combine(p, static), s, b, k)[1:])
    params, static = eqx.partition(model, eqx.is_array)
    mem = compiled.lower(params, state, example, key).compile().memory_analysis()
    peak = None
    if mem is not None:
        peak = int(mem.temp_size_in_bytes + mem.argument_size_in_bytes
                   + mem.output_size_in_bytes - mem.alias_size_in_bytes)
    # Compile once outside the timed loop.
    jstep(model, state, example, key)
    elapsed, curve = 0.0, []
    start = time.perf_counter()
    for i in range(steps):
        idx = rng.choice(len(train), batch_size, replace=False)
        key, k = jax.random.split(key)
        model, state, aux = jstep(model, state, {k_: v[idx] for k_, v in data.items()}, k)
        if curve_every and (i + 1) % curve_every == 0 and i + 1 < steps:
            jax.block_until_ready(eqx.filter(model, eqx.is_array))
            elapsed += time.perf_counter() - start
            point = {"step": i + 1, "train_s": elapsed}
            for set_name, ds in curve_sets:
                err = _errors(cfg, model, ds)
                point[f"{set_name}_l2_1step"] = err["l2"]
                point[f"{set_name}_l2_rollout50"] = err["rollout_l2"]
            curve.append(point)
            start = time.perf_counter()
    jax.block_until_ready(eqx.filter(model, eqx.is_array))
    elapsed += time.perf_counter() - start
    return model, elapsed, peak, float(aux["nmse"]), curve


def _errors(cfg, model, ds):
    fam = family("wavecnn")
    batch = {k: jnp.asarray(v) for k, v in ds.load().items()}
    m = eqx.filter_jit(lambda mod, b: fam.metrics(cfg, mod, b))(model, batch)
    return {k: float(np.mean(v)) for k, v in m.items()}


def _baseline_errors(ds, history: int = 2, steps: int = 50) -> dict[str, dict[str, float]]:
    """The trivial simulators (`sciops.models.GridBaseline`: persistence, and linear
    extrapolation $u^{n+1} = 2u^n - u^{n-1}$, the leapfrog step without its Laplacian term)
    rolled by `simulate_frames` and scored exactly as the family's `metrics` score a model (per
    trajectory, relative L2 pooled over the steps, then the mean; no boundary ring imposed):
    teacher-forced (`l2`) and rolled out from the first `history` frames (`rollout_l2`)."""
    u = jnp.asarray(ds.load()["u"])
    k = history
    steps = min(steps, u.shape[1] - k)
    truth = u[:, k:k + steps]
    axes = tuple(range(1, u.ndim))

    def score(kind: str, mode: str) -> float:
        pred = jax.vmap(lambda traj: simulate_frames(GridBaseline(kind), traj[:k], (),
                                                     traj[k:k + steps], mode=mode,
                                                     boundary="model"))(u)
        rel = jnp.sqrt(jnp.sum((pred - truth) ** 2, axis=axes) / jnp.sum(truth**2, axis=axes))
        return float(jnp.mean(rel))

    return {kind.replace("_", " "): {"l2": score(kind, "teacher_forced"),
                                     "rollout_l2": score(kind, "autoregressive")}
            for kind in GRID_BASELINES}


def _perturbation_growth(model, ds, steps=50, eps=1e-3):
    """RMS of the difference between rollouts from the true first frames with and without a
    tiny random perturbation (`eps` times the field scale), after `steps` steps, relative to the
    perturbation: > 1 means the learned time stepping amplifies errors (a linear instability:
    the leapfrog skeleton $2u^n - u^{n-1}$ is only neutrally stable, so any learned mode with
    gain above one grows geometrically), < 1 that it damps them."""
    batch = ds.load()
    u, c = jnp.asarray(batch["u"][:, :2]), jnp.asarray(batch["c"])
    roll = eqx.filter_jit(lambda m, f: jax.vmap(lambda a, b: rollout(m, a, b, steps))(f, c))
    pert = eps * model.u_scale * jax.random.normal(jax.random.key(5), u.shape)
    diff = roll(model, u + pert)[:, -1] - roll(model, u)[:, -1]
    return float(jnp.sqrt(jnp.mean(diff**2)) / jnp.sqrt(jnp.mean(pert**2)))


def _step_fn(static):
    return jax.jit(lambda p, u, c: jax.vmap(eqx.combine(p, static).step)(u, c))


def _timings(models, example, repeats):
    """Median seconds of one jitted simulator step on the batch, interleaved across models."""
    fns = {}
    for name, model in models.items():
        params, static = eqx.partition(model, eqx.is_array)
        f = _step_fn(static)
        for _ in range(3):  # compile and warm up
            f(params, *example).block_until_ready()
        fns[name] = (f, params)
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, (f, params) in fns.items():
            t = time.perf_counter()
            f(params, *example).block_until_ready()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(v) for name, v in times.items()}


def main(steps: int = 1500, batch_size: int = 8, lr: float = 3e-3, resolution: int = 32,
         width: int = 16, depth: int = 4, kernel_size: int = 5, repeats: int = 30,
         data_dir: str = "data/cache", json_path: str | None = None, forms=FORMS,
         compressed_steps: int | None = None, reuse: str | None = None, n_train: int = 90,
         pushforward: int = 1, noise: float = 1.0, curve_every: int = 0) -> dict:
    """Train and measure every form.

    `n_train`: training trajectories (the first `n_train` of the 90 training ones; the test
    trajectories are always the last 10, the train-side errors always the first 10), to probe
    overfitting with little data. `curve_every`: evaluate test (and train-side) errors every
    so many steps, for learning curves against training seconds.

    `compressed_steps`: optimizer steps for the compressed forms (default `steps`), e.g. to
    compare at equal training time. `reuse`: a JSON written by an earlier run; forms trained
    there for the same number of steps keep its training results (same data, seed and recipe)
    and are only rebuilt, untrained, for the side-by-side inference timing, which does not
    depend on the weights.
    """
    load_start = os.getloadavg()
    earlier = json.loads(pathlib.Path(reuse).read_text()) if reuse else {"results": {}}
    previous = {name: dict(r, steps=r.get("steps", earlier["meta"]["steps"]))
                for name, r in earlier["results"].items()}
    path = _data(pathlib.Path(data_dir) / f"wave_bench_{resolution}.h5", resolution)
    ds = read_hdf5(path, lazy=False)
    if not 10 <= n_train <= 90:
        raise ValueError(f"n_train: expected 10..90 trajectories, got {n_train}")
    train, test = ds.subset(np.arange(n_train)), ds.subset(np.arange(90, 100))
    train_eval = ds.subset(np.arange(10))
    results, models = {}, {}
    for conv, rank in forms:
        name = conv if conv == "full" else f"{conv}-r{rank}"
        cfg = WaveCNNConfig(conv=conv, rank=max(rank, 1), width=width, depth=depth,
                            kernel_size=kernel_size, history=2, pushforward=pushforward,
                            noise=noise, rollout_steps=50)
        n_steps = steps if conv == "full" or compressed_steps is None else compressed_steps
        if name in previous and previous[name]["steps"] == n_steps:
            results[name] = dict(previous[name])
            models[name] = family("wavecnn").build(cfg, train, key=jax.random.key(0))
            print(name, "reused from", reuse, flush=True)
            continue
        model, seconds, peak, last, curve = _train(
            cfg, train, n_steps, batch_size, lr, seed=0, curve_every=curve_every,
            curve_sets=(("test", test), ("train", train_eval)))
        test_err = _errors(cfg, model, test)
        train_err = _errors(cfg, model, train_eval)
        results[name] = {
            "steps": n_steps, "conv_params": model.conv_params, "params": model.n_params,
            "conv_mflops": model.conv_flops((resolution, resolution)) / 1e6,
            "peak_train_mib": None if peak is None else peak / 2**20,
            "train_s": seconds, "final_loss": last,
            "test_l2_1step": test_err["l2"], "test_l2_rollout50": test_err["rollout_l2"],
            "train_l2_1step": train_err["l2"], "train_l2_rollout50": train_err["rollout_l2"],
            "perturbation_growth50": _perturbation_growth(model, test),
            "curve": curve,
        }
        models[name] = model
        print(name, json.dumps(results[name]), flush=True)
    example = ds.take(np.arange(8))
    example = (jnp.asarray(example["u"][:, :2]), jnp.asarray(example["c"]))
    times = _timings(models, example, repeats)
    # the skeptic's simulators on the same trajectories, scored the same way (no training)
    base_test, base_train = _baseline_errors(test), _baseline_errors(train_eval)
    baselines = {name: {"test_l2_1step": base_test[name]["l2"],
                        "test_l2_rollout50": base_test[name]["rollout_l2"],
                        "train_l2_rollout50": base_train[name]["rollout_l2"]}
                 for name in base_test}
    full = results.get("full")  # absent when the forms are trained in separate processes
    for name, r in results.items():
        r["infer_ms"] = 1e3 * times[name]
        r.setdefault("steps", steps)
        r["conv_compression"] = full and full["conv_params"] / r["conv_params"]
        r["rollout_ratio"] = full and r["test_l2_rollout50"] / full["test_l2_rollout50"]
        r["speedup"] = full and times["full"] / times[name]
    meta = {"steps": steps, "compressed_steps": compressed_steps, "n_train": n_train,
            "pushforward": pushforward, "noise": noise, "batch_size": batch_size, "lr": lr,
            "resolution": resolution,
            "width": width, "depth": depth, "kernel_size": kernel_size,
            "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
            "devices": str(jax.devices()), "jax": jax.__version__}
    _print({**results, **baselines}, meta)
    out = {"meta": meta, "results": results, "baselines": baselines}
    if json_path:
        pathlib.Path(json_path).write_text(json.dumps(out, indent=1))
    return out


def _print(results, meta):
    cols = ["steps", "conv_params", "conv_compression", "conv_mflops", "peak_train_mib", "train_s",
            "test_l2_1step", "test_l2_rollout50", "rollout_ratio", "train_l2_rollout50",
            "infer_ms", "speedup"]
    print(f"\nwave simulator, {meta['resolution']}^2, width {meta['width']}, depth "
          f"{meta['depth']}, {meta['kernel_size']}x{meta['kernel_size']} kernels, "
          f"{meta['steps']} steps; load {meta['loadavg_start']} -> {meta['loadavg_end']}")
    print("| form | " + " | ".join(cols) + " |")
    print("|" + "---|" * (len(cols) + 1))
    for name, r in results.items():
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append("-" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v:.3g}"))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--compressed-steps", type=int, default=None,
                        help="optimizer steps for the compressed forms (default: --steps)")
    parser.add_argument("--reuse", default=None,
                        help="JSON of an earlier run whose trained forms are not retrained")
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--forms", default=None,
                        help="comma-separated forms as conv:rank, e.g. full:0,tucker:4 "
                             "(default: all of FORMS)")
    parser.add_argument("--n-train", type=int, default=90)
    parser.add_argument("--pushforward", type=int, default=1)
    parser.add_argument("--noise", type=float, default=1.0,
                        help="input noise in units of s_a (0.1 leaves CP rollouts unstable)")
    parser.add_argument("--curve-every", type=int, default=0)
    args = parser.parse_args()
    forms = FORMS if args.forms is None else [
        (f.split(":")[0], int(f.split(":")[1])) for f in args.forms.split(",")]
    main(steps=args.steps, resolution=args.resolution, repeats=args.repeats,
         json_path=args.json_path, compressed_steps=args.compressed_steps, reuse=args.reuse,
         forms=forms, n_train=args.n_train, pushforward=args.pushforward, noise=args.noise,
         curve_every=args.curve_every)
