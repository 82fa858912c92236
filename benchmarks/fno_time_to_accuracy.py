"""Time to accuracy of the default Darcy job's FNO in sciops and in neuraloperator, and seconds
per epoch at 64² and 128², in one run.

**Data.** The default job's (`configs/darcy.yaml`): the package's Darcy solver at 64², 1,000
training and 100 held-out samples (`data/cache/darcy_64.h5`, generated once); for the 128²
speed row, 120 samples at 128² (`data/cache/darcy_128_speed.h5`).

**Both sides** build the default config's network: 16 x 16 Fourier modes (full-spectrum count),
32 hidden channels, 4 Fourier layers with linear skips, lifting and projection MLPs of width 64,
grid positional embedding, GELU, no channel MLP (the parameter counts are printed and agree),
the domain padded from 64 to 72 points per axis (sciops pads 8 points at the end of each axis,
neuraloperator 4 at each side: its padding is symmetric); inputs and outputs normalised per
channel with the training split's mean and standard deviation, the loss the mean per-sample
relative L2 of the de-normalised output. The default recipe on both: AdamW (lr 3e-3, weight
decay 1e-4 on the network's weights), 100 linear warm-up steps then cosine decay to 0 over the
run, global-norm clipping at 1.0, batches of 20 from the same shuffled order. sciops trains
`sciops.models.fno.FieldOperator` with `sciops.train.make_optimizer`; neuraloperator trains its
`FNO` with `torch.optim.AdamW`, a `LambdaLR` of the same schedule and `clip_grad_norm_`.

**Protocol.** Epochs alternate (sciops epoch e, then neuraloperator epoch e), so both see the same
machine load; after every epoch both are evaluated on the 100 held-out samples with one metric
(per-sample relative L2, averaged), outside the timed window.
Reported: the training wall time until the held-out error first reaches `--target` (2 %), the
error each side has at the wall time the faster side needed for all its epochs, and the median
seconds per epoch (first epoch, which compiles, excluded). The 128² row times `--speed-steps`
steps of batch 20 per side in alternating rounds and reports seconds per 1,000-sample epoch.
Threads pinned alike (`--threads`, default 2: the whole machine, as each library uses by default).

Run: ``python benchmarks/fno_time_to_accuracy.py [--epochs 30] [--threads 2] [--json out.json]``
(the default job is 30 epochs = 1,500 steps; extra `bench`: neuraloperator and the pinned CPU
torch).
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
from _pinning import pin_threads  # noqa: E402

CACHE = pathlib.Path(os.environ.get("SCIOPS_BENCH_CACHE", "data/cache"))
LR, WEIGHT_DECAY, WARMUP, CLIP, BATCH = 3e-3, 1e-4, 100, 1.0, 20


def darcy(resolution: int, n_samples: int, name: str) -> dict:
    """`{"x", "y"}` arrays ``(n, 1, s, s)`` of the package's Darcy solver, cached."""
    from sciops.data import read_hdf5
    from sciops.pde import problem

    file = CACHE / name
    if not file.exists():
        prob = problem("darcy")
        prob.generate(prob.config(n_samples=n_samples, resolution=resolution), file,
                      progress=False)
    arrays = read_hdf5(file, lazy=False).load()
    return {k: np.asarray(arrays[k], np.float32).reshape(len(arrays[k]), 1, resolution, resolution)
            for k in ("x", "y")}


def _stats(v: np.ndarray) -> tuple[float, float]:
    return float(v.mean(dtype=np.float64)), float(v.std(dtype=np.float64))


def lr_at(step: int, total: int) -> float:
    """The default recipe's learning rate at `step` (optax's warmup_cosine_decay_schedule)."""
    warm = min(WARMUP, max(total - 1, 0))
    if step < warm:
        return LR * step / warm
    frac = min((step - warm) / max(total - warm, 1), 1.0)
    return LR * 0.5 * (1.0 + math.cos(math.pi * frac))


