"""Fisher-type reaction–diffusion solver: exact travelling waves, convergence order, invariants."""

import dataclasses

import numpy as np
import pytest

from sciops._errors import ConfigError
from sciops.data import read_hdf5
from sciops.pde import problem
from sciops.pde.fisher import (
    TASKS,
    FisherConfig,
    exact_wave,
    generate,
    generate_arrays,
    self_convergence,
    solve,
)


def _wave_error(task, n, diffusivity=1.0, rate=1.0):
    x = np.linspace(-10.0, 10.0, n)
    h = x[1] - x[0]
    t_final = 1.0
    u0 = exact_wave(task, x, 0.0, diffusivity=diffusivity, rate=rate)[None]

    def ends(t):
        u = exact_wave(task, x[[0, -1]], t, diffusivity=diffusivity, rate=rate)
        return u[:1], u[1:]

    coeffs = rate * np.array([TASKS[task]])
    sol = solve(u0, coeffs, length=20.0, t_final=t_final, n_steps=int(round(t_final / h)),
                diffusivity=diffusivity, boundary="dirichlet", dirichlet=ends)
    exact = exact_wave(task, x, t_final, diffusivity=diffusivity, rate=rate)
    return np.max(np.abs(sol[0, -1] - exact))


@pytest.mark.parametrize("task", ["fisher", "nws", "zeldovich"])
def test_travelling_wave_second_order(task):
    # dt = h, so Crank–Nicolson + central differences converge as O(h^2 + dt^2) = O(h^2).
    errors = np.array([_wave_error(task, n) for n in (41, 81, 161)])
    orders = np.log2(errors[:-1] / errors[1:])
    assert errors[-1] < 4e-4
    assert np.all(orders > 1.95) and np.all(orders < 2.1), orders


def test_travelling_wave_scaled_parameters():
    # The exact waves carry over to general D and a by x -> x sqrt(a/D), t -> a t.
    assert _wave_error("fisher", 161, diffusivity=0.5, rate=2.0) < 1e-3


def test_zero_flux_conserves_mass_without_source():
    rng = np.random.default_rng(0)
    x = np.linspace(0.0, 1.0, 51)
    u0 = 0.5 + 0.3 * np.cos(np.pi * x)[None] * rng.uniform(0.5, 1.0, (3, 1))
    sol = solve(u0, np.zeros((3, 4)), length=1.0, t_final=0.5, n_steps=50, diffusivity=0.1)
    weights = np.full(51, 1 / 50)
    weights[[0, -1]] /= 2  # trapezoid rule: the invariant of the mirrored-ghost scheme
    mass = sol @ weights
    np.testing.assert_allclose(mass, mass[:, :1].repeat(mass.shape[1], 1), rtol=0, atol=1e-13)


def test_logistic_ode_limit():
    # A spatially uniform state follows the logistic ODE u' = u(1-u) exactly; CN error O(dt^2).
    u0 = np.full((1, 11), 0.1)
    sol = solve(u0, np.array([TASKS["fisher"]]), length=1.0, t_final=2.0, n_steps=400,
                diffusivity=1.0)
    exact = 1 / (1 + 9 * np.exp(-2.0))
    np.testing.assert_allclose(sol[0, -1], exact, rtol=1e-5)


def test_generated_data_consistent():
    config = FisherConfig(n_samples=9, n_x=16, n_t=5, refine=2, steps_per_output=2,
                          rate=(0.5, 1.5))
    a = generate_arrays(config)
    b = generate_arrays(config)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(a["task"], np.arange(9) % 3)
    base = np.array([TASKS[t] for t in config.tasks])[a["task"]]
    rate = np.abs(a["coeffs"]).max(-1)  # every task has a coefficient of magnitude a
    np.testing.assert_allclose(a["coeffs"], base * rate[:, None], rtol=1e-6)
    np.testing.assert_allclose(a["u"][:, 0, 0], a["u0"][:, 0], rtol=1e-6)
    assert np.all((a["u"] > 0) & (a["u"] < 1))


def test_generated_data_self_convergence_second_order(tmp_path):
    """The data against the same samples with half the spacing and step: the difference falls
    4x per halving (4.3 measured), every task is reported, and `generate` records it."""
    config = FisherConfig(n_samples=6, n_x=17, n_t=5, refine=1, steps_per_output=2,
                          convergence_samples=3)
    coarse = self_convergence(config)
    fine = self_convergence(dataclasses.replace(config, refine=2, steps_per_output=4))
    assert set(coarse.groups) == set(config.tasks) and coarse.n_samples == 6
    assert 3.5 < coarse.rel_l2 / fine.rel_l2 < 5.0, (coarse.rel_l2, fine.rel_l2)
    generate(config, tmp_path / "f.h5", progress=False)
    attrs = read_hdf5(tmp_path / "f.h5", lazy=False).attrs
    assert attrs["self_convergence"]["n_samples"] == 3
    assert attrs["self_convergence"]["rel_l2"] == pytest.approx(
        self_convergence(config, 3).rel_l2, rel=1e-12)
    assert attrs["discretisation"]["solver_points"] == 17
    assert attrs["discretisation"]["dt"] == pytest.approx(1 / 8)


def test_registered_and_bad_config():
    assert problem("fisher").config is FisherConfig
    with pytest.raises(ConfigError, match="tasks"):
        FisherConfig(tasks=("kpp",))
    with pytest.raises(ConfigError, match="coeffs"):
        solve(np.zeros((2, 5)), np.zeros((2, 3)), length=1.0, t_final=1.0, n_steps=1,
              diffusivity=1.0)
