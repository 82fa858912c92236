"""Mean evaluation metrics over a whole data set, every sample counted.

A family's `metrics` gives one value per sample. The mean is over every sample of the set: a
non-finite value is an error naming the set, metric and sample, never a silently smaller
denominator. The one exception is a per-task metric (named ``group/task``, e.g. ``l2/disk``),
which is NaN on the samples of other tasks and is averaged over the samples of its own task.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import numpy as np

from .._errors import TrainingError
from ..data import Dataset, shard_batch
from ..models import Family
from ._distributed import gather, global_batch, process_slice, rows_split_over_processes
from ._mesh import field_shardings

__all__ = ["evaluate_dataset"]


def _pad_batch(batch: dict[str, np.ndarray], size: int) -> tuple[dict[str, np.ndarray], int]:
    n = len(next(iter(batch.values())))
    if n == size:
        return batch, n
    idx = np.concatenate([np.arange(n), np.full(size - n, n - 1)])
    return {k: v[idx] for k, v in batch.items()}, n


def _check(name: str, key: str, values: np.ndarray, first: int) -> np.ndarray:
    """The entries of `values` that count; a TrainingError for one that must but cannot."""
    per_task = "/" in key
    bad = np.isinf(values) if per_task else ~np.isfinite(values)
    if bad.any():
        i = first + int(np.argmax(bad))
        raise TrainingError(f"{name}: metric {key!r} is {values[i - first]} for sample {i}; "
                            "the model's prediction is not finite there")
    return np.isfinite(values)


def evaluate_dataset(family: Family, model_config: Any, model: Any, dataset: Dataset,
                     batch_size: int, mesh=None, metrics_fn: Callable | None = None,
                     on_batch: Callable[[int], None] | None = None) -> dict[str, float]:
    """The mean of the family's per-sample metrics over every sample of `dataset`.

    **Arguments:**

    - `family`, `model_config`, `model`: the family, its `model:` config and the model.
    - `dataset`: the samples (after the family's `prepare`, if it has one).
    - `batch_size`: samples per evaluation batch (rounded to the mesh's `data` axis).
    - `mesh`: the device mesh batches are sharded over (default: one device).
    - `metrics_fn`: a jitted ``(model, batch) -> metrics`` to reuse (default: made here).
    - `on_batch`: called with the number of samples of each batch once it is evaluated (a
      progress report).

    **Returns:** ``{metric: mean}``.

    **Raises:** `TrainingError` naming the data set, metric and sample when a metric is not
    finite (per-task metrics may be NaN on other tasks' samples).
    """
    if metrics_fn is None:
        metrics_fn = eqx.filter_jit(lambda m, b: family.metrics(model_config, m, b))
    if mesh is not None:
        n_data = mesh.shape["data"]
        batch_size = max(n_data, (batch_size // n_data) * n_data)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    # processes that share rows (a `space` axis across processes) each hold the whole batch
    whole = mesh is not None and not rows_split_over_processes(mesh)
    rows, first = (slice(None) if whole or mesh is None else process_slice(batch_size)), 0
    for batch in dataset.batches(batch_size, seed=None, drop_last=False):
        batch, n = _pad_batch(batch, batch_size)
        if mesh is not None:
            local = {k: v[rows] for k, v in batch.items()}
            shardings = field_shardings(mesh, {k: (batch_size, *v.shape[1:])
                                               for k, v in local.items()})
            batch = global_batch(local, shardings) if whole else shard_batch(local, shardings)
            with jax.set_mesh(mesh):
                out = gather(metrics_fn(model, batch))
        else:
            out = gather(metrics_fn(model, batch))
        for k, v in out.items():
            v = np.asarray(v)[:n]
            ok = _check(dataset.name, k, v, first)
            sums[k] = sums.get(k, 0.0) + float(v[ok].sum())
            counts[k] = counts.get(k, 0) + int(ok.sum())
        first += n
        if on_batch is not None:
            on_batch(n)
    return {k: sums[k] / counts[k] for k in sums if counts[k]}