class SciopsSide:
    def __init__(self, train: dict, total_steps: int, seed: int):
        import equinox as eqx
        import jax
        import jax.numpy as jnp

        from sciops.models.fno import FNO, FieldOperator, Normalizer
        from sciops.train import OptimizerConfig, make_optimizer

        self.jax, self.jnp, self.eqx = jax, jnp, eqx
        (mx, sx), (my, sy) = _stats(train["x"]), _stats(train["y"])
        self.norms = (Normalizer(jnp.asarray([mx], jnp.float32), jnp.asarray([sx], jnp.float32)),
                      Normalizer(jnp.asarray([my], jnp.float32), jnp.asarray([sy], jnp.float32)))
        self.net = FNO(1, 1, (16, 16), 32, 4, 64, 64, True, 0.125, key=jax.random.key(seed))
        # The optimizer sees the network only: the normalisers are not trainable.
        self.opt = make_optimizer(OptimizerConfig(lr=LR, weight_decay=WEIGHT_DECAY,
                                                  warmup_steps=WARMUP, schedule="cosine",
                                                  clip_norm=CLIP), total_steps)
        self.state = self.opt.init(eqx.filter(self.net, eqx.is_inexact_array))
        norms, opt = self.norms, self.opt

        def operator(net):
            return FieldOperator(net, *norms)

        @eqx.filter_jit
        def step(net, state, x, y):
            def f(n):
                pred = operator(n).batch(x)
                axes = tuple(range(1, y.ndim))
                return jnp.mean(jnp.sqrt(jnp.sum((pred - y) ** 2, axes) / jnp.sum(y ** 2, axes)))
            value, grads = eqx.filter_value_and_grad(f)(net)
            updates, state = opt.update(grads, state, eqx.filter(net, eqx.is_inexact_array))
            return eqx.apply_updates(net, updates), state, value

        self._step = step
        self._predict = eqx.filter_jit(lambda net, x: operator(net).batch(x))
        self.parameters = int(sum(a.size for a in jax.tree.leaves(
            eqx.filter(self.net, eqx.is_inexact_array))))

    def train(self, x: np.ndarray, y: np.ndarray) -> None:
        self.net, self.state, value = self._step(self.net, self.state, x, y)
        self._last = value

    def block(self) -> None:
        self.jax.block_until_ready(self._last)

    def error(self, data: dict) -> float:
        pred = np.concatenate([np.asarray(self._predict(self.net, data["x"][i:i + 50]))
                               for i in range(0, len(data["x"]), 50)])
        return relative_l2(pred, data["y"])


class NeuralopSide:
    def __init__(self, train: dict, total_steps: int, seed: int, device: str = "cpu"):
        import torch
        from neuralop.models import FNO

        self.torch, self.device = torch, device
        torch.manual_seed(seed)
        (mx, sx), (my, sy) = _stats(train["x"]), _stats(train["y"])
        self.norm = (mx, sx, my, sy)
        self.model = FNO(n_modes=(16, 16), in_channels=1, out_channels=1, hidden_channels=32,
                         n_layers=4, lifting_channel_ratio=2, projection_channel_ratio=2,
                         positional_embedding="grid", use_channel_mlp=False,
                         domain_padding=0.0625).to(device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: lr_at(s, total_steps) / LR)
        self.parameters = int(sum(p.numel() * (2 if p.is_complex() else 1)
                                  for p in self.model.parameters()))

    def _predict(self, x):
        mx, sx, my, sy = self.norm
        return self.model((x - mx) / sx) * sy + my

    def train(self, x: np.ndarray, y: np.ndarray) -> None:
        torch = self.torch
        self.model.train()
        x, y = torch.from_numpy(x).to(self.device), torch.from_numpy(y).to(self.device)
        self.opt.zero_grad()
        err = (self._predict(x) - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)
        loss = err.mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), CLIP)
        self.opt.step()
        self.sched.step()

    def block(self) -> None:
        if self.device != "cpu":  # torch on CPU is synchronous
            self.torch.cuda.synchronize()

    def error(self, data: dict) -> float:
        self.model.eval()
        with self.torch.no_grad():
            pred = np.concatenate([self._predict(self.torch.from_numpy(data["x"][i:i + 50])
                                                 .to(self.device)).cpu().numpy()
                                   for i in range(0, len(data["x"]), 50)])
        return relative_l2(pred, data["y"])


