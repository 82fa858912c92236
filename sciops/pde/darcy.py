"""Steady Darcy flow $-\\nabla\\cdot(a\\nabla u) = f$ on the unit square with $u = 0$ on the boundary.

The data set of Li et al., "Fourier Neural Operator for Parametric Partial Differential
Equations" (ICLR 2021), §5.2: the coefficient $a$ is a Gaussian random field
$\\psi \\sim \\mathcal N(0, (-\\Delta + \\tau^2 I)^{-\\alpha})$ ($\\alpha = 2$, $\\tau = 3$) pushed through
a two-level threshold ($a = 12$ where $\\psi \\ge 0$, $a = 3$ elsewhere), or a log-normal field
$a = e^{\\sigma\\psi}$; the forcing is $f = 1$. The operator to learn is $a \\mapsto u$.

Discretisation: cell-centred finite volumes on an $N\\times N$ grid of cells of side $h = 1/N$.
The flux through the face between cells $P$ and $E$ is $a_{PE}(u_E - u_P)/h$ with the harmonic
mean $a_{PE} = 2a_Pa_E/(a_P + a_E)$ (exact for a coefficient that jumps at the face, which is
what a cell-wise constant coefficient does); on a boundary face the Dirichlet value sits half a
cell away, so the flux is $a_P(0 - u_P)/(h/2)$. The scheme is conservative, the matrix is
symmetric positive definite (an M-matrix), and the solution converges at second order
(tested against a manufactured solution in ``tests/test_darcy_solver.py``). The sparse
system is solved with SuperLU (`scipy.sparse.linalg.splu`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Literal

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from jaxtyping import Float

from .._errors import ConfigError
from ._convergence import NOT_MEASURED, SelfConvergence, compare
from ._problem import Problem

__all__ = ["DarcyConfig", "PROBLEMS", "assemble", "gaussian_random_field", "generate", "solve",
           "self_convergence", "discretisation"]


@dataclasses.dataclass(frozen=True)
class DarcyConfig:
    """Darcy flow -div(a grad u) = f on the unit square: random coefficient a -> solution u.

    The keys of `data.generate` / `sciops generate darcy`. The problem is nondimensional (unit
    square), so lengths and values have unit 1.

    **Fields:**

    - `n_samples` [count]: number of (coefficient, solution) pairs.
    - `resolution` [cells]: cells per side of the stored fields.
    - `solve_resolution` [cells]: cells per side of the grid the PDE is solved on; a multiple of
      `resolution` (default: `resolution`). The coefficient is piecewise constant on the stored cells (each split into
      `(solve_resolution/resolution)²` solver cells), so the stored input is exactly the
      coefficient that was solved for, and the stored solution is the cell average of the
      finer solution (less discretisation error, as the FNO paper solves at 421² and subsamples).
      Measured at 64²: solving at 64² differs from a 256² solve by 0.46 % relative L2, at 128²
      by 0.13 %, for 5x the time; both are well below the FNO's error, and the model learns
      the discrete operator either way, so the default solves at the stored resolution.
    - `coefficient` [-]: ``"threshold"`` (two levels) or ``"lognormal"``.
    - `alpha`, `tau` [1]: the GRF covariance $(-\\Delta + \\tau^2)^{-\\alpha}$.
    - `levels` [1]: $(a_+, a_-)$, the coefficient where $\\psi \\ge 0$ and where $\\psi < 0$ (threshold).
    - `sigma` [1]: $a = \\exp(\\sigma\\psi)$ with $\\psi$ of unit pointwise variance (lognormal).
    - `forcing` [1]: the constant right-hand side $f$.
    - `convergence_samples` [count]: how many of the first samples `generate` re-solves on
      cells half the size to record the self-convergence error in the file (0: none).
    - `seed` [-]: seed of the numpy generator (sample $i$ depends only on `seed` and $i$).
    """

    n_samples: int = 1100
    resolution: int = 64
    solve_resolution: int | None = None
    coefficient: Literal["threshold", "lognormal"] = "threshold"
    alpha: float = 2.0
    tau: float = 3.0
    levels: tuple[float, float] = (12.0, 3.0)
    sigma: float = 1.0
    forcing: float = 1.0
    convergence_samples: int = 4
    seed: int = 0

    def __post_init__(self):
        if self.n_samples < 1:
            raise ConfigError(f"n_samples: expected a positive integer, got {self.n_samples}")
        if self.resolution < 2:
            raise ConfigError(f"resolution: expected an integer >= 2, got {self.resolution}")
        if self.solve_resolution is not None and (
                self.solve_resolution < self.resolution or self.solve_resolution % self.resolution):
            raise ConfigError(f"solve_resolution: expected a multiple of resolution="
                              f"{self.resolution}, got {self.solve_resolution}")
        if self.convergence_samples < 0:
            raise ConfigError(f"convergence_samples: expected >= 0, got "
                              f"{self.convergence_samples}")
        if self.alpha <= 1.0:
            # the field has finite pointwise variance in 2-D only for alpha > 1
            raise ConfigError(f"alpha: expected a value > 1, got {self.alpha}")
        if self.tau <= 0:
            raise ConfigError(f"tau: expected a positive value, got {self.tau}")
        if min(self.levels) <= 0:
            raise ConfigError(f"levels: expected two positive values, got {list(self.levels)}")


def gaussian_random_field(rng: np.random.Generator, n: int, alpha: float, tau: float
                          ) -> Float[np.ndarray, "n n"]:
    """One sample of $\\psi \\sim \\mathcal N(0, (-\\Delta + \\tau^2)^{-\\alpha})$ at the centres of an
    $n\\times n$ grid of cells on the unit square, scaled to unit pointwise variance.

    Sampled spectrally (Karhunen–Loève) on the periodic square $[0, 2)^2$ and restricted to
    $[0, 1)^2$, so the field is not periodic on the unit square: with $L = 2$ the eigenvalues of
    $-\\Delta$ are $(2\\pi|k|/L)^2$ and $\\psi = \\sum_k \\lambda_k^{-\\alpha/2}\\,\\xi_k\\,e^{2\\pi i k\\cdot x/L}$
    with complex normal $\\xi_k$ (real part taken). The zero mode is dropped, as in Li et al.

    **Returns:** a float64 array of shape `(n, n)`.
    """
    m = 2 * n  # the periodic box [0, 2)^2 at the same spacing 1/n
    k = np.fft.fftfreq(m, d=1.0 / m)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    eig = (2.0 * np.pi / 2.0) ** 2 * k2 + tau**2
    amp = eig ** (-alpha / 2.0)
    amp[0, 0] = 0.0
    xi = rng.standard_normal((m, m)) + 1j * rng.standard_normal((m, m))
    # sum_k c_k e^{2 pi i k j / m} = m^2 ifft2(c); with E|xi|^2 = 2 the real part has
    # pointwise variance sum(amp^2), which we divide out
    field = np.real(np.fft.ifft2(amp * xi)) * m * m
    std = np.sqrt(np.sum(amp**2))
    # the box nodes j/n are read as the cell centres (j + 1/2)/n: a half-cell translation,
    # which leaves the law of a stationary field unchanged
    return field[:n, :n] / std


def coefficient_field(config: DarcyConfig, rng: np.random.Generator) -> Float[np.ndarray, "n n"]:
    """One coefficient field $a$ at the stored `resolution` (float64)."""
    psi = gaussian_random_field(rng, config.resolution, config.alpha, config.tau)
    if config.coefficient == "threshold":
        return np.where(psi >= 0.0, config.levels[0], config.levels[1])
    return np.exp(config.sigma * psi)


def assemble(a: Float[np.ndarray, "n n"]) -> sp.csc_matrix:
    """The finite-volume matrix $A$ with $(Au)_P = \\sum_{faces}$ (outward flux) for cell values.

    **Arguments:**

    - `a`: the coefficient at the cell centres, shape `(n, n)` (axis 0 is $y$, axis 1 is $x$).

    **Returns:** the symmetric positive definite sparse matrix (CSC) of size $n^2$, scaled so
    that $A u = h^2 f$ discretises $-\\nabla\\cdot(a\\nabla u) = f$ (cell $(i, j)$ is row $i n + j$).
    """
    a = np.asarray(a, dtype=np.float64)
    n = a.shape[0]
    if a.shape != (n, n):
        raise ValueError(f"assemble: expected a square coefficient array, got shape {a.shape}")
    idx = np.arange(n * n).reshape(n, n)
    # harmonic means on the interior faces, in the y (axis 0) and x (axis 1) directions
    ty = 2.0 * a[1:, :] * a[:-1, :] / (a[1:, :] + a[:-1, :])
    tx = 2.0 * a[:, 1:] * a[:, :-1] / (a[:, 1:] + a[:, :-1])
    diag = np.zeros((n, n))
    diag[1:, :] += ty
    diag[:-1, :] += ty
    diag[:, 1:] += tx
    diag[:, :-1] += tx
    # boundary faces: Dirichlet value half a cell away -> transmissibility 2 a_P
    diag[0, :] += 2.0 * a[0, :]
    diag[-1, :] += 2.0 * a[-1, :]
    diag[:, 0] += 2.0 * a[:, 0]
    diag[:, -1] += 2.0 * a[:, -1]
    rows = np.concatenate([idx.ravel(), idx[1:, :].ravel(), idx[:-1, :].ravel(),
                           idx[:, 1:].ravel(), idx[:, :-1].ravel()])
    cols = np.concatenate([idx.ravel(), idx[:-1, :].ravel(), idx[1:, :].ravel(),
                           idx[:, :-1].ravel(), idx[:, 1:].ravel()])
    vals = np.concatenate([diag.ravel(), -ty.ravel(), -ty.ravel(), -tx.ravel(), -tx.ravel()])
    return sp.csc_matrix((vals, (rows, cols)), shape=(n * n, n * n))


def solve(a: Float[np.ndarray, "n n"], f: float | Float[np.ndarray, "n n"] = 1.0
          ) -> Float[np.ndarray, "n n"]:
    """Solve $-\\nabla\\cdot(a\\nabla u) = f$, $u|_{\\partial\\Omega} = 0$, on the unit square.

    **Arguments:**

    - `a`: the coefficient at the cell centres, shape `(n, n)`, positive.
    - `f`: the right-hand side, a constant or its values at the cell centres.

    **Returns:** $u$ at the cell centres, shape `(n, n)`, float64.
    """
    a = np.asarray(a, dtype=np.float64)
    n = a.shape[0]
    h = 1.0 / n
    rhs = np.broadcast_to(np.asarray(f, dtype=np.float64), (n, n)) * h * h
    # SuperLU (a direct solve, exact up to round-off). The matrix is symmetric: a minimum-degree
    # ordering of A + A^T with symmetric pivoting is 2-3x faster than the default COLAMD here
    # (measured 42 ms vs 115 ms at 128^2).
    lu = spla.splu(assemble(a), permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})
    u = lu.solve(np.ascontiguousarray(rhs).ravel())
    return u.reshape(n, n)


def sample(config: DarcyConfig, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample `index` of the data set: the coefficient and the solution at `resolution`."""
    rng = np.random.default_rng([config.seed, index])
    a = coefficient_field(config, rng)
    r = (config.solve_resolution or config.resolution) // config.resolution
    a_fine = np.kron(a, np.ones((r, r))) if r > 1 else a
    u_fine = solve(a_fine, config.forcing)
    # cell averages of the fine solution over each stored cell
    n = config.resolution
    u = u_fine.reshape(n, r, n, r).mean(axis=(1, 3))
    return a, u


