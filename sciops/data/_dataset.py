"""Datasets: named arrays with a leading sample axis, read lazily, batched deterministically.

A `Dataset` never decides how a model sees its data: it yields host batches (dicts of numpy
arrays with a leading batch axis) in an order fixed by `(seed, epoch)`, and `sharded_batches`
puts them on the device mesh with the batch axis sharded over `data`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .._errors import DataError

__all__ = ["Dataset", "MappedArray", "shard_batch", "sharded_batches"]

# What h5py raises on a corrupt chunk, a truncated file or a failed filter; caught where a lazy
# field is read so that the user sees one DataError naming the file.
_READ_ERRORS = (OSError, RuntimeError, KeyError, ValueError)


class MappedArray:
    """A lazy array-like: `fn` applied to the samples of `base` when they are read.

    Used for per-sample conversions of fields that stay on disk (adding a channel axis, casting
    to float32) without reading the file. Indexing along the leading (sample) axis returns
    `fn(base[index])`; `fn` must map a block of samples to a block of samples.

    **Arguments:**

    - `base`: an array-like with a leading sample axis (numpy array, `h5py.Dataset`, another
      `MappedArray`).
    - `fn`: the per-block conversion.
    - `sample_shape`, `dtype`: the shape of one converted sample and the converted dtype.
    """

    def __init__(self, base, fn: Callable[[np.ndarray], np.ndarray],
                 sample_shape: Sequence[int], dtype):
        self.base = base
        self.fn = fn
        self.shape = (int(base.shape[0]), *map(int, sample_shape))
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def attrs(self) -> Mapping[str, Any]:
        return getattr(self.base, "attrs", {})

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        return np.asarray(self.fn(np.asarray(self.base[index])), dtype=self.dtype)

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)


def _file_of(array):
    """The open h5py file behind a lazy field, if any (through `MappedArray`s and the views of
    foreign files, which keep their source in `base`, `dataset` or `groups`)."""
    for _ in range(8):
        if isinstance(array, np.ndarray):
            return None
        inner = getattr(array, "base", None)
        if inner is None:
            inner = getattr(array, "dataset", None)
        if inner is None and getattr(array, "groups", None):
            inner = array.groups[0]
        if inner is None:
            break
        array = inner
    try:
        return getattr(array, "file", None) if array.id.valid else None
    except (AttributeError, RuntimeError, ValueError):
        return None


class Dataset:
    """A mapping from field name to an array whose leading axis is the sample axis.

    Arrays may be in memory (numpy) or lazy (an `h5py.Dataset` or a `MappedArray`, read a batch
    at a time), so a data set larger than memory can be streamed. A `Dataset` is a view:
    `subset` and `select` pick samples and fields without reading them.

    **Arguments:**

    - `arrays`: field name → array-like with a leading sample axis; every field has the same
      number of samples.
    - `attrs`: provenance and metadata (problem, generator config, units, source path).
    - `indices`: optional sample indices into the arrays (a view); default all samples.
    - `name`: a label used in messages (usually the file path).
    - `field_attrs`: field name → per-field metadata (``units``, ``layout``, grid ``bounds``);
      default: the HDF5 attributes of lazy fields.
    """

    def __init__(self, arrays: Mapping[str, Any], attrs: Mapping[str, Any] | None = None,
                 indices: Sequence[int] | np.ndarray | None = None, name: str = "dataset",
                 field_attrs: Mapping[str, Mapping[str, Any]] | None = None):
        if not arrays:
            raise DataError(f"{name}: no fields")
        for k, a in arrays.items():
            if not hasattr(a, "shape") or len(a.shape) == 0:
                raise DataError(f"{name}: field {k!r} has no leading sample axis "
                                f"(shape {getattr(a, 'shape', None)})")
        lengths = {k: int(a.shape[0]) for k, a in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise DataError(f"{name}: fields have different numbers of samples: {lengths}")
        self.arrays = dict(arrays)
        self.attrs = dict(attrs or {})
        self.name = name
        if field_attrs is None:
            field_attrs = {k: _plain_attrs(getattr(a, "attrs", {})) for k, a in arrays.items()}
        self.field_attrs = {k: dict(field_attrs.get(k, {})) for k in self.arrays}
        n = next(iter(lengths.values()))
        self.indices = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
        if self.indices.ndim != 1:
            raise DataError(f"{name}: sample indices must be one-dimensional, "
                            f"got shape {self.indices.shape}")
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= n):
            raise DataError(f"{name}: sample indices out of range [0, {n})")

    def __len__(self) -> int:
        return int(self.indices.size)

    def keys(self):
        """The field names."""
        return self.arrays.keys()

    def __contains__(self, key) -> bool:
        return key in self.arrays

    def shape(self, key: str) -> tuple[int, ...]:
        """The shape of one sample of field `key`."""
        return tuple(int(s) for s in self.require(key).shape[1:])

    def dtype(self, key: str) -> np.dtype:
        """The dtype of field `key`."""
        return np.dtype(self.require(key).dtype)

    def nbytes(self, keys: Sequence[str] | None = None) -> int:
        """Bytes the samples of this view take in memory (uncompressed)."""
        keys = list(self.arrays) if keys is None else keys
        return sum(len(self) * math.prod(self.shape(k)) * self.dtype(k).itemsize for k in keys)

    def require(self, key: str):
        """The (possibly lazy) array of field `key`; `DataError` naming the fields if absent."""
        if key not in self.arrays:
            raise DataError(f"{self.name}: no field {key!r}; fields: {', '.join(self.arrays)}")
        return self.arrays[key]

    def take(self, positions: Sequence[int] | np.ndarray | slice | int) -> dict[str, np.ndarray]:
        """Load the samples at `positions` (positions within this view) into memory.

        Lazy fields are read as slices over the runs of consecutive sorted samples, then
        reordered.
        """
        idx = np.atleast_1d(self.indices[positions])
        out = {}
        if idx.size == 0:
            return {k: np.empty((0, *self.shape(k)), self.dtype(k)) for k in self.arrays}
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
                block = _read_runs(a, unique)
            except DataError:
                raise  # a reader's own message (naming file, key and sample) says it best
            except _READ_ERRORS as e:
                raise DataError(f"{self.name}: cannot read field {k!r} (samples "
                                f"{unique[0]}..{unique[-1]}); the file may be corrupt or "
                                f"truncated: {e}") from None
            if unique.size < idx.size:  # repeated samples
                out[k] = np.repeat(block, counts, axis=0)[inverse]
            elif np.all(order == np.arange(idx.size)):
                out[k] = block  # already in the requested order, no copy
            else:
                out[k] = block[inverse]
        return out

    def load(self) -> dict[str, np.ndarray]:
        """Every sample of this view, in memory."""
        return self.take(slice(None))

    def subset(self, positions: Sequence[int] | np.ndarray | slice) -> Dataset:
        """A view on the samples at `positions` (no data read)."""
        return Dataset(self.arrays, self.attrs, np.atleast_1d(self.indices[positions]),
                       self.name, self.field_attrs)

    def select(self, keys: Sequence[str]) -> Dataset:
        """A view with only the fields `keys`."""
        return Dataset({k: self.require(k) for k in keys}, self.attrs, self.indices, self.name,
                       self.field_attrs)

    def with_arrays(self, arrays: Mapping[str, Any],
                    field_attrs: Mapping[str, Mapping[str, Any]] | None = None) -> Dataset:
        """The same view with some fields replaced or added (same underlying sample count)."""
        merged = {**self.arrays, **arrays}
        fa = {**self.field_attrs,
              **{k: _plain_attrs(getattr(a, "attrs", {})) for k, a in arrays.items()},
              **(field_attrs or {})}
        return Dataset(merged, self.attrs, self.indices, self.name, fa)

    def in_memory(self) -> Dataset:
        """The same view with every field read into memory."""
        return Dataset(self.load(), self.attrs, None, self.name, self.field_attrs)

    def close(self) -> None:
        """Close the HDF5 files behind lazy fields (every view on them becomes unreadable)."""
        for a in self.arrays.values():
            f = _file_of(a)
            if f is not None and f.id.valid:
                f.close()

    def epoch_order(self, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
        """The sample order of one epoch: a permutation fixed by (seed, epoch)."""
        if not shuffle:
            return np.arange(len(self))
        rng = np.random.default_rng([seed, epoch])
        return rng.permutation(len(self))

    def num_batches(self, batch_size: int, drop_last: bool = True) -> int:
        """The number of batches of one epoch."""
        if batch_size <= 0:
            raise DataError(f"{self.name}: batch size must be positive, got {batch_size}")
        n_full = len(self) // batch_size
        return n_full if (drop_last or len(self) % batch_size == 0) else n_full + 1

    def batches(self, batch_size: int, *, seed: int | None = None, epoch: int = 0,
                drop_last: bool = True, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Yield the batches of one epoch.

        **Arguments:**

        - `batch_size`: samples per batch.
        - `seed`: shuffle with the permutation fixed by `(seed, epoch)`; `None` keeps the order.
        - `drop_last`: drop a final incomplete batch (so every step compiles once).
        - `start`: skip the first `start` batches (to resume mid-epoch).
        """
        n_batches = self.num_batches(batch_size, drop_last)
        order = self.epoch_order(seed if seed is not None else 0, epoch, shuffle=seed is not None)
        for b in range(start, n_batches):
            yield self.take(order[b * batch_size:(b + 1) * batch_size])

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}{tuple(a.shape[1:])}:{np.dtype(a.dtype).name}"
                           for k, a in self.arrays.items())
        return f"Dataset({self.name!r}, n={len(self)}, {fields})"


