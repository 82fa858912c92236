"""Fisher-type reaction–diffusion in 1-D: $u_t = D\\,u_{xx} + s(u)$, Crank–Nicolson + Newton.

The three source terms of the multi-task DeepONet paper (Kumar, Goswami et al., "Synergistic
learning with multi-task DeepONet for efficient PDE problem solving", 2024) are cubic
polynomials in $u$, so a task is described by its coefficient vector $c$ in the monomial basis
$(1, u, u^2, u^3)$, $s(u) = \\sum_k c_k u^k$:

| task        | source $s(u)$        | $c$ (rate $a$)        | exact travelling wave (D, a)                                        |
|-------------|----------------------|-----------------------|---------------------------------------------------------------------|
| `fisher`    | $a\\,u(1-u)$          | $a\\,(0, 1, -1, 0)$    | $(1 + C e^{\\sqrt{a/6D}\\,x - 5at/6})^{-2}$ (Ablowitz & Zeppetella 1979) |
| `nws`       | $a\\,u(1-u^2)$        | $a\\,(0, 1, 0, -1)$    | $(1 + C e^{\\sqrt{a/2D}\\,x - 3at/2})^{-1}$                            |
| `zeldovich` | $a\\,u^2(1-u)$        | $a\\,(0, 0, 1, -1)$    | $(1 + C e^{\\sqrt{a/2D}\\,x - at/2})^{-1}$                             |

The Zeldovich form is the polynomial (high-activation-energy) reduction of the
Zeldovich–Frank-Kamenetskii combustion equation, $u_t = u_{xx} + u^2(1-u)$ (Zeldovich &
Frank-Kamenetskii 1938; the exact waves of all three are in Polyanin & Zaitsev, *Handbook of
Nonlinear Partial Differential Equations*, 2nd ed., §5.1.1). Other source terms come from any user
basis: an object with ``evaluate(u) -> (..., K)`` and ``derivative(u) -> (..., K)``.

Discretisation: second-order central differences in $x$ (Dirichlet values, or zero flux through a
mirrored ghost node), Crank–Nicolson in $t$; each step solves the nonlinear system by Newton's
method with a batched tridiagonal (Thomas) solve, so all samples advance together. Second order in
$h$ and $\\Delta t$ (tested against the exact waves above).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Literal

import numpy as np

from .._errors import ConfigError
from ..data import write_hdf5
from ._convergence import NOT_MEASURED, SelfConvergence, compare
from ._problem import Problem

__all__ = ["MonomialBasis", "TASKS", "FisherConfig", "solve", "exact_wave", "generate",
           "self_convergence", "discretisation", "PROBLEMS"]

# Coefficients of s(u)/a in the monomial basis (1, u, u^2, u^3); see the module table.
TASKS: dict[str, tuple[float, ...]] = {
    "fisher": (0.0, 1.0, -1.0, 0.0),
    "nws": (0.0, 1.0, 0.0, -1.0),
    "zeldovich": (0.0, 0.0, 1.0, -1.0),
}


@dataclasses.dataclass(frozen=True)
class MonomialBasis:
    """The basis $(1, u, \\dots, u^{K-1})$ of source terms; `size` is $K$."""

    size: int = 4

    def evaluate(self, u: np.ndarray) -> np.ndarray:
        return u[..., None] ** np.arange(self.size)

    def derivative(self, u: np.ndarray) -> np.ndarray:
        k = np.arange(self.size)
        return k * u[..., None] ** np.maximum(k - 1, 0)


def _thomas(lower: np.ndarray, diag: np.ndarray, upper: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve tridiagonal systems, batched over the leading axis (all arrays ``(batch, n)``;
    ``lower[:, 0]`` and ``upper[:, -1]`` are ignored)."""
    n = diag.shape[-1]
    c = np.empty_like(diag)
    d = np.empty_like(rhs)
    c[:, 0] = upper[:, 0] / diag[:, 0]
    d[:, 0] = rhs[:, 0] / diag[:, 0]
    for i in range(1, n):
        m = diag[:, i] - lower[:, i] * c[:, i - 1]
        c[:, i] = upper[:, i] / m
        d[:, i] = (rhs[:, i] - lower[:, i] * d[:, i - 1]) / m
    x = np.empty_like(rhs)
    x[:, -1] = d[:, -1]
    for i in range(n - 2, -1, -1):
        x[:, i] = d[:, i] - c[:, i] * x[:, i + 1]
    return x