def relative_l2(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean over samples of $\\|\\hat u - u\\|_2 / \\|u\\|_2$: one metric for both sides."""
    num = np.sqrt(((pred - true) ** 2).reshape(len(true), -1).sum(1))
    return float(np.mean(num / np.sqrt((true ** 2).reshape(len(true), -1).sum(1))))


def time_to_accuracy(epochs: int, target: float, seed: int) -> dict:
    data = darcy(64, 1100, "darcy_64.h5")
    train = {k: v[:1000] for k, v in data.items()}
    test = {k: v[1000:1100] for k, v in data.items()}
    steps_per_epoch = len(train["x"]) // BATCH
    total = epochs * steps_per_epoch
    sides = {"sciops": SciopsSide(train, total, seed), "neuralop": NeuralopSide(train, total, seed)}
    rng = np.random.default_rng(seed)
    wall = {k: [] for k in sides}
    err = {k: [] for k in sides}
    for epoch in range(epochs):
        order = rng.permutation(len(train["x"]))
        batches = [order[i * BATCH:(i + 1) * BATCH] for i in range(steps_per_epoch)]
        for name, side in sides.items():
            t = time.perf_counter()
            for idx in batches:
                side.train(train["x"][idx], train["y"][idx])
            side.block()
            wall[name].append(time.perf_counter() - t)
            err[name].append(side.error(test))
        print(f"epoch {epoch + 1:3d}: " + "  ".join(
            f"{k} {wall[k][-1]:6.2f} s, test L2 {100 * err[k][-1]:.2f} %" for k in sides),
            flush=True)
    cum = {k: np.cumsum(v) for k, v in wall.items()}
    reach = {k: next((float(cum[k][i]) for i, e in enumerate(err[k]) if e <= target), None)
             for k in sides}
    t_eq = min(float(c[-1]) for c in cum.values())
    at_eq = {k: err[k][int(np.searchsorted(cum[k], t_eq + 1e-9, side="right")) - 1]
             if cum[k][0] <= t_eq + 1e-9 else None for k in sides}
    return {
        "epochs": epochs, "steps": total, "target": target,
        "parameters": {k: s.parameters for k, s in sides.items()},
        "seconds_per_epoch_64": {k: float(np.median(v[1:] if len(v) > 1 else v))
                                 for k, v in wall.items()},
        "time_to_target_s": reach,
        "final_error": {k: v[-1] for k, v in err.items()},
        "equal_time_s": t_eq, "error_at_equal_time": at_eq,
        "curves": {k: {"seconds": cum[k].tolist(), "test_l2": err[k]} for k in sides},
    }


def speed(res: int, steps: int, rounds: int, seed: int) -> dict:
    """Seconds per 1,000-sample epoch of each side at `res`² (batch 20), alternating rounds of
    `steps` steps after a warm-up round."""
    data = (darcy(64, 1100, "darcy_64.h5") if res == 64 else
            darcy(res, 120, f"darcy_{res}_speed.h5"))
    sides = {"sciops": SciopsSide(data, 1500, seed), "neuralop": NeuralopSide(data, 1500, seed)}
    rng = np.random.default_rng(seed)
    times = {k: [] for k in sides}
    for r in range(rounds + 1):
        for name, side in sides.items():
            batches = [rng.choice(len(data["x"]), BATCH, replace=False) for _ in range(steps)]
            t = time.perf_counter()
            for idx in batches:
                side.train(data["x"][idx], data["y"][idx])
            side.block()
            if r:  # round 0 compiles and warms up
                times[name].append((time.perf_counter() - t) / steps)
    per_epoch = {k: float(np.median(v)) * 1000 / BATCH for k, v in times.items()}
    return {f"seconds_per_epoch_{res}": per_epoch,
            f"speedup_{res}": per_epoch["neuralop"] / per_epoch["sciops"]}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--target", type=float, default=0.02)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--speed-steps", type=int, default=10)
    ap.add_argument("--speed-rounds", type=int, default=3)
    ap.add_argument("--no-128", action="store_true")
    ap.add_argument("--speed-only", action="store_true",
                    help="only the seconds per epoch at 64² and 128² (no training to accuracy)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    pin_threads(a.threads)
    import torch

    torch.set_num_threads(a.threads)
    if a.speed_only:
        res = speed(64, a.speed_steps, a.speed_rounds, a.seed)
    else:
        res = time_to_accuracy(a.epochs, a.target, a.seed)
        s64 = res["seconds_per_epoch_64"]
        res["speedup_64"] = s64["neuralop"] / s64["sciops"]
    if not a.no_128:
        res.update(speed(128, a.speed_steps, a.speed_rounds, a.seed))
    res.update(threads=a.threads, loadavg_end=os.getloadavg())
    _print(res)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(res, indent=1))
    return res


def _print(r: dict) -> None:
    for res in (64, 128):
        if f"seconds_per_epoch_{res}" in r:
            s = r[f"seconds_per_epoch_{res}"]
            print(f"s/epoch at {res}²: sciops {s['sciops']:.2f}, neuraloperator "
                  f"{s['neuralop']:.2f} -> {r[f'speedup_{res}']:.2f}x")
    print(f"{r['threads']} thread(s) each; load average at the end "
          f"{tuple(round(x, 2) for x in r['loadavg_end'])}")
    if "time_to_target_s" not in r:
        return
    p, t, e, q = r["parameters"], r["time_to_target_s"], r["final_error"], r["error_at_equal_time"]

    def secs(v):
        return "not reached" if v is None else f"{v:.1f} s"

    def pct(v):
        return "-" if v is None else f"{100 * v:.2f} %"

    print(f"\nparameters (real): sciops {p['sciops']:,}, neuraloperator {p['neuralop']:,}")
    print(f"time to {100 * r['target']:.0f} % test L2: sciops {secs(t['sciops'])}, "
          f"neuraloperator {secs(t['neuralop'])}"
          + (f" -> {t['neuralop'] / t['sciops']:.2f}x" if None not in t.values() else ""))
    print(f"test L2 after {r['epochs']} epochs: sciops {pct(e['sciops'])}, "
          f"neuraloperator {pct(e['neuralop'])}")
    print(f"test L2 at equal wall time {r['equal_time_s']:.1f} s: sciops {pct(q['sciops'])}, "
          f"neuraloperator {pct(q['neuralop'])}")


if __name__ == "__main__":
    main()
