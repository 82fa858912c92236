"""Fields on regular grids: `GridField`, its HDF5 storage, and `as_grid` for foreign files."""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Shaped

from .._errors import DataError
from ._dataset import Dataset, MappedArray
from ._hdf5 import read_hdf5, write_hdf5

__all__ = ["GridField", "as_grid", "grid_attrs", "grid_field", "read_grid_dataset",
           "write_grid_dataset"]


def _as_array(x):
    return x if isinstance(x, (np.ndarray, jax.Array)) else np.asarray(x)


def _like(template, x):
    """`x` as the same kind of array as `template` (numpy stays numpy, jax stays jax)."""
    return jnp.asarray(x) if isinstance(template, jax.Array) else x


class GridField(eqx.Module):
    """Channels of values on a regular (tensor-product) grid, one example.

    Spatial axis $k$ of `values` holds the coordinate $x_k$ (``"ij"`` indexing). On a
    non-periodic axis with $n$ points the nodes include both ends, $x_{k,i} = a_k + i h_k$ with
    $h_k = (b_k - a_k)/(n - 1)$ (as Dirichlet problems such as Darcy are sampled); on a periodic
    axis the upper end is the image of the lower one and is left out, $h_k = (b_k - a_k)/n$.

    **Arguments:**

    - `values`: array of shape `(channels, *spatial)`.
    - `bounds`: `((a_0, b_0), (a_1, b_1), ...)`, one pair per spatial axis; default the unit
      cube.
    - `mask`: optional boolean array of shape `spatial`, `True` inside the domain (for masked
      geometries embedded in a box).
    - `periodic`: one flag for all axes or one per axis.

    **Raises:** `DataError` naming the shapes when they disagree.
    """

    values: Shaped[Array, " channels *spatial"]
    mask: Bool[Array, "*spatial"] | None
    bounds: tuple[tuple[float, float], ...] = eqx.field(static=True)
    periodic: tuple[bool, ...] = eqx.field(static=True)

    def __init__(self, values, bounds: Sequence[Sequence[float | int]] | None = None, mask=None,
                 periodic: bool | Sequence[bool | np.bool_] = False):
        self.values = _as_array(values)
        d = self.values.ndim - 1
        if bounds is None:
            bounds = ((0.0, 1.0),) * max(d, 0)
        try:
            self.bounds = tuple((float(lo), float(hi)) for lo, hi in bounds)
        except (TypeError, ValueError):
            raise DataError(f"GridField: bounds must be pairs (lower, upper) per spatial axis, "
                            f"got {bounds!r}") from None
        self.periodic = ((bool(periodic),) * max(d, 0) if isinstance(periodic, (bool, np.bool_))
                         else tuple(bool(p) for p in periodic))
        self.mask = None if mask is None else _as_array(mask)

    def __check_init__(self):
        shape = tuple(self.values.shape)
        if len(shape) < 2:
            raise DataError(f"GridField: values must have shape (channels, *spatial) with at "
                            f"least one spatial axis, got shape {shape}")
        d = len(shape) - 1
        if len(self.bounds) != d:
            raise DataError(f"GridField: {d} spatial axes (values shape {shape}) but "
                            f"{len(self.bounds)} bounds {self.bounds}")
        if len(self.periodic) != d:
            raise DataError(f"GridField: {d} spatial axes but {len(self.periodic)} periodic flags")
        axes = zip(self.bounds, shape[1:], self.periodic, strict=True)
        for k, ((lo, hi), n, p) in enumerate(axes):
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise DataError(f"GridField: bounds of axis {k} must be finite with lower < "
                                f"upper, got ({lo}, {hi})")
            if n < (1 if p else 2):
                raise DataError(f"GridField: axis {k} has {n} points; a non-periodic axis needs "
                                f"at least 2 (values shape {shape})")
        if self.mask is not None:
            if tuple(self.mask.shape) != shape[1:]:
                raise DataError(f"GridField: mask shape {tuple(self.mask.shape)} differs from "
                                f"the spatial shape {shape[1:]} of values {shape}")
            if self.mask.dtype != bool:
                raise DataError(f"GridField: mask must be boolean, got {self.mask.dtype}")

    @property
    def n_channels(self) -> int:
        """The number of channels."""
        return int(self.values.shape[0])

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Nodes per spatial axis."""
        return tuple(int(n) for n in self.values.shape[1:])

    @property
    def ndim(self) -> int:
        """The number of spatial dimensions."""
        return len(self.spatial_shape)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Grid spacing $h_k$ per spatial axis."""
        return tuple((hi - lo) / (n if p else n - 1)
                     for (lo, hi), n, p in zip(self.bounds, self.spatial_shape, self.periodic,
                                               strict=True))

    def axes(self) -> list[np.ndarray]:
        """The 1-D node coordinates of every spatial axis."""
        return [lo + h * np.arange(n)
                for (lo, _), h, n in zip(self.bounds, self.spacing, self.spatial_shape,
                                              strict=True)]

    def coordinates(self) -> np.ndarray:
        """Node coordinates, shape `(ndim, *spatial)`: `coordinates()[k]` is $x_k$ at every node."""
        return np.stack(np.meshgrid(*self.axes(), indexing="ij"))

    def subsample(self, factor: int | Sequence[int]) -> GridField:
        """Every `factor`-th node per axis, keeping the bounds.

        On a non-periodic axis `factor` must divide $n - 1$ (so both ends stay nodes, as
        421 → 85 with factor 5); on a periodic axis it must divide $n$.
        """
        factors = (factor,) * self.ndim if isinstance(factor, int) else tuple(factor)
        if len(factors) != self.ndim or any(int(f) < 1 for f in factors):
            raise DataError(f"GridField.subsample: need {self.ndim} positive factors, "
                            f"got {factor!r}")
        for k, (f, n, p) in enumerate(zip(factors, self.spatial_shape, self.periodic, strict=True)):
            if (n if p else n - 1) % f:
                raise DataError(f"GridField.subsample: factor {f} does not divide "
                                f"{'n' if p else 'n - 1'} = {n if p else n - 1} on axis {k} "
                                f"(shape {self.spatial_shape})")
        sl = tuple(slice(None, None, f) for f in factors)
        mask = None if self.mask is None else self.mask[sl]
        return GridField(self.values[(slice(None), *sl)], self.bounds, mask, self.periodic)

    def resample(self, shape: Sequence[int]) -> GridField:
        """Multilinear interpolation onto the grid of `shape` with the same bounds.

        Exact for fields that are linear along each axis; the mask is carried over by
        nearest-neighbour. Used to compare predictions across resolutions.
        """
        shape = tuple(int(n) for n in shape)
        if len(shape) != self.ndim:
            raise DataError(f"GridField.resample: need {self.ndim} sizes, got {shape}")
        probe = GridField(np.zeros((1, *shape), np.float32), self.bounds, None, self.periodic)
        values = np.asarray(self.values)
        mask = None if self.mask is None else np.asarray(self.mask)
        for k, target in enumerate(probe.axes()):
            n, p = self.spatial_shape[k], self.periodic[k]
            s = (target - self.bounds[k][0]) / self.spacing[k]
            if p:
                s = np.mod(s, n)
                i0 = np.minimum(np.floor(s).astype(np.int64), n - 1)
                i1 = (i0 + 1) % n
            else:
                s = np.clip(s, 0, n - 1)
                i0 = np.minimum(np.floor(s).astype(np.int64), n - 2)
                i1 = i0 + 1
            w = (s - i0).reshape((-1,) + (1,) * (self.ndim - 1 - k))
            lo, hi = np.take(values, i0, axis=k + 1), np.take(values, i1, axis=k + 1)
            values = lo + (hi - lo) * w.astype(np.result_type(values.dtype, np.float32))
            if mask is not None:
                nearest = np.rint(s).astype(np.int64) % n if p else np.rint(s).astype(np.int64)
                mask = np.take(mask, nearest, axis=k)
        values = values.astype(np.result_type(self.values.dtype, np.float32))
        return GridField(_like(self.values, values), self.bounds,
                         None if mask is None else _like(self.mask, mask), self.periodic)


