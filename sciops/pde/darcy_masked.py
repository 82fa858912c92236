"""Darcy flow on masked 2-D domains: $-\\nabla\\cdot(a\\nabla u) = f$ in $\\Omega$, $u = g$ off it.

$\\Omega$ is a set of nodes of the ``n × n`` grid of $[0,1]^2$ (a mask, from a shape in
`sciops.pde._geometry` or a user array). Every node outside the mask is a Dirichlet node (value
$g$, zero for the data sets). The discretisation is the conservative five-point scheme

$$\\frac{1}{h^2}\\sum_{q \\in N(p)} a_{pq}\\,(u_p - u_q) = f_p, \\qquad
a_{pq} = \\frac{2 a_p a_q}{a_p + a_q}$$

(harmonic face means, the usual choice for discontinuous permeability), assembled with
`scipy.sparse` and solved directly. It is second order when the domain boundary lies on grid
lines (square, L-shape, cross) or when $g$ carries the exact values at the nodes next to a curved
boundary; with $g = 0$ on a curved boundary (disk, triangle) the nodes outside form a staircase
approximation of $\\Omega$ and the error is first order in $h$ (both tested).

Data (the multi-geometry Darcy problem of the multi-task DeepONet paper, Kumar, Goswami et al.
2024, at sciops sizes): for ``input="source"`` the source $f$ is a Gaussian random field with
covariance $(-\\Delta + \\tau^2)^{-\\alpha}$ and $a = 1$; for ``input="coefficient"`` $a$ is that
field thresholded to two levels (12 and 3, as in the FNO Darcy set) and $f = 1$.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Literal

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .._errors import ConfigError
from ..data import write_hdf5
from ._convergence import NOT_MEASURED, SelfConvergence, compare, refine_bilinear
from ._geometry import SHAPES, as_mask, cut_fractions, grid_mask
from ._problem import Problem

__all__ = ["DarcyMaskedConfig", "solve", "gaussian_random_field", "generate_arrays", "generate",
           "self_convergence", "discretisation", "PROBLEMS"]


def solve(coefficient: np.ndarray, source: np.ndarray, mask: np.ndarray,
          boundary=None, fractions: np.ndarray | None = None) -> np.ndarray:
    """Solve $-\\nabla\\cdot(a\\nabla u) = f$ on the nodes of `mask` (one sample).

    **Arguments:**

    - `coefficient`: $a > 0$ at the nodes, ``(n, n)`` (values off the mask are used only on
      faces between an unknown and a Dirichlet node).
    - `source`: $f$ at the nodes, ``(n, n)``.
    - `mask`: ``(n, n)`` 0/1, the unknown nodes; the outer ring of the grid must be 0.
    - `boundary`: $g$: an ``(n, n)`` array of Dirichlet values at the nodes off the mask, or a
      function ``g(x, y)`` evaluated where the boundary cuts the grid lines (default 0).
    - `fractions`: where the boundary cuts the grid lines between a node and its outside
      neighbours, ``(2, 2, n, n)`` from `sciops.pde._geometry.cut_fractions`: the
      Shortley–Weller stencil then puts the Dirichlet value on the true boundary (second
      order on curved and slanted boundaries). Default: every outside neighbour node is the
      boundary (a staircase domain; first order on boundaries off the grid lines).

    **Returns:** $u$ at all nodes, ``(n, n)``, equal to $g$ off the mask (to 0 for a function
    `g`).
    """
    n = source.shape[-1]
    mask = as_mask(mask, source.shape)
    if mask[[0, -1], :].any() or mask[:, [0, -1]].any():
        raise ConfigError("darcy_masked.solve: the mask must exclude the outer ring of the grid")
    a = np.asarray(coefficient, dtype=np.float64)
    if a.shape != source.shape or np.any(a <= 0):
        raise ConfigError(f"darcy_masked.solve: coefficient must be positive with shape "
                          f"{source.shape}, got shape {a.shape}")
    if boundary is None or callable(boundary):
        g_fun, g = boundary, np.zeros((n, n))
    else:
        g_fun, g = None, np.asarray(boundary, dtype=np.float64)
    theta = np.ones((2, 2, n, n)) if fractions is None else np.asarray(fractions, np.float64)
    h = 1.0 / (n - 1)
    index = -np.ones((n, n), dtype=np.int64)
    index[mask] = np.arange(mask.sum())
    rhs = np.asarray(source, dtype=np.float64)[mask] * h**2
    rows, cols, vals = [], [], []
    diag = np.zeros(mask.sum())
    ii, jj = np.nonzero(mask)
    for axis, side, (di, dj) in ((0, 0, (1, 0)), (0, 1, (-1, 0)), (1, 0, (0, 1)),
                                 (1, 1, (0, -1))):
        qi, qj = ii + di, jj + dj
        ap, aq = a[ii, jj], a[qi, qj]
        # Shortley–Weller: u'' ~ 2/(h+ + h-) ((u+ - u)/h+ - (u - u-)/h-), h± = theta± h
        t_here, t_other = theta[axis, side, ii, jj], theta[axis, 1 - side, ii, jj]
        w = 2 * ap * aq / (ap + aq) * 2.0 / (t_here * (t_here + t_other))
        diag += w
        q = index[qi, qj]
        inside = q >= 0
        rows.append(index[ii, jj][inside])
        cols.append(q[inside])
        vals.append(-w[inside])
        if g_fun is not None:
            out = ~inside
            bx = jj[out] * h + dj * t_here[out] * h
            by = ii[out] * h + di * t_here[out] * h
            rhs[out] += w[out] * g_fun(bx, by)
        else:
            rhs[~inside] += w[~inside] * g[qi, qj][~inside]
    rows.append(np.arange(diag.size))
    cols.append(np.arange(diag.size))
    vals.append(diag)
    matrix = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                           shape=(diag.size, diag.size))
    u = g.copy()
    u[mask] = spla.spsolve(matrix, rhs)
    return u


def gaussian_random_field(rng: np.random.Generator, n: int, *, alpha: float = 2.0,
                          tau: float = 3.0, size: int = 1) -> np.ndarray:
    """Samples of a zero-mean Gaussian field with covariance $(-\\Delta + \\tau^2)^{-\\alpha}$
    on the ``n × n`` node grid of $[0,1]^2$, ``(size, n, n)``, scaled to unit variance.

    Drawn by FFT on the periodic ``2n`` grid of $[0, 2)^2$ and cropped, so the field is not
    forced to be periodic on the unit square.
    """
    m = 2 * n
    k = np.fft.fftfreq(m, d=1.0 / m) * np.pi  # wavenumbers on a period-2 box
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    spectrum = (k2 + tau**2) ** (-alpha / 2)
    noise = rng.standard_normal((size, m, m)) + 1j * rng.standard_normal((size, m, m))
    field = np.real(np.fft.ifft2(noise * spectrum))[:, :n, :n]
    return field / field.std(axis=(1, 2), keepdims=True)


@dataclasses.dataclass(frozen=True)
class DarcyMaskedConfig:
    """Darcy flow on several masked 2-D domains (square, disk, ...): source or coefficient -> u.

    The keys of `data.generate` / `sciops generate darcy_masked`. Sample `i` lies on geometry
    ``geometries[i % len(geometries)]``. The problem is nondimensional ($[0, 1]^2$): values have
    unit 1.

    **Fields:**

    - `n_samples` [count]: number of samples, spread over the geometries.
    - `geometries` [-]: domain shapes, each ``"square"``, ``"disk"``, ``"triangle"``,
      ``"l_shape"``, ``"cross"`` or ``"plate_holes"``.
    - `input` [-]: ``"source"`` (a Gaussian random field source $f$, $a = 1$) or
      ``"coefficient"`` (that field thresholded to the levels 12 and 3 as $a$, $f = 1$).
    - `resolution` [nodes]: nodes per side of the grid of $[0, 1]^2$ (at least 8).
    - `alpha`, `tau` [1]: the GRF covariance $(-\\Delta + \\tau^2)^{-\\alpha}$.
    - `boundary` [-]: ``"fitted"`` (default) puts the Dirichlet value where the geometry's
      boundary cuts the grid lines (Shortley–Weller stencil, second order on curved and slanted
      boundaries); ``"staircase"`` puts it at the first node outside (first order there; the
      data of sciops before 2026-12: 4.6 % from the 2x-refined solve at the defaults, 12 % on
      the triangle, against 0.42 % fitted).
    - `refine` [count]: solver nodes per stored cell side; the solve grid has
      ``(resolution - 1) * refine + 1`` nodes and every `refine`-th node is stored. The input
      field is defined on the solver grid as the bilinear interpolant of its stored node values
      (thresholded after interpolation for ``input="coefficient"``).
    - `convergence_samples` [count]: how many of the first samples `generate` re-solves at 2x
      resolution to record the self-convergence error in the file (`null`: one per geometry;
      0: none).
    - `seed` [-]: seed of the random fields.
    """

    n_samples: int = 1000
    geometries: tuple[str, ...] = ("square", "disk", "triangle", "l_shape", "cross")
    input: Literal["source", "coefficient"] = "source"
    resolution: int = 32
    alpha: float = 2.0
    tau: float = 3.0
    boundary: Literal["fitted", "staircase"] = "fitted"
    refine: int = 1
    convergence_samples: int | None = None
    seed: int = 0

    def __post_init__(self):
        bad = [g for g in self.geometries if g not in SHAPES]
        if bad or not self.geometries:
            raise ConfigError(f"data.generate.geometries: unknown geometry {bad}; known: "
                              f"{', '.join(SHAPES)}")
        if self.resolution < 8:
            raise ConfigError(f"data.generate.resolution: expected >= 8, got {self.resolution}")
        if self.refine < 1:
            raise ConfigError(f"data.generate.refine: expected >= 1, got {self.refine}")


def _draw(config: DarcyMaskedConfig, count: int):
    """The GRF of the first `count` samples at the stored nodes and their geometry indices."""
    rng = np.random.default_rng(config.seed)
    field = gaussian_random_field(rng, config.resolution, alpha=config.alpha, tau=config.tau,
                                  size=config.n_samples)[:count]
    return field, np.arange(count) % len(config.geometries)


def _inputs(config: DarcyMaskedConfig, field: np.ndarray):
    if config.input == "source":
        return field, np.ones_like(field)
    return np.ones_like(field), np.where(field >= 0, 12.0, 3.0)


def _solve_samples(config: DarcyMaskedConfig, field, geometry, refine: int,
                   progress: bool = False) -> np.ndarray:
    """Solutions at the stored nodes, solved on the grid `refine` times finer."""
    n = (config.resolution - 1) * refine + 1
    shapes = [SHAPES[g] for g in config.geometries]
    masks = [grid_mask(s, n) for s in shapes]
    fitted = config.boundary == "fitted"
    fractions = [cut_fractions(s, n, m) if fitted else None for s, m in zip(shapes, masks,
                                                                             strict=True)]
    out = []
    samples = enumerate(geometry)
    if progress:
        from .._progress import progress as _progress

        samples = _progress(samples, total=len(geometry), desc="darcy_masked", unit="sample",
                            skip=0)
    for i, gi in samples:
        f, a = _inputs(config, refine_bilinear(field[i], refine))
        out.append(solve(a, f, masks[gi], fractions=fractions[gi])[::refine, ::refine])
    return np.stack(out)


def self_convergence(config: DarcyMaskedConfig, n_samples: int | None = None
                     ) -> SelfConvergence:
    """The first `n_samples` samples (default one per geometry) against the same ones solved
    with half the grid spacing (see `sciops.pde._convergence`)."""
    k = min(n_samples or len(config.geometries), config.n_samples)
    field, geometry = _draw(config, k)
    return compare(lambda r: _solve_samples(config, field, geometry, config.refine * r), k,
                   reference="the same samples at half the grid spacing",
                   groups=[config.geometries[g] for g in geometry])


def discretisation(config: DarcyMaskedConfig) -> dict:
    """The solver grid of a data set (for the provenance)."""
    return {"scheme": "conservative five-point finite differences, harmonic face means, "
                      + ("Shortley-Weller boundary-fitted stencil" if config.boundary == "fitted"
                         else "staircase boundary"),
            "solver_nodes_per_side": (config.resolution - 1) * config.refine + 1,
            "stored_every": config.refine, "solver_tolerance": "direct sparse LU (SuperLU)"}


def generate_arrays(config: DarcyMaskedConfig, *, progress: bool = False
                    ) -> dict[str, np.ndarray]:
    """Solve every sample of `config` (reporting progress on stderr with `progress`); returns
    the arrays that `generate` writes."""
    n = config.resolution
    field, geometry = _draw(config, config.n_samples)
    f, a = _inputs(config, field)
    masks = np.stack([grid_mask(SHAPES[g], n) for g in config.geometries])
    mask = masks[geometry]
    u = _solve_samples(config, field, geometry, config.refine, progress)
    m = mask.astype(np.float32)[:, None]
    return {"f": (f[:, None] * m).astype(np.float32), "a": (a[:, None] * m).astype(np.float32),
            "mask": m, "u": u[:, None].astype(np.float32), "geometry": geometry.astype(np.int32)}


def generate(config: DarcyMaskedConfig, path, *, progress: bool = True) -> None:
    """Write the data set to the HDF5 file `path`.

    Fields (inputs are zero off the mask): ``f`` source, ``a`` coefficient, ``mask`` (1 inside),
    ``u`` solution, all ``(samples, 1, n, n)`` laid out ``(y, x)``; ``geometry`` (samples,)
    index into ``attrs['geometries']``. Root attribute ``bounds`` = [[0, 1], [0, 1]]; the
    discretisation and the measured self-convergence error are in ``discretisation`` and
    ``self_convergence``.
    """
    if progress:
        print(f"darcy_masked: solving {config.n_samples} samples at {config.resolution}^2",
              flush=True)
    start = time.perf_counter()
    arrays = generate_arrays(config, progress=progress)
    seconds = time.perf_counter() - start
    check = None if config.convergence_samples == 0 else self_convergence(
        config, config.convergence_samples)
    layout = {"layout": "samples channels y x"}
    write_hdf5(path, arrays,
               attrs={"problem": "darcy_masked", "config": dataclasses.asdict(config),
                      "bounds": [[0.0, 1.0], [0.0, 1.0]], "geometries": list(config.geometries),
                      "solve_seconds": seconds, "discretisation": discretisation(config),
                      "self_convergence": NOT_MEASURED if check is None else check.as_attrs()},
               field_attrs={"f": layout, "a": layout, "mask": layout, "u": layout,
                            "geometry": {"description": "index into attrs['geometries']"}})


PROBLEMS = {"darcy_masked": Problem("darcy_masked", DarcyMaskedConfig, generate,
                                    self_convergence)}
