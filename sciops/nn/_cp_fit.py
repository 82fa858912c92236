"""CP decomposition of the fused Clebsch–Gordan tensor: ALS + L-BFGS fitting and an on-disk cache.

The fused tensor couples all admissible paths $(l_1, l_2, l_3)$ of three direct sums of irreps,

$$T_{ijk} = \\sum_{(l_1,l_2,l_3)} \\frac{\\sqrt{2l_3+1}}{\\sqrt{n_{l_3}}}\\,
C^{l_1 l_2 l_3}_{m_1 m_2 m_3},$$

with $C$ e3nn-jax's real Clebsch–Gordan coefficients (`e3nn.clebsch_gordan`), $\\sqrt{2l_3+1}$
e3nn-jax's "component" normalisation of a path and $n_{l_3}$ the number of paths into $l_3$
(so every output irrep has unit variance for unit-variance inputs). A rank-$R$ CP decomposition
$T \\approx \\sum_{r=1}^R a_r \\otimes b_r \\otimes c_r$ turns the tensor product into three
matrix products (Tensor Decomposition Networks, "Tensor Decomposition Networks for Fast Machine
Learning Interatomic Potential Computations", 2025). The factors are fitted once by alternating
least squares with random restarts, polished by L-BFGS on all factors jointly, and cached on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile
from typing import NamedTuple

import numpy as np

__all__ = [
    "CPFactors",
    "cp_factors",
    "default_cache_dir",
    "fit_cp",
    "fused_cg_tensor",
    "paper_rank",
    "rank_for_error",
]

# Bump when the fused tensor's definition or the fitting algorithm changes: old cache files are
# then ignored (they are keyed by this version too).
_CACHE_VERSION = 1


def _irreps(irreps):
    import e3nn_jax as e3nn

    irreps = e3nn.Irreps(irreps)
    for mul, _ in irreps:
        if mul != 1:
            raise ValueError(f"irreps {irreps}: expected multiplicity 1 per irrep (channels are a "
                             f"separate axis), got {mul}")
    return irreps


def fused_cg_tensor(irreps_in1, irreps_in2, irreps_out) -> np.ndarray:
    """The fused Clebsch–Gordan tensor of all admissible paths (see the module docstring).

    A path $(l_1 p_1, l_2 p_2) \\to l_3 p_3$ is admissible when $|l_1-l_2| \\le l_3 \\le l_1+l_2$
    and $p_1 p_2 = p_3$.

    **Arguments:** three irreps (strings or `e3nn.Irreps`) of multiplicity 1, e.g. ``"0e+1o+2e"``.

    **Returns:** a float64 array of shape `(dim1, dim2, dim3)`.
    """
    import e3nn_jax as e3nn

    i1, i2, io = _irreps(irreps_in1), _irreps(irreps_in2), _irreps(irreps_out)
    T = np.zeros((i1.dim, i2.dim, io.dim))
    paths = {}
    for s1, (_, ir1) in zip(i1.slices(), i1, strict=True):
        for s2, (_, ir2) in zip(i2.slices(), i2, strict=True):
            for s3, (_, ir3) in zip(io.slices(), io, strict=True):
                if ir3 in ir1 * ir2:
                    paths.setdefault(s3.start, []).append((s1, s2, s3, ir1.l, ir2.l, ir3.l))
    for plist in paths.values():
        for s1, s2, s3, l1, l2, l3 in plist:
            cg = np.asarray(e3nn.clebsch_gordan(l1, l2, l3), dtype=np.float64)
            T[s1, s2, s3] += np.sqrt(2 * l3 + 1) / np.sqrt(len(plist)) * cg
    return T


def paper_rank(lmax: int) -> int:
    """The TDN paper's rank schedule $R = 7L^2$ (7, 28, 63, 112 for L = 1..4)."""
    return 7 * max(int(lmax), 1) ** 2


class CPFactors(NamedTuple):
    """CP factors with $T_{ijk} \\approx \\sum_r A_{ir} B_{jr} C_{kr}$ and their relative error
    $\\|T - \\hat T\\|_F / \\|T\\|_F$."""

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    relative_error: float


def _kr(B, C):
    """Khatri–Rao product: column r is vec(b_r ⊗ c_r), shape (J*K, R)."""
    return (B[:, None, :] * C[None, :, :]).reshape(-1, B.shape[1])


def _reconstruct(A, B, C):
    return (A @ _kr(B, C).T).reshape(A.shape[0], B.shape[0], C.shape[0])


