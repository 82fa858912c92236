"""The same TFNO in sciops (JAX) and in neuraloperator (PyTorch) on neuraloperator's small Darcy set.

Configuration (neuraloperator 2.0's `TFNO` defaults, as in its documented small-Darcy run): Tucker
factorization per layer at rank 0.42, 16×16 modes, 32 hidden channels, 4 layers, lifting and
projection MLPs of 64 channels, a channel MLP (expansion 0.5, soft-gating skip) and a linear skip
in every layer, grid positional embedding, no domain padding. Both sides get the same
normalisation (z-scores fitted on the training inputs and outputs), the same batches in the
same order (batch 32, 1000 training samples at 16², 31 steps per epoch), AdamW (weight decay
1e-4) with the same warmup + cosine schedule and global-norm clipping at 1, and the same loss,
the mean per-sample relative L2 error in physical units. Reported: seconds per epoch (median
over the epochs after the first, which includes JAX's compilation), their ratio, parameter
counts (real numbers: a complex entry counts 2), and test relative L2 at 16² and at 32²
(zero-shot super-resolution). Both sides run in one process on the same `--threads` cores
(default 1, set by CPU affinity before JAX starts; torch with `set_num_threads`), and their
epochs alternate so that both see the same machine load.

    python benchmarks/tfno_vs_neuralop.py [--epochs 10] [--threads 1] \
        [--implementation reconstructed|factorized] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _pinning import pin_threads, tune_allocator  # noqa: E402

MODEL = dict(n_modes=[16, 16], hidden_channels=32, n_layers=4, lifting_channels=64,
             projection_channels=64, positional_embedding=True, padding=0.0,
             factorization="tucker", rank=0.42, joint=False, implementation="factorized",
             skip="linear", channel_mlp_expansion=0.5, channel_mlp_skip="soft-gating",
             norm="none", loss="l2")


def _arrays(path: pathlib.Path) -> dict[str, np.ndarray]:
    from sciops.data import read_hdf5

    d = read_hdf5(path, lazy=False).load()
    return {"x": d["x"].astype(np.float32)[:, None], "y": d["y"].astype(np.float32)[:, None]}


def _schedule(step: int, steps: int, lr: float) -> float:
    """optax.warmup_cosine_decay_schedule as `make_optimizer` builds it (end value 0)."""
    warm = max(1, steps // 20)
    if step < warm:
        return lr * step / warm
    t = (step - warm) / max(1, steps - warm)
    return 0.5 * lr * (1 + math.cos(math.pi * min(t, 1.0)))


def sciops_side(train, tests, epochs_order, lr, implementation="factorized", seed=0):
    """The sciops run as (run one epoch, finish) closures, so that epochs can alternate."""
    import equinox as eqx
    import jax

    from sciops.data import Dataset
    from sciops.models import family, model_config
    from sciops.train import OptimizerConfig, make_optimizer

    fno = family("fno")
    # `implementation` changes only how sciops evaluates the same function with the same
    # parameters: contracting with the factors, or forming each layer's weight first
    config = model_config("fno", {**MODEL, "implementation": implementation})
    model = fno.build(config, Dataset(train), key=jax.random.key(seed))
    spec = jax.tree.map(lambda _: False, model)
    spec = eqx.tree_at(lambda t: t.net, spec, jax.tree.map(eqx.is_inexact_array, model.net))
    params, static = eqx.partition(model, spec)
    steps = sum(len(e) for e in epochs_order)
    opt = make_optimizer(OptimizerConfig(lr=lr, weight_decay=1e-4, schedule="cosine",
                                         warmup_steps=max(1, steps // 20), clip_norm=1.0), steps)

    @eqx.filter_jit
    def step(params, state, batch):
        def f(p):
            return fno.loss(config, eqx.combine(p, static), batch)[0]
        value, grads = eqx.filter_value_and_grad(f)(params)
        updates, state = opt.update(grads, state, params)
        return eqx.apply_updates(params, updates), state, value

    box = {"params": params, "state": opt.init(params), "value": None}

    def epoch(order):
        for idx in order:
            box["params"], box["state"], box["value"] = step(
                box["params"], box["state"], {k: v[idx] for k, v in train.items()})
        box["value"].block_until_ready()

    def finish():
        model = eqx.combine(box["params"], static)
        metrics = eqx.filter_jit(lambda m, b: fno.metrics(config, m, b))
        errors = {name: float(np.mean(metrics(model, t)["l2"])) for name, t in tests.items()}
        n_params = sum(int(a.size) for a in
                       jax.tree.leaves(eqx.filter(model.net, eqx.is_inexact_array)))
        return errors, n_params, float(box["value"])

    return epoch, finish


def neuralop_side(train, tests, epochs_order, lr, threads, seed=0):
    """The neuraloperator run as (run one epoch, finish) closures."""
    import torch
    from neuralop.models import TFNO

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = TFNO(n_modes=(16, 16), in_channels=1, out_channels=1, hidden_channels=32,
                 n_layers=4, factorization="tucker", rank=0.42, implementation="factorized")
    stats = {k: (float(v.mean()), float(v.std())) for k, v in train.items()}
    tx = {k: torch.from_numpy(v) for k, v in train.items()}
    steps = sum(len(e) for e in epochs_order)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _schedule(s, steps, lr) / lr)

    def predict(x):
        (mx, sx), (my, sy) = stats["x"], stats["y"]
        return model((x - mx) / sx) * sy + my

    def rel_l2(pred, y):
        dims = tuple(range(1, y.ndim))
        return (torch.sqrt(((pred - y) ** 2).sum(dims) / (y**2).sum(dims)))

    box = {}

    def epoch(order):
        model.train()
        for idx in order:
            idx = torch.from_numpy(idx)
            loss = rel_l2(predict(tx["x"][idx]), tx["y"][idx]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        box["loss"] = float(loss)

    def finish():
        model.eval()
        with torch.no_grad():
            errors = {name: float(rel_l2(predict(torch.from_numpy(t["x"])),
                                         torch.from_numpy(t["y"])).mean())
                      for name, t in tests.items()}
        n_params = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
        return errors, n_params, box["loss"]

    return epoch, finish


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(pathlib.Path(__file__).resolve().parents[1]
                                              / "data" / "neuralop-darcy"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--threads", type=int, default=1,
                        help="cores given to the process (both sides), default 1")
    parser.add_argument("--json", default=None)
    parser.add_argument("--implementation", choices=("factorized", "reconstructed"),
                        default="reconstructed",
                        help="sciops's execution path for the Tucker weights: form each layer's "
                             "weight once per step (default), or contract every sample with the "
                             "factors; the same function and parameters either way "
                             "(neuraloperator runs its own 'factorized' path)")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc thresholds at their defaults (both sides)")
    parser.add_argument("--seed", type=int, default=0,
                        help="initialisation of both sides and the epoch orders")
    args = parser.parse_args(argv)
    pin_threads(args.threads)
    allocator = tune_allocator(not args.default_malloc)
    import jax

    root = pathlib.Path(args.data)
    train = _arrays(root / "darcy_train_16.h5")
    tests = {"16": _arrays(root / "darcy_test_16.h5"), "32": _arrays(root / "darcy_test_32.h5")}
    rng = np.random.default_rng(args.seed)
    n, b = len(train["x"]), args.batch_size
    epochs_order = [np.sort(rng.permutation(n)[: (n // b) * b].reshape(-1, b), axis=1)
                    for _ in range(args.epochs)]
    print(f"TFNO tucker 0.42 on neuralop Darcy 16^2: {n} train, {args.epochs} epochs of "
          f"{n // b} steps; {args.threads} core(s) for both sides, sciops implementation "
          f"{args.implementation!r}, jax devices {jax.devices()}; load average "
          f"{os.getloadavg()[0]:.1f}; allocator: {allocator}", flush=True)
    sides = {"sciops": sciops_side(train, tests, epochs_order, args.lr, args.implementation,
                                   args.seed),
             "neuraloperator": neuralop_side(train, tests, epochs_order, args.lr, args.threads,
                                             args.seed)}
    # epochs alternate between the two sides, so both see the same machine load
    times = {name: [] for name in sides}
    for e, order in enumerate(epochs_order):
        for name, (epoch, _) in sides.items():
            t = time.perf_counter()
            epoch(order)
            times[name].append(time.perf_counter() - t)
        print(f"epoch {e + 1:3d}: " + "  ".join(f"{k} {v[-1]:6.2f} s" for k, v in times.items()),
              flush=True)
    results = {}
    for name, (_, finish) in sides.items():
        errors, n_params, last = finish()
        epoch_s = times[name]
        results[name] = dict(s_per_epoch=float(np.median(epoch_s[1:])) if len(epoch_s) > 1
                             else epoch_s[0], first_epoch_s=epoch_s[0], params=n_params,
                             l2_16=errors["16"], l2_32=errors["32"], final_loss=last)
        print(name, json.dumps(results[name]), flush=True)
    s, t = results["sciops"], results["neuraloperator"]
    print("\n| | sciops (JAX) | neuraloperator 2.0 (PyTorch) | ratio |")
    print("|---|---|---|---|")
    print(f"| s / epoch (median, after the first) | {s['s_per_epoch']:.2f} | "
          f"{t['s_per_epoch']:.2f} | {t['s_per_epoch'] / s['s_per_epoch']:.2f}x faster |")
    print(f"| first epoch (incl. compile) s | {s['first_epoch_s']:.1f} | "
          f"{t['first_epoch_s']:.1f} | |")
    print(f"| parameters (real) | {s['params']:,} | {t['params']:,} | |")
    print(f"| test rel. L2 at 16² | {100 * s['l2_16']:.2f} % | {100 * t['l2_16']:.2f} % | |")
    print(f"| test rel. L2 at 32² | {100 * s['l2_32']:.2f} % | {100 * t['l2_32']:.2f} % | |")
    results["loadavg"] = os.getloadavg()
    print(f"\nload average {' '.join(f'{v:.1f}' for v in results['loadavg'])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