def _read_runs(array, unique: np.ndarray) -> np.ndarray:
    """`array[unique]` for sorted unique sample indices, read as one slice per run of
    consecutive samples: h5py's fancy indexing costs about a millisecond per index, a slice
    read only the decompression of its chunks (5x faster for a shuffled batch of 32)."""
    breaks = np.flatnonzero(np.diff(unique) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [unique.size]])
    parts = [np.asarray(array[int(unique[s]):int(unique[e - 1]) + 1])
             for s, e in zip(starts, ends, strict=True)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _plain_attrs(attrs) -> dict[str, Any]:
    """HDF5 attributes as plain Python values (bytes decoded, JSON containers parsed)."""
    import json

    out = {}
    for k, v in dict(attrs).items():
        if isinstance(v, bytes):
            v = v.decode()
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, str) and v[:1] in "[{":
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                pass
        out[k] = v
    return out


def shard_batch(batch: Mapping[str, Any], sharding) -> dict[str, Any]:
    """Put a host batch on devices with `sharding` (e.g. `NamedSharding(mesh, P('data'))`),
    or with `sharding[name]` per field when `sharding` is a mapping (e.g. grid fields also
    split over a spatial mesh axis).

    In a multi-process run every process passes its own slice of the global batch, and the
    global array is assembled with `jax.make_array_from_process_local_data`.

    **Raises:** `DataError` naming the field when its batch axis cannot be split evenly over
    the devices of `sharding`.
    """
    import jax

    def of(k):
        return sharding[k] if isinstance(sharding, Mapping) else sharding

    if jax.process_count() > 1:
        return {k: jax.make_array_from_process_local_data(of(k), np.asarray(v))
                for k, v in batch.items()}
    out = {}
    for k, v in batch.items():
        v = np.asarray(v)
        try:
            of(k).shard_shape(v.shape)
        except ValueError:
            raise DataError(f"batch field {k!r} of shape {v.shape} cannot be split evenly over "
                            f"{of(k).num_devices} devices ({of(k)}); choose a batch size "
                            f"divisible by the number of devices on the batch axis") from None
        out[k] = jax.device_put(v, of(k))
    return out