def solve(u0: np.ndarray, coeffs: np.ndarray, *, length: float, t_final: float, n_steps: int,
          diffusivity: float, basis=MonomialBasis(), boundary: Literal["neumann", "dirichlet"] =
          "neumann", dirichlet: Callable[[float], tuple[np.ndarray, np.ndarray]] | None = None,
          save_every: int = 1, tol: float = 1e-12, max_newton: int = 30) -> np.ndarray:
    """Integrate $u_t = D u_{xx} + \\sum_k c_k \\phi_k(u)$ on $[0, L]$ (shifted grids are fine:
    only the spacing matters) with Crank–Nicolson in time and Newton's method per step.

    **Arguments:**

    - `u0`: initial values on the uniform node grid including both ends, ``(batch, n)``.
    - `coeffs`: source coefficients in `basis`, ``(batch, K)``.
    - `length`: domain length $L$ (node spacing $h = L/(n-1)$).
    - `t_final`, `n_steps`: final time and number of equal time steps.
    - `diffusivity`: $D$.
    - `basis`: the source basis (default monomials $1, u, u^2, u^3$).
    - `boundary`: ``"neumann"`` (zero flux, ghost node mirrored) or ``"dirichlet"``.
    - `dirichlet`: for Dirichlet, ``t -> (left, right)`` boundary values, each ``(batch,)``.
    - `save_every`: keep every `save_every`-th step (the initial state is always kept).

    **Returns:** ``(batch, n_saved, n)`` with ``n_saved = n_steps // save_every + 1``.
    """
    u = np.array(u0, dtype=np.float64)
    coeffs = np.asarray(coeffs, dtype=np.float64)
    if u.ndim != 2 or coeffs.shape != (u.shape[0], basis.size):
        raise ConfigError(f"fisher.solve: u0 must be (batch, n) and coeffs (batch, {basis.size}); "
                          f"got {u.shape} and {coeffs.shape}")
    if boundary == "dirichlet" and dirichlet is None:
        raise ConfigError("fisher.solve: boundary='dirichlet' needs the `dirichlet` values")
    batch, n = u.shape
    h = length / (n - 1)
    dt = t_final / n_steps
    r = diffusivity / h**2

    def laplacian(v):
        out = np.empty_like(v)
        out[:, 1:-1] = r * (v[:, :-2] - 2 * v[:, 1:-1] + v[:, 2:])
        # Zero flux: mirror ghost node u_{-1} = u_1 (second order); Dirichlet rows are replaced.
        out[:, 0] = 2 * r * (v[:, 1] - v[:, 0])
        out[:, -1] = 2 * r * (v[:, -2] - v[:, -1])
        return out

    def source(v):
        return np.einsum("bnk,bk->bn", basis.evaluate(v), coeffs)

    def dsource(v):
        return np.einsum("bnk,bk->bn", basis.derivative(v), coeffs)

    # Constant parts of the Jacobian I - dt/2 (L + diag s'(v)).
    lower = np.full((batch, n), -0.5 * dt * r)
    upper = np.full((batch, n), -0.5 * dt * r)
    upper[:, 0] = -dt * r
    lower[:, -1] = -dt * r
    if boundary == "dirichlet":
        upper[:, 0] = 0.0
        lower[:, -1] = 0.0

    saved = [u.copy()]
    for step in range(1, n_steps + 1):
        t_new = step * dt
        explicit = u + 0.5 * dt * (laplacian(u) + source(u))
        v = u.copy()
        if boundary == "dirichlet":
            left, right = dirichlet(t_new)
            v[:, 0], v[:, -1] = left, right
        for _ in range(max_newton):
            residual = v - 0.5 * dt * (laplacian(v) + source(v)) - explicit
            diag = 1.0 + dt * r - 0.5 * dt * dsource(v)
            if boundary == "dirichlet":
                residual[:, 0] = residual[:, -1] = 0.0
                diag[:, 0] = diag[:, -1] = 1.0
            delta = _thomas(lower, diag, upper, residual)
            v -= delta
            if np.max(np.abs(delta)) < tol:
                break
        else:
            raise RuntimeError(f"fisher.solve: Newton did not converge at step {step} "
                               f"(|du| = {np.max(np.abs(delta)):.2e}); reduce the time step")
        u = v
        if step % save_every == 0:
            saved.append(u.copy())
    return np.stack(saved, axis=1)


