"""Shared pieces of the TFNO / MG-TFNO benchmarks: cached Navier–Stokes data, one training loop.

The loop uses the driver's optimizer (`sciops.train.make_optimizer`: AdamW, warmup + cosine,
clipping) on one device with the `fno` family's own `build`, `loss` and `metrics`, and nothing
in between (no evaluation, no checkpoints), so runs differ only in the model configuration.
"""

from __future__ import annotations

import os
import pathlib
import time

import equinox as eqx
import jax
import numpy as np

from sciops.data import Dataset, read_hdf5
from sciops.models import family
from sciops.models import model_config as _model_config
from sciops.pde import problem
from sciops.train import OptimizerConfig, make_optimizer

CACHE = pathlib.Path(os.environ.get("SCIOPS_BENCH_CACHE", "data/cache"))
FNO = family("fno")


def navier_stokes(n_samples: int, resolution: int = 64, viscosity: float = 1e-3,
                  horizon: float = 1.0) -> Dataset:
    """NS-2D vorticity pairs (w(0), w(horizon)) from `sciops.pde.navier_stokes`, cached."""
    file = CACHE / f"ns_{resolution}_nu{viscosity:g}_T{horizon:g}_{n_samples}.h5"
    if not file.exists():
        prob = problem("navier_stokes")
        t = time.perf_counter()
        prob.generate(prob.config(n_samples=n_samples, resolution=resolution,
                                  viscosity=viscosity, horizon=horizon), file, progress=False)
        print(f"generated {file} in {time.perf_counter() - t:.1f} s", flush=True)
    return read_hdf5(file, lazy=False).in_memory()


def model_config(**model):
    return _model_config("fno", model)


def train(config, data: Dataset, steps: int, *, seed: int = 0, batch_size: int = 16,
          lr: float = 3e-3, weight_decay: float = 1e-4):
    """Train a fresh `fno` model for `steps`; returns ``(model, seconds_per_step)`` (median of
    the steps after the first, compiling, one)."""
    key = jax.random.key(seed)
    model = FNO.build(config, data, key=key)
    # only the network trains: the fitted normalisers stay as they are (no weight decay on them)
    spec = jax.tree.map(lambda _: False, model)
    spec = eqx.tree_at(lambda t: t.net, spec, jax.tree.map(eqx.is_inexact_array, model.net))
    params, static = eqx.partition(model, spec)
    opt = make_optimizer(OptimizerConfig(lr=lr, weight_decay=weight_decay, schedule="cosine",
                                         warmup_steps=max(1, steps // 20), clip_norm=1.0), steps)
    state = opt.init(params)

    @eqx.filter_jit
    def step(params, state, batch, key):
        def f(p):
            return FNO.loss(config, eqx.combine(p, static), batch, key=key)[0]
        value, grads = eqx.filter_value_and_grad(f)(params)
        updates, state = opt.update(grads, state, params)
        return eqx.apply_updates(params, updates), state, value

    arrays = data.load()
    n = len(data)
    rng = np.random.default_rng(seed)
    times = []
    order = rng.permutation(n)
    pos = 0
    for i in range(steps):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        batch = {k: v[idx] for k, v in arrays.items()}
        t = time.perf_counter()
        params, state, value = step(params, state, batch, jax.random.fold_in(key, i))
        value.block_until_ready()
        times.append(time.perf_counter() - t)
        if not np.isfinite(float(value)):
            raise RuntimeError(f"loss became {float(value)} at step {i}")
    return eqx.combine(params, static), float(np.median(times[1:])) if steps > 1 else times[0]


def evaluate(config, model, data: Dataset, batch_size: int = 25) -> dict[str, float]:
    """Mean per-sample relative L2 and H1 errors over `data`."""
    metrics = eqx.filter_jit(lambda m, b: FNO.metrics(config, m, b))
    arrays = data.load()
    out: dict[str, list] = {}
    for i in range(0, len(data), batch_size):
        batch = {k: v[i:i + batch_size] for k, v in arrays.items()}
        for k, v in metrics(model, batch).items():
            out.setdefault(k, []).append(np.asarray(v))
    return {k: float(np.concatenate(v).mean()) for k, v in out.items()}


def spectral_params(model) -> int:
    """Real parameters of the spectral weights (all layers)."""
    net = model.net
    net = getattr(net, "net", net)  # through an MGOperator
    return sum(int(a.size) for a in jax.tree.leaves(eqx.filter(net.spectral_weight,
                                                                eqx.is_array)))


def total_params(model) -> int:
    """Trainable real parameters (normalisers excluded)."""
    return sum(int(a.size) for a in jax.tree.leaves(eqx.filter(model.net, eqx.is_inexact_array)))


def load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())