def generate(config: DarcyConfig, path, *, progress: bool = True) -> None:
    """Solve `config.n_samples` Darcy problems and write them to the HDF5 file `path`.

    Fields: `x` the coefficient and `y` the solution, both float32 of shape
    `(n_samples, 1, resolution, resolution)` (layout ``samples channels y x``; cell centres
    $((j + 1/2)h, (i + 1/2)h)$ of the unit square).
    """
    from ..data import write_hdf5

    n = config.resolution
    x = np.empty((config.n_samples, 1, n, n), np.float32)
    y = np.empty((config.n_samples, 1, n, n), np.float32)
    indices = range(config.n_samples)
    if progress:
        from .._progress import progress as _progress

        indices = _progress(indices, unit="sample",
                            desc=f"darcy {n}x{n} (solved at {config.solve_resolution or n})")
    start = time.perf_counter()
    for i in indices:
        a, u = sample(config, i)
        x[i, 0] = a
        y[i, 0] = u
    seconds = time.perf_counter() - start
    check = self_convergence(config, config.convergence_samples) \
        if config.convergence_samples else None
    layout = "samples channels y x"
    write_hdf5(path, {"x": x, "y": y},
               attrs={"problem": "darcy", "config": dataclasses.asdict(config),
                      "domain": [[0.0, 1.0], [0.0, 1.0]], "grid": "cell centres",
                      "solve_seconds": seconds, "discretisation": discretisation(config),
                      "self_convergence": NOT_MEASURED if check is None else check.as_attrs()},
               field_attrs={"x": {"units": "1", "layout": layout,
                                  "description": "coefficient a (permeability) at cell centres"},
                            "y": {"units": "1", "layout": layout,
                                  "description": "solution u (pressure) cell averages"}})


def self_convergence(config: DarcyConfig, n_samples: int = 4) -> SelfConvergence:
    """The first `n_samples` samples against the same coefficients solved on cells half the
    size (`solve_resolution` doubled; see `sciops.pde.SelfConvergence`)."""
    count = min(n_samples, config.n_samples)
    solve_n = config.solve_resolution or config.resolution

    def solutions(r):
        cfg = dataclasses.replace(config, solve_resolution=solve_n * r)
        return np.stack([sample(cfg, i)[1] for i in range(count)])

    return compare(solutions, count, reference="the same samples solved on cells half the size")


def discretisation(config: DarcyConfig) -> dict:
    """The solver grid of a data set (for the provenance)."""
    solve_n = config.solve_resolution or config.resolution
    return {"scheme": "cell-centred five-point finite volumes, harmonic face means",
            "solver_cells_per_side": solve_n, "stored": "cell averages",
            "solver_tolerance": "direct sparse LU (SuperLU)"}


PROBLEMS = {"darcy": Problem("darcy", DarcyConfig, generate, self_convergence)}
