"""Fisher multi-task DeepONet: per-task error, multi-task vs three single-task models.

Runs (all with the same architecture, optimizer and batch size; test set = 100 samples per task):

1. `main`: the multi-task model on 400 samples per task for `steps` steps; per-task relative
   L2 and wall time (target: <= 2 % per task within 10 minutes of CPU time).
2. Equal total steps: the multi-task model of run 1 against three single-task models trained on
   their task's 400 samples for `steps / 3` steps each (same total number of optimizer steps).
3. 100 samples per task: multi-task on 300 samples (`small_steps` steps) against single-task
   models on 100 samples each (`small_steps / 3` steps each).

Usage: ``python benchmarks/deeponet_multitask.py [--steps N] [--small-steps M]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

sys.path.insert(0, __import__("os").path.dirname(__file__))
from deeponet_common import DeepONetConfig, dataset, evaluate, load, train  # noqa: E402

TASKS = ("fisher", "nws", "zeldovich")


def _task_subset(data, task, limit=None):
    idx = np.nonzero(data.load()["task"] == task)[0]
    return data.subset(idx[:limit] if limit else idx)


def _mixed(data, per_task):
    task = data.load()["task"]
    idx = np.sort(np.concatenate([np.nonzero(task == k)[0][:per_task] for k in range(3)]))
    return data.subset(idx)


def main(steps: int = 12000, small_steps: int = 6000, lr: float = 2e-3) -> dict:
    print(load(), flush=True)
    t0 = time.perf_counter()
    data = dataset("fisher", "fisher_multitask.h5", n_samples=1500)
    gen = time.perf_counter() - t0
    train_all, test = data.subset(np.arange(1200)), data.subset(np.arange(1200, 1500))
    config = DeepONetConfig(input_key="u0", coeff_key="coeffs", task_key="task", task_names=TASKS)
    results = {"generation_s": gen}

    def single_task(per_task, n_steps):
        out = {}
        for k, name in enumerate(TASKS):
            tr = _task_subset(train_all, k, per_task)
            model, sec = train(config, tr, n_steps, lr=lr)
            out[name] = evaluate(config, model, _task_subset(test, k))["l2"]
            out[f"{name}_s"] = sec
            print(f"  single-task {name} ({len(tr)} samples, {n_steps} steps): "
                  f"{out[name]:.4f} in {sec:.0f} s", flush=True)
        return out

    for label, per_task, n_steps in (("400/task", 400, steps), ("100/task", 100, small_steps)):
        tr = _mixed(train_all, per_task)
        model, sec = train(config, tr, n_steps, lr=lr)
        mt = evaluate(config, model, test)
        print(f"multi-task {label} ({len(tr)} samples, {n_steps} steps, {sec:.0f} s): "
              + ", ".join(f"{t} {mt['l2/' + t]:.4f}" for t in TASKS), flush=True)
        st = single_task(per_task, n_steps // 3)
        results[label] = {"multi_task": mt, "multi_task_s": sec, "single_task": st,
                          "steps": n_steps}
        print(load(), flush=True)

    print("\n| samples/task | task | multi-task L2 | 3 × single-task L2 | MT / ST |")
    print("|---|---|---|---|---|")
    for label in ("400/task", "100/task"):
        r = results[label]
        for t in TASKS:
            a, b = r["multi_task"]["l2/" + t], r["single_task"][t]
            print(f"| {label} | {t} | {100 * a:.2f} % | {100 * b:.2f} % | {a / b:.2f} |")
    results["load_end"] = load()
    print(results["load_end"])
    return results


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=12000)
    p.add_argument("--small-steps", type=int, default=6000)
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    a = p.parse_args()
    res = main(a.steps, a.small_steps)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
