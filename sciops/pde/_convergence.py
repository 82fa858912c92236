"""Self-convergence of generated data: the stored samples against the same samples solved at
twice the resolution in space and in time.

Every generator in `sciops.pde` offers ``self_convergence(config, n_samples)`` (the
`Problem.self_convergence` field): it solves the first `n_samples` samples of `config` once as
the data set does and once with the grid spacing and the time step halved (the same continuous
problem: the same coefficient, source and geometry), and compares the two at the stored points.
`generate` records the result in the file's provenance (root attribute ``self_convergence``)
beside the discretisation (root attribute ``discretisation``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import numpy as np

__all__ = ["SelfConvergence", "relative_l2", "compare", "refine_bilinear", "NOT_MEASURED"]

# the ``self_convergence`` attribute of a file generated with ``convergence_samples = 0``
NOT_MEASURED = "not measured (convergence_samples = 0)"


def refine_bilinear(a, refine: int) -> np.ndarray:
    """The (multi)linear interpolant of node values `a` over its last two axes at the nodes of
    the grid `refine` times finer (``(n - 1) * refine + 1`` nodes per axis; the coarse nodes
    are fine nodes and keep their values)."""
    a = np.asarray(a, dtype=np.float64)
    if refine == 1:
        return a
    for axis in (-1, -2):
        n = a.shape[axis]
        pos = np.arange((n - 1) * refine + 1) / refine
        lo = np.minimum(np.floor(pos).astype(int), n - 2)
        w = pos - lo
        shape = [1] * a.ndim
        shape[axis] = w.size
        w = w.reshape(shape)
        a = np.take(a, lo, axis=axis) * (1 - w) + np.take(a, lo + 1, axis=axis) * w
    return a


def relative_l2(value, reference) -> float:
    """$\\|v - r\\|_2 / \\|r\\|_2$ over all entries of the two arrays (float64)."""
    v = np.asarray(value, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if v.shape != r.shape:
        raise ValueError(f"relative_l2: shapes differ, {v.shape} vs {r.shape}")
    return float(np.linalg.norm(v - r) / np.linalg.norm(r))


@dataclasses.dataclass(frozen=True)
class SelfConvergence:
    """The data at its discretisation against the same samples refined 2x in space and time.

    **Fields:**

    - `rel_l2`: relative L2 error over all outputs of the checked samples
      ($\\|u_h - u_{h/2}\\|_2/\\|u_{h/2}\\|_2$, the refined solution restricted to the stored points).
    - `per_sample`: the same, sample by sample.
    - `n_samples`: how many samples were checked (the first ones of the data set).
    - `seconds`, `seconds_refined`: time to solve them at the data's and at the refined
      discretisation.
    - `reference`: what the reference is, in words.
    - `groups`: optional error per group of samples (geometry, task), name -> rel_l2.
    """

    rel_l2: float
    per_sample: tuple[float, ...]
    n_samples: int
    seconds: float
    seconds_refined: float
    reference: str = "the same samples at half the grid spacing and half the time step"
    groups: Mapping[str, float] | None = None

    def as_attrs(self) -> dict:
        """A JSON-able dict for the HDF5 provenance."""
        out = dataclasses.asdict(self)
        out["per_sample"] = list(self.per_sample)
        out["groups"] = dict(self.groups) if self.groups else None
        return out


def compare(solve, n_samples: int, reference: str | None = None,
            groups: list[str] | None = None) -> SelfConvergence:
    """Run ``solve(refinement)`` for refinement 1 and 2 (each returns an array of the first
    `n_samples` samples at the stored points, sample axis first) and compare them.

    `groups`, if given, names the group of each sample; the error is then also reported per
    group (over that group's samples).
    """
    start = time.perf_counter()
    base = np.asarray(solve(1), dtype=np.float64)
    mid = time.perf_counter()
    fine = np.asarray(solve(2), dtype=np.float64)
    end = time.perf_counter()
    per = tuple(relative_l2(b, f) for b, f in zip(base, fine, strict=True))
    by_group = None
    if groups is not None:
        by_group = {g: relative_l2(base[[i for i, x in enumerate(groups) if x == g]],
                                   fine[[i for i, x in enumerate(groups) if x == g]])
                    for g in dict.fromkeys(groups)}
    kw = {} if reference is None else {"reference": reference}
    return SelfConvergence(relative_l2(base, fine), per, int(base.shape[0]), mid - start,
                           end - mid, groups=by_group, **kw)