def sharded_batches(dataset: Dataset, batch_size: int, sharding, *, seed: int | None = None,
                    epoch: int = 0, drop_last: bool = True,
                    start: int = 0) -> Iterator[dict[str, Any]]:
    """Yield the batches of one epoch as global arrays sharded with `sharding`.

    Each process reads only its own `batch_size / process_count` samples of every global batch.
    The next batch is read and transferred before the current one is handed out, so host reads
    overlap device work (transfers are asynchronous).

    **Arguments:**

    - `dataset`: the samples.
    - `batch_size`: the global batch size (divisible by the process and device counts).
    - `sharding`: e.g. `NamedSharding(mesh, P('data'))`.
    - `seed`, `epoch`, `drop_last`, `start`: as in `Dataset.batches`.
    """
    import jax

    n_proc, pid = jax.process_count(), jax.process_index()
    if batch_size % n_proc:
        raise DataError(f"{dataset.name}: batch size {batch_size} is not divisible by the "
                        f"{n_proc} processes")
    local = batch_size // n_proc
    n_batches = dataset.num_batches(batch_size, drop_last)
    if not drop_last and len(dataset) % batch_size and n_batches > start:
        raise DataError(f"{dataset.name}: a final partial batch of {len(dataset) % batch_size} "
                        f"samples cannot be sharded; use drop_last=True")
    order = dataset.epoch_order(seed if seed is not None else 0, epoch, shuffle=seed is not None)

    def load(b):
        lo = b * batch_size + pid * local
        return shard_batch(dataset.take(order[lo:lo + local]), sharding)

    pending = load(start) if start < n_batches else None
    for b in range(start, n_batches):
        current = pending
        pending = load(b + 1) if b + 1 < n_batches else None
        yield current
