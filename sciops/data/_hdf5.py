"""The sciops HDF5 data-set schema (version 1).

One file holds one data set:

- every field is a root-level HDF5 dataset whose leading axis is the sample axis;
- fields are chunked along the sample axis only, with as many whole samples per chunk as fit in
  about 64 KiB (at least one), so reading a batch decompresses little more than its samples,
  and gzip-compressed (level 4) with the byte shuffle filter;
- grid fields are laid out ``(samples, channels, *spatial)``, mesh fields
  ``(samples, time, nodes, channels)``, atoms padded to ``(samples, atoms, ...)`` with a mask;
- root attributes: ``sciops_schema`` (= 1), ``kind`` (``"arrays"``, ``"grid"``, ``"mesh"``,
  ``"atoms"``), ``problem``, ``config`` (JSON of the generator's parameters), ``created`` (ISO
  time), ``sciops_version``, and anything the writer adds (``source``, ``units``...);
- per-field attributes: ``units``, ``layout`` (e.g. ``"samples channels y x"``),
  ``description``, and for grid fields ``bounds`` and ``periodic`` (JSON).

Dicts and lists in attributes are stored as JSON strings and parsed back on reading.

Files written by others (such as neuraloperator's Darcy sets converted to HDF5) are read as long
as their fields are root-level datasets with a common leading axis; `as_grid` then gives their
fields a channel axis.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import pathlib
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np

from .._errors import DataError
from ._dataset import _READ_ERRORS, Dataset, _plain_attrs

__all__ = ["SCHEMA_VERSION", "HDF5Writer", "open_hdf5_writer", "read_hdf5", "write_hdf5"]

SCHEMA_VERSION = 1
"""The version of the HDF5 schema this package writes (the `schema_version` attribute)."""
# Chunks of about this many bytes: big enough for gzip to work, small enough that a shuffled
# batch does not decompress much more than it reads.
CHUNK_BYTES = 64 * 1024
# Per-dataset chunk cache on reading (h5py's default of 1 MiB thrashes on shuffled batches of
# large samples).
_CACHE_BYTES = 16 * 1024 * 1024
DEFAULT_MEMORY_BUDGET = 1 << 30


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, pathlib.PurePath):
        return str(v)
    raise TypeError(f"cannot store {type(v).__name__} in an HDF5 attribute")


def _attr_value(v):
    if isinstance(v, (dict, list, tuple)) and not isinstance(v, np.ndarray):
        return json.dumps(v, default=_json_default)
    if v is None:
        return "null"
    if isinstance(v, pathlib.PurePath):
        return str(v)
    return v


def _chunks(sample_shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    # Independent of the number of samples, so blocks appended one at a time chunk as well as
    # a data set written in one go.
    sample = max(1, math.prod(sample_shape) * itemsize)
    return (max(1, CHUNK_BYTES // sample), *sample_shape)


def _check_name(path, name: str) -> None:
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise DataError(f"{path}: invalid field name {name!r} (a non-empty name without '/')")


class HDF5Writer:
    """Appends samples to a data set file in the sciops schema; made by `open_hdf5_writer`.

    Fields are created on the first `append` (their per-sample shapes and dtypes are then
    fixed) and grow along the sample axis, so a generator can write a data set larger than
    memory one block at a time.
    """

    def __init__(self, file, path: pathlib.Path, compression: str | None,
                 field_attrs: Mapping[str, Mapping[str, Any]]):
        self._file = file
        self.path = path
        self._compression = compression
        self._field_attrs = field_attrs
        self.n_samples = 0

    def append(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Append a block of samples: field name → array with a leading sample axis."""
        arrays = {k: np.asarray(a) for k, a in arrays.items()}
        lengths = {k: a.shape[0] if a.ndim else None for k, a in arrays.items()}
        if None in lengths.values() or len(set(lengths.values())) > 1:
            raise DataError(f"{self.path}: fields have different numbers of samples "
                            f"(or none): {lengths}")
        existing = [k for k, v in self._file.items()]
        if existing and sorted(existing) != sorted(arrays):
            raise DataError(f"{self.path}: appended fields {sorted(arrays)} differ from the "
                            f"fields already written {sorted(existing)}")
        n = next(iter(lengths.values()))
        for k, a in arrays.items():
            _check_name(self.path, k)
            if a.dtype.kind in "OUS":
                raise DataError(f"{self.path}: field {k!r} has dtype {a.dtype}; numeric or bool "
                                f"arrays only")
            if k not in self._file:
                ds = self._file.create_dataset(
                    k, shape=(0, *a.shape[1:]), maxshape=(None, *a.shape[1:]), dtype=a.dtype,
                    chunks=_chunks(a.shape[1:], a.dtype.itemsize),
                    compression=self._compression,
                    shuffle=self._compression is not None)
                for ak, av in (self._field_attrs.get(k) or {}).items():
                    ds.attrs[ak] = _attr_value(av)
            ds = self._file[k]
            if ds.shape[1:] != a.shape[1:] or ds.dtype != a.dtype:
                raise DataError(f"{self.path}: field {k!r}: appended samples of shape "
                                f"{a.shape[1:]} {a.dtype}, expected {ds.shape[1:]} {ds.dtype}")
            ds.resize(self.n_samples + n, axis=0)
            ds[self.n_samples:] = a
        self.n_samples += n