def grid_attrs(field: GridField, units: str | None = None,
               description: str | None = None) -> dict[str, Any]:
    """The HDF5 field attributes that describe a grid field's layout (for `write_hdf5`)."""
    axes = " ".join(f"x{k}" for k in range(field.ndim))
    attrs: dict[str, Any] = {"layout": f"samples channels {axes}",
                             "bounds": [list(b) for b in field.bounds],
                             "periodic": list(field.periodic)}
    if units is not None:
        attrs["units"] = units
    if description is not None:
        attrs["description"] = description
    return attrs


def write_grid_dataset(path: str | os.PathLike, fields: Mapping[str, Sequence[GridField]],
                       attrs: Mapping[str, Any] | None = None,
                       units: Mapping[str, str] | None = None) -> pathlib.Path:
    """Write samples of grid fields as one data set (schema: see `write_hdf5`).

    **Arguments:**

    - `path`: the `.h5` file.
    - `fields`: field name → one `GridField` per sample; within a field every sample has the
      same shape, bounds and periodicity. A field whose samples carry masks is stored with a
      boolean companion field ``<name>_mask`` of shape `(samples, *spatial)`.
    - `attrs`: root attributes (``problem``, ``config``...).
    - `units`: field name → units string.

    **Raises:** `DataError` naming the field and sample that disagree with the first.
    """
    arrays: dict[str, np.ndarray] = {}
    field_attrs: dict[str, dict[str, Any]] = {}
    for name, samples in fields.items():
        samples = list(samples)
        if not samples:
            raise DataError(f"{path}: field {name!r} has no samples")
        first = samples[0]
        masked = first.mask is not None
        for i, g in enumerate(samples):
            if not isinstance(g, GridField):
                raise DataError(f"{path}: field {name!r} sample {i} is a {type(g).__name__}, "
                                f"not a GridField")
            if (g.values.shape != first.values.shape or g.bounds != first.bounds
                    or g.periodic != first.periodic or (g.mask is not None) != masked):
                raise DataError(f"{path}: field {name!r} sample {i} (shape {g.values.shape}, "
                                f"bounds {g.bounds}, mask {g.mask is not None}) differs from "
                                f"sample 0 (shape {first.values.shape}, bounds {first.bounds}, "
                                f"mask {masked})")
        arrays[name] = np.stack([np.asarray(g.values) for g in samples])
        field_attrs[name] = grid_attrs(first, (units or {}).get(name))
        if masked:
            if f"{name}_mask" in fields:
                raise DataError(f"{path}: field name {name + '_mask'!r} is reserved for the "
                                f"mask of {name!r}")
            arrays[f"{name}_mask"] = np.stack([np.asarray(g.mask) for g in samples])
            field_attrs[name]["mask"] = f"{name}_mask"
            field_attrs[f"{name}_mask"] = {"layout": "samples " + field_attrs[name]["layout"]
                                           .removeprefix("samples channels "),
                                           "description": f"domain mask of {name}"}
    return write_hdf5(path, arrays, {"kind": "grid", **(attrs or {})}, field_attrs)


