"""Shared pieces of the DeepONet benchmarks: cached data, a plain training loop, evaluation.

The loop uses the driver's optimizer (`sciops.train.make_optimizer`: AdamW, warmup + cosine,
clipping) on one device, without evaluation or checkpoints in between, so that runs of a
benchmark differ only in what they compare.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time

import equinox as eqx
import jax
import numpy as np

from sciops.data import Dataset, read_hdf5
from sciops.models.deeponet import DeepONetConfig, build, loss, metrics
from sciops.pde import problem
from sciops.train import OptimizerConfig, make_optimizer

CACHE = pathlib.Path(os.environ.get("SCIOPS_BENCH_CACHE", "data/cache"))


def dataset(name: str, path: str, **params) -> Dataset:
    """The data set of problem `name` with `params`, generated once into `data/cache/path`."""
    file = CACHE / path
    if not file.exists():
        prob = problem(name)
        t = time.perf_counter()
        prob.generate(prob.config(**params), file, progress=False)
        print(f"generated {file} in {time.perf_counter() - t:.1f} s", flush=True)
    return read_hdf5(file, lazy=False)


def train(config: DeepONetConfig, data: Dataset, steps: int, *, seed: int = 0,
          batch_size: int = 32, lr: float = 1e-3, model=None, spec=None, warmup: int = 100):
    """Train for `steps` (from `model` if given, updating only the leaves `spec` marks).

    **Returns:** ``(model, seconds)``, the wall time of the steps after the first (compiling)
    one.
    """
    key = jax.random.key(seed)
    if model is None:
        model = build(config, data, key=key)
    spec = eqx.is_inexact_array if spec is None else spec
    params, frozen = eqx.partition(model, spec)
    opt = make_optimizer(OptimizerConfig(lr=lr, weight_decay=0.0, schedule="cosine",
                                         warmup_steps=min(warmup, steps // 10), clip_norm=1.0),
                         steps)
    state = opt.init(params)

    # Frozen arrays go in as arguments, not closed-over constants (XLA would constant-fold them).
    @eqx.filter_jit
    def step(params, frozen, state, batch):
        def f(p):
            return loss(config, eqx.combine(p, frozen), batch)[0]
        value, grads = eqx.filter_value_and_grad(f)(params)
        updates, state = opt.update(grads, state, params)
        return eqx.apply_updates(params, updates), state, value

    arrays = data.load()
    n = len(data)
    bs = min(batch_size, n)
    rng = np.random.default_rng(seed)
    order, pos = rng.permutation(n), 0
    t0 = None
    for i in range(steps):
        if pos + bs > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + bs]
        pos += bs
        params, state, value = step(params, frozen, state,
                                    {k: v[idx] for k, v in arrays.items()})
        if i == 0:
            jax.block_until_ready(value)
            t0 = time.perf_counter()
    jax.block_until_ready(params)
    return eqx.combine(params, frozen), time.perf_counter() - t0


def evaluate(config: DeepONetConfig, model, data: Dataset, batch_size: int = 100) -> dict:
    """Test-set means: per-sample relative L2 (`l2`), global relative L2 (`l2_global`), and the
    per-task means of `l2/<task>` (finite entries only)."""
    fn = eqx.filter_jit(lambda m, b: metrics(config, m, b))
    arrays = data.load()
    out: dict[str, list] = {}
    for s in range(0, len(data), batch_size):
        res = fn(model, {k: v[s:s + batch_size] for k, v in arrays.items()})
        for k, v in res.items():
            out.setdefault(k, []).append(np.asarray(v))
    cat = {k: np.concatenate(v) for k, v in out.items()}
    result = {k: float(v[np.isfinite(v)].mean()) for k, v in cat.items()
              if k not in ("sq_err", "sq_ref") and np.isfinite(v).any()}
    result["l2_global"] = float(np.sqrt(cat["sq_err"].mean() / cat["sq_ref"].mean()))
    return result


def replace(config: DeepONetConfig, **kw) -> DeepONetConfig:
    return dataclasses.replace(config, **kw)


def load() -> str:
    return "load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
