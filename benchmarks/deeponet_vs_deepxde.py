"""The same unstacked DeepONet in sciops and in DeepXDE (PyTorch backend): seconds per step,
error after equal steps and at equal wall time.

**Tasks.**

- `antiderivative`: $G(u)(x) = \\int_0^x u(\\xi)\\,d\\xi$ on $[0, 1]$, the operator of Lu et al.'s
  first DeepONet example. $u$ is a Gaussian random field (squared-exponential covariance, length
  scale 0.2) drawn on a 1,001-point grid; the integral is the cumulative trapezoid rule on that
  grid (error $O(h^2) \\approx 10^{-7}$ of the field's scale), both sampled at the 101 sensors /
  output points. 1,000 training and 200 test functions.
- `fisher`: the Fisher-KPP task of the multi-task set (`sciops generate fisher` with
  ``tasks=[fisher]``): initial condition at 64 sensors -> $u(t, x)$ on the 26 x 64 output grid
  (trunk input $(t, x)$). 500 training and 100 test samples.

**Both sides** build branch $[m, 128, 128, 128, p]$ and trunk $[d, 128, 128, 128, p]$ MLPs with
$p = 128$, ReLU (also on the trunk's output, as both libraries do), one scalar output bias, the
Cartesian-product form (every output point of a sample in one batch row), mean-squared error
over the batch's samples and points, Adam with learning rate 1e-3 and no schedule, batches of
64 functions drawn without replacement. The one difference: sciops divides the branch-trunk dot
product by $\\sqrt{p}$ (a fixed rescaling of the last layer's initial weights). sciops builds
`sciops.models.deeponet.DeepONet` and trains it with a plain optax loop; DeepXDE trains its
`DeepONetCartesianProd` with its own `Model.train` on `TripleCartesianProd` data, as its users do.

**Protocol.** Both models live in one process and train in alternating chunks (sciops chunk,
DeepXDE chunk, ...), so both see the same machine load; after each chunk the held-out relative L2
(mean over test functions) is measured outside the timed window. Reported: the median seconds
per step over chunks (the first chunk, which compiles, excluded), the errors after equal steps,
and each side's error at the wall time the faster side needed for all its steps. Threads pinned
alike (`--threads`; default 2, the whole machine, as each library uses by default).

Run: ``python benchmarks/deeponet_vs_deepxde.py [--task antiderivative|fisher|both]
[--steps 5000] [--chunks 10] [--threads 2] [--json out.json]`` (extra `bench`: deepxde and the
pinned CPU torch).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _pinning import pin_threads  # noqa: E402

WIDTH, DEPTH, LATENT, LR, BATCH = 128, 3, 128, 1e-3, 64


def antiderivative_data(n_train: int = 1000, n_test: int = 200, m: int = 101, seed: int = 0):
    """``(branch (n, m), points (m, 1), targets (n, m))`` for training and test."""
    rng = np.random.default_rng(seed)
    fine = np.linspace(0.0, 1.0, 1001)
    cov = np.exp(-0.5 * (fine[:, None] - fine[None, :]) ** 2 / 0.2 ** 2)
    chol = np.linalg.cholesky(cov + 1e-10 * np.eye(len(fine)))
    u = rng.standard_normal((n_train + n_test, len(fine))) @ chol.T
    integral = np.concatenate([np.zeros((len(u), 1)),
                               np.cumsum(0.5 * (u[:, 1:] + u[:, :-1]) * np.diff(fine), 1)], 1)
    idx = np.round(np.linspace(0, len(fine) - 1, m)).astype(int)
    branch, target = u[:, idx].astype(np.float32), integral[:, idx].astype(np.float32)
    points = fine[idx, None].astype(np.float32)
    return ((branch[:n_train], points, target[:n_train]),
            (branch[n_train:], points, target[n_train:]), [(0.0, 1.0)], (m,))


def fisher_data(n_train: int = 500, n_test: int = 100,
                cache: str = os.environ.get("SCIOPS_BENCH_CACHE", "data/cache")):
    from sciops.data import read_hdf5
    from sciops.models.deeponet import grid_points
    from sciops.pde import problem

    file = pathlib.Path(cache) / f"fisher_single_{n_train + n_test}.h5"
    if not file.exists():
        prob = problem("fisher")
        prob.generate(prob.config(n_samples=n_train + n_test, tasks=("fisher",)), file,
                      progress=False)
    data = read_hdf5(file, lazy=False)
    arrays = data.load()
    u0, u = arrays["u0"][:, 0], arrays["u"][:, 0]
    bounds = [tuple(b) for b in data.attrs["bounds"]]
    grid = u.shape[1:]
    points = grid_points(bounds, grid).astype(np.float32)
    target = u.reshape(len(u), -1)
    return ((u0[:n_train], points, target[:n_train]), (u0[n_train:], points, target[n_train:]),
            bounds, grid)


def _rel_l2(pred, target) -> float:
    return float(np.mean(np.linalg.norm(pred - target, axis=1) / np.linalg.norm(target, axis=1)))


def _sciops_side(train, test, bounds, grid, seed):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import optax

    from sciops.models.deeponet import DeepONet

    branch, points, target = train
    net = DeepONet((1, branch.shape[1]), 0, grid, bounds, 1, LATENT, branch="mlp",
                   branch_width=WIDTH, branch_depth=DEPTH, trunk_width=WIDTH, trunk_depth=DEPTH,
                   mask_output=False, activation=jax.nn.relu, key=jax.random.key(seed))
    opt = optax.adam(LR)
    state = opt.init(eqx.filter(net, eqx.is_inexact_array))

    def predict(model, b):
        return jax.vmap(lambda f: model(f[None]).reshape(-1))(b)

    @eqx.filter_jit
    def step(model, state, b, y):
        def loss(m):
            return jnp.mean((predict(m, b) - y) ** 2)
        value, grads = eqx.filter_value_and_grad(loss)(model)
        updates, state = opt.update(grads, state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), state, value

    fwd = eqx.filter_jit(predict)
    rng = np.random.default_rng(seed)
    box = {"model": net, "state": state, "order": rng.permutation(len(branch)), "pos": 0}

    def run(n):
        for _ in range(n):
            if box["pos"] + BATCH > len(branch):
                box["order"], box["pos"] = rng.permutation(len(branch)), 0
            idx = box["order"][box["pos"]:box["pos"] + BATCH]
            box["pos"] += BATCH
            box["model"], box["state"], value = step(box["model"], box["state"],
                                                     jnp.asarray(branch[idx]),
                                                     jnp.asarray(target[idx]))
        jax.block_until_ready(value)

    def error():
        return _rel_l2(np.asarray(fwd(box["model"], jnp.asarray(test[0]))), test[2])

    n_params = sum(x.size for x in jax.tree.leaves(eqx.filter(net, eqx.is_inexact_array)))
    return run, error, int(n_params)


def _deepxde_side(train, test, seed):
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    import deepxde as dde

    dde.config.set_random_seed(seed)
    branch, points, target = train
    data = dde.data.TripleCartesianProd(X_train=(branch, points), y_train=target,
                                        X_test=(test[0], test[1]), y_test=test[2])
    net = dde.nn.DeepONetCartesianProd([branch.shape[1]] + [WIDTH] * DEPTH + [LATENT],
                                       [points.shape[1]] + [WIDTH] * DEPTH + [LATENT],
                                       "relu", "Glorot normal")
    model = dde.Model(data, net)
    model.compile("adam", lr=LR)

    def run(n):
        model.train(iterations=n, batch_size=BATCH, display_every=max(n, 1), verbose=0)

    def error():
        return _rel_l2(model.predict((test[0], test[1])), test[2])

    n_params = sum(p.numel() for p in net.parameters())
    return run, error, int(n_params)


def compare(task: str, steps: int, chunks: int, seed: int = 0) -> dict:
    train, test, bounds, grid = antiderivative_data() if task == "antiderivative" else fisher_data()
    sides = {"sciops": _sciops_side(train, test, bounds, grid, seed),
             "deepxde": _deepxde_side(train, test, seed)}
    per_chunk = max(steps // chunks, 1)
    curves = {name: [] for name in sides}      # (cumulative seconds, steps, error)
    chunk_s = {name: [] for name in sides}
    for c in range(chunks + 1):
        n = 1 if c == 0 else per_chunk        # chunk 0: one step that compiles / warms up
        for name, (run, error, _) in sides.items():
            t = time.perf_counter()
            run(n)
            dt = time.perf_counter() - t
            if c > 0:
                chunk_s[name].append(dt / n)
            prev = curves[name][-1] if curves[name] else (0.0, 0, None)
            curves[name].append((prev[0] + (dt if c > 0 else 0.0), prev[1] + n, error()))
    s_step = {k: float(np.median(v)) for k, v in chunk_s.items()}
    t_eq = min(curves[k][-1][0] for k in curves)
    at_time = {k: next(e for t, _, e in reversed(v) if t <= t_eq + 1e-9) for k, v in curves.items()}
    return {
        "task": task, "train": len(train[0]), "test": len(test[0]), "points": len(train[1]),
        "steps": curves["sciops"][-1][1], "parameters": {k: v[2] for k, v in sides.items()},
        "seconds_per_step": s_step, "speedup": s_step["deepxde"] / s_step["sciops"],
        "error_equal_steps": {k: v[-1][2] for k, v in curves.items()},
        "equal_time_s": t_eq, "error_equal_time": at_time, "curves": curves,
        "loadavg_end": os.getloadavg(),
    }


def _print(r: dict) -> None:
    p = r["parameters"]
    print(f"{r['task']}: {r['train']} train / {r['test']} test functions, {r['points']} output "
          f"points; parameters sciops {p['sciops']:,} / DeepXDE {p['deepxde']:,}")
    s, e, q = r["seconds_per_step"], r["error_equal_steps"], r["error_equal_time"]
    print(f"  s/step: sciops {1e3 * s['sciops']:.2f} ms, DeepXDE {1e3 * s['deepxde']:.2f} ms -> "
          f"{r['speedup']:.2f}x")
    print(f"  rel. L2 after {r['steps']} steps: sciops {e['sciops']:.4f}, DeepXDE {e['deepxde']:.4f}")
    print(f"  rel. L2 at equal wall time {r['equal_time_s']:.1f} s: sciops {q['sciops']:.4f}, "
          f"DeepXDE {q['deepxde']:.4f}")
    print(f"  load average at the end {tuple(round(x, 2) for x in r['loadavg_end'])}")


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("antiderivative", "fisher", "both"), default="both")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    pin_threads(a.threads)
    import torch

    torch.set_num_threads(a.threads)
    tasks = ("antiderivative", "fisher") if a.task == "both" else (a.task,)
    out = []
    for task in tasks:
        r = compare(task, a.steps, a.chunks, a.seed)
        r["threads"] = a.threads
        _print(r)
        out.append(r)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
