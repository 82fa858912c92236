"""Datasets: named arrays with a leading sample axis, read lazily, batched deterministically."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .._errors import DataError

__all__ = ["Dataset", "shard_batch"]


class Dataset:
    """A mapping from field name to an array whose leading axis is the sample axis.

    Arrays may be in memory (numpy) or lazy (an `h5py.Dataset`, read a batch at a time), so a
    data set larger than memory can be streamed. A `Dataset` is a view: `subset` selects samples
    without reading them.

    **Arguments:**

    - `arrays`: field name → array-like with a leading sample axis; every field has the same
      number of samples.
    - `attrs`: provenance and metadata (problem, generator config, units, source path).
    - `indices`: optional sample indices into the arrays (a view); default all samples.
    - `name`: a label used in messages (usually the file path).
    """

    def __init__(self, arrays: Mapping[str, Any], attrs: Mapping[str, Any] | None = None,
                 indices: Sequence[int] | np.ndarray | None = None, name: str = "dataset"):
        if not arrays:
            raise DataError(f"{name}: no fields")
        lengths = {k: int(a.shape[0]) for k, a in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise DataError(f"{name}: fields have different numbers of samples: {lengths}")
        self.arrays = dict(arrays)
        self.attrs = dict(attrs or {})
        self.name = name
        n = next(iter(lengths.values()))
        self.indices = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= n):
            raise DataError(f"{name}: sample indices out of range [0, {n})")

    def __len__(self) -> int:
        return int(self.indices.size)

    def keys(self):
        return self.arrays.keys()

    def __contains__(self, key) -> bool:
        return key in self.arrays

    def shape(self, key: str) -> tuple[int, ...]:
        """The shape of one sample of field `key`."""
        return tuple(self.require(key).shape[1:])

    def dtype(self, key: str) -> np.dtype:
        return np.dtype(self.require(key).dtype)

    def require(self, key: str):
        if key not in self.arrays:
            raise DataError(f"{self.name}: no field {key!r}; fields: {', '.join(self.arrays)}")
        return self.arrays[key]

    def take(self, positions: Sequence[int] | np.ndarray | slice) -> dict[str, np.ndarray]:
        """Load the samples at `positions` (positions within this view) into memory."""
        idx = self.indices[positions]
        idx = np.atleast_1d(idx)
        out = {}
        # h5py needs increasing indices; read sorted, then restore the requested order.
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        unique, counts = np.unique(sorted_idx, return_counts=True)
        for k, a in self.arrays.items():
            if isinstance(a, np.ndarray):
                out[k] = a[idx]
                continue
            try:
                block = np.asarray(a[unique])
            except (OSError, KeyError) as e:  # h5py raises these on corrupt chunks
                raise DataError(f"{self.name}: cannot read field {k!r}: {e}") from None
            out[k] = np.repeat(block, counts, axis=0)[inverse]
        return out

    def load(self) -> dict[str, np.ndarray]:
        """Every sample of this view, in memory."""
        return self.take(slice(None))

    def subset(self, positions: Sequence[int] | np.ndarray | slice) -> Dataset:
        """A view on the samples at `positions` (no data read)."""
        return Dataset(self.arrays, self.attrs, self.indices[positions], self.name)

    def select(self, keys: Sequence[str]) -> Dataset:
        """A view with only the fields `keys`."""
        return Dataset({k: self.require(k) for k in keys}, self.attrs, self.indices, self.name)

    def in_memory(self) -> Dataset:
        """The same view with every field read into memory."""
        return Dataset(self.load(), self.attrs, None, self.name)

    def epoch_order(self, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
        """The sample order of one epoch: a permutation fixed by (seed, epoch)."""
        if not shuffle:
            return np.arange(len(self))
        rng = np.random.default_rng([seed, epoch])
        return rng.permutation(len(self))

    def batches(self, batch_size: int, *, seed: int | None = None, epoch: int = 0,
                drop_last: bool = True, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Yield the batches of one epoch.

        **Arguments:**

        - `batch_size`: samples per batch.
        - `seed`: shuffle with the permutation fixed by `(seed, epoch)`; `None` keeps the order.
        - `drop_last`: drop a final incomplete batch (so every step compiles once).
        - `start`: skip the first `start` batches (to resume mid-epoch).
        """
        if batch_size <= 0:
            raise DataError(f"{self.name}: batch size must be positive, got {batch_size}")
        order = self.epoch_order(seed if seed is not None else 0, epoch, shuffle=seed is not None)
        n_full = len(self) // batch_size
        n_batches = n_full if (drop_last or len(self) % batch_size == 0) else n_full + 1
        for b in range(start, n_batches):
            yield self.take(order[b * batch_size:(b + 1) * batch_size])

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}{tuple(a.shape[1:])}:{np.dtype(a.dtype).name}"
                           for k, a in self.arrays.items())
        return f"Dataset({self.name!r}, n={len(self)}, {fields})"


def shard_batch(batch: Mapping[str, Any], sharding) -> dict[str, Any]:
    """Put a host batch on devices with `sharding` (e.g. `NamedSharding(mesh, P('data'))`).

    In a multi-process run every process passes its own slice of the global batch, and the
    global array is assembled with `jax.make_array_from_process_local_data`.
    """
    import jax

    if jax.process_count() > 1:
        return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
                for k, v in batch.items()}
    return {k: jax.device_put(np.asarray(v), sharding) for k, v in batch.items()}
