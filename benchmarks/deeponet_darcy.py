"""Masked Darcy DeepONet at 32²: per-geometry error, mask ablation, transfer to a new geometry.

1. Ablation on four source geometries (square, disk, triangle, L-shape; 400 training samples
   each, 100 test samples each): mask in branch + loss, mask in loss only, no mask. The error is
   always measured on the domain (target: <= 5 % per geometry for the full model).
2. Transfer to the held-out cross geometry: from the full model of (1), fine-tune on 25 / 50 /
   100 / 200 cross samples either the branch's last layer and the output bias (`head`) or every
   parameter (`all`), against a model trained from scratch on the same samples for the same
   number of steps; test on 200 other cross samples (target at 100 samples: <= 8 % and >= 30 %
   below scratch). Writes the learning curve to `docs/benchmarks/deeponet_transfer.png`.

Usage: ``python benchmarks/deeponet_darcy.py [--steps N] [--transfer-steps M]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from deeponet_common import DeepONetConfig, dataset, evaluate, load, replace, train  # noqa: E402

SOURCE = ("square", "disk", "triangle", "l_shape")
SIZES = (25, 50, 100, 200)


def main(steps: int = 10000, transfer_steps: int = 1000, lr: float = 1e-3,
         plot: str = "docs/benchmarks/deeponet_transfer.png") -> dict:
    from sciops.train import trainable_filter

    print(load(), flush=True)
    data = dataset("darcy_masked", "darcy_geometries_32.h5", n_samples=2000, geometries=SOURCE)
    train_set, test = data.subset(np.arange(1600)), data.subset(np.arange(1600, 2000))
    base = DeepONetConfig(input_key="f", mask_key="mask", task_key="geometry", task_names=SOURCE,
                          branch_width=256, branch_depth=2, latent=128)
    variants = {"branch+loss": base,
                "loss only": replace(base, mask_in_branch=False),
                "none": replace(base, mask_in_branch=False, mask_in_loss=False)}
    results = {"ablation": {}}
    source_model = None
    for name, config in variants.items():
        model, sec = train(config, train_set, steps, lr=lr)
        res = evaluate(config, model, test)
        res["train_s"] = sec
        results["ablation"][name] = res
        print(f"{name}: " + ", ".join(f"{g} {res['l2/' + g]:.4f}" for g in SOURCE)
              + f", mean {res['l2']:.4f}, global {res['l2_global']:.4f} ({sec:.0f} s)",
              flush=True)
        if name == "branch+loss":
            source_model = model
        print(load(), flush=True)

    target = dataset("darcy_masked", "darcy_cross_32.h5", n_samples=400, geometries=("cross",),
                     seed=1)
    t_test = target.subset(np.arange(200, 400))
    config = replace(base, task_names=("cross",))
    zero_shot = evaluate(config, source_model, t_test)["l2"]
    print(f"zero-shot source model on cross: {zero_shot:.4f}", flush=True)
    curve = {"zero_shot": zero_shot, "scratch": {}, "head": {}, "all": {}}
    for n in SIZES:
        tr = target.subset(np.arange(n))
        bs = min(20, n)
        m, _ = train(config, tr, transfer_steps, lr=lr, batch_size=bs)
        curve["scratch"][n] = evaluate(config, m, t_test)["l2"]
        spec = trainable_filter(source_model, ["branch.layers[-1]", "bias"])
        m, _ = train(config, tr, transfer_steps, lr=lr, batch_size=bs, model=source_model,
                     spec=spec)
        curve["head"][n] = evaluate(config, m, t_test)["l2"]
        m, _ = train(config, tr, transfer_steps, lr=lr, batch_size=bs, model=source_model)
        curve["all"][n] = evaluate(config, m, t_test)["l2"]
        print(f"cross, {n} samples: scratch {curve['scratch'][n]:.4f}, head "
              f"{curve['head'][n]:.4f}, all {curve['all'][n]:.4f}", flush=True)
    results["transfer"] = curve

    print("\n| variant | " + " | ".join(SOURCE) + " | mean | global |")
    print("|---" * (len(SOURCE) + 3) + "|")
    for name, r in results["ablation"].items():
        print(f"| {name} | " + " | ".join(f"{100 * r['l2/' + g]:.2f} %" for g in SOURCE)
              + f" | {100 * r['l2']:.2f} % | {100 * r['l2_global']:.2f} % |")
    print("\n| cross samples | scratch | fine-tune head | fine-tune all | best / scratch |")
    print("|---|---|---|---|---|")
    for n in SIZES:
        best = min(curve["head"][n], curve["all"][n])
        print(f"| {n} | {100 * curve['scratch'][n]:.2f} % | {100 * curve['head'][n]:.2f} % | "
              f"{100 * curve['all'][n]:.2f} % | {best / curve['scratch'][n]:.2f} |")
    if plot:
        plot_curve(curve, plot)
    results["load_end"] = load()
    print(results["load_end"])
    return results


def plot_curve(curve: dict, path: str) -> None:
    """The transfer learning curve (test error against cross-geometry samples) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key, label in (("scratch", "from scratch"), ("head", "fine-tune branch head + bias"),
                       ("all", "fine-tune all")):
        values = {int(n): v for n, v in curve[key].items()}  # JSON keys come back as strings
        ax.plot(SIZES, [100 * values[n] for n in SIZES], "o-", label=label)
    ax.axhline(100 * curve["zero_shot"], color="grey", ls=":", label="source model, no tuning")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(SIZES, [str(n) for n in SIZES])
    ax.set_xlabel("cross-geometry training samples")
    ax.set_ylabel("test relative L2 (%)")
    ax.set_title("DeepONet transfer to a held-out geometry")
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--transfer-steps", type=int, default=1000)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    res = main(a.steps, a.transfer_steps)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
