"""Darcy on masked domains: manufactured solutions, convergence orders, generated data."""

import numpy as np
import pytest

from sciops._errors import ConfigError, DataError
from sciops.pde import problem
from sciops.pde._geometry import Disk, LShape, Triangle, cut_fractions, grid_mask, node_grid
from sciops.pde.darcy_masked import (
    DarcyMaskedConfig,
    gaussian_random_field,
    generate_arrays,
    self_convergence,
    solve,
)


def _lshape_error(n):
    # u = sin(2πx) sin(2πy) vanishes on every edge of the L-shape; a varies smoothly.
    x, y = node_grid(n)
    s, c = np.sin, np.cos
    u = s(2 * np.pi * x) * s(2 * np.pi * y)
    a = 1 + 0.5 * s(np.pi * x) * c(np.pi * y)
    ux = 2 * np.pi * c(2 * np.pi * x) * s(2 * np.pi * y)
    uy = 2 * np.pi * s(2 * np.pi * x) * c(2 * np.pi * y)
    ax = 0.5 * np.pi * c(np.pi * x) * c(np.pi * y)
    ay = -0.5 * np.pi * s(np.pi * x) * s(np.pi * y)
    f = -(a * (-8 * np.pi**2 * u) + ax * ux + ay * uy)
    mask = grid_mask(LShape(), n)
    return np.abs(solve(a, f, mask) - u * mask).max()


def _disk_error(n, exact_boundary, fitted=False):
    # u = (R² - r²) e^x vanishes on the circle r = R; a = 1.
    x, y = node_grid(n)
    r2, radius = (x - 0.5) ** 2 + (y - 0.5) ** 2, 0.45
    u = (radius**2 - r2) * np.exp(x)
    f = -np.exp(x) * (-4 - 4 * (x - 0.5) + radius**2 - r2)
    mask = grid_mask(Disk(), n)
    g = u if exact_boundary else None
    fractions = cut_fractions(Disk(), n) if fitted else None
    numeric = solve(np.ones_like(f), f, mask, g, fractions)
    return np.abs(numeric - u)[mask].max()


def _triangle_error(n, fitted):
    # u = L1 L2 L3 (the three edge lines) vanishes on the slanted edges; a = 1 and
    # f = -Δu = -2 Σ_{i<j} (∇Li·∇Lj) Lk.
    tri = Triangle()
    (ax, ay), (bx, by), (cx, cy) = tri.vertices
    x, y = node_grid(n)
    lines = []
    for (px, py), (qx, qy) in (((ax, ay), (bx, by)), ((bx, by), (cx, cy)), ((cx, cy), (ax, ay))):
        grad = np.array([-(qy - py), qx - px])
        lines.append((grad, grad[0] * (x - px) + grad[1] * (y - py)))
    u = lines[0][1] * lines[1][1] * lines[2][1]
    f = -2 * sum(lines[i][0] @ lines[j][0] * lines[k][1]
                 for i, j, k in ((0, 1, 2), (0, 2, 1), (1, 2, 0)))
    mask = grid_mask(tri, n)
    fractions = cut_fractions(tri, n) if fitted else None
    return np.abs(solve(np.ones_like(f), f, mask, None, fractions) - u)[mask].max()


def test_lshape_second_order():
    errors = np.array([_lshape_error(n) for n in (17, 33, 65)])
    orders = np.log2(errors[:-1] / errors[1:])
    assert np.all(np.abs(orders - 2) < 0.1), orders


def test_disk_orders():
    ns = np.array([17, 33, 65, 129])
    exact = np.array([_disk_error(n, True) for n in ns])
    stair = np.array([_disk_error(n, False) for n in ns])
    h = 1.0 / (ns - 1)
    # Exact values at the nodes next to the circle: second order.
    assert np.polyfit(np.log(h), np.log(exact), 1)[0] > 1.95
    # Zero at the first node outside (staircase domain): first order, as documented.
    slope = np.polyfit(np.log(h), np.log(stair), 1)[0]
    assert 0.8 < slope < 1.3, slope
    assert stair[-1] < 0.015
    # Boundary-fitted (Shortley–Weller) stencil with g = 0 on the circle: second order again.
    fitted = np.array([_disk_error(n, False, fitted=True) for n in ns])
    assert np.polyfit(np.log(h), np.log(fitted), 1)[0] > 1.9, fitted
    assert fitted[-1] < 1e-5