def _mttkrp(T, A, B, C):
    """The three matricised-tensor-times-Khatri–Rao products (one BLAS matmul each)."""
    ni, nj, nk = T.shape
    ma = T.reshape(ni, nj * nk) @ _kr(B, C)
    mb = T.transpose(1, 0, 2).reshape(nj, ni * nk) @ _kr(A, C)
    mc = T.transpose(2, 0, 1).reshape(nk, ni * nj) @ _kr(A, B)
    return ma, mb, mc


def _rel_err(T, A, B, C):
    return float(np.linalg.norm(T - _reconstruct(A, B, C)) / np.linalg.norm(T))


def _als(T, A, B, C, max_iter, tol, ridge):
    R = A.shape[1]
    eye = np.eye(R)
    prev = np.inf
    for it in range(max_iter):
        # Each update is the exact least-squares solution for one factor with the others fixed;
        # the small ridge keeps the Gram matrix invertible when columns become collinear
        # (the "swamps" of CP-ALS).
        ni, nj, nk = T.shape
        G = (B.T @ B) * (C.T @ C)
        A = np.linalg.solve(G + ridge * eye, (T.reshape(ni, nj * nk) @ _kr(B, C)).T).T
        G = (A.T @ A) * (C.T @ C)
        B = np.linalg.solve(G + ridge * eye,
                            (T.transpose(1, 0, 2).reshape(nj, ni * nk) @ _kr(A, C)).T).T
        G = (A.T @ A) * (B.T @ B)
        C = np.linalg.solve(G + ridge * eye,
                            (T.transpose(2, 0, 1).reshape(nk, ni * nj) @ _kr(A, B)).T).T
        # Balance column norms across the three factors (the product is unchanged).
        na, nb, nc = (np.linalg.norm(X, axis=0) + 1e-30 for X in (A, B, C))
        g = np.cbrt(na * nb * nc)
        A, B, C = A * (g / na), B * (g / nb), C * (g / nc)
        if it % 10 == 9:
            err = _rel_err(T, A, B, C)
            if prev - err < tol * max(err, 1e-12):
                break
            prev = err
    return A, B, C


def _lbfgs(T, A, B, C, max_iter):
    from scipy.optimize import minimize

    shapes = [A.shape, B.shape, C.shape]
    sizes = [A.size, B.size, C.size]
    norm2 = float(np.sum(T * T))

    def unpack(z):
        a, b, c = np.split(z, np.cumsum(sizes)[:-1])
        return a.reshape(shapes[0]), b.reshape(shapes[1]), c.reshape(shapes[2])

    def fun(z):
        a, b, c = unpack(z)
        E = _reconstruct(a, b, c) - T
        ga, gb, gc = _mttkrp(E, a, b, c)
        # 0.5 ||E||² / ||T||²: the relative error squared, halved, so tolerances are scale-free.
        return 0.5 * float(np.sum(E * E)) / norm2, np.concatenate(
            [ga.ravel(), gb.ravel(), gc.ravel()]) / norm2

    z0 = np.concatenate([A.ravel(), B.ravel(), C.ravel()])
    res = minimize(fun, z0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "ftol": 1e-16, "gtol": 1e-12})
    return unpack(res.x)


def _blas_single_thread():
    """Pin BLAS to one thread while fitting when threadpoolctl is installed: on a busy machine
    multi-threaded OpenBLAS on these small matrices is measured 10–60× slower than one thread."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def fit_cp(T: np.ndarray, rank: int, *, n_restarts: int = 2, max_iter: int = 500,
           lbfgs_iter: int = 1000, tol: float = 1e-7, seed: int = 0) -> CPFactors:
    """Fit a rank-`rank` CP decomposition to a 3-tensor.

    Alternating least squares from `n_restarts` seeded random starts, the best polished by
    L-BFGS on all factors jointly (ALS stalls in swamps that joint descent leaves quickly).

    **Arguments:**

    - `T`: the tensor, shape `(I, J, K)`.
    - `rank`: the number of rank-one terms $R \\ge 1$.
    - `n_restarts`, `max_iter`, `lbfgs_iter`, `tol`: restarts, ALS sweeps per restart, L-BFGS
      iterations, relative-improvement stopping tolerance of ALS.
    - `seed`: seeds the random starts (the fit is deterministic given the seed).

    **Returns:** `CPFactors` (float64) with the relative Frobenius error.
    """
    if rank < 1:
        raise ValueError(f"CP rank: expected a positive integer, got {rank}")
    with _blas_single_thread():
        return _fit_cp(np.asarray(T, dtype=np.float64), rank, n_restarts, max_iter, lbfgs_iter,
                       tol, seed)


def _fit_cp(T, rank, n_restarts, max_iter, lbfgs_iter, tol, seed):
    rng = np.random.default_rng(seed)
    best = None
    scale = np.cbrt(np.linalg.norm(T) / rank)
    for _ in range(n_restarts):
        A, B, C = (rng.standard_normal((n, rank)) * scale / np.sqrt(n) for n in T.shape)
        A, B, C = _als(T, A, B, C, max_iter, tol, ridge=1e-10 * np.linalg.norm(T) ** 2)
        err = _rel_err(T, A, B, C)
        if best is None or err < best[3]:
            best = (A, B, C, err)
    A, B, C, err = best
    if lbfgs_iter > 0 and err > 1e-12:
        A2, B2, C2 = _lbfgs(T, A, B, C, lbfgs_iter)
        err2 = _rel_err(T, A2, B2, C2)
        if err2 < err:
            A, B, C, err = A2, B2, C2, err2
    return CPFactors(A, B, C, err)


def default_cache_dir() -> pathlib.Path:
    """``$XDG_CACHE_HOME/sciops/cp`` (default ``~/.cache/sciops/cp``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "sciops" / "cp"


def _cache_key(irreps_in1, irreps_in2, irreps_out, rank, seed) -> tuple[str, dict]:
    meta = {"version": _CACHE_VERSION, "irreps_in1": str(_irreps(irreps_in1)),
            "irreps_in2": str(_irreps(irreps_in2)), "irreps_out": str(_irreps(irreps_out)),
            "rank": int(rank), "seed": int(seed)}
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:20]
    return f"cp_r{rank}_{digest}.npz", meta


