"""HDF5 files written by others: PDEBench's two layouts and plain root-level arrays.

PDEBench (Takamoto et al., NeurIPS 2022 Datasets and Benchmarks; the files of its DaRUS
release) stores a data set in one of two ways:

- **single file, root arrays**: one array per quantity with a leading sample axis, such as
  ``tensor`` of shape ``(N, T, X)`` (1-D advection, Burgers, reaction–diffusion) or
  ``(N, 1, X, Y)`` (2-D Darcy, with ``nu`` ``(N, X, Y)``), or ``density``, ``Vx``, ``Vy``,
  ``pressure`` of shape ``(N, T, X, Y)`` (compressible Navier–Stokes), beside the coordinate
  vectors ``x-coordinate``, ``y-coordinate``, ``z-coordinate`` and ``t-coordinate``;
- **per-seed groups**: one group per sample, named ``0000``, ``0001``, ..., each holding
  ``data`` of shape ``(T, X[, Y[, Z]], C)`` and the coordinates in ``grid/x``, ``grid/y``,
  ``grid/t`` (2-D diffusion–reaction, shallow water).

`read_foreign_hdf5` shows both as arrays with a leading sample axis (per-seed groups through
`GroupStack`, which reads only the groups a batch needs) and proposes the axis layout of each
(``t`` time, ``c`` channels, ``x``/``y``/``z`` space) from the coordinates present.
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from .._errors import DataError
from ._matlab import _normalise

__all__ = ["GroupStack", "read_foreign_hdf5"]

_SPACE = ("x", "y", "z")


class GroupStack:
    """The dataset `name` of every group in `groups`, stacked along a new leading sample axis.

    **Arguments:**

    - `groups`: the h5py groups, one per sample, in sample order.
    - `name`: the dataset inside each group (same shape and dtype in all).
    """

    def __init__(self, groups, name: str):
        self.groups = list(groups)
        self.name = name
        first = self.groups[0][name]
        self.shape = (len(self.groups), *(int(n) for n in first.shape))
        self.dtype = np.dtype(first.dtype)
        self.attrs: dict[str, Any] = {}

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        index = _normalise(index, self.shape)
        head, tail = index[0], index[1:]
        picks = [head] if isinstance(head, int) else range(*head.indices(self.shape[0]))
        blocks = []
        for i in picks:
            ds = self.groups[i][self.name]
            if tuple(ds.shape) != self.shape[1:]:
                raise DataError(f"{ds.file.filename}: {self.groups[i].name}/{self.name} has "
                                f"shape {ds.shape}, group {self.groups[0].name} has "
                                f"{self.shape[1:]}")
            blocks.append(np.asarray(ds[tail]))
        if isinstance(head, int):
            return blocks[0]
        if not blocks:
            return np.empty((0, *np.empty(self.shape[1:])[tail].shape), self.dtype)
        return np.stack(blocks)

    def __array__(self, dtype=None, copy=None):
        out = self[...]
        return out if dtype is None else out.astype(dtype)


def _default_layout(rank: int, n_space: int | None, per_seed: bool) -> str | None:
    """PDEBench's axis order: time first, space, channels last (per-seed ``data`` always has a
    channel axis); None where the coordinates do not settle it."""
    if per_seed:
        n = rank - 2
        return " ".join(("t", *_SPACE[:n], "c")) if 1 <= n <= 3 else None
    if n_space is None:
        return None
    extra = rank - n_space
    if extra == 0:
        return " ".join(_SPACE[:n_space])
    if extra == 1:
        return " ".join(("t", *_SPACE[:n_space]))
    if extra == 2:
        return " ".join(("t", *_SPACE[:n_space], "c"))
    return None


def read_foreign_hdf5(path: str | pathlib.Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The sample arrays of an HDF5 file that is not in the sciops schema.

    **Returns:** ``(arrays, layouts)``: name → lazy array with a leading sample axis (root
    datasets as they are, per-seed groups' datasets as `GroupStack`s), and name → the proposed
    per-sample axis layout where the file's coordinates determine it. Coordinate vectors
    (``*-coordinate``, ``grid/*``) are not sample arrays and are left out.

    **Raises:** `DataError` naming the file when it is not readable or holds no arrays.
    """
    import h5py

    path = pathlib.Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file (corrupt or truncated?): {e}") from None
    arrays: dict[str, Any] = {}
    layouts: dict[str, str] = {}
    roots = {k: v for k, v in f.items() if isinstance(v, h5py.Dataset)}
    coords = [k for k in roots if k.endswith("-coordinate")]
    n_space = sum(f"{a}-coordinate" in roots for a in _SPACE) or None
    for k, ds in roots.items():
        if k in coords:
            continue
        arrays[k] = ds
        layout = _default_layout(ds.ndim - 1, n_space, per_seed=False)
        if layout:
            layouts[k] = layout
    groups = sorted((k for k, v in f.items() if isinstance(v, h5py.Group)))
    seeds = [f[k] for k in groups if "data" in f[k] and isinstance(f[k]["data"], h5py.Dataset)]
    if seeds:
        names = [n for n, v in seeds[0].items() if isinstance(v, h5py.Dataset)]
        for n in names:
            if n in arrays:
                raise DataError(f"{path}: {n!r} is both a root array and a per-group array")
            missing = [g.name for g in seeds if n not in g]
            if missing:
                raise DataError(f"{path}: group {missing[0]} lacks {n!r}, which "
                                f"{seeds[0].name} has")
            arrays[n] = GroupStack(seeds, n)
            layout = _default_layout(arrays[n].ndim - 1, None, per_seed=n == "data")
            if layout:
                layouts[n] = layout
    if not arrays:
        f.close()
        raise DataError(f"{path}: no sample arrays (root datasets or per-seed groups with "
                        f"'data') in the file")
    return arrays, layouts
