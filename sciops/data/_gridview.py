"""Fields of foreign files as sciops grid fields: axis layouts, selections, subsampling.

A field of someone else's file has its own axis order: the FNO paper's Navier–Stokes ``u`` is
``(N, x, y, t)``, PDEBench's per-seed ``data`` ``(N, t, x, y, c)``. `GridView` names those axes
with a *layout* (``"x y t"``, ``"t x y c"``: ``t`` time, ``c`` channels, any other name a
spatial axis), selects time steps and channels, keeps every `r`-th node along each spatial axis
as the FNO paper's loaders do (``a[:, ::r, ::r]``), and hands out samples as sciops grid fields
``(channels, *spatial)`` of float32 with time and channels flattened into the channel axis
(time outer). Only the selected part of each sample is read from the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._errors import DataError

__all__ = ["GridView", "parse_key_spec", "parse_layout"]

_SPEC = re.compile(r"^\s*([^\[\]]+?)\s*(?:\[(.*)\])?\s*$")
_RANGE = re.compile(r"^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*(?::\s*(\d+)\s*)?$")


def parse_key_spec(spec: str, where: str) -> tuple[str, dict[str, slice | int]]:
    """``"u[t=0:10, c=1]"`` → ``("u", {"t": slice(0, 10), "c": 1})``.

    A selection names axes of the field's layout; each takes an index (``t=0``, ``t=-1``) or a
    range ``start:stop[:step]`` with a positive step.

    **Raises:** `DataError` naming `where` (the config key) when the text does not parse.
    """
    m = _SPEC.match(str(spec))
    if not m or not m.group(1):
        raise DataError(f"{where}: cannot parse {spec!r}; expected KEY or KEY[axis=start:stop, ...]")
    key, inner = m.group(1), m.group(2)
    select: dict[str, slice | int] = {}
    for part in filter(None, (p.strip() for p in (inner or "").split(","))):
        name, eq, value = part.partition("=")
        name = name.strip()
        if not eq or not name:
            raise DataError(f"{where}: selection {part!r} in {spec!r} is not axis=index or "
                            f"axis=start:stop[:step]")
        if name in select:
            raise DataError(f"{where}: axis {name!r} selected twice in {spec!r}")
        value = value.strip()
        r = _RANGE.match(value)
        if r:
            step = int(r.group(3)) if r.group(3) else None
            if step == 0:
                raise DataError(f"{where}: zero step in {spec!r}")
            select[name] = slice(*(int(g) if g else None for g in r.group(1, 2)), step)
        elif re.fullmatch(r"-?\d+", value):
            select[name] = int(value)
        else:
            raise DataError(f"{where}: {name}={value!r} in {spec!r} is neither an index nor "
                            f"start:stop[:step]")
    return key, select


def parse_layout(layout: str | Sequence[str], rank: int, where: str) -> tuple[str, ...]:
    """``"x y t"`` → ``("x", "y", "t")``, checked against the per-sample rank of the field."""
    axes = tuple(layout.split()) if isinstance(layout, str) else tuple(layout)
    if len(set(axes)) != len(axes):
        raise DataError(f"{where}: layout {' '.join(axes)!r} names an axis twice")
    if len(axes) != rank:
        raise DataError(f"{where}: layout {' '.join(axes)!r} names {len(axes)} axes but the "
                        f"samples have {rank}")
    if not [a for a in axes if a not in ("t", "c")]:
        raise DataError(f"{where}: layout {' '.join(axes)!r} has no spatial axis")
    return axes


def spatial_layout(rank: int) -> tuple[str, ...]:
    """The default layout of a field whose per-sample axes are all spatial."""
    return ("x", "y", "z")[:rank] if rank <= 3 else tuple(f"x{i}" for i in range(rank))


class GridView:
    """Samples of a foreign array as grid fields `(channels, *spatial)` of float32, read lazily.

    **Arguments:**

    - `base`: array-like with a leading sample axis that takes an index tuple of ints and
      slices (an `h5py.Dataset`, a `MatlabArray`, a `GroupStack`, a numpy or memory-mapped array).
    - `layout`: the names of its per-sample axes (`parse_layout`).
    - `select`: axis name → index or slice (`parse_key_spec`).
    - `subsample`: keep every `r`-th node of each spatial axis; one int for all or one per axis.
    - `where`: ``"file: key 'name'"``, the prefix of every message.

    **Raises:** `DataError` with `where` when a selection names an unknown axis or is empty,
    or `subsample` has the wrong length. A block that holds NaN or ±inf raises a `DataError`
    naming the sample when it is read.
    """

    def __init__(self, base, layout: Sequence[str], select: Mapping[str, slice | int] | None = None,
                 subsample: int | Sequence[int] = 1, where: str = "field"):
        self.base = base
        self.where = where
        self.layout = tuple(layout)
        select = dict(select or {})
        unknown = [a for a in select if a not in self.layout]
        if unknown:
            raise DataError(f"{where}: selection names axis {unknown[0]!r}, not in the layout "
                            f"{' '.join(self.layout)!r} (set data.layout)")
        space = [i for i, a in enumerate(self.layout) if a not in ("t", "c")]
        r = [subsample] * len(space) if isinstance(subsample, int) else list(subsample)
        if len(r) != len(space) or any(int(f) < 1 for f in r):
            raise DataError(f"{where}: data.subsample {subsample!r}: need one positive factor "
                            f"or one per spatial axis ({len(space)})")
        sample_shape = tuple(int(n) for n in base.shape[1:])
        index, sizes = [], []
        for i, (a, n) in enumerate(zip(self.layout, sample_shape, strict=True)):
            s = select.get(a, slice(None))
            if isinstance(s, int):
                if a not in ("t", "c"):
                    raise DataError(f"{where}: {a}={s} would drop spatial axis {a!r}; select a "
                                    f"range {a}=start:stop")
                if not -n <= s < n:
                    raise DataError(f"{where}: {a}={s} is out of range for {n} entries")
                s = slice(s % n, s % n + 1)
            start, stop, step = s.indices(n)
            if step < 1:
                raise DataError(f"{where}: negative step on axis {a!r}")
            if i in space:
                step *= int(r[space.index(i)])
            size = len(range(start, stop, step))
            if size == 0:
                raise DataError(f"{where}: the selection on axis {a!r} of {n} entries is empty")
            index.append(slice(start, stop, step))
            sizes.append(size)
        self._index = tuple(index)
        order = ([self.layout.index("t")] if "t" in self.layout else []) + \
                ([self.layout.index("c")] if "c" in self.layout else []) + space
        self._perm = (0, *(1 + i for i in order))
        channels = int(np.prod([sizes[i] for i in order[:len(order) - len(space)]]))
        self.spatial = tuple(sizes[i] for i in space)
        self.shape = (int(base.shape[0]), channels, *self.spatial)
        self.dtype = np.dtype(np.float32)
        self.attrs: dict[str, Any] = {}

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self[int(index):int(index) + 1 if index != -1 else None][0]
        if not isinstance(index, slice):
            raise TypeError(f"{self.where}: index samples with an int or a slice")
        start, stop, step = index.indices(self.shape[0])
        block = np.asarray(self.base[(slice(start, stop, step), *self._index)])
        if block.dtype.kind == "f" or block.dtype.kind == "c":
            bad = ~np.isfinite(block.reshape(block.shape[0], -1)).all(axis=1)
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise DataError(f"{self.where}: non-finite value (NaN or inf) in sample "
                                f"{start + k * step}")
        block = np.transpose(block, self._perm)
        return np.ascontiguousarray(block.reshape(block.shape[0], *self.shape[1:]),
                                    dtype=np.float32)

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)