def read_grid_dataset(path: str | os.PathLike, **kwargs) -> Dataset:
    """Read a data set written by `write_grid_dataset` (arguments as `read_hdf5`)."""
    dataset = read_hdf5(path, **kwargs)
    for k, fa in dataset.field_attrs.items():
        if "bounds" in fa and len(fa["bounds"]) != len(dataset.shape(k)) - 1:
            raise DataError(f"{path}: field {k!r} of sample shape {dataset.shape(k)} has "
                            f"{len(fa['bounds'])} bounds; expected one per spatial axis")
    return dataset


def grid_field(dataset: Dataset, key: str, position: int) -> GridField:
    """Sample `position` of field `key` as a `GridField` (bounds, periodicity and mask from the
    field's attributes; the unit cube when the file has none)."""
    fa = dataset.field_attrs.get(key, {})
    mask_key = fa.get("mask")
    keys = [key] + ([mask_key] if mask_key else [])
    sample = dataset.select(keys).take([position])
    values = sample[key][0]
    if values.ndim < 2:
        raise DataError(f"{dataset.name}: field {key!r} of sample shape {values.shape} has no "
                        f"channel axis; use as_grid first")
    return GridField(values, fa.get("bounds"), sample[mask_key][0] if mask_key else None,
                     fa.get("periodic", False))


def as_grid(dataset: Dataset, keys: Sequence[str], spatial_dims: int = 2,
            dtype=np.float32) -> Dataset:
    """A view in which the fields `keys` are channel-first grid fields of `dtype`.

    A field whose samples have exactly `spatial_dims` axes gets a channel axis of size one
    (`(n, s, s)` → `(n, 1, s, s)`, as in neuraloperator's Darcy files); every listed field is
    cast to `dtype`. Nothing is read: the conversion happens as batches are taken.

    **Raises:** `DataError` naming the field when its samples have neither `spatial_dims` nor
    `spatial_dims + 1` axes.
    """
    dtype = np.dtype(dtype)
    converted = {}
    for k in keys:
        a = dataset.require(k)
        shape = dataset.shape(k)
        if len(shape) == spatial_dims:
            converted[k] = MappedArray(a, lambda x, dt=dtype: x[:, None].astype(dt), (1, *shape),
                                       dtype)
        elif len(shape) == spatial_dims + 1:
            converted[k] = a if dataset.dtype(k) == dtype else MappedArray(
                a, lambda x, dt=dtype: x.astype(dt), shape, dtype)
        else:
            raise DataError(f"{dataset.name}: field {k!r} has sample shape {shape}; expected "
                            f"{spatial_dims} spatial axes with or without a leading channel axis")
    axes = " ".join(f"x{i}" for i in range(spatial_dims))
    fa = {k: {**dataset.field_attrs.get(k, {}), "layout": f"samples channels {axes}"}
          for k in converted}
    return dataset.with_arrays(converted, fa)
