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
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._errors import ConfigError
from ..data import write_hdf5
from ._problem import Problem

__all__ = ["WaveConfig", "cfl_limit", "laplacian", "simulate", "taylor_start", "integrate",
           "generate", "PROBLEMS"]


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
        limit = cfl_limit(self.spacing, self.c_max)
        if self.dt is not None and not 0 < self.dt <= limit:
            raise ConfigError(f"dt: {self.dt:g} is above the CFL stability limit "
                              f"h/(c_max*sqrt(2)) = {limit:.6g} (h = {self.spacing:.6g}, "
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
        per = math.ceil(self.frame_dt / (self.cfl * cfl_limit(self.spacing, self.c_max)))
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
    """One velocity field, source shape and sponge on the padded grid."""
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
    shape = np.zeros((n, n))
    for _ in range(cfg.n_sources):
        sy, sx = rng.uniform(0.25, 0.75, 2) * cfg.length
        amp = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0)
        bump = np.exp(-((y - sy) ** 2 + (x - sx) ** 2) / (2 * cfg.source_width**2))
        # A point source smoothed to unit mass (ricker) or a unit-height bump (pulse).
        shape += amp * (bump / (2 * np.pi * cfg.source_width**2) if cfg.source == "ricker"
                        else bump)
    return c, shape


def _sponge(cfg: WaveConfig, pad: int) -> np.ndarray:
    n = cfg.resolution + 2 * pad
    if pad == 0:
        return np.zeros((n, n))
    idx = np.arange(n)
    dist = np.maximum(pad - idx, idx - (n - 1 - pad)).clip(0) / pad  # 0 inside, 1 at the edge
    d = np.maximum(dist[:, None], dist[None, :])
    sigma_max = cfg.sponge_strength * cfg.c_max / (pad * cfg.spacing)
    return sigma_max * d**2


def generate(config: WaveConfig, path, *, progress: bool = True) -> None:
    """Simulate `config.n_samples` trajectories and write ``u`` and ``c`` to the HDF5 `path`."""
    dt, per = config.time_step()
    t0 = config.start_time()
    skip = round(t0 / dt)  # solver steps before the first stored frame
    pad = config.sponge_width if config.boundary == "absorbing" else 0
    n_steps = skip + (config.n_frames - 1) * per
    sigma = jnp.asarray(_sponge(config, pad), jnp.float32)
    t = np.arange(max(n_steps, 1)) * dt
    r = ricker(t, config.frequency, 1.0 / config.frequency) if config.source == "ricker" \
        else np.zeros_like(t)
    r = jnp.asarray(r, jnp.float32)
    h = config.spacing

    def run(c, shape):
        zeros = jnp.zeros_like(c)
        u0 = shape if config.source == "pulse" else zeros
        levels = (taylor_start(u0, zeros, c, sigma, shape * r[0], h, dt), u0)
        if skip:  # advance to t_start without storing
            levels, _ = integrate(levels, c, sigma, shape, r, spacing=h, dt=dt, n_frames=1,
                                  steps_per_frame=skip)
        _, frames = integrate(levels, c, sigma, shape, r[skip:], spacing=h, dt=dt,
                              n_frames=config.n_frames - 1, steps_per_frame=per)
        return jnp.concatenate([levels[1][None], frames], axis=0)

    rng = np.random.default_rng(config.seed)
    samples = [_sample(config, rng, pad) for _ in range(config.n_samples)]
    cs = np.stack([s[0] for s in samples]).astype(np.float32)
    shapes = np.stack([s[1] for s in samples]).astype(np.float32)
    batched = jax.jit(jax.vmap(run))
    chunk = 25
    us = []
    starts = range(0, config.n_samples, chunk)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc="wave", unit="chunk")
    for i in starts:
        us.append(np.asarray(batched(jnp.asarray(cs[i:i + chunk]),
                                     jnp.asarray(shapes[i:i + chunk]))))
    inner = slice(pad, pad + config.resolution)
    u = np.concatenate(us)[:, :, inner, inner].astype(np.float32)
    c = cs[:, None, inner, inner]
    if not np.all(np.isfinite(u)):
        raise ConfigError("dt: the simulation diverged; lower dt or cfl")
    write_hdf5(path, {"u": u, "c": c},
               attrs={"problem": "wave", "config": dataclasses.asdict(config),
                      "dt": dt, "frame_dt": config.frame_dt, "t_start": skip * dt,
                      "spacing": h},
               field_attrs={"u": {"units": "displacement", "layout": "samples time y x",
                                  "description": "wave field frames, frame_dt apart"},
                            "c": {"units": "length/time", "layout": "samples channels y x",
                                  "description": "wave speed"}})


PROBLEMS = {"wave": Problem("wave", WaveConfig, generate)}
