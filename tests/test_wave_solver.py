"""The leapfrog wave solver: second-order convergence in space and in time against the analytic
standing wave and a manufactured solution with variable speed; energy conservation with
reflecting walls and its loss through the sponge; the data set; the CFL check."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciops._errors import ConfigError
from sciops.data import read_hdf5
from sciops.pde import problem
from sciops.pde.wave import WaveConfig, _sponge, cfl_limit, laplacian, self_convergence, simulate

K, L, T = 1, 2, 0.5  # mode sin(K pi x) sin(L pi y), final time (not a zero of the cosine)

# One compiled program per call (h, dt and the step counts are static, as the solver's types say):
# called op by op, `simulate` compiles its setup ops and its scan separately, ~3x the CPU time
# (measured 1.4 s vs 0.47 s per call on a 2-core machine under load).
_simulate = jax.jit(simulate, static_argnames=("spacing", "dt", "n_frames", "steps_per_frame"))


def _standing(n_cells, n_steps, reference="exact"):
    """Max error at T of the standing wave on [0,1]^2 with c = 1 against the exact solution
    cos(w t) or against the semi-discrete one cos(w_h t) (which isolates the time error)."""
    h = 1.0 / n_cells
    x = np.arange(n_cells + 1) * h
    u0 = np.sin(K * np.pi * x[None, :]) * np.sin(L * np.pi * x[:, None])
    frames = _simulate(jnp.asarray(u0), jnp.zeros_like(u0), jnp.ones_like(u0), spacing=h,
                      dt=T / n_steps, n_frames=2, steps_per_frame=n_steps)
    if reference == "exact":
        w = np.pi * math.hypot(K, L)
    else:  # eigenvalue of the five-point Laplacian for this mode
        w = 2 / h * math.sqrt(math.sin(K * np.pi * h / 2) ** 2 + math.sin(L * np.pi * h / 2) ** 2)
    return float(np.abs(np.asarray(frames[-1]) - u0 * np.cos(w * T)).max())


def _orders(errors):
    return [math.log2(a / b) for a, b in zip(errors[:-1], errors[1:], strict=False)]


def test_second_order_in_space(x64):
    # dt = T/256 is small enough for the time error (~1e-6) to be negligible here.
    errors = [_standing(n, 256) for n in (12, 24, 48)]
    assert all(1.9 < p < 2.1 for p in _orders(errors)), errors


def test_second_order_in_time(x64):
    errors = [_standing(32, n, reference="semi-discrete") for n in (40, 80, 160)]
    assert all(1.9 < p < 2.1 for p in _orders(errors)), errors
    assert errors[-1] < 3e-5


def test_second_order_space_and_time_together(x64):
    """h and dt halved together at a fixed Courant number: error ~ h^2 + dt^2."""
    errors = [_standing(n, n) for n in (16, 32, 64)]
    assert all(1.95 < p < 2.05 for p in _orders(errors)), errors
    assert errors[-1] < 3e-4


def test_variable_speed_and_source_manufactured(x64):
    """u = sin(pi x) sin(pi y) cos(2t) solves u_tt = c^2 Lap u + s for any c(x, y) with
    s = (2 pi^2 c^2 - 4) u: checks the speed field and the source term, order 2."""
    errors = []
    for n in (16, 32, 64):
        h = 1.0 / n
        x = np.arange(n + 1) * h
        shape = np.sin(np.pi * x[None, :]) * np.sin(np.pi * x[:, None])
        c = 1 + 0.5 * x[None, :] * x[:, None] + 0.3 * np.sin(3 * x[:, None])
        steps = 2 * n
        dt = T / steps
        assert dt < cfl_limit(h, c.max())
        r = np.cos(2 * np.arange(steps) * dt)
        frames = _simulate(jnp.asarray(shape), jnp.zeros_like(shape), jnp.asarray(c), spacing=h,
                          dt=dt, n_frames=2, steps_per_frame=steps,
                          source_shape=jnp.asarray((2 * np.pi**2 * c**2 - 4) * shape),
                          source_time=jnp.asarray(r))
        errors.append(float(np.abs(np.asarray(frames[-1]) - shape * np.cos(2 * T)).max()))
    assert all(1.9 < p < 2.1 for p in _orders(errors)), errors


def _energy(prev, u, h, dt):
    """The leapfrog scheme's conserved energy (c = 1) between levels n and n+1:
    |(u^{n+1} - u^n)/dt|^2 - <u^{n+1}, Lap_h u^n>, times the cell area."""
    return float(np.sum(((u - prev) / dt) ** 2)
                 - np.sum(u * np.asarray(laplacian(jnp.asarray(prev), h)))) * h * h


def test_energy_conserved_by_walls_and_absorbed_by_the_sponge():
    """A pulse released at rest, followed to t = 2 (the wave crosses the unit box twice): with
    reflecting walls the discrete energy is conserved; with the sponge less than 0.5% of it
    remains inside the stored domain."""
    n, h = 48, 1.0 / 47
    dt = 0.5 * cfl_limit(h, 1.0)
    steps = int(2.0 / dt)
    ratio = {}
    for boundary in ("reflecting", "absorbing"):
        cfg = WaveConfig(resolution=n, c_max=1.0, boundary=boundary)
        pad = cfg.sponge_width if boundary == "absorbing" else 0
        m = n + 2 * pad
        x = (np.arange(m) - pad) * h
        u0 = np.exp(-((x[None, :] - 0.5) ** 2 + (x[:, None] - 0.5) ** 2) / (2 * 0.05**2))
        frames = np.asarray(_simulate(jnp.asarray(u0), jnp.zeros((m, m)), jnp.ones((m, m)),
                                     spacing=h, dt=dt, n_frames=steps + 1, steps_per_frame=1,
                                     damping=jnp.asarray(_sponge(cfg, pad))))
        inner = (slice(None), slice(pad, pad + n), slice(pad, pad + n))
        frames = frames[inner]
        ratio[boundary] = _energy(frames[-2], frames[-1], h, dt) / _energy(frames[0], frames[1],
                                                                            h, dt)
    assert ratio["reflecting"] == pytest.approx(1.0, abs=1e-4), ratio
    assert abs(ratio["absorbing"]) < 0.005, ratio


def test_generate_data_set(tmp_path):
    cfg = WaveConfig(n_samples=3, resolution=24, n_frames=6, frame_dt=0.02, velocity="layered",
                     sponge_width=6)
    path = tmp_path / "wave.h5"
    problem("wave").generate(cfg, path, progress=False)
    ds = read_hdf5(path, lazy=False)
    u, c = ds.load()["u"], ds.load()["c"]
    assert u.shape == (3, 6, 24, 24) and c.shape == (3, 1, 24, 24)
    assert np.all((c >= 1.0) & (c <= 2.0)) and np.ptp(c) > 0.3
    assert ds.attrs["problem"] == "wave" and ds.attrs["config"]["resolution"] == 24
    assert ds.attrs["t_start"] == pytest.approx(0.4, abs=ds.attrs["dt"])
    assert np.abs(u).max() > 1e-3 and np.all(np.isfinite(u))
    # The provenance: the solver grid and the measured self-convergence (2 trajectories against
    # half the spacing and step): second order, so ~1/4 of the refine=1 error.
    disc, conv = ds.attrs["discretisation"], ds.attrs["self_convergence"]
    assert disc["stored_every"] == 2 and disc["solver_nodes_per_side"] == (23 + 12) * 2 + 1
    assert disc["dt"] == pytest.approx(ds.attrs["dt"])
    assert conv["n_samples"] == 2 and 0 < conv["rel_l2"] < 0.05
    coarse = self_convergence(dataclasses.replace(cfg, refine=1), 2)
    assert 3 < coarse.rel_l2 / conv["rel_l2"] < 5.5, (coarse.rel_l2, conv["rel_l2"])
    # Same seed, same data.
    problem("wave").generate(cfg, tmp_path / "again.h5", progress=False)
    np.testing.assert_array_equal(read_hdf5(tmp_path / "again.h5", lazy=False).load()["u"], u)


def test_dt_above_the_cfl_limit_is_a_config_error():
    limit = cfl_limit(1 / 63, 2.0)
    with pytest.raises(ConfigError, match=r"dt: .* above the CFL stability limit .* = 0\.00561"):
        WaveConfig(refine=1, dt=1.01 * limit)
    WaveConfig(refine=1, dt=0.99 * limit)  # below the limit: accepted
    # The limit is that of the solver grid: half the spacing at the default refine = 2.
    with pytest.raises(ConfigError, match=r"CFL stability limit .* = 0\.00280"):
        WaveConfig(dt=0.99 * limit)
    with pytest.raises(ConfigError, match="frame_dt .* whole multiple of dt"):
        WaveConfig(dt=0.0027).time_step()
    with pytest.raises(ConfigError, match="cfl"):
        WaveConfig(cfl=1.5)
