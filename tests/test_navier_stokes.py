"""The Navier–Stokes vorticity solver: exact decays, temporal order 2, the data-set writer."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciops._errors import ConfigError
from sciops.data import read_hdf5
from sciops.pde import problem
from sciops.pde.navier_stokes import (
    NavierStokesConfig,
    generate,
    generate_arrays,
    initial_vorticity,
    li_forcing,
    solve,
    taylor_green,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _orders(errors):
    e = np.asarray(errors)
    return np.log2(e[:-1] / e[1:])


def test_taylor_green_decay_error_and_order(x64):
    # w = sin(2 pi x) sin(2 pi y) e^{-8 pi^2 nu t} is exact (u.grad w = 0); the time error is
    # the Crank–Nicolson error of the decay rate, second order in dt.
    s, nu, t = 32, 1e-2, 1.0
    w0 = jnp.asarray(taylor_green(s, 0.0, nu))
    exact = taylor_green(s, t, nu)
    errors = []
    for dt in (0.1, 0.05, 0.025):
        w = solve(w0, viscosity=nu, dt=dt, n_steps=round(t / dt))[-1]
        errors.append(float(jnp.max(jnp.abs(w - exact))))
    # CN's one-step amplification error is a^3/12 (a = nu k^2 dt): 1.9e-4 at dt = 0.1.
    assert errors[0] < 2.5e-4 and errors[-1] < 1.5e-5
    np.testing.assert_allclose(_orders(errors), 2.0, atol=0.05)


def test_forced_response_matches_exact_solution(x64):
    # Li et al.'s forcing is a single wavevector (1, 1), so from rest w = f (1 - e^{-nu k^2 t})/(nu k^2)
    # exactly (again u.grad w = 0): checks the forcing path and the sign conventions.
    s, nu, t, dt = 32, 1e-3, 2.0, 0.01
    f = li_forcing(s)
    w = solve(jnp.zeros((s, s)), viscosity=nu, dt=dt, n_steps=round(t / dt),
              forcing=jnp.asarray(f))[-1]
    rate = nu * 8 * np.pi**2
    exact = f * (1 - np.exp(-rate * t)) / rate
    # Only CN's O(dt^2) error of the relaxation remains: (rate dt)^2/12 ~ 5e-8 relative here.
    assert float(jnp.max(jnp.abs(w - exact))) < 2e-7 * np.abs(exact).max()


def test_self_convergence_order_two_with_advection(x64):
    # A random field activates the nonlinear term; compare against a run with dt/16.
    s, nu, t = 32, 1e-3, 0.5
    w0 = initial_vorticity(jax.random.key(3), s) * 5.0   # stronger advection
    f = jnp.asarray(li_forcing(s))
    ref = solve(w0, viscosity=nu, dt=0.05 / 16, n_steps=160, forcing=f)[-1]
    errors = []
    for dt in (0.05, 0.025, 0.0125):
        w = solve(w0, viscosity=nu, dt=dt, n_steps=round(t / dt), forcing=f)[-1]
        errors.append(float(jnp.linalg.norm(w - ref) / jnp.linalg.norm(ref)))
    assert errors[0] > 1e-9  # the advection term really contributes a time error
    np.testing.assert_allclose(_orders(errors), 2.0, atol=0.2)


def test_initial_field_statistics():
    # Pointwise variance of the GRF equals sum_k lambda_k (k != 0) for the truncated spectrum.
    s = 64
    w = jax.vmap(lambda k: initial_vorticity(k, s))(jax.random.split(jax.random.key(0), 200))
    k = np.fft.fftfreq(s, 1.0 / s)
    lam = 2 * 7.0**3 * (4 * np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + 49.0) ** -2.5
    lam[0, 0] = 0
    np.testing.assert_allclose(float(jnp.var(w)), lam.sum(), rtol=0.1)
    np.testing.assert_allclose(np.asarray(w.mean(axis=(1, 2))), 0.0, atol=1e-6)


def test_generate_writes_consistent_dataset(tmp_path):
    config = NavierStokesConfig(n_samples=3, resolution=16, solve_resolution=32, horizon=0.2,
                                dt=0.02, n_snapshots=2, batch_size=2)
    path = tmp_path / "ns.h5"
    problem("navier_stokes").generate(config, path, progress=False)
    data = read_hdf5(path, lazy=False)
    assert data.attrs["problem"] == "navier_stokes"
    assert data.attrs["config"]["viscosity"] == config.viscosity
    arrays = data.load()
    assert arrays["x"].shape == (3, 1, 16, 16) and arrays["w"].shape == (3, 3, 16, 16)
    np.testing.assert_array_equal(arrays["x"][:, 0], arrays["w"][:, 0])
    np.testing.assert_array_equal(arrays["y"][:, 0], arrays["w"][:, -1])
    # Sample i depends only on (seed, i), not on how samples are batched.
    other = generate_arrays(NavierStokesConfig(**{**config.__dict__, "batch_size": 3}))
    np.testing.assert_allclose(other["w"], arrays["w"], rtol=1e-5, atol=1e-6)
    # Subsampled from the solver grid: the stored nodes are every other solver node.
    direct = generate_arrays(NavierStokesConfig(**{**config.__dict__, "resolution": 32,
                                                   "solve_resolution": None}))
    np.testing.assert_allclose(direct["w"][:, :, ::2, ::2], arrays["w"], rtol=1e-5, atol=1e-6)
    # The mean vorticity is conserved on the solver grid (advection and forcing have zero mean).
    np.testing.assert_allclose(direct["w"].mean(axis=(2, 3)), 0.0, atol=1e-6)
    # The provenance: the solver grid, and the first 2 trajectories against the same ones at
    # half the spacing and step (the initial field interpolated spectrally): well converged.
    disc, conv = data.attrs["discretisation"], data.attrs["self_convergence"]
    assert disc["solver_nodes_per_side"] == 32 and disc["stored_every"] == 2
    assert conv["n_samples"] == 2 and 0 < conv["rel_l2"] < 0.01


def test_generate_into_file_roundtrip(tmp_path):
    config = NavierStokesConfig(n_samples=2, resolution=8, horizon=0.1, dt=0.05)
    generate(config, tmp_path / "a.h5", progress=False)
    arrays = read_hdf5(tmp_path / "a.h5", lazy=False).load()
    assert set(arrays) == {"x", "y"}
    assert not np.allclose(arrays["x"], arrays["y"])


def test_sequence_task_splits_the_trajectory(tmp_path):
    """input_steps = k: x is the first k snapshots, y the rest (the FNO paper's 10 -> 40 steps
    at T = 50, here 2 -> 3 at a small size), the same trajectory as the one-step task's."""
    config = NavierStokesConfig(n_samples=2, resolution=16, t_start=0.1, horizon=0.4, dt=0.05,
                                n_snapshots=4, input_steps=2, convergence_samples=0)
    seq = generate_arrays(config)
    full = generate_arrays(NavierStokesConfig(**{**config.__dict__, "input_steps": 0}))
    assert seq["x"].shape == (2, 2, 16, 16) and seq["y"].shape == (2, 3, 16, 16)
    np.testing.assert_array_equal(seq["x"], full["w"][:, :2])
    np.testing.assert_array_equal(seq["y"], full["w"][:, 2:])
    assert not np.allclose(seq["y"][:, 0], seq["x"][:, -1])  # the flow moved in between


