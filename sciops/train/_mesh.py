"""The named device mesh of a run (`train.mesh`), and the shardings of batches and parameters."""

from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .._errors import ConfigError

__all__ = ["make_mesh", "batch_sharding", "field_shardings", "replicated", "AXES"]

# The order of the axes in the mesh: `data` outermost so that a data-parallel group spans
# processes/hosts while `space` (domain decomposition) stays within fast local links.
AXES = ("data", "space")


def make_mesh(sizes: Mapping[str, int], devices=None) -> Mesh:
    """A `jax.sharding.Mesh` with the named axes of `sizes` (``-1``: the remaining devices).

    **Arguments:**

    - `sizes`: axis name (`data`, `space`) → size; at most one size may be ``-1``.
    - `devices`: the devices to use (default all, `jax.devices()`).

    **Raises:** `ConfigError` naming `train.mesh` when the sizes do not fit the device count.
    """
    devices = list(jax.devices() if devices is None else devices)
    n = len(devices)
    names = [a for a in AXES if a in sizes] or ["data"]
    shape = [int(sizes.get(a, -1 if a == "data" else 1)) for a in names]
    if shape.count(-1) > 1:
        raise ConfigError("train.mesh: at most one axis may be -1")
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if n % known:
            raise ConfigError(f"train.mesh: {dict(zip(names, shape, strict=True))} does not divide the {n} "
                              "available devices")
        shape[shape.index(-1)] = n // known
    total = math.prod(shape)
    if total > n:
        raise ConfigError(f"train.mesh: {dict(zip(names, shape, strict=True))} needs {total} devices, "
                          f"only {n} available")
    grid = np.asarray(devices[:total], dtype=object).reshape(shape)
    return Mesh(grid, tuple(names), axis_types=(AxisType.Auto,) * len(names))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over `data`, the rest replicated."""
    return NamedSharding(mesh, P("data"))


def field_shardings(mesh: Mesh, shapes: Mapping[str, tuple[int, ...]],
                    space_axes: Mapping[str, int] | None = None) -> dict[str, NamedSharding]:
    """Per-field shardings of a batch: the batch axis over `data`, and for grid fields
    (`(batch, channels, *spatial)` with at least two spatial axes) the first spatial axis over
    `space` when that mesh axis has more than one device (domain decomposition).

    `space_axes` (field → sample axis): fields split over `space` along that axis instead,
    such as the node and edge blocks of a partitioned mesh (the ``space_axis`` field
    attribute that `Family.partition` sets)."""
    space = mesh.shape.get("space", 1)
    space_axes = space_axes or {}
    out = {}
    for k, shape in shapes.items():
        if space > 1 and k in space_axes:
            out[k] = NamedSharding(mesh, P("data", *([None] * space_axes[k]), "space"))
        elif space > 1 and len(shape) >= 4 and shape[2] % space == 0:
            out[k] = NamedSharding(mesh, P("data", None, "space"))
        else:
            out[k] = NamedSharding(mesh, P("data"))
    return out


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())