def cp_factors(irreps_in1, irreps_in2, irreps_out, rank: int, *,
               cache_dir: str | os.PathLike | None = None, seed: int = 0) -> CPFactors:
    """The CP factors of the fused CG tensor at `rank`, from the on-disk cache or fitted now.

    Cache files are keyed by (irreps, rank, seed, cache version) and written atomically
    (temporary file in the same folder, then `os.replace`), so concurrent processes at worst fit
    the same factors twice. A cache file that cannot be read is refitted and overwritten.

    **Arguments:**

    - `irreps_in1`, `irreps_in2`, `irreps_out`: irreps of multiplicity 1 (e.g. ``"0e+1o+2e"``).
    - `rank`: the CP rank.
    - `cache_dir`: the cache folder (default `default_cache_dir()`).
    - `seed`: the fitting seed.
    """
    name, meta = _cache_key(irreps_in1, irreps_in2, irreps_out, rank, seed)
    folder = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / name
    if path.is_file():
        try:
            with np.load(path) as z:
                if json.loads(str(z["meta"])) == meta:
                    return CPFactors(z["A"], z["B"], z["C"], float(z["relative_error"]))
        except (OSError, ValueError, KeyError):
            pass  # unreadable or foreign: refit below and overwrite
    T = fused_cg_tensor(irreps_in1, irreps_in2, irreps_out)
    f = fit_cp(T, rank, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=name + ".", suffix=".tmp", dir=folder)
    mask = os.umask(0o022)  # mkstemp makes the file 0600: give it the umask's mode instead
    os.umask(mask)
    os.fchmod(fd, 0o666 & ~mask)
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, A=f.A, B=f.B, C=f.C, relative_error=f.relative_error,
                     meta=json.dumps(meta, sort_keys=True))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return f


def rank_for_error(irreps_in1, irreps_in2, irreps_out, target: float, *,
                   max_rank: int | None = None, cache_dir: str | os.PathLike | None = None,
                   seed: int = 0) -> int:
    """The smallest rank whose fitted relative error is at most `target`.

    Doubling search for a bracketing rank, then bisection (fits are cached, so repeated queries
    are cheap). The fitted error is not exactly monotone in the rank; bisection assumes it is,
    which can overshoot the true minimum by a few ranks but never returns a rank that misses the
    target.

    **Raises:** `ValueError` if even `max_rank` (default $\\dim_1 \\dim_2$, the matrix-slice
    rank bound, at which the decomposition is exact in principle) misses the target.
    """
    if not target > 0:
        raise ValueError(f"target relative error: expected > 0, got {target}")
    d1, d2 = _irreps(irreps_in1).dim, _irreps(irreps_in2).dim
    max_rank = max_rank or d1 * d2

    def err(r):
        return cp_factors(irreps_in1, irreps_in2, irreps_out, r, cache_dir=cache_dir,
                          seed=seed).relative_error

    lo, hi = 0, 1
    while err(hi) > target:
        lo = hi
        if hi >= max_rank:
            raise ValueError(f"no CP rank up to {max_rank} reaches relative error {target:g} "
                             f"(best {err(hi):.3g})")
        hi = min(2 * hi, max_rank)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if err(mid) <= target:
            hi = mid
        else:
            lo = mid
    return hi
