"""Self-convergence of every grid data set `sciops generate` offers, at its defaults.

For each problem, the first samples of the default data set are solved twice: as the data set
does, and with the grid spacing and the time step halved (the same coefficients, sources,
initial fields and geometry: `Problem.self_convergence`); the table gives the relative L2
difference over all outputs of those samples (the issue's target: <= 5 %), per group where
the problem has groups (geometries, tasks); the time `generate` takes for a part of the data
set (compilation included, without the provenance check) and its linear extrapolation to the
whole default data set; and the time of the check itself (the samples at the data's and at the
refined discretisation; the JAX problems compile in both). Where a default changed (2026-12),
the old default is measured beside it (``before`` rows).

Not covered here: ``cylinder_flow`` and ``transport`` (sciops.pde.flow: finite elements on
unstructured meshes, docs/data.md's cylinder-flow section) and ``atoms`` (molecular dynamics).
The convergence ORDER of each solver on an analytic or manufactured case is asserted by the
tests (tests/test_darcy_solver.py, test_darcy_masked.py, test_heat3d.py, test_wave_solver.py,
test_navier_stokes.py, test_fisher.py).

Usage: ``python benchmarks/data_convergence.py [--problems darcy,wave,...] [--threads 2]
[--json out.json]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _pinning import pin_threads  # noqa: E402

# samples generated to time `generate` (convergence_samples = 0; compilation included)
GENERATE = {"darcy": 100, "navier_stokes": 50, "fisher": 1200, "darcy_masked": 200,
            "heat3d": 40, "wave": 25}
# (problem, samples checked, label, config overrides)
ROWS = [
    ("darcy", 4, "default", {}),
    ("navier_stokes", 2, "default", {}),
    ("fisher", 6, "default", {}),
    ("darcy_masked", 10, "default", {}),
    ("darcy_masked", 10, "before (staircase)", {"boundary": "staircase"}),
    ("heat3d", 3, "default", {}),
    ("heat3d", 3, "before (staircase)", {"boundary": "staircase"}),
    ("wave", 2, "default", {}),
    ("wave", 2, "before (refine 1)", {"refine": 1}),
]


def measure(name: str, n_samples: int, overrides: dict) -> dict:
    from sciops.pde import problem

    prob = problem(name)
    config = prob.config(**overrides)
    result = prob.self_convergence(config, n_samples)
    n_gen = min(GENERATE[name], config.n_samples)
    small = dataclasses.replace(config, n_samples=n_gen, convergence_samples=0)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        prob.generate(small, os.path.join(tmp, "data.h5"), progress=False)
        gen = time.perf_counter() - start
    return {"generate_samples": n_gen, "generate_seconds": gen,
            "generate_seconds_full_estimate": gen * config.n_samples / n_gen,
            "problem": name, "overrides": overrides, "n_samples": result.n_samples,
            "rel_l2": result.rel_l2, "groups": dict(result.groups or {}),
            "seconds": result.seconds, "seconds_refined": result.seconds_refined,
            "data_set_samples": config.n_samples,
            "config": {k: v for k, v in dataclasses.asdict(config).items()
                       if k in ("resolution", "solve_resolution", "n_z", "refine", "boundary",
                                "n_x", "n_t", "steps_per_output", "dt", "n_frames")}}


def main(problems: list[str] | None = None, threads: int = 2, out: str | None = None) -> list:
    pin_threads(threads)
    print(f"load average {os.getloadavg()[0]:.2f} at start, {threads} threads, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    rows = []
    for name, n, label, overrides in ROWS:
        if problems and name not in problems:
            continue
        row = measure(name, n, overrides)
        row["label"] = label
        rows.append(row)
        groups = ", ".join(f"{g} {100 * v:.2f} %" for g, v in row["groups"].items())
        print(f"{name:14s} {label:20s} {100 * row['rel_l2']:7.3f} %  generate "
              f"{row['generate_samples']} samples: {row['generate_seconds']:.1f} s (all "
              f"{row['data_set_samples']}: ~{row['generate_seconds_full_estimate']:.0f} s); "
              f"check {row['seconds']:.1f} s + refined {row['seconds_refined']:.1f} s  "
              f"{row['config']}" + (f"  [{groups}]" if groups else ""), flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at end", flush=True)
    if out:
        with open(out, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default=None,
                        help="comma-separated problem names (default: all in the table)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the rows to this JSON file")
    args = parser.parse_args()
    main(args.problems.split(",") if args.problems else None, args.threads, args.json)
