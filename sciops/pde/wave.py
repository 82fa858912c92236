"""The 2-D acoustic wave equation in a heterogeneous medium: leapfrog finite differences.

$$u_{tt} + \\sigma(\\mathbf{x})\\,u_t = c(\\mathbf{x})^2\\,\\Delta u + s(\\mathbf{x}, t),\\qquad
u = 0 \\text{ on the outer boundary},$$

discretised with the five-point Laplacian and second-order central differences in time
(leapfrog), the damping term centred as well:

$$\\Big(1 + \\tfrac{\\sigma\\Delta t}{2}\\Big) u^{n+1} = 2u^n - \\Big(1 - \\tfrac{\\sigma\\Delta t}{2}\\Big)u^{n-1}
+ \\Delta t^2\\big(c^2 \\Delta_h u^n + s^n\\big).$$

Both differences are second-order accurate; the scheme is stable for
$c_{\\max}\\,\\Delta t\\,\\sqrt{1/h_x^2 + 1/h_y^2} \\le 1$, i.e. $\\Delta t \\le h/(c_{\\max}\\sqrt 2)$
on a square grid (the CFL condition). The first step uses the Taylor start
$u^{-1} = u^0 - \\Delta t\\, v^0 + \\tfrac{\\Delta t^2}{2} a^0$.

**Boundaries.** `reflecting`: $u = 0$ on the edges of the stored domain (rigid walls; a standing
wave $\\sin(k\\pi x)\\sin(l\\pi y)\\cos(\\omega t)$ is an exact solution for constant $c$).
`absorbing`: the stored domain is surrounded by a damping layer (a sponge, $\\sigma$ rising
quadratically from 0 to $\\sigma_{\\max}$ over `sponge_width` cells, as in Cerjan et al.,
Geophysics 1985, with the quadratic profile used for PMLs), so waves leave the stored domain
and hardly come back; only the interior is stored.

**Data.** Velocity fields are a smooth Gaussian random field or random layers, mapped to
$[c_{\\min}, c_{\\max}]$; sources are smoothed point sources with a Ricker wavelet in time
$r(t) = (1 - 2\\pi^2 f^2 (t-t_0)^2)\\,e^{-\\pi^2 f^2 (t - t_0)^2}$, or Gaussian pulses released
at rest. Frames are stored every `frame_dt` from `t_start` on: for Ricker sources `t_start`
defaults to $2t_0$, after the sources have (numerically) stopped, so the stored frames obey the
source-free equation and a simulator that sees only frames and $c$ can learn them.
Fields: ``u`` `(samples, time, y, x)` and ``c`` `(samples, 1, y, x)`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._errors import ConfigError
from ..data import write_hdf5
from ._convergence import NOT_MEASURED, SelfConvergence, compare, refine_bilinear
from ._problem import Problem

__all__ = ["WaveConfig", "cfl_limit", "laplacian", "simulate", "taylor_start", "integrate",
           "generate", "self_convergence", "discretisation", "PROBLEMS"]


@dataclasses.dataclass(frozen=True)
class WaveConfig:
    """The 2-D acoustic wave equation in a heterogeneous medium: wave speed and sources -> u(t).

    The keys of `data.generate` / `sciops generate wave`. Nondimensional: lengths, times and
    speeds have unit 1.

    **Fields:**

    - `n_samples` [count]: trajectories.
    - `resolution` [nodes]: grid nodes per side of the stored square $[0, L]^2$ (spacing
      $h = L/(\\text{resolution}-1)$).
    - `length` [1]: $L$.
    - `n_frames` [count]: stored frames $u(t_\\text{start} + j\\,\\text{frame\\_dt})$, $j <$ `n_frames`.
    - `frame_dt` [1]: time between stored frames.
    - `t_start` [1]: time of the first frame; `null` means $2t_0$ for Ricker sources, 0 for
      pulses.
    - `dt` [1]: the solver step (`null`: `cfl` times the stability limit, rounded down so a frame
      is a whole number of steps); a `dt` above the CFL limit is an error.
    - `cfl` [1]: fraction of the stability limit used when `dt` is `null`.
    - `velocity` [-]: ``"grf"`` (smooth Gaussian random field of correlation length
      `length_scale`) or ``"layered"`` (`n_layers` layers with gently curved interfaces).
    - `c_min`, `c_max` [1]: the range of the wave speed.
    - `length_scale` [1]: correlation length of the ``"grf"`` wave speed.
    - `n_layers` [count]: layers of the ``"layered"`` wave speed.
    - `source` [-]: ``"ricker"`` (smoothed point sources, peak frequency `frequency`, delay
      $t_0 = 1/f$) or ``"pulse"`` (Gaussian bumps at rest).
    - `n_sources` [count]: sources per trajectory.
    - `frequency` [1/time]: peak frequency of the Ricker sources.
    - `source_width` [1]: standard deviation of a source's Gaussian.
    - `boundary` [-]: ``"absorbing"`` (sponge of `sponge_width` cells and strength
      `sponge_strength`, $\\sigma_{\\max} = $ strength $\\cdot c_{\\max}/(\\text{width}\\cdot h)$) or
      ``"reflecting"``.
    - `sponge_width` [cells]: width of the absorbing sponge.
    - `sponge_strength` [1]: strength of the absorbing sponge.
    - `refine` [count]: solver nodes per stored cell side: the PDE is solved on the grid of
      spacing $h/\\text{refine}$ (with the CFL step of that grid) and every `refine`-th node is
      stored. The solver's speed is the bilinear interpolant of the stored `c` and the sources
      are evaluated on the solver grid, so the stored inputs define the problem at every
      `refine`. Default 2: at 1 the default data are 3.7 % (relative L2 over all frames)
      from the solve at half the spacing and step (numerical dispersion of the Ricker
      wavelet's upper frequencies), at 2 0.89 % (docs/data.md,
      `benchmarks/data_convergence.py`), for 8x the solver work.
    - `convergence_samples` [count]: how many of the first trajectories `generate` re-solves at
      2x resolution in space and time to record the self-convergence error in the file
      (0: none).
    - `seed` [-]: the random seed of fields and sources.
    """

    n_samples: int = 100
    resolution: int = 64
    length: float = 1.0
    n_frames: int = 60
    frame_dt: float = 0.01
    t_start: float | None = None
    dt: float | None = None
    cfl: float = 0.5
    velocity: Literal["grf", "layered"] = "grf"
    c_min: float = 1.0
    c_max: float = 2.0
    length_scale: float = 0.1
    n_layers: int = 4
    source: Literal["ricker", "pulse"] = "ricker"
    n_sources: int = 2
    frequency: float = 5.0
    source_width: float = 0.02
    boundary: Literal["absorbing", "reflecting"] = "absorbing"
    sponge_width: int = 16
    sponge_strength: float = 10.0
    refine: int = 2
    convergence_samples: int = 2
    seed: int = 0

    def __post_init__(self):
        positive = {"n_samples": self.n_samples, "n_frames": self.n_frames,
                    "length": self.length, "frame_dt": self.frame_dt, "cfl": self.cfl,
                    "c_min": self.c_min, "length_scale": self.length_scale,
                    "n_layers": self.n_layers, "n_sources": self.n_sources,
                    "frequency": self.frequency, "source_width": self.source_width,
                    "sponge_width": self.sponge_width}
        for k, v in positive.items():
            if not v > 0:
                raise ConfigError(f"{k}: must be positive, got {v!r}")
        if self.resolution < 8:
            raise ConfigError(f"resolution: must be at least 8, got {self.resolution}")
        if self.c_max < self.c_min:
            raise ConfigError(f"c_max: must be >= c_min = {self.c_min}, got {self.c_max}")
        if self.cfl > 1:
            raise ConfigError(f"cfl: must be in (0, 1] for a stable leapfrog step, got {self.cfl}")
        if self.sponge_strength < 0:
            raise ConfigError(f"sponge_strength: must be >= 0, got {self.sponge_strength}")
        if self.t_start is not None and self.t_start < 0:
            raise ConfigError(f"t_start: must be >= 0, got {self.t_start}")
        if self.refine < 1 or self.convergence_samples < 0:
            raise ConfigError(f"refine: expected >= 1 and convergence_samples >= 0, got "
                              f"{self.refine} and {self.convergence_samples}")
        limit = cfl_limit(self.spacing / self.refine, self.c_max)
        if self.dt is not None and not 0 < self.dt <= limit:
            raise ConfigError(f"dt: {self.dt:g} is above the CFL stability limit "
                              f"h/(c_max*sqrt(2)) = {limit:.6g} (solver spacing h = "
                              f"{self.spacing / self.refine:.6g}, "
                              f"c_max = {self.c_max:g}); lower dt or raise resolution")

    @property
    def spacing(self) -> float:
        return self.length / (self.resolution - 1)

    def time_step(self) -> tuple[float, int]:
        """The solver step and the number of steps per stored frame."""
        if self.dt is not None:
            per = self.frame_dt / self.dt
            if abs(per - round(per)) > 1e-6 * per or round(per) < 1:
                raise ConfigError(f"dt: frame_dt = {self.frame_dt:g} must be a whole multiple of "
                                  f"dt = {self.dt:g} (ratio {per:.6g})")
            return self.dt, round(per)
        limit = cfl_limit(self.spacing / self.refine, self.c_max)
        per = math.ceil(self.frame_dt / (self.cfl * limit))
        return self.frame_dt / per, per

    def start_time(self) -> float:
        if self.t_start is not None:
            return self.t_start
        return 2.0 / self.frequency if self.source == "ricker" else 0.0


def cfl_limit(spacing: float, c_max: float) -> float:
    """The largest stable leapfrog step on a square grid: $h / (c_{\\max}\\sqrt 2)$."""
    return spacing / (c_max * math.sqrt(2.0))


def laplacian(u: Float[Array, " y x"], spacing: float) -> Float[Array, " y x"]:
    """The five-point Laplacian at interior nodes, zero on the boundary nodes."""
    lap = (u[2:, 1:-1] + u[:-2, 1:-1] + u[1:-1, 2:] + u[1:-1, :-2] - 4 * u[1:-1, 1:-1])
    return jnp.pad(lap / spacing**2, 1)


def simulate(u0: Float[Array, " y x"], v0: Float[Array, " y x"], c: Float[Array, " y x"], *,
             spacing: float, dt: float, n_frames: int, steps_per_frame: int,
             damping: Float[Array, " y x"] | None = None,
             source_shape: Float[Array, " y x"] | None = None,
             source_time: Float[Array, " steps"] | None = None) -> Float[Array, " time y x"]:
    """Leapfrog integration of $u_{tt} + \\sigma u_t = c^2\\Delta u + g(\\mathbf{x}) r(t)$ with
    $u = 0$ on the outermost nodes.

    **Arguments:**

    - `u0`, `v0`: displacement and velocity at $t = 0$ (boundary values are ignored).
    - `c`: wave speed at the nodes; `spacing`: $h$; `dt`: the step (not checked here: the
      data generator checks the CFL condition).
    - `n_frames`, `steps_per_frame`: frames at $t = j\\,\\text{steps\\_per\\_frame}\\,\\Delta t$.
    - `damping`: $\\sigma$ (default 0); `source_shape` $g$ and `source_time` $r(t_n)$ at the
      `(n_frames - 1) * steps_per_frame` steps $t_n = n\\Delta t$ (default no source).

    **Returns:** the frames, `frames[0] = u0`.
    """
    interior = jnp.zeros_like(u0).at[1:-1, 1:-1].set(1.0)
    u0 = u0 * interior
    sigma = jnp.zeros_like(u0) if damping is None else damping
    g = jnp.zeros_like(u0) if source_shape is None else source_shape
    n_steps = (n_frames - 1) * steps_per_frame
    r = jnp.zeros((max(n_steps, 1),), u0.dtype) if source_time is None else source_time
    u_prev = taylor_start(u0, v0, c, sigma, g * r[0], spacing, dt)
    _, frames = integrate((u_prev, u0), c, sigma, g, r, spacing=spacing, dt=dt,
                          n_frames=n_frames - 1, steps_per_frame=steps_per_frame)
    return jnp.concatenate([u0[None], frames], axis=0)


def taylor_start(u0, v0, c, sigma, s0, spacing: float, dt: float):
    r"""The level before $t = 0$: $u^{-1} = u^0 - \Delta t\,v^0 + \tfrac{\Delta t^2}{2}
    (c^2\Delta_h u^0 + s^0 - \sigma v^0)$, second-order accurate."""
    interior = jnp.zeros_like(u0).at[1:-1, 1:-1].set(1.0)
    a0 = c**2 * laplacian(u0, spacing) + s0 - sigma * v0
    return (u0 - dt * v0 + 0.5 * dt**2 * a0) * interior


def integrate(levels, c, sigma, g, r, *, spacing: float, dt: float, n_frames: int,
              steps_per_frame: int):
    r"""Leapfrog from the two time levels `levels = (u^{-1}, u^0)`; step `n` uses the source
    $g\,r[n]$. **Returns:** the last two levels and `n_frames` frames, one every
    `steps_per_frame` steps (the first after `steps_per_frame` steps)."""
    interior = jnp.zeros_like(c).at[1:-1, 1:-1].set(1.0)
    c2 = c**2
    g = g * interior
    lo, hi = 1 - sigma * dt / 2, 1 + sigma * dt / 2

    def step(carry, n):
        u_prev, u = carry
        u_next = (2 * u - lo * u_prev + dt**2 * (c2 * laplacian(u, spacing) + g * r[n])) / hi
        return (u, u_next * interior), None

    def frame(carry, j):
        carry, _ = jax.lax.scan(step, carry, j * steps_per_frame + jnp.arange(steps_per_frame))
        return carry, carry[1]

    return jax.lax.scan(frame, levels, jnp.arange(n_frames))


def ricker(t, frequency: float, delay: float):
    """The Ricker wavelet (second derivative of a Gaussian), peak frequency `frequency`."""
    a = (np.pi * frequency * (t - delay)) ** 2
    return (1 - 2 * a) * np.exp(-a)


def _grf(rng, n: int, length_scale: float, spacing: float) -> np.ndarray:
    """A smooth Gaussian random field: white noise filtered by a Gaussian spectrum."""
    noise = rng.standard_normal((n, n))
    k = np.fft.fftfreq(n, d=spacing) * 2 * np.pi
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    field = np.fft.ifft2(np.fft.fft2(noise) * np.exp(-0.5 * k2 * length_scale**2)).real
    return field


def _layers(rng, y: np.ndarray, x: np.ndarray, n_layers: int) -> np.ndarray:
    """Values in [0, 1] increasing with depth, across gently curved random interfaces."""
    depths = np.sort(rng.uniform(0.1, 0.9, n_layers - 1))
    levels = np.sort(rng.uniform(0, 1, n_layers))
    out = np.full(np.broadcast_shapes(y.shape, x.shape), levels[0])
    for d, level in zip(depths, levels[1:], strict=False):
        tilt, amp, phase = rng.uniform(-0.2, 0.2), rng.uniform(0, 0.05), rng.uniform(0, 2 * np.pi)
        interface = d + tilt * (x - 0.5) + amp * np.sin(2 * np.pi * x + phase)
        out = np.where(y > interface, level, out)
    return out


def _sample(cfg: WaveConfig, rng, pad: int):
    """One velocity field on the padded stored grid and the sources ``(y, x, amplitude)``."""
    h = cfg.spacing
    n = cfg.resolution + 2 * pad
    coords = (np.arange(n) - pad) * h  # physical coordinates; the stored square is [0, L]
    y, x = coords[:, None], coords[None, :]
    if cfg.velocity == "grf":
        v = _grf(rng, n, cfg.length_scale, h)
        inner = v[pad:pad + cfg.resolution, pad:pad + cfg.resolution]
        v = np.clip((v - inner.min()) / (inner.max() - inner.min()), 0, 1)
    else:
        v = _layers(rng, np.clip(y / cfg.length, 0, 1), np.clip(x / cfg.length, 0, 1),
                    cfg.n_layers)
    c = cfg.c_min + (cfg.c_max - cfg.c_min) * v
    sources = []
    for _ in range(cfg.n_sources):
        sy, sx = rng.uniform(0.25, 0.75, 2) * cfg.length
        amp = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0)
        sources.append((sy, sx, amp))
    return c, np.array(sources)


def _source_shape(cfg: WaveConfig, sources: np.ndarray, pad: int, refine: int) -> np.ndarray:
    """The smoothed point sources (ricker: unit mass) or bumps (pulse: unit height) at the
    nodes of the padded solver grid."""
    h = cfg.spacing / refine
    n = (cfg.resolution - 1 + 2 * pad) * refine + 1
    coords = (np.arange(n) - pad * refine) * h
    y, x = coords[:, None], coords[None, :]
    shape = np.zeros((n, n))
    for sy, sx, amp in sources:
        bump = np.exp(-((y - sy) ** 2 + (x - sx) ** 2) / (2 * cfg.source_width**2))
        shape += amp * (bump / (2 * np.pi * cfg.source_width**2) if cfg.source == "ricker"
                        else bump)
    return shape


def _sponge(cfg: WaveConfig, pad: int, refine: int = 1) -> np.ndarray:
    """The damping $\\sigma$ on the padded grid of `pad` stored cells each side, at `refine`
    solver nodes per stored cell (the layer's physical width is `pad` stored cells)."""
    m = pad * refine
    n = (cfg.resolution - 1 + 2 * pad) * refine + 1
    if pad == 0:
        return np.zeros((n, n))
    idx = np.arange(n)
    dist = np.maximum(m - idx, idx - (n - 1 - m)).clip(0) / m  # 0 inside, 1 at the edge
    d = np.maximum(dist[:, None], dist[None, :])
    sigma_max = cfg.sponge_strength * cfg.c_max / (pad * cfg.spacing)
    return sigma_max * d**2


def _draw(config: WaveConfig, count: int):
    """The first `count` velocity fields (padded stored grid) and source lists of the data set."""
    pad = config.sponge_width if config.boundary == "absorbing" else 0
    rng = np.random.default_rng(config.seed)
    samples = [_sample(config, rng, pad) for _ in range(count)]
    return [s[0] for s in samples], [s[1] for s in samples]


def _simulate(config: WaveConfig, cs, sources, refine: int, progress: bool = False
              ) -> np.ndarray:
    """The stored frames ``(samples, n_frames, resolution, resolution)`` of the given samples,
    solved on the grid `refine` times finer than the stored one with the solver step of
    `config.time_step` at that grid (float32)."""
    cfg = dataclasses.replace(config, refine=refine)
    dt, per = cfg.time_step()
    t0 = cfg.start_time()
    skip = round(t0 / dt)  # solver steps before the first stored frame
    pad = cfg.sponge_width if cfg.boundary == "absorbing" else 0
    n_steps = skip + (cfg.n_frames - 1) * per
    sigma = jnp.asarray(_sponge(cfg, pad, refine), jnp.float32)
    t = np.arange(max(n_steps, 1)) * dt
    r = ricker(t, cfg.frequency, 1.0 / cfg.frequency) if cfg.source == "ricker" \
        else np.zeros_like(t)
    r = jnp.asarray(r, jnp.float32)
    h = cfg.spacing / refine
    inner = slice(pad * refine, pad * refine + (cfg.resolution - 1) * refine + 1, refine)

    def run(c, shape):
        zeros = jnp.zeros_like(c)
        u0 = shape if cfg.source == "pulse" else zeros
        levels = (taylor_start(u0, zeros, c, sigma, shape * r[0], h, dt), u0)
        if skip:  # advance to t_start without storing
            levels, _ = integrate(levels, c, sigma, shape, r, spacing=h, dt=dt, n_frames=1,
                                  steps_per_frame=skip)
        _, frames = integrate(levels, c, sigma, shape, r[skip:], spacing=h, dt=dt,
                              n_frames=cfg.n_frames - 1, steps_per_frame=per)
        return jnp.concatenate([levels[1][None], frames], axis=0)[:, inner, inner]

    batched = jax.jit(jax.vmap(run))
    chunk = max(1, 25 // refine**2)
    us = []
    starts = range(0, len(cs), chunk)
    if progress:
        from .._progress import progress as _progress
        starts = _progress(starts, desc=f"wave (solved at {refine}x)", unit="chunk")
    for i in starts:
        c = np.stack([refine_bilinear(a, refine) for a in cs[i:i + chunk]])
        shape = np.stack([_source_shape(cfg, s, pad, refine) for s in sources[i:i + chunk]])
        us.append(np.asarray(batched(jnp.asarray(c, jnp.float32),
                                     jnp.asarray(shape, jnp.float32))))
    u = np.concatenate(us).astype(np.float32)
    if not np.all(np.isfinite(u)):
        raise ConfigError("dt: the simulation diverged; lower dt or cfl")
    return u


def self_convergence(config: WaveConfig, n_samples: int = 2) -> SelfConvergence:
    """The first `n_samples` trajectories against the same ones solved with half the grid
    spacing and half the time step (see `sciops.pde._convergence`)."""
    cs, sources = _draw(config, min(n_samples, config.n_samples))
    fine = dataclasses.replace(config, dt=config.time_step()[0] / 2)
    return compare(lambda k: _simulate(fine if k == 2 else config, cs, sources,
                                       config.refine * k), len(cs))


def discretisation(config: WaveConfig) -> dict:
    """The solver grid and step of a data set (for the provenance)."""
    dt, per = config.time_step()
    pad = config.sponge_width if config.boundary == "absorbing" else 0
    return {"scheme": "leapfrog, five-point Laplacian (second order in space and time)",
            "solver_spacing": config.spacing / config.refine,
            "solver_nodes_per_side": (config.resolution - 1 + 2 * pad) * config.refine + 1,
            "stored_every": config.refine, "dt": dt, "steps_per_frame": per,
            "solver_tolerance": "explicit scheme (no solver)"}


def generate(config: WaveConfig, path, *, progress: bool = True) -> None:
    """Simulate `config.n_samples` trajectories and write ``u`` and ``c`` to the HDF5 `path`."""
    dt, per = config.time_step()
    skip = round(config.start_time() / dt)
    pad = config.sponge_width if config.boundary == "absorbing" else 0
    start = time.perf_counter()
    cs, sources = _draw(config, config.n_samples)
    u = _simulate(config, cs, sources, config.refine, progress)
    seconds = time.perf_counter() - start
    inner = slice(pad, pad + config.resolution)
    c = np.stack(cs)[:, None, inner, inner].astype(np.float32)
    check = self_convergence(config, config.convergence_samples) \
        if config.convergence_samples else None
    write_hdf5(path, {"u": u, "c": c},
               attrs={"problem": "wave", "config": dataclasses.asdict(config),
                      "dt": dt, "frame_dt": config.frame_dt, "t_start": skip * dt,
                      "spacing": config.spacing, "solve_seconds": seconds,
                      "discretisation": discretisation(config),
                      "self_convergence": NOT_MEASURED if check is None else check.as_attrs()},
               field_attrs={"u": {"units": "displacement", "layout": "samples time y x",
                                  "description": "wave field frames, frame_dt apart"},
                            "c": {"units": "length/time", "layout": "samples channels y x",
                                  "description": "wave speed (its bilinear interpolant is the "
                                                 "speed the solver uses)"}})


PROBLEMS = {"wave": Problem("wave", WaveConfig, generate, self_convergence)}
