"""The sciops HDF5 data-set schema (version 1).

One file holds one data set:

- every field is a root-level HDF5 dataset whose leading axis is the sample axis, chunked one
  sample per chunk (so reading a batch touches only its samples) and gzip-compressed;
- grid fields are laid out ``(samples, channels, *spatial)``;
- root attributes: ``sciops_schema`` (= 1), ``problem``, ``config`` (JSON of the generator's
  parameters), ``created`` (ISO time), ``sciops_version``, and anything the writer adds;
- per-field attributes: ``units``, ``layout`` (e.g. ``"samples channels y x"``), ``description``.

Files written by others (such as neuraloperator's Darcy sets converted to HDF5) are read as long
as their fields are root-level datasets with a common leading axis.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._errors import DataError
from ._dataset import Dataset

__all__ = ["SCHEMA_VERSION", "read_hdf5", "write_hdf5"]

SCHEMA_VERSION = 1


def _attr_value(v):
    if isinstance(v, (dict, list, tuple)) and not isinstance(v, np.ndarray):
        return json.dumps(v)
    if v is None:
        return "null"
    return v


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

    **Returns:** the path written.
    """
    import h5py

    import sciops

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = {k: np.shape(a)[0] for k, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"{path}: fields have different numbers of samples: {lengths}")
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["sciops_schema"] = SCHEMA_VERSION
            f.attrs["created"] = datetime.datetime.now(datetime.UTC).isoformat()
            f.attrs["sciops_version"] = sciops.__version__
            for k, v in (attrs or {}).items():
                f.attrs[k] = _attr_value(v)
            for k, a in arrays.items():
                a = np.asarray(a)
                chunks = (1, *a.shape[1:]) if a.ndim >= 1 and a.shape[0] > 0 else None
                ds = f.create_dataset(k, data=a, chunks=chunks,
                                      compression=compression if chunks else None)
                for ak, av in ((field_attrs or {}).get(k) or {}).items():
                    ds.attrs[ak] = _attr_value(av)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def read_hdf5(path: str | os.PathLike, *, lazy: bool = True,
              keys: list[str] | None = None) -> Dataset:
    """Open a data set written in the sciops schema (or any file of root-level sample arrays).

    **Arguments:**

    - `path`: the `.h5` file.
    - `lazy`: keep fields on disk and read batches on demand (the file stays open while the
      returned `Dataset` lives); `False` reads everything into memory.
    - `keys`: fields to expose (default all root-level datasets).

    **Raises:** `DataError` naming the path when the file is missing, not HDF5, corrupt, lacks a
    requested key, or its fields disagree on the number of samples.
    """
    import h5py

    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file ({e})") from None
    try:
        names = [k for k in f.keys() if isinstance(f[k], h5py.Dataset)]
        if keys is not None:
            missing = [k for k in keys if k not in names]
            if missing:
                raise DataError(f"{path}: missing field(s) {', '.join(map(repr, missing))}; "
                                f"the file has {', '.join(names) or 'no fields'}")
            names = list(keys)
        if not names:
            raise DataError(f"{path}: no data fields in the file")
        attrs = {}
        for k, v in f.attrs.items():
            if isinstance(v, bytes):
                v = v.decode()
            if isinstance(v, str) and v[:1] in "[{":
                try:
                    v = json.loads(v)
                except json.JSONDecodeError:
                    pass
            attrs[k] = v
        attrs["source"] = str(path)
        if lazy:
            arrays = {k: f[k] for k in names}
        else:
            arrays = {}
            for k in names:
                try:
                    arrays[k] = f[k][()]
                except OSError as e:
                    raise DataError(f"{path}: field {k!r} is corrupt ({e})") from None
            f.close()
        return Dataset(arrays, attrs, name=str(path))
    except BaseException:
        if lazy:
            f.close()
        raise
