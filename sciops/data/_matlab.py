"""MATLAB .mat files: v5/v7 through `scipy.io`, v7.3 (HDF5) through h5py, read lazily.

MATLAB stores arrays column-major. A v7.3 file is an HDF5 file (after a 512-byte userblock)
in which an array of MATLAB size ``(N, s, s)`` is an HDF5 dataset of shape ``(s, s, N)``:
h5py sees the axes reversed. `MatlabArray` reverses them back, so both versions give the
array in MATLAB's axis order (``coeff[i]`` is sample ``i`` of the FNO paper's Darcy files,
``u[i, :, :, t]`` step ``t`` of its Navier–Stokes files) and a v7.3 file is read a block of
samples at a time. Variables carry their class in the attribute ``MATLAB_class``
(MathWorks, "MAT-File Versions"; the layout h5py shows of files saved with ``-v7.3``).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._errors import DataError

__all__ = ["MatlabArray", "read_mat"]

_NUMERIC = {"double", "single", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
            "uint64", "logical"}


def _normalise(index, shape: tuple[int, ...]) -> tuple:
    """`index` as a full tuple of ints and positive-step slices with non-negative bounds."""
    if not isinstance(index, tuple):
        index = (index,)
    if any(i is Ellipsis for i in index):
        k = index.index(Ellipsis)
        index = index[:k] + (slice(None),) * (len(shape) - len(index) + 1) + index[k + 1:]
    index = index + (slice(None),) * (len(shape) - len(index))
    out = []
    for i, n in zip(index, shape, strict=True):
        if isinstance(i, slice):
            start, stop, step = i.indices(n)
            if step < 1:
                raise IndexError("only positive slice steps")
            out.append(slice(start, max(start, stop), step))
        else:
            i = int(i)
            out.append(i + n if i < 0 else i)
    return tuple(out)


class MatlabArray:
    """A variable of a v7.3 .mat file in MATLAB's axis order, read on indexing.

    Indexing takes ints and slices (positive steps) per axis, as h5py does; the block read is
    transposed back to MATLAB's order.

    **Arguments:**

    - `dataset`: the `h5py.Dataset` of the variable.
    """

    def __init__(self, dataset):
        self.dataset = dataset
        self.shape = tuple(int(n) for n in dataset.shape[::-1])
        self.dtype = np.dtype(dataset.dtype)
        self.attrs: Mapping[str, Any] = {}

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        index = _normalise(index, self.shape)
        block = np.asarray(self.dataset[index[::-1]])
        return block.T

    def __array__(self, dtype=None, copy=None):
        out = self[...]
        return out if dtype is None else out.astype(dtype)


def _mat73(path: pathlib.Path) -> dict[str, Any]:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: MATLAB v7.3 file not readable as HDF5: {e}") from None
    out = {}
    for name, obj in f.items():
        if name.startswith("#"):  # '#refs#', '#subsystem#': storage of cells and objects
            continue
        cls = obj.attrs.get("MATLAB_class", b"")
        cls = cls.decode() if isinstance(cls, bytes) else str(cls)
        if not isinstance(obj, h5py.Dataset):
            out[name] = DataError(f"{path}: variable {name!r} is a MATLAB {cls or 'struct'} "
                                  f"(sparse, struct or cell); only numeric arrays are read")
        elif cls not in _NUMERIC or obj.dtype.names is not None:
            what = "complex" if obj.dtype.names else cls or str(obj.dtype)
            out[name] = DataError(f"{path}: variable {name!r} is of MATLAB class {what}; only "
                                  f"real numeric and logical arrays are read")
        elif "MATLAB_empty" in obj.attrs and int(np.asarray(obj.attrs["MATLAB_empty"])):
            out[name] = np.zeros(tuple(int(n) for n in np.asarray(obj)[::-1]), np.float64)
        else:
            out[name] = MatlabArray(obj)
    return out


def _mat5(path: pathlib.Path, names: list[str] | None) -> dict[str, Any]:
    import scipy.io

    try:
        available = [w[0] for w in scipy.io.whosmat(path)]
        contents = scipy.io.loadmat(path, variable_names=names)
    except (ValueError, TypeError, OSError, NotImplementedError) as e:
        raise DataError(f"{path}: cannot read as a MATLAB v5 file: {e}") from None
    # Variables not asked for are listed (for messages) but not read.
    out: dict[str, Any] = {n: DataError(f"{path}: variable {n!r} was not read")
                           for n in available}
    for name, value in contents.items():
        if name.startswith("__"):  # __header__, __version__, __globals__
            continue
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            out[name] = DataError(f"{path}: variable {name!r} is a MATLAB "
                                  f"{getattr(value, 'dtype', type(value).__name__)} array; only "
                                  f"real numeric and logical arrays are read")
        else:
            out[name] = value
    return out


def read_mat(path: str | pathlib.Path, names: list[str] | None = None,
             version: str | None = None) -> dict[str, Any]:
    """The variables of a .mat file, in MATLAB's axis order.

    **Arguments:**

    - `path`: the file.
    - `names`: variables to read (v5 reads only these; v7.3 opens all lazily anyway).
    - `version`: ``"mat5"`` or ``"mat73"``; default from the file's header.

    **Returns:** variable name → array-like: a numpy array (v5, in memory) or a `MatlabArray`
    (v7.3, read on indexing). A variable sciops cannot use (cell, struct, sparse, complex) maps
    to the `DataError` that explains why, raised only if that variable is asked for.

    **Raises:** `DataError` naming the file when it cannot be read.
    """
    from ._formats import detect_format

    path = pathlib.Path(path)
    version = version or detect_format(path)
    if version == "mat73":
        return _mat73(path)
    if version == "mat5":
        return _mat5(path, names)
    raise DataError(f"{path}: not a MATLAB file (format {version})")