def exact_wave(task: str, x: np.ndarray, t: float | np.ndarray, *, diffusivity: float = 1.0,
               rate: float = 1.0, shift: float = 1.0) -> np.ndarray:
    """The exact travelling wave of `task` (module table), with $C$ = `shift`."""
    k = {"fisher": np.sqrt(rate / (6 * diffusivity)), "nws": np.sqrt(rate / (2 * diffusivity)),
         "zeldovich": np.sqrt(rate / (2 * diffusivity))}[task]
    w = {"fisher": 5 * rate / 6, "nws": 1.5 * rate, "zeldovich": 0.5 * rate}[task]
    power = 2 if task == "fisher" else 1
    return (1.0 + shift * np.exp(k * x - w * t)) ** (-power)


@dataclasses.dataclass(frozen=True)
class FisherConfig:
    """Fisher-type reaction-diffusion in 1-D, three tasks: initial condition -> u(t, x).

    The keys of `data.generate` / `sciops generate fisher`. Sample `i` belongs to task
    ``tasks[i % len(tasks)]`` so any leading slice mixes the tasks evenly. Initial conditions are
    $u_0 = \\sigma(g)$, a logistic of a random cosine series
    $g(x) = m + \\sum_{k=1}^{8} \\xi_k \\cos(k\\pi x/L)\\,\\gamma/k$ (zero flux at both ends).
    The problem is nondimensional: lengths, times and rates have unit 1.

    **Fields:**

    - `n_samples` [count]: number of samples, spread over the tasks.
    - `tasks` [-]: reaction terms, each ``"fisher"`` (Fisher-KPP), ``"nws"``
      (Newell-Whitehead-Segel) or ``"zeldovich"``.
    - `rate` [1]: the reaction rate $a$ is drawn uniformly from ``[lo, hi]``; equal ends fix it.
    - `diffusivity` [1]: $D$.
    - `length` [1]: the domain $[0, L]$.
    - `t_final` [1]: the last output time.
    - `n_x` [points]: output (and branch-sensor) points in x, ends included.
    - `n_t` [count]: output times, t = 0 included.
    - `refine` [1]: solver grid spacing = output spacing in x / `refine`.
    - `steps_per_output` [count]: solver steps between output times.
    - `amplitude` [1]: $\\gamma$ of the initial-condition series.
    - `convergence_samples` [count]: how many of the first samples `generate` re-solves with
      half the spacing and half the time step to record the self-convergence error in the file
      (0: none).
    - `seed` [-]: seed of the initial conditions and coefficients.
    """

    n_samples: int = 1200
    tasks: tuple[str, ...] = ("fisher", "nws", "zeldovich")
    rate: tuple[float, float] = (1.0, 1.0)     # rate a ~ U(rate); equal ends: fixed per task
    diffusivity: float = 0.01
    length: float = 1.0
    t_final: float = 1.0
    n_x: int = 64                # output (and branch-sensor) points in x, ends included
    n_t: int = 26                # output times, t = 0 included
    refine: int = 2              # solver grid = refine × output spacing in x
    steps_per_output: int = 4    # solver steps between output times
    amplitude: float = 1.5       # gamma of the initial-condition series
    convergence_samples: int = 6
    seed: int = 0

    def __post_init__(self):
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ConfigError(f"data.generate.tasks: unknown task(s) {bad}; known: {list(TASKS)}")
        if self.rate[0] > self.rate[1] or self.rate[0] <= 0:
            raise ConfigError(f"data.generate.rate: expected 0 < lo <= hi, got {self.rate}")
        if self.refine < 1 or self.steps_per_output < 1 or self.convergence_samples < 0:
            raise ConfigError(f"data.generate: need refine >= 1, steps_per_output >= 1 and "
                              f"convergence_samples >= 0, got {self.refine}, "
                              f"{self.steps_per_output} and {self.convergence_samples}")


def _initial_conditions(config: FisherConfig):
    """All random draws of a data set: fine-grid initial conditions, task ids, coefficients."""
    rng = np.random.default_rng(config.seed)
    n = config.n_samples
    fine = config.refine * (config.n_x - 1) + 1
    x = np.linspace(0.0, config.length, fine)
    k = np.arange(1, 9)
    xi = rng.standard_normal((n, k.size))
    mean = rng.uniform(-1.5, 0.5, (n, 1))
    g = mean + (xi * config.amplitude / k) @ np.cos(np.pi * k[:, None] * x[None] / config.length)
    u0 = 1.0 / (1.0 + np.exp(-g))
    task = np.arange(n) % len(config.tasks)
    rate = rng.uniform(*config.rate, n)
    base = np.array([TASKS[t] for t in config.tasks])
    return u0, task, base[task] * rate[:, None]


