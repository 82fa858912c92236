"""Unstructured triangular meshes from a signed distance function (force-equilibrium smoothing).

The method of Persson & Strang ("A simple mesh generator in MATLAB", SIAM Review 46, 2004):
points start on a lattice thinned to a target size field, then move under repulsive
bar forces (a truss whose bars want length ∝ the size field) with Delaunay re-triangulation,
and points that leave the domain are projected back onto the boundary along the gradient of
the signed distance. Written here from the paper's description; scipy provides Delaunay.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial import Delaunay

__all__ = ["circle_sdf", "distmesh2d", "rectangle_sdf", "boundary_nodes"]


def rectangle_sdf(x0: float, x1: float, y0: float, y1: float) -> Callable[[np.ndarray], np.ndarray]:
    """Signed distance to an axis-aligned rectangle (negative inside; exact inside)."""
    def f(p):
        dx = np.maximum(x0 - p[:, 0], p[:, 0] - x1)
        dy = np.maximum(y0 - p[:, 1], p[:, 1] - y1)
        outside = np.hypot(np.maximum(dx, 0), np.maximum(dy, 0))
        inside = np.minimum(np.maximum(dx, dy), 0)
        return outside + inside
    return f


def circle_sdf(cx: float, cy: float, r: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda p: np.hypot(p[:, 0] - cx, p[:, 1] - cy) - r


def _grad(fd, p, eps):
    d = fd(p)
    gx = (fd(p + [eps, 0]) - d) / eps
    gy = (fd(p + [0, eps]) - d) / eps
    return d, gx, gy


def distmesh2d(fd: Callable[[np.ndarray], np.ndarray], fh: Callable[[np.ndarray], np.ndarray],
               h0: float, bbox: tuple[float, float, float, float], *,
               fixed: np.ndarray | None = None, seed: int = 0, max_iter: int = 400
               ) -> tuple[np.ndarray, np.ndarray]:
    """Mesh the region ``fd < 0`` with element sizes proportional to ``fh``.

    **Arguments:**

    - `fd`: signed distance function ``(n, 2) -> (n,)``, negative inside.
    - `fh`: relative size function ``(n, 2) -> (n,)`` (its minimum is mapped to `h0`).
    - `h0`: the smallest edge length.
    - `bbox`: ``(xmin, xmax, ymin, ymax)`` enclosing the domain.
    - `fixed`: points that must be mesh nodes (corners).
    - `seed`: for the random thinning of the initial lattice.

    **Returns:** `(points (n, 2), triangles (t, 3))`, triangles counter-clockwise.
    """
    rng = np.random.default_rng(seed)
    xmin, xmax, ymin, ymax = bbox
    geps = 1e-3 * h0
    deps = np.sqrt(np.finfo(float).eps) * h0
    # equilateral lattice
    ys = np.arange(ymin, ymax + h0 * 0.5, h0 * np.sqrt(3) / 2)
    xs = np.arange(xmin, xmax + h0 * 0.5, h0)
    X, Y = np.meshgrid(xs, ys)
    X[1::2] += h0 / 2
    p = np.stack([X.ravel(), Y.ravel()], 1)
    p = p[fd(p) < geps]
    r0 = 1.0 / fh(p) ** 2
    p = p[rng.random(len(p)) < r0 / r0.max()]
    fixed = np.zeros((0, 2)) if fixed is None else np.asarray(fixed, float)
    if len(fixed):
        keep = np.all(np.linalg.norm(p[:, None] - fixed[None], axis=-1) > 0.5 * h0, axis=1)
        p = np.concatenate([fixed, p[keep]])
    nf = len(fixed)
    old = np.full_like(p, np.inf)
    tri = None
    for _ in range(max_iter):
        if tri is None or np.max(np.linalg.norm(p - old, axis=1)) > 0.1 * h0:
            old = p.copy()
            tri = Delaunay(p).simplices
            centroid = p[tri].mean(1)
            tri = tri[fd(centroid) < -geps]
            bars = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]])
            bars = np.unique(np.sort(bars, axis=1), axis=0)
        vec = p[bars[:, 0]] - p[bars[:, 1]]
        length = np.linalg.norm(vec, axis=1)
        hbars = fh((p[bars[:, 0]] + p[bars[:, 1]]) / 2)
        # desired lengths, scaled 20% above the mean so that bars push outwards (Persson-Strang)
        l0 = hbars * 1.2 * np.sqrt(np.sum(length**2) / np.sum(hbars**2))
        force = np.maximum(l0 - length, 0)
        fvec = (force / length)[:, None] * vec
        ftot = np.zeros_like(p)
        np.add.at(ftot, bars[:, 0], fvec)
        np.add.at(ftot, bars[:, 1], -fvec)
        ftot[:nf] = 0
        p = p + 0.2 * ftot
        d, gx, gy = _grad(fd, p, deps)
        out = d > 0
        p[out] -= np.stack([d[out] * gx[out], d[out] * gy[out]], 1) / np.maximum(
            (gx[out] ** 2 + gy[out] ** 2)[:, None], 1e-30)
        move = np.linalg.norm(0.2 * ftot[d < -geps], axis=1)
        if move.size and move.max() < 1e-3 * h0:
            break
    # final triangulation, drop unused points, orient counter-clockwise
    tri = Delaunay(p).simplices
    tri = tri[fd(p[tri].mean(1)) < -geps]
    used = np.unique(tri)
    remap = np.full(len(p), -1)
    remap[used] = np.arange(used.size)
    p, tri = p[used], remap[tri]
    a, b, c = p[tri[:, 0]], p[tri[:, 1]], p[tri[:, 2]]
    area2 = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    tri[area2 < 0] = tri[area2 < 0][:, [0, 2, 1]]
    return p, tri


def boundary_nodes(triangles: np.ndarray) -> np.ndarray:
    """Indices of nodes on boundary edges (edges that belong to exactly one triangle)."""
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [0, 2]]])
    e = np.sort(e, axis=1)
    uniq, counts = np.unique(e, axis=0, return_counts=True)
    return np.unique(uniq[counts == 1])
