"""2-D incompressible Navier–Stokes in vorticity form on the periodic unit torus.

$$\\partial_t w + u\\cdot\\nabla w = \\nu\\Delta w + f, \\qquad u = \\nabla^\\perp\\psi =
(\\partial_y\\psi, -\\partial_x\\psi), \\qquad -\\Delta\\psi = w,$$

on $[0, 1)^2$ with periodic boundaries: the benchmark of Li et al., "Fourier Neural Operator for
Parametric Partial Differential Equations" (ICLR 2021), §5.3, and of Kossaifi et al.,
"Multi-Grid Tensorized Fourier Neural Operator for High-Resolution PDEs" (TMLR 2024). The initial
vorticity is a Gaussian random field $w_0 \\sim \\mathcal N(0, 7^{3/2}(-\\Delta + 49 I)^{-5/2})$
(zero mean) and the forcing is $f(x, y) = 0.1\\,(\\sin 2\\pi(x + y) + \\cos 2\\pi(x + y))$.

Discretisation: Fourier pseudo-spectral on an $s\\times s$ grid of nodes $(j/s, i/s)$; the
advection term $u\\cdot\\nabla w$ is formed in physical space and its spectrum truncated by the 2/3
rule (modes with $|k_x|$ or $|k_y| > s/3$ are zeroed), which removes the quadratic aliasing.
Time stepping is the two-stage IMEX Runge–Kutta scheme "Crank–Nicolson + Heun": with
$L = \\nu\\Delta$ (diagonal in Fourier space) and $N(w) = -u\\cdot\\nabla w + f$,

$$(1 - \\tfrac{\\Delta t}{2}L)\\,w^* = (1 + \\tfrac{\\Delta t}{2}L)\\,w^n + \\Delta t\\,N(w^n),$$
$$(1 - \\tfrac{\\Delta t}{2}L)\\,w^{n+1} = (1 + \\tfrac{\\Delta t}{2}L)\\,w^n
  + \\tfrac{\\Delta t}{2}\\,(N(w^n) + N(w^*)).$$

Both the explicit (Heun) and the implicit (trapezoidal) tableaux have order 2 with equal weights
and nodes, so the pair is second order; the diffusion is A-stable, the advection explicit
(CFL-limited). Verified in ``tests/test_navier_stokes.py`` against the exact Taylor–Green decay
$w(t) = w_0 e^{-8\\pi^2\\nu t}$ (error and order 2) and by self-convergence (order 2) on a
random initial field where the advection term is active.

The solver is JAX: one `lax.scan` over time steps, `vmap` over samples, jit-compiled once.
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .. import _random
from .._errors import ConfigError, DataError
from ._convergence import NOT_MEASURED, SelfConvergence, compare
from ._problem import Problem

__all__ = ["NavierStokesConfig", "PROBLEMS", "generate", "generate_arrays", "initial_vorticity",
           "li_forcing",
           "solve", "taylor_green"]


@dataclasses.dataclass(frozen=True)
class NavierStokesConfig:
    """2-D Navier-Stokes vorticity on the periodic unit torus: w(t_start) -> w(t_start + horizon).

    The keys of `data.generate` / `sciops generate navier_stokes`. The problem is
    nondimensional (unit torus, Li et al.'s forcing), so times, viscosity and vorticity have
    unit 1.

    **Fields:**

    - `n_samples` [count]: number of trajectories.
    - `resolution` [nodes]: nodes per side of the stored fields.
    - `solve_resolution` [nodes]: nodes per side of the solver grid, a multiple of `resolution`
      (default: `resolution`); stored fields are subsampled at every
      `solve_resolution/resolution`-th node (as Li et al. solve at 256² and subsample).
    - `viscosity` [1]: $\\nu$; the benchmarks use $10^{-3}$ to $10^{-5}$ (Li et al.). Below
      ~$10^{-4}$ a 64² grid under-resolves the enstrophy cascade: raise `solve_resolution`.
    - `t_start` [1]: time of the input `x` ($w$ evolved from the random initial field).
    - `horizon` [1]: $T$; the target `y` is $w$ at `t_start + horizon`.
    - `dt` [1]: time step; `t_start` and `horizon` must be multiples of it. The default satisfies
      the advective CFL condition at 64²–128² for these fields ($|u| \\lesssim 1$).
    - `n_snapshots` [count]: if > 0, also write the trajectory `w` of shape
      `(n_samples, n_snapshots + 1, s, s)` at equally spaced times from `t_start` to
      `t_start + horizon` (for autoregressive rollouts).
    - `forcing_amplitude` [1]: the 0.1 of Li et al.'s forcing.
    - `seed` [-]: seed of the initial fields (sample $i$ depends only on `seed` and $i$).
    - `batch_size` [count]: trajectories integrated together (vmapped).
    - `input_steps` [count]: 0 (default): the one-step task above. $k > 0$: the sequence task,
      `x` = the first $k$ snapshots of the trajectory ($w$ at `t_start`, `t_start` + $\\Delta$,
      ..., $\\Delta$ = `horizon`/`n_snapshots`) as channels and `y` = the remaining
      `n_snapshots` + 1 - $k$; needs `n_snapshots` $\\ge k$. The FNO paper's setting ($\\nu$ =
      1e-3, $w(1..10) \\to w(11..50)$) is `t_start` 1, `horizon` 49, `n_snapshots` 49,
      `input_steps` 10 (configs/navier_stokes_t50.yaml).
    - `convergence_samples` [count]: how many of the first trajectories `generate` re-solves
      with half the grid spacing and half the time step to record the self-convergence error in
      the file (0: none).
    """

    n_samples: int = 200
    resolution: int = 64
    solve_resolution: int | None = None
    viscosity: float = 1e-3
    t_start: float = 0.0
    horizon: float = 1.0
    dt: float = 1e-2
    n_snapshots: int = 0
    forcing_amplitude: float = 0.1
    seed: int = 0
    batch_size: int = 50
    convergence_samples: int = 2
    input_steps: int = 0

    def __post_init__(self):
        if self.n_samples < 1:
            raise ConfigError(f"n_samples: expected a positive integer, got {self.n_samples}")
        if self.resolution < 8 or self.resolution % 2:
            raise ConfigError(f"resolution: expected an even integer >= 8, got {self.resolution}")
        if self.solve_resolution is not None and (
                self.solve_resolution < self.resolution or self.solve_resolution % self.resolution):
            raise ConfigError(f"solve_resolution: expected a multiple of resolution="
                              f"{self.resolution}, got {self.solve_resolution}")
        if not self.viscosity > 0:
            raise ConfigError(f"viscosity: expected a positive value, got {self.viscosity}")
        if not self.dt > 0:
            raise ConfigError(f"dt: expected a positive value, got {self.dt}")
        for name in ("t_start", "horizon"):
            value = getattr(self, name)
            steps = value / self.dt
            if value < 0 or abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
                raise ConfigError(f"{name}: expected a non-negative multiple of dt={self.dt}, "
                                  f"got {value}")
        if self.horizon <= 0:
            raise ConfigError(f"horizon: expected a positive value, got {self.horizon}")
        n_steps = round(self.horizon / self.dt)
        if self.n_snapshots < 0 or (self.n_snapshots and n_steps % self.n_snapshots):
            raise ConfigError(f"n_snapshots: expected 0 or a divisor of horizon/dt={n_steps}, "
                              f"got {self.n_snapshots}")
        if self.convergence_samples < 0:
            raise ConfigError(f"convergence_samples: expected >= 0, got "
                              f"{self.convergence_samples}")
        if self.input_steps < 0 or self.input_steps > self.n_snapshots:
            raise ConfigError(f"input_steps: expected 0 or 1..n_snapshots={self.n_snapshots} "
                              f"(the rest of the trajectory is the target), got "
                              f"{self.input_steps}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size: expected a positive integer, got {self.batch_size}")


# ------------------------------------------------------------------------- spectral operators


def _wavenumbers(s: int, dtype):
    """Angular wavenumbers $2\\pi k$ of `rfft2` on the unit torus: (ky column, kx row)."""
    ky = 2 * math.pi * np.fft.fftfreq(s, 1.0 / s)
    kx = 2 * math.pi * np.fft.rfftfreq(s, 1.0 / s)
    return jnp.asarray(ky[:, None], dtype), jnp.asarray(kx[None, :], dtype)


def _dealias_mask(s: int, dtype):
    """1 on modes kept by the 2/3 rule (integer $|k_x|, |k_y| \\le s/3$), 0 elsewhere."""
    ky = np.abs(np.fft.fftfreq(s, 1.0 / s))[:, None]
    kx = np.abs(np.fft.rfftfreq(s, 1.0 / s))[None, :]
    return jnp.asarray((ky <= s / 3) & (kx <= s / 3), dtype)


def li_forcing(s: int, amplitude: float = 0.1) -> Float[np.ndarray, "s s"]:
    """$f = a(\\sin 2\\pi(x + y) + \\cos 2\\pi(x + y))$ at the nodes (axis 0 is $y$, axis 1 is $x$)."""
    t = np.arange(s) / s
    xy = t[None, :] + t[:, None]
    return amplitude * (np.sin(2 * np.pi * xy) + np.cos(2 * np.pi * xy))


def taylor_green(s: int, t: float, viscosity: float) -> Float[np.ndarray, "s s"]:
    """The exact Taylor–Green vortex $w = \\sin 2\\pi x\\,\\sin 2\\pi y\\;e^{-8\\pi^2\\nu t}$.

    It is an eigenfunction of $\\Delta$, so $w \\propto \\psi$ and $u\\cdot\\nabla w = 0$: without
    forcing the flow only decays, at the rate $\\nu|k|^2 = 8\\pi^2\\nu$.
    """
    x = np.arange(s) / s
    return np.sin(2 * np.pi * x)[None, :] * np.sin(2 * np.pi * x)[:, None] * np.exp(
        -8 * np.pi**2 * viscosity * t)


def initial_vorticity(key: PRNGKeyArray, s: int, alpha: float = 2.5, tau: float = 7.0,
                      scale: float = 2 * 7.0**3) -> Float[Array, "s s"]:
    """A draw of $w_0 \\sim \\mathcal N(0, c\\,(-\\Delta + \\tau^2 I)^{-\\alpha})$ on the unit torus.

    Karhunen–Loève: $w_0 = \\sum_{k \\ne 0} \\sqrt{\\lambda_k}\\,\\zeta_k e^{2\\pi i k\\cdot x}$ with
    $\\lambda_k = c\\,(4\\pi^2|k|^2 + \\tau^2)^{-\\alpha}$ and Hermitian standard complex normal
    $\\zeta_k$, obtained as the FFT of real white noise divided by $s$; the zero mode is dropped
    (zero mean). Li et al. write the law as $\\mathcal N(0, 7^{3/2}(-\\Delta + 49 I)^{-5/2})$, but
    their released generator multiplies the square-root eigenvalues by $\\sqrt 2\\,7^{3/2}$ and keeps
    the real part of non-Hermitian complex noise, which is the covariance above with
    $c = 2\\cdot 7^3$ (pointwise std ≈ 0.2, against ≈ 0.03 for $c = 7^{3/2}$). The default
    follows the generator, i.e. the published data.
    """
    k = np.fft.fftfreq(s, 1.0 / s)
    lam = scale * (4 * np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2) ** (-alpha)
    amp = np.sqrt(lam)
    amp[0, 0] = 0.0
    noise = _random.normal(key, (s, s))
    coeff = jnp.fft.fft2(noise) / s * jnp.asarray(amp, noise.dtype)
    return jnp.real(jnp.fft.ifft2(coeff)) * s * s


def solve(w0: Float[Array, "s s"], *, viscosity: float, dt: float, n_steps: int,
          n_snapshots: int = 1, forcing: Float[Array, "s s"] | None = None
          ) -> Float[Array, "snapshots s s"]:
    """Integrate the vorticity equation from `w0` for `n_steps` steps of `dt`.

    **Arguments:**

    - `w0`: initial vorticity at the nodes, shape `(s, s)` (axis 0 is $y$).
    - `viscosity`: $\\nu$; `dt`: time step; `n_steps`: number of steps (a multiple of
      `n_snapshots`).
    - `n_snapshots`: number of equally spaced states returned, the last at `n_steps * dt`.
    - `forcing`: $f$ at the nodes (default none).

    **Returns:** the vorticity at times `(j + 1) * n_steps / n_snapshots * dt`,
    `j = 0 .. n_snapshots - 1`, shape `(n_snapshots, s, s)`. Jit and vmap it freely.
    """
    s = w0.shape[-1]
    dtype = w0.dtype
    ky, kx = _wavenumbers(s, dtype)
    k2 = kx**2 + ky**2
    inv_k2 = jnp.where(k2 > 0, 1.0 / jnp.where(k2 > 0, k2, 1.0), 0.0)
    mask = _dealias_mask(s, dtype)
    f_hat = jnp.zeros_like(k2, dtype=jnp.result_type(dtype, jnp.complex64)) if forcing is None \
        else jnp.fft.rfft2(forcing)
    half = 0.5 * dt * viscosity * k2
    explicit, implicit = 1.0 - half, 1.0 / (1.0 + half)

    def nonlinear(w_hat):
        psi_hat = w_hat * inv_k2
        u = jnp.fft.irfft2(1j * ky * psi_hat, s=(s, s))
        v = jnp.fft.irfft2(-1j * kx * psi_hat, s=(s, s))
        wx = jnp.fft.irfft2(1j * kx * w_hat, s=(s, s))
        wy = jnp.fft.irfft2(1j * ky * w_hat, s=(s, s))
        return f_hat - mask * jnp.fft.rfft2(u * wx + v * wy)

    def step(w_hat, _):
        n0 = nonlinear(w_hat)
        base = explicit * w_hat
        w_star = implicit * (base + dt * n0)
        return implicit * (base + 0.5 * dt * (n0 + nonlinear(w_star))), None

    per_snapshot = n_steps // n_snapshots
    if per_snapshot * n_snapshots != n_steps:
        raise ValueError(f"solve: n_steps={n_steps} is not a multiple of n_snapshots={n_snapshots}")

    def snapshot(w_hat, _):
        w_hat, _ = jax.lax.scan(step, w_hat, None, length=per_snapshot)
        return w_hat, jnp.fft.irfft2(w_hat, s=(s, s))

    _, out = jax.lax.scan(snapshot, jnp.fft.rfft2(w0), None, length=n_snapshots)
    return out


# ------------------------------------------------------------------------------- data sets


def _spectral_refine(w: Float[Array, "s s"], factor: int) -> Float[Array, "r r"]:
    """The trigonometric interpolant of periodic node values `w` (even `s`) at the nodes of the
    grid `factor` times finer: the Fourier coefficients zero-padded, the Nyquist modes dropped
    (so the result is the band-limited field that `w` samples)."""
    if factor == 1:
        return w
    s = w.shape[-1]
    w_hat = jnp.fft.fftshift(jnp.fft.fft2(w))  # wavenumber -s/2 at index 0
    w_hat = w_hat.at[0, :].set(0).at[:, 0].set(0)
    pad = (s * factor - s) // 2
    fine_hat = jnp.pad(w_hat, pad)
    return jnp.real(jnp.fft.ifft2(jnp.fft.ifftshift(fine_hat))) * factor**2


def _trajectories(config: NavierStokesConfig, start: int, count: int, refine: int = 1
                  ) -> np.ndarray:
    """Snapshots of samples `start .. start+count-1`: (count, 1 + n_snapshots or 2, s, s).

    `refine` > 1 solves the same trajectories (the initial field interpolated spectrally, the
    forcing evaluated on the finer grid) with the grid spacing and the time step divided by
    `refine`, for `self_convergence`."""
    s_data = config.solve_resolution or config.resolution
    s_solve = s_data * refine
    stride = s_solve // config.resolution
    dt = config.dt / refine
    n_start = round(config.t_start / config.dt) * refine
    n_steps = round(config.horizon / config.dt) * refine
    n_snap = max(config.n_snapshots, 1)
    forcing = jnp.asarray(li_forcing(s_solve, config.forcing_amplitude), jnp.float32)
    base = jax.random.key(config.seed)
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(start, start + count))

    @jax.jit
    def run(keys):
        def one(key):
            w0 = _spectral_refine(initial_vorticity(key, s_data), refine)
            if n_start:
                w0 = solve(w0, viscosity=config.viscosity, dt=dt, n_steps=n_start,
                           forcing=forcing)[-1]
            ws = solve(w0, viscosity=config.viscosity, dt=dt, n_steps=n_steps,
                       n_snapshots=n_snap, forcing=forcing)
            return jnp.concatenate([w0[None], ws])[:, ::stride, ::stride]
        return jax.vmap(one)(keys)

    return np.asarray(run(keys))


def generate_arrays(config: NavierStokesConfig, *, progress: bool = False
                    ) -> dict[str, np.ndarray]:
    """The fields of a data set: `x` $= w(t_0)$, `y` $= w(t_0 + T)$, each `(n, 1, s, s)`
    float32, and, with `n_snapshots > 0`, the trajectory `w` of shape `(n, n_snapshots+1, s, s)`.
    With `input_steps` $k > 0$, `x` is `w[:, :k]` and `y` is `w[:, k:]`."""
    chunks = range(0, config.n_samples, config.batch_size)
    if progress:
        from .._progress import progress as _progress

        chunks = _progress(chunks, unit="batch",
                           desc=f"navier_stokes {config.resolution}^2 nu={config.viscosity}")
    traj = np.concatenate([
        _trajectories(config, i, min(config.batch_size, config.n_samples - i)) for i in chunks])
    if not np.all(np.isfinite(traj)):
        bad = int(np.flatnonzero(~np.isfinite(traj).reshape(len(traj), -1).all(1))[0])
        raise DataError(f"navier_stokes: sample {bad} blew up (non-finite vorticity): dt="
                        f"{config.dt} breaks the CFL limit at solve_resolution="
                        f"{config.solve_resolution or config.resolution}; lower dt")
    traj = traj.astype(np.float32)
    k = config.input_steps
    out = {"x": traj[:, :k], "y": traj[:, k:]} if k else {"x": traj[:, :1], "y": traj[:, -1:]}
    if config.n_snapshots:
        out["w"] = traj
    return out


def self_convergence(config: NavierStokesConfig, n_samples: int = 2) -> SelfConvergence:
    """The first `n_samples` trajectories (all stored snapshots) against the same ones solved
    with half the grid spacing and half the time step (see `sciops.pde.SelfConvergence`)."""
    count = min(n_samples, config.n_samples)
    return compare(lambda r: _trajectories(config, 0, count, r)[:, 1:], count)


def discretisation(config: NavierStokesConfig) -> dict:
    """The solver grid and step of a data set (for the provenance)."""
    s_solve = config.solve_resolution or config.resolution
    return {"scheme": "pseudo-spectral, 2/3 dealiasing, Crank-Nicolson viscosity with Heun "
                      "advection (second order in time)",
            "solver_nodes_per_side": s_solve, "stored_every": s_solve // config.resolution,
            "dt": config.dt, "solver_tolerance": "explicit in advection (no solver)"}


def generate(config: NavierStokesConfig, path, *, progress: bool = True) -> None:
    """Integrate `config.n_samples` trajectories and write them to the HDF5 file `path`."""
    from ..data import write_hdf5

    start = time.perf_counter()
    arrays = generate_arrays(config, progress=progress)
    seconds = time.perf_counter() - start
    check = self_convergence(config, config.convergence_samples) \
        if config.convergence_samples else None
    layout = "samples channels y x"
    field_attrs = {
        "x": {"units": "1/s", "layout": layout, "description": f"vorticity at t={config.t_start}"},
        "y": {"units": "1/s", "layout": layout,
              "description": f"vorticity at t={config.t_start + config.horizon}"}}
    if config.input_steps:
        step = config.horizon / config.n_snapshots
        k = config.input_steps
        field_attrs = {
            "x": {"units": "1/s", "layout": "samples time y x",
                  "description": f"vorticity at t={config.t_start:g}, {config.t_start + step:g}, "
                                 f"..., {config.t_start + (k - 1) * step:g} (input steps)"},
            "y": {"units": "1/s", "layout": "samples time y x",
                  "description": f"vorticity at t={config.t_start + k * step:g}, ..., "
                                 f"{config.t_start + config.horizon:g} (the next steps)"}}
    if "w" in arrays:
        field_attrs["w"] = {"units": "1/s", "layout": "samples time y x",
                            "description": "vorticity at equally spaced times from t_start to "
                                           "t_start + horizon"}
    write_hdf5(path, arrays,
               attrs={"problem": "navier_stokes", "config": dataclasses.asdict(config),
                      "domain": [[0.0, 1.0], [0.0, 1.0]], "grid": "nodes j/s, periodic",
                      "solve_seconds": seconds, "discretisation": discretisation(config),
                      "self_convergence": NOT_MEASURED if check is None else check.as_attrs()},
               field_attrs=field_attrs)


PROBLEMS = {"navier_stokes": Problem("navier_stokes", NavierStokesConfig, generate,
                                     self_convergence)}