@contextlib.contextmanager
def open_hdf5_writer(path: str | os.PathLike, attrs: Mapping[str, Any] | None = None,
                     field_attrs: Mapping[str, Mapping[str, Any]] | None = None,
                     compression: str | None = "gzip") -> Iterator[HDF5Writer]:
    """Write a data set incrementally and atomically.

    The file is written under a temporary name in the target folder and renamed onto `path`
    only when the `with` block ends without an exception, so a killed generator never leaves a
    half-written data set behind.

    **Arguments:** as `write_hdf5`.

    **Yields:** an `HDF5Writer`; call `append` with blocks of samples.
    """
    import h5py

    from .._version import __version__

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    # mkstemp makes the file 0600; a data set is for everyone the umask lets read it (0644)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["sciops_schema"] = SCHEMA_VERSION
            f.attrs["kind"] = "arrays"
            f.attrs["created"] = datetime.datetime.now(datetime.UTC).isoformat()
            f.attrs["sciops_version"] = __version__
            for k, v in (attrs or {}).items():
                try:
                    f.attrs[k] = _attr_value(v)
                except TypeError as e:
                    raise DataError(f"{path}: attribute {k!r}: {e}") from None
            writer = HDF5Writer(f, path, compression, field_attrs or {})
            yield writer
            if not len(f):
                raise DataError(f"{path}: no fields written")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_hdf5(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
               attrs: Mapping[str, Any] | None = None,
               field_attrs: Mapping[str, Mapping[str, Any]] | None = None,
               compression: str | None = "gzip") -> pathlib.Path:
    """Write a data set atomically (to a temporary file in the same folder, then rename).

    **Arguments:**

    - `path`: the target `.h5` file.
    - `arrays`: field name → array with a leading sample axis.
    - `attrs`: root attributes (provenance); dicts and lists are stored as JSON strings.
    - `field_attrs`: field name → attributes such as ``units`` and ``layout``.
    - `compression`: ``"gzip"`` (default) or `None`.

    **Returns:** the path written.

    **Raises:** `DataError` naming the path when fields disagree on the number of samples,
    a field name is invalid or an attribute cannot be stored.
    """
    if not arrays:
        raise DataError(f"{path}: no fields to write")
    with open_hdf5_writer(path, attrs, field_attrs, compression) as w:
        w.append(arrays)
    return pathlib.Path(path)


def _refuse_outside_storage(f, path: pathlib.Path) -> None:
    """A DataError for root entries whose data live outside the file: external links, external
    raw storage, virtual datasets. h5py follows them silently, so a data file could read (or
    probe) any file the user can read."""
    import h5py

    for k in f.keys():
        link = f.get(k, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise DataError(f"{path}: field {k!r} is an external link to {link.filename}:"
                            f"{link.path}; external links are refused (copy the data in)")
        obj = f.get(k)
        if isinstance(obj, h5py.Dataset) and (obj.external or obj.is_virtual):
            kind = "external raw storage" if obj.external else "a virtual dataset"
            raise DataError(f"{path}: field {k!r} uses {kind} (data outside the file); "
                            "refused (copy the data in)")


def read_hdf5(path: str | os.PathLike, *, lazy: bool | Literal["auto"] = True,
              keys: list[str] | None = None,
              memory_budget: int = DEFAULT_MEMORY_BUDGET) -> Dataset:
    """Open a data set written in the sciops schema (or any file of root-level sample arrays).

    **Arguments:**

    - `path`: the `.h5` file.
    - `lazy`: `True` keeps fields on disk and reads batches on demand (the file stays open
      while the returned `Dataset` lives); `False` reads everything into memory; ``"auto"``
      reads into memory only if the selected fields fit in `memory_budget` bytes.
    - `keys`: fields to expose (default all root-level datasets).
    - `memory_budget`: bytes for ``lazy="auto"`` (default 1 GiB).

    **Returns:** a `Dataset` whose `attrs` are the root attributes (plus ``source``, the path)
    and whose `field_attrs` are the per-field attributes.

    **Raises:** `DataError` naming the path when the file is missing, not HDF5, corrupt or
    truncated, lacks a requested key, or its fields disagree on the number of samples.
    """
    import h5py

    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    try:
        f = h5py.File(path, "r", rdcc_nbytes=_CACHE_BYTES)
    except _READ_ERRORS as e:
        raise DataError(f"{path}: not a readable HDF5 file (corrupt or truncated?): {e}") from None
    try:
        try:
            _refuse_outside_storage(f, path)
            names = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
            attrs = _plain_attrs(f.attrs)
            field_attrs = {k: _plain_attrs(f[k].attrs) for k in names}
        except DataError:
            raise
        except _READ_ERRORS as e:
            raise DataError(f"{path}: corrupt HDF5 metadata: {e}") from None
        if keys is not None:
            missing = [k for k in keys if k not in names]
            if missing:
                raise DataError(f"{path}: missing field(s) {', '.join(map(repr, missing))}; "
                                f"the file has {', '.join(names) or 'no fields'}")
            names = list(keys)
        if not names:
            raise DataError(f"{path}: no data fields in the file")
        attrs["source"] = str(path)
        schema = attrs.get("sciops_schema")
        if schema is not None and int(schema) > SCHEMA_VERSION:
            raise DataError(f"{path}: written with sciops schema {schema}, this sciops reads "
                            f"schema ≤ {SCHEMA_VERSION}; upgrade sciops")
        dataset = Dataset({k: f[k] for k in names}, attrs, name=str(path),
                          field_attrs={k: field_attrs[k] for k in names})
        if lazy == "auto":
            lazy = dataset.nbytes() > memory_budget
        if lazy:
            return dataset
        loaded = dataset.in_memory()
        f.close()
        return loaded
    except BaseException:
        f.close()
        raise
