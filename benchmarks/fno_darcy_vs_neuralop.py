"""sciops FNO vs neuraloperator's FNO on neuraloperator's small Darcy set, in one run.

Both sides train the same architecture with neuraloperator's Darcy example recipe: 8x8 modes,
24 hidden channels, 4 layers, lifting and projection MLPs of width 48, grid positional
embedding, no channel MLP (so the parameter counts are equal), AdamW (lr 1e-2, weight decay
1e-4), cosine annealing stepped per epoch, relative H1 training loss, batch 64, the same
epochs and the same shuffled batches, on data/neuralop-darcy (1000 samples at 16²;
tested on 50 samples at 16² and 32², zero-shot at 32²).

Epochs alternate between the two (sciops epoch e, then neuraloperator epoch e) so that both
see the same machine load. Reported: the median wall and CPU seconds per epoch after the first
(compilation) epoch, their ratio, parameter counts (real numbers; torch counts a complex weight
once), and test relative L2 / H1 at 16² and 32², computed with one metric implementation for
both (sciops.models.fno relative_l2 / relative_h1, per sample, averaged), plus neuraloperator's
own LpLoss with mean reduction as a cross-check.

Run: ``python benchmarks/fno_darcy_vs_neuralop.py [--epochs 20] [--threads 1] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _pinning import pin_threads, tune_allocator  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "neuralop-darcy"


def _load(data_dir: pathlib.Path):
    import numpy as np

    from sciops.data import read_hdf5

    sets = {}
    for name in ("train_16", "test_16", "test_32"):
        d = read_hdf5(data_dir / f"darcy_{name}.h5", lazy=False).load()
        # (n, s, s) uint8 / float32 -> (n, 1, s, s) float32
        sets[name] = {k: np.asarray(v, np.float32)[:, None] for k, v in d.items()}
    return sets


def main(epochs: int = 20, threads: int = 1, batch_size: int = 64, lr: float = 1e-2,
         weight_decay: float = 1e-4, seed: int = 0, data_dir: str | os.PathLike = DATA,
         json_path: str | None = None, malloc_tuning: bool = True) -> dict:
    pin_threads(threads)
    allocator = tune_allocator(malloc_tuning)
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import torch
    from neuralop.losses import H1Loss, LpLoss
    from neuralop.models import FNO as NeuralopFNO

    from sciops.data import Dataset
    from sciops.models.fno import FAMILIES, FNOConfig, relative_h1, relative_l2

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    sets = _load(pathlib.Path(data_dir))
    train = sets["train_16"]
    n_train = len(train["x"])
    steps_per_epoch = n_train // batch_size  # drop the last partial batch on both sides

    # ---- sciops ----
    fam = FAMILIES["fno"]
    config = FNOConfig(n_modes=(8, 8), hidden_channels=24, n_layers=4, lifting_channels=48,
                       projection_channels=48, positional_embedding=True, padding=0.0,
                       loss="h1")
    model = fam.build(config, Dataset(train), key=jax.random.key(seed))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    def schedule(step):  # the torch cosine, stepped once per epoch
        return lr * 0.5 * (1.0 + jnp.cos(jnp.pi * (step // steps_per_epoch) / epochs))

    opt = optax.adamw(schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay)
    opt_state = opt.init(params)

    @eqx.filter_jit
    def jax_step(params, opt_state, batch):
        (value, _), grads = eqx.filter_value_and_grad(
            lambda p: fam.loss(config, eqx.combine(p, static), batch, key=None),
            has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return eqx.apply_updates(params, updates), opt_state, value

    # ---- neuraloperator: the same architecture, its Darcy-example training recipe ----
    tmodel = NeuralopFNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=24,
                         n_layers=4, lifting_channel_ratio=2, projection_channel_ratio=2,
                         positional_embedding="grid", use_channel_mlp=False)
    topt = torch.optim.AdamW(tmodel.parameters(), lr=lr, weight_decay=weight_decay)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=epochs)
    h1 = H1Loss(d=2)  # neuraloperator's default: summed over the batch, as its Trainer uses
    # neuraloperator's small-Darcy loader normalises the output channel-wise (not the input)
    # and trains on the normalised output
    y_mean = torch.tensor(train["y"].mean(axis=(0, 2, 3), keepdims=True))
    y_std = torch.tensor(train["y"].std(axis=(0, 2, 3), keepdims=True))

    def torch_step(x, y):
        topt.zero_grad()
        out = tmodel(x)
        value = h1(out, (y - y_mean) / y_std)
        value.backward()
        topt.step()
        return value.detach()

    rng = np.random.default_rng(seed)
    times = {"sciops": [], "neuralop": []}
    cpu = {"sciops": [], "neuralop": []}
    for epoch in range(epochs):
        order = rng.permutation(n_train)
        batches = [order[i * batch_size:(i + 1) * batch_size] for i in range(steps_per_epoch)]
        t, c = time.perf_counter(), time.process_time()
        for idx in batches:
            params, opt_state, value = jax_step(params, opt_state,
                                                {"x": train["x"][idx], "y": train["y"][idx]})
        value.block_until_ready()
        times["sciops"].append(time.perf_counter() - t)
        cpu["sciops"].append(time.process_time() - c)
        tmodel.train()
        t, c = time.perf_counter(), time.process_time()
        for idx in batches:
            tvalue = torch_step(torch.from_numpy(train["x"][idx]), torch.from_numpy(train["y"][idx]))
        tsched.step()
        times["neuralop"].append(time.perf_counter() - t)
        cpu["neuralop"].append(time.process_time() - c)
        print(f"epoch {epoch + 1:3d}: sciops {times['sciops'][-1]:6.2f} s (h1 {float(value):.4f})"
              f"  neuralop {times['neuralop'][-1]:6.2f} s (h1/batch {float(tvalue) / batch_size:.4f})",
              flush=True)

    # ---- evaluation with one metric implementation for both ----
    model = eqx.combine(params, static)
    tmodel.eval()
    lp = LpLoss(d=2, p=2, reduction="mean")
    results = {}
    for name in ("test_16", "test_32"):
        x, y = sets[name]["x"], sets[name]["y"]
        pred_j = np.array(jax.vmap(model)(jnp.asarray(x)))  # a writable copy for torch
        with torch.no_grad():
            pred_t = (tmodel(torch.from_numpy(x)) * y_std + y_mean).numpy()
        res = {}
        for side, pred in (("sciops", pred_j), ("neuralop", pred_t)):
            res[side] = {
                "l2": float(jnp.mean(relative_l2(jnp.asarray(pred), jnp.asarray(y)))),
                "h1": float(jnp.mean(relative_h1(jnp.asarray(pred), jnp.asarray(y)))),
                "neuralop_lploss_mean": float(lp(torch.from_numpy(pred), torch.from_numpy(y))),
            }
        results[name] = res

    n_sciops = int(sum(x.size for x in jax.tree.leaves(eqx.filter(model.net, eqx.is_array))))
    n_torch = int(sum(p.numel() * (2 if p.is_complex() else 1) for p in tmodel.parameters()))
    med = {k: float(np.median(v[1:])) for k, v in times.items()}
    med_cpu = {k: float(np.median(v[1:])) for k, v in cpu.items()}
    summary = {
        "epochs": epochs, "threads": threads, "batch_size": batch_size,
        "seconds_per_epoch": med, "cpu_seconds_per_epoch": med_cpu,
        "speedup": med["neuralop"] / med["sciops"],
        "cpu_speedup": med_cpu["neuralop"] / med_cpu["sciops"],
        "first_epoch_seconds": {k: v[0] for k, v in times.items()},
        "parameters": {"sciops": n_sciops, "neuralop": n_torch},
        "test": results, "loadavg": os.getloadavg(), "allocator": allocator,
        "versions": {"jax": jax.__version__, "torch": torch.__version__},
    }
    _print_table(summary)
    if json_path:
        pathlib.Path(json_path).write_text(json.dumps(summary, indent=1))
    return summary


def _print_table(s: dict) -> None:
    rows = [
        ("seconds / epoch (median, wall)", s["seconds_per_epoch"], "{:.3f}"),
        ("CPU seconds / epoch (median)", s["cpu_seconds_per_epoch"], "{:.3f}"),
        ("first epoch (incl. compile), s", s["first_epoch_seconds"], "{:.2f}"),
        ("parameters (real)", s["parameters"], "{:d}"),
    ]
    for name in ("test_16", "test_32"):
        for metric in ("l2", "h1"):
            rows.append((f"{name} relative {metric.upper()} (%)",
                         {k: 100 * v[metric] for k, v in s["test"][name].items()}, "{:.2f}"))
    print(f"\n{'':34s} {'sciops':>10s} {'neuralop':>10s} {'ratio':>7s}")
    for label, d, fmt in rows:
        a, b = d["sciops"], d["neuralop"]
        ratio = f"{b / a:.2f}" if a else "-"
        print(f"{label:34s} {fmt.format(a):>10s} {fmt.format(b):>10s} {ratio:>7s}")
    print(f"speed-up (neuralop / sciops): wall {s['speedup']:.2f}x, CPU {s['cpu_speedup']:.2f}x; "
          f"{s['epochs']} epochs, {s['threads']} thread(s) each, load {s['loadavg']}; "
          f"allocator: {s['allocator']}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--json", default=None)
    p.add_argument("--default-malloc", action="store_true",
                   help="leave glibc's malloc thresholds at their defaults (both sides)")
    a = p.parse_args()
    main(epochs=a.epochs, threads=a.threads, batch_size=a.batch_size, seed=a.seed,
         data_dir=a.data, json_path=a.json, malloc_tuning=not a.default_malloc)