def test_fno_paper_preset_config_fits(tmp_path):
    """configs/navier_stokes_t50.yaml, shrunk by overrides, generates and trains end to end:
    10 -> 40 channels becomes 2 -> 3 here."""
    from sciops.train import fit, load_config

    config = load_config(ROOT / "configs" / "navier_stokes_t50.yaml", [
        f"data.path={tmp_path / 'ns_seq.h5'}", "data.generate.n_samples=6",
        "data.generate.resolution=16", "data.generate.horizon=0.4", "data.generate.dt=0.05",
        "data.generate.n_snapshots=4", "data.generate.input_steps=2",
        "data.generate.convergence_samples=0", "data.n_train=4", "data.n_test=2",
        "model.n_modes=[4,4]", "model.hidden_channels=4", "model.lifting_channels=4",
        "model.projection_channels=4", "train.steps=2", "train.batch_size=2",
        "train.eval_batch_size=2", "train.eval_every=0", "train.checkpoint_every=0",
        "train.optimizer.warmup_steps=0", "train.mesh={data: 1}", "train.plots=false"])
    gen = config.data.generate
    assert (gen["viscosity"], gen["t_start"], gen["input_steps"]) == (1e-3, 1.0, 2)
    result = fit(config, out=tmp_path / "run")
    assert result.steps == 2 and result.metrics["test"]
    assert all(np.isfinite(v) for v in result.metrics["test"].values()), result.metrics
    assert read_hdf5(tmp_path / "ns_seq.h5", lazy=False).load()["y"].shape == (6, 3, 16, 16)


@pytest.mark.parametrize("kwargs, key", [
    ({"horizon": 0.105, "dt": 0.01}, "horizon"),
    ({"solve_resolution": 48, "resolution": 32}, "solve_resolution"),
    ({"resolution": 7}, "resolution"),
    ({"input_steps": 2, "n_snapshots": 1}, "input_steps"),
    ({"viscosity": 0.0}, "viscosity"),
    ({"n_snapshots": 3, "horizon": 1.0, "dt": 0.01}, "n_snapshots"),
])
def test_bad_config_names_key(kwargs, key):
    with pytest.raises(ConfigError, match=f"^{key}:"):
        NavierStokesConfig(**kwargs)