def test_triangle_fitted_at_least_second_order():
    ns = np.array([17, 33, 65])
    fitted = np.array([_triangle_error(n, True) for n in ns])
    stair = np.array([_triangle_error(n, False) for n in ns])
    # (orders 2.2 and 3.2 here: the distances of the nodes to the slanted edges vary with h)
    assert np.all(np.log2(fitted[:-1] / fitted[1:]) > 1.9), fitted
    assert np.all(fitted < 0.005 * stair), (fitted, stair)


def test_default_data_self_converged():
    # The generated data (fitted boundaries) against the same samples at half the spacing, at a
    # small size: every geometry within 5 %; the staircase data are not.
    cfg = DarcyMaskedConfig(n_samples=5, resolution=24)
    fitted = self_convergence(cfg)
    stair = self_convergence(DarcyMaskedConfig(n_samples=5, resolution=24, boundary="staircase"))
    assert fitted.n_samples == 5 and set(fitted.groups) == set(cfg.geometries)
    assert max(fitted.groups.values()) < 0.05, fitted.groups
    assert max(stair.groups.values()) > 0.1, stair.groups  # cross: 21 % at 24 nodes


def test_discrete_maximum_principle_and_symmetry():
    # f >= 0 gives u >= 0; the disk problem with a symmetric source is symmetric in x <-> y.
    n = 33
    x, y = node_grid(n)
    mask = grid_mask(Disk(), n)
    f = np.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) * 10)
    u = solve(np.ones_like(f), f, mask)
    assert u.min() >= 0 and u[~mask].max() == 0
    np.testing.assert_allclose(u, u.T, atol=1e-12)


def test_grf_statistics():
    rng = np.random.default_rng(0)
    g = gaussian_random_field(rng, 32, size=200)
    assert abs(g.mean()) < 0.05
    np.testing.assert_allclose(g.std(axis=(1, 2)), 1.0, rtol=1e-6)
    # Smooth: neighbouring nodes are strongly correlated for alpha = 2, tau = 3.
    corr = np.mean(g[:, :, 1:] * g[:, :, :-1]) / np.mean(g**2)
    assert corr > 0.9


def test_generated_data():
    config = DarcyMaskedConfig(n_samples=10, resolution=16)
    d = generate_arrays(config)
    np.testing.assert_array_equal(d["geometry"], np.arange(10) % 5)
    assert np.all(d["u"][d["mask"] == 0] == 0) and np.all(d["f"][d["mask"] == 0] == 0)
    # Each sample solves its discrete problem: re-solve one and compare.
    i = 7
    shape = Triangle() if config.geometries[i % 5] == "triangle" else None
    assert shape is not None
    u = solve(np.ones((16, 16)), d["f"][i, 0].astype(np.float64), d["mask"][i, 0],
              fractions=cut_fractions(shape, 16))
    np.testing.assert_allclose(d["u"][i, 0], u, rtol=1e-5, atol=1e-7)
    c = generate_arrays(DarcyMaskedConfig(n_samples=2, resolution=16, input="coefficient"))
    assert set(np.unique(c["a"][c["mask"] == 1])) == {3.0, 12.0}


def test_registered_and_bad_input():
    assert problem("darcy_masked").config is DarcyMaskedConfig
    with pytest.raises(ConfigError, match="geometries"):
        DarcyMaskedConfig(geometries=("circle",))
    with pytest.raises(DataError, match="mask shape"):
        solve(np.ones((8, 8)), np.ones((8, 8)), np.ones((7, 8)))
    with pytest.raises(ConfigError, match="outer ring"):
        solve(np.ones((8, 8)), np.ones((8, 8)), np.ones((8, 8)))
