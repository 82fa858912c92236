"""Domain shapes in the unit square and the binary masks they make on node grids.

A shape answers ``contains(x, y)`` for points strictly inside it (points on its boundary are
outside, so a grid node that lies exactly on a boundary-aligned edge becomes a Dirichlet node).
`grid_mask` evaluates a shape on the ``n × n`` node grid of $[0, 1]^2$ (ends included, layout
``(y, x)`` as every sciops grid field) and always excludes the outer ring of the square. User
masks of any form go through `as_mask`, which checks them against the field they belong to.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._errors import DataError

__all__ = ["Square", "Disk", "Triangle", "LShape", "Cross", "PlateWithHoles", "SHAPES",
           "node_grid", "grid_mask", "cut_fractions", "as_mask"]

# Points within this distance of a boundary count as on it (grid nodes are computed in floating
# point, e.g. 15/30 = 0.5 exactly but 0.1 * 3 is not 0.3).
_EPS = 1e-9


@dataclasses.dataclass(frozen=True)
class Square:
    """The axis-aligned rectangle $(x_0, x_1) \\times (y_0, y_1)$ (default the unit square)."""

    x0: float = 0.0
    x1: float = 1.0
    y0: float = 0.0
    y1: float = 1.0

    def contains(self, x, y):
        return ((x > self.x0 + _EPS) & (x < self.x1 - _EPS)
                & (y > self.y0 + _EPS) & (y < self.y1 - _EPS))


@dataclasses.dataclass(frozen=True)
class Disk:
    """The open disk $|p - c| < r$."""

    cx: float = 0.5
    cy: float = 0.5
    radius: float = 0.45

    def contains(self, x, y):
        return (x - self.cx) ** 2 + (y - self.cy) ** 2 < (self.radius - _EPS) ** 2


@dataclasses.dataclass(frozen=True)
class Triangle:
    """The open triangle with the given vertices (either orientation)."""

    vertices: tuple[tuple[float, float], ...] = ((0.05, 0.05), (0.95, 0.05), (0.5, 0.95))

    def contains(self, x, y):
        (ax, ay), (bx, by), (cx, cy) = self.vertices
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        sign = np.sign(area)
        inside = np.ones(np.broadcast(x, y).shape, dtype=bool)
        for (px, py), (qx, qy) in (((ax, ay), (bx, by)), ((bx, by), (cx, cy)),
                                   ((cx, cy), (ax, ay))):
            # Signed distance to the edge line; positive inside for a positive orientation.
            length = np.hypot(qx - px, qy - py)
            side = sign * ((qx - px) * (y - py) - (qy - py) * (x - px)) / length
            inside &= side > _EPS
        return inside


@dataclasses.dataclass(frozen=True)
class LShape:
    """The unit square without the corner block $(c_x, 1) \\times (c_y, 1)$."""

    cx: float = 0.5
    cy: float = 0.5

    def contains(self, x, y):
        return Square().contains(x, y) & ~((x > self.cx - _EPS) & (y > self.cy - _EPS))


@dataclasses.dataclass(frozen=True)
class Cross:
    """A plus sign: the union of a horizontal and a vertical bar of half-width `half_width`
    through $(c_x, c_y)$, clipped to the unit square."""

    cx: float = 0.5
    cy: float = 0.5
    half_width: float = 0.2

    def contains(self, x, y):
        bar = (np.abs(x - self.cx) < self.half_width - _EPS) | (
            np.abs(y - self.cy) < self.half_width - _EPS)
        return Square().contains(x, y) & bar


@dataclasses.dataclass(frozen=True)
class PlateWithHoles:
    """The unit square without circular holes, each ``(cx, cy, radius)``."""

    holes: tuple[tuple[float, float, float], ...] = ((0.3, 0.3, 0.12), (0.7, 0.65, 0.15))

    def contains(self, x, y):
        inside = Square().contains(x, y)
        for cx, cy, r in self.holes:
            inside &= (x - cx) ** 2 + (y - cy) ** 2 > (r + _EPS) ** 2
        return inside


SHAPES = {"square": Square(), "disk": Disk(), "triangle": Triangle(), "l_shape": LShape(),
          "cross": Cross(), "plate_holes": PlateWithHoles()}
"""The named geometries of the data generators (`geometries: [square, disk, ...]` in configs)."""


def node_grid(n: int | np.integer) -> tuple[np.ndarray, np.ndarray]:
    """The ``(x, y)`` coordinates of the ``n × n`` node grid of $[0,1]^2$, each ``(n, n)``
    indexed ``[y, x]``."""
    axis = np.linspace(0.0, 1.0, n)
    x, y = np.meshgrid(axis, axis, indexing="xy")
    return x, y


def grid_mask(shape, n: int | np.integer) -> np.ndarray:
    """The boolean ``(n, n)`` mask of the nodes strictly inside `shape` (outer ring excluded)."""
    x, y = node_grid(n)
    mask = np.asarray(shape.contains(x, y), dtype=bool)
    mask[[0, -1], :] = False
    mask[:, [0, -1]] = False
    return mask


def cut_fractions(shape, n: int | np.integer, mask: np.ndarray | None = None,
                  iterations: int = 50) -> np.ndarray:
    """Where the boundary of `shape` cuts the grid lines between an inside node and its
    outside neighbours, for the Shortley–Weller (boundary-fitted finite-difference) stencil.

    For each node $p$ of `mask` (default `grid_mask(shape, n)`) and each of the four grid
    directions, $\\theta \\in (0, 1]$ is the distance from $p$ to the boundary along that line
    in units of the spacing $h = 1/(n-1)$: 1 when the neighbour is inside (or $p$ is not), and
    otherwise the first point where the segment leaves the shape, found by bisection on
    ``shape.contains`` to `iterations` halvings (so any shape with ``contains`` works). A node
    on the outer ring of the square counts as boundary (1).

    **Returns:** float64 ``(2, 2, n, n)``: ``[axis, side]`` with axis 0 = $y$, 1 = $x$ and
    side 0 = the $+1$ neighbour, 1 = the $-1$ neighbour.
    """
    x, y = node_grid(n)
    if mask is None:
        mask = grid_mask(shape, n)
    h = 1.0 / (n - 1)
    out = np.ones((2, 2, n, n))
    ii, jj = np.nonzero(mask)
    for axis in (0, 1):
        for side, step in enumerate((1, -1)):
            qi, qj = (ii + step, jj) if axis == 0 else (ii, jj + step)
            outside = ~mask[qi, qj] & ~np.asarray(shape.contains(x[qi, qj], y[qi, qj]), bool)
            pi_, pj = ii[outside], jj[outside]
            px, py = x[pi_, pj], y[pi_, pj]
            dx, dy = (0.0, step * h) if axis == 0 else (step * h, 0.0)
            lo, hi = np.zeros(px.shape), np.ones(px.shape)
            for _ in range(iterations):
                mid = 0.5 * (lo + hi)
                inside = np.asarray(shape.contains(px + mid * dx, py + mid * dy), bool)
                lo = np.where(inside, mid, lo)
                hi = np.where(inside, hi, mid)
            # a boundary through the neighbour node itself (grid-aligned edges): exactly 1
            out[axis, side, pi_, pj] = np.where(hi > 1 - 1e-6, 1.0, hi)
    return out


def as_mask(array, field_shape: tuple[int, ...], *, key: str = "mask") -> np.ndarray:
    """Check a user mask against the field it masks and return it as ``bool``.

    **Arguments:**

    - `array`: the mask, shaped like the field's spatial dims or with one leading channel.
    - `field_shape`: the spatial shape of the field it belongs to.
    - `key`: the mask's name, for the error message.

    **Raises:** `DataError` naming `key` and both shapes when they differ, or when the mask has
    values other than 0 and 1.
    """
    a = np.asarray(array)
    spatial = tuple(field_shape)
    if a.shape == (1, *spatial):
        a = a[0]
    if a.shape != spatial:
        raise DataError(f"{key}: mask shape {a.shape} does not match the field's spatial shape "
                        f"{spatial} (expected {spatial} or {(1, *spatial)})")
    if not np.all((a == 0) | (a == 1)):
        raise DataError(f"{key}: a mask must hold only 0 and 1, got values "
                        f"{np.unique(a)[:5].tolist()}")
    return a.astype(bool)
