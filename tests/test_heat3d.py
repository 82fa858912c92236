"""Steady 3-D heat in a plate with holes: manufactured solutions, orders, generated designs."""

import numpy as np
import pytest

from sciops._errors import ConfigError, DataError
from sciops.pde import problem
from sciops.pde.heat import (
    HeatConfig,
    generate_arrays,
    plate_fractions,
    plate_mask,
    self_convergence,
    solve,
)

THICKNESS = 0.25


def _grid(n, nz):
    z = np.linspace(0, THICKNESS, nz)
    y = x = np.linspace(0, 1, n)
    return np.meshgrid(z, y, x, indexing="ij")


def _error(n, nz, freq, hole):
    # T = sin(fπx) sin(fπy) cos(πz/H): zero on the side faces (and on the lines x, y = k/f),
    # zero flux through top and bottom.
    z, y, x = _grid(n, nz)
    exact = np.sin(freq * np.pi * x) * np.sin(freq * np.pi * y) * np.cos(np.pi * z / THICKNESS)
    q = np.pi**2 * (2 * freq**2 + 1 / THICKNESS**2) * exact
    mask = np.ones((nz, n, n), dtype=bool)
    mask[:, [0, -1], :] = mask[:, :, [0, -1]] = False
    if hole:  # a square through-hole [0.25, 0.5]^2 given as a user array (closed: walls too)
        inside = (x >= 0.25 - 1e-9) & (x <= 0.5 + 1e-9) & (y >= 0.25 - 1e-9) & (y <= 0.5 + 1e-9)
        mask &= ~inside
    T = solve(mask.astype(np.float32), q, (THICKNESS / (nz - 1), 1 / (n - 1), 1 / (n - 1)))
    return np.abs(T - exact * mask).max()


@pytest.mark.parametrize("freq, hole", [(1, False), (4, True)])
def test_manufactured_second_order(freq, hole):
    errors = np.array([_error(n, nz, freq, hole) for n, nz in ((9, 3), (17, 5), (33, 9))])
    orders = np.log2(errors[:-1] / errors[1:])
    assert np.all(np.abs(orders - 2) < 0.15), (errors, orders)


def _hole_error(n, nz, fitted):
    # T = (r² - R²) sin(πx) sin(πy) cos(πz/H) vanishes on the walls of a round hole of radius R
    # at (0.5, 0.5) and on the side faces; zero flux through top and bottom.
    cx = cy = 0.5
    radius = 0.2
    z, y, x = _grid(n, nz)
    s, c, p = np.sin, np.cos, np.pi
    r2 = (x - cx) ** 2 + (y - cy) ** 2
    ph = s(p * x) * s(p * y)
    cz = c(p * z / THICKNESS)
    exact = (r2 - radius**2) * ph * cz
    # -ΔT: Δ(r2 - R²) = 4, ∇(r2)·∇ph, Δph = -2π² ph, ∂zz = -(π/H)²
    grad = 2 * (x - cx) * p * c(p * x) * s(p * y) + 2 * (y - cy) * p * s(p * x) * c(p * y)
    lap = (4 * ph + 2 * grad - 2 * p**2 * (r2 - radius**2) * ph) * cz - (p / THICKNESS) ** 2 * exact
    holes = [(cx, cy, radius)]
    mask = plate_mask(holes, n, nz)
    fractions = plate_fractions(holes, n, nz) if fitted else None
    T = solve(mask, -lap, (THICKNESS / (nz - 1), 1 / (n - 1), 1 / (n - 1)), fractions=fractions)
    return np.abs(T - exact * mask).max()


def test_round_hole_fitted_second_order():
    sizes = ((9, 3), (17, 5), (33, 9))
    fitted = np.array([_hole_error(n, nz, True) for n, nz in sizes])
    stair = np.array([_hole_error(n, nz, False) for n, nz in sizes])
    assert np.all(np.abs(np.log2(fitted[:-1] / fitted[1:]) - 2) < 0.3), fitted
    # (the staircase error does not even decrease monotonically: 7.8e-3, 2.7e-3, 4.6e-3)
    assert fitted[-1] < 0.1 * stair[-1]


def test_default_data_self_converged():
    # Small designs against the same designs at half the spacing in x, y and z.
    cfg = HeatConfig(n_samples=2, resolution=13, n_z=4)
    fitted = self_convergence(cfg, 2)
    stair = self_convergence(HeatConfig(n_samples=2, resolution=13, n_z=4, boundary="staircase"),
                             2)
    assert fitted.rel_l2 < 0.03 and stair.rel_l2 > 2 * fitted.rel_l2, (fitted, stair)


def test_insulated_faces_and_positivity():
    config = HeatConfig(n_samples=3, resolution=13, n_z=4, max_holes=2)
    d = generate_arrays(config)
    u, m = d["u"][:, 0], d["mask"][:, 0]
    assert np.all(u[m == 0] == 0) and np.all(u[m == 1] > 0)
    # Heated more at the top (q grows with z), insulated faces: T grows monotonically with z.
    assert np.all(np.diff(u, axis=1)[m[:, 1:] == 1] > 0)
    designs = d["design"].reshape(3, 2, 4)
    np.testing.assert_array_equal(d["n_holes"], designs[:, :, 0].sum(1))
    for i in range(3):
        holes = [tuple(r[1:]) for r in designs[i] if r[0] > 0]
        np.testing.assert_array_equal(m[i], plate_mask(holes, 13, 4))


def test_no_holes_reduces_to_2d_poisson():
    n, nz = 17, 5
    q = np.ones((nz, n, n))
    mask = plate_mask([], n, nz)
    T = solve(mask, q, (THICKNESS / (nz - 1), 1 / (n - 1), 1 / (n - 1)))
    # z-independent problem: equals the 2-D Poisson solution in every layer.
    np.testing.assert_allclose(T, np.broadcast_to(T[:1], T.shape), atol=1e-12)
    # ∫∫ T for -ΔT = 1 on the unit square: (64/π^6) Σ_{m,n odd} 1/(m²n²(m²+n²)) = 0.0351442;
    # the trapezoid sum of the h = 1/16 solution is within 2% (O(h²)).
    integral = T[0].sum() / (n - 1) ** 2
    assert abs(integral - 0.0351442) / 0.0351442 < 0.02


def test_registered_and_bad_input():
    assert problem("heat3d").config is HeatConfig
    with pytest.raises(DataError, match="mask shape"):
        solve(np.ones((3, 5, 5)), np.ones((3, 5, 6)), (1, 1, 1))
    with pytest.raises(ConfigError, match="end planes"):
        solve(np.ones((3, 5, 5)), np.ones((3, 5, 5)), (1, 1, 1))
    with pytest.raises(ConfigError, match="max_holes"):
        HeatConfig(max_holes=0)