def _solve_samples(config: FisherConfig, u0: np.ndarray, coeffs: np.ndarray,
                   progress: bool = False) -> np.ndarray:
    """``u`` (samples, n_t, n_x) at the output points from fine-grid initial conditions."""
    parts = []
    size = 256
    starts = range(0, len(u0), size)
    if progress:
        from .._progress import progress as _progress

        starts = _progress(starts, desc=f"fisher ({size} samples per batch)", unit="batch")
    for s in starts:
        sol = solve(u0[s:s + size], coeffs[s:s + size], length=config.length,
                    t_final=config.t_final, n_steps=config.steps_per_output * (config.n_t - 1),
                    diffusivity=config.diffusivity, save_every=config.steps_per_output)
        parts.append(sol[:, :, ::config.refine])
    return np.concatenate(parts)


def generate_arrays(config: FisherConfig, *, progress: bool = False) -> dict[str, np.ndarray]:
    """Solve every sample of `config`; returns the arrays that `generate` writes."""
    u0, task, coeffs = _initial_conditions(config)
    u = _solve_samples(config, u0, coeffs, progress)
    return {"u0": u0[:, None, ::config.refine].astype(np.float32),
            "coeffs": coeffs.astype(np.float32), "task": task.astype(np.int32),
            "u": u[:, None].astype(np.float32)}


def self_convergence(config: FisherConfig, n_samples: int = 6) -> SelfConvergence:
    """The first `n_samples` samples against the same ones solved with half the spacing in
    $x$ and half the time step (the initial condition is the same cosine series evaluated on
    the finer grid; see `sciops.pde.SelfConvergence`). Reported per task too."""
    count = min(n_samples, config.n_samples)

    def solutions(r):
        cfg = dataclasses.replace(config, refine=config.refine * r,
                                  steps_per_output=config.steps_per_output * r)
        u0, _, coeffs = _initial_conditions(cfg)
        return _solve_samples(cfg, u0[:count], coeffs[:count])

    tasks = [config.tasks[i % len(config.tasks)] for i in range(count)]
    return compare(solutions, count, groups=tasks)


def discretisation(config: FisherConfig) -> dict:
    """The solver grid and step of a data set (for the provenance)."""
    return {"scheme": "central differences, Crank-Nicolson, Newton (second order in x and t)",
            "solver_points": config.refine * (config.n_x - 1) + 1,
            "stored_every": config.refine,
            "dt": config.t_final / (config.steps_per_output * (config.n_t - 1)),
            "steps_per_output": config.steps_per_output,
            "solver_tolerance": "Newton steps until the update is below 1e-12"}


def generate(config: FisherConfig, path, *, progress: bool = True) -> None:
    """Write the multi-task Fisher data set to the HDF5 file `path`.

    Fields: ``u0`` (samples, 1, n_x) initial condition at the sensors; ``coeffs`` (samples, 4)
    source coefficients; ``task`` (samples,) task index into `config.tasks`; ``u`` (samples, 1,
    n_t, n_x) the solution on the (t, x) grid. Root attribute ``bounds`` = [[0, T], [0, L]].
    """
    start = time.perf_counter()
    arrays = generate_arrays(config, progress=progress)
    seconds = time.perf_counter() - start
    check = self_convergence(config, config.convergence_samples) \
        if config.convergence_samples else None
    write_hdf5(path, arrays, attrs={"problem": "fisher", "config": dataclasses.asdict(config),
                                    "bounds": [[0.0, config.t_final], [0.0, config.length]],
                                    "tasks": list(config.tasks), "solve_seconds": seconds,
                                    "discretisation": discretisation(config),
                                    "self_convergence": NOT_MEASURED if check is None else check.as_attrs()},
               field_attrs={"u": {"layout": "samples channels t x"},
                            "u0": {"layout": "samples channels x"},
                            "coeffs": {"description": "source coefficients in (1, u, u^2, u^3)"},
                            "task": {"description": "index into attrs['tasks']"}})


PROBLEMS = {"fisher": Problem("fisher", FisherConfig, generate, self_convergence)}
