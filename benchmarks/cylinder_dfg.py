"""The cylinder-flow solver against DFG 2D-2, and the time-step study behind the data's defaults.

`dfg`: Schäfer & Turek's (1996) benchmark (channel 2.2 × 0.41, cylinder r = 0.05 at (0.2, 0.2),
parabolic inflow of mean speed 1, ν = 1e-3, Re = 100; the `dfg_2d_2` preset). The flow spins up
from rest until the lift amplitude has saturated, then the Strouhal number, c_D,max and c_L,max
are measured over the recorded frames (peaks refined by a parabola through the three samples
around each extremum) and set beside the published ranges St 0.295–0.305,
c_D,max 3.22–3.24, c_L,max 0.99–1.01.

`convergence`: the same measurements at several solver time steps (`--courant` values; the
solver takes k = ceil(dt 3.5 U / (courant h_min)) steps per 0.01 s frame) for one geometry and
Reynolds number, the table that fixes the data's default (Courant number ≤ 1 at the cylinder).
`--continuous` adds, per time step, the plain BDF2 run whose history runs across frames (the
scheme before issue 19), to show what restarting the history at every frame costs.

    python benchmarks/cylinder_dfg.py dfg --h-min 0.01 --h-wake 0.02 --h-max 0.05
    python benchmarks/cylinder_dfg.py convergence --reynolds 200 --courant 4,2,1,0.5,0.25
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

from sciops.pde.flow import (
    CylinderFlow,
    CylinderFlowConfig,
    DFG2D2Config,
    cylinder_mesh,
    lift_saturated,
)

PUBLISHED = {"strouhal": (0.295, 0.305), "cd_max": (3.22, 3.24), "cl_max": (0.99, 1.01)}


def _peaks(x: np.ndarray, dt: float, sign: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Times and values of the local maxima of `sign * x`, refined by a parabola through the
    three samples around each."""
    y = sign * np.asarray(x, float)
    i = np.nonzero((y[1:-1] > y[:-2]) & (y[1:-1] >= y[2:]))[0] + 1
    a, b, c = y[i - 1], y[i], y[i + 1]
    denom = a - 2 * b + c
    shift = np.where(denom != 0, 0.5 * (a - c) / np.where(denom != 0, denom, 1), 0.0)
    value = b - 0.25 * (a - c) * shift
    return (i + shift) * dt, sign * value


def shedding_metrics(cl: np.ndarray, cd: np.ndarray, dt: float, diameter: float,
                     u_mean: float) -> dict:
    """Strouhal number (from the spacing of the lift maxima), c_L max/min, c_D max and mean
    (over whole periods) of a saturated record."""
    t_max, cl_max = _peaks(cl, dt)
    _, cl_min = _peaks(cl, dt, -1.0)
    _, cd_max = _peaks(cd, dt)
    if t_max.size < 3:
        return {"strouhal": float("nan")}
    period = float(np.mean(np.diff(t_max)))
    i0, i1 = int(round(t_max[0] / dt)), int(round(t_max[-1] / dt))
    return {"strouhal": diameter / (period * u_mean), "cl_max": float(cl_max.mean()),
            "cl_min": float(cl_min.mean()), "cl_amplitude": float((cl_max.mean()
                                                                    - cl_min.mean()) / 2),
            "cd_max": float(cd_max.mean()), "cd_mean": float(np.mean(cd[i0:i1])),
            "periods": int(t_max.size - 1)}


def run(config: CylinderFlowConfig, reynolds: float, frames: int, continuous: bool = False,
        substeps: int | None = None) -> dict:
    """Spin up from rest until the lift amplitude saturates, record `frames` frames, measure.
    `continuous`: BDF2 history across frames (no restart at each frame)."""
    c = config
    r, center = c.radius[0], (c.center_x[0], c.center_y[0])
    u_mean = reynolds * c.nu / (2 * r)
    pts, tri, _ = cylinder_mesh(c.length, c.height, *center, r, c.h_min, c.h_max, c.h_wake)
    k = substeps or max(1, int(np.ceil(c.dt * 3.5 * u_mean / (c.courant * c.h_min))))
    flow = CylinderFlow(pts, tri, c.length, c.height, center, r, u_mean, c.nu, c.dt, k)
    solver = flow.solver
    n = len(flow.points)
    vel, prs = np.zeros((n, 2)), np.zeros(n)
    u, p = solver.node_state(vel, prs)
    cl, cd, courant = [], [], 0.0
    start, t_sat, j = time.perf_counter(), None, 0
    n_min, n_max = int(round(c.spinup / c.dt)), int(round(c.spinup_max / c.dt))
    while True:
        if t_sat is None and j >= n_min and (lift_saturated(np.asarray(cl), c.saturation) or j >= n_max):
            t_sat, cl, cd = j * c.dt, [], []
        if t_sat is not None and len(cl) == frames:
            break
        t = j * c.dt
        if continuous:
            for i in range(k):
                u, p = solver.step(u, p, t + (i + 1) * solver.dt, flow.inflow)
            vel, prs = u.T.copy(), solver.pressure_at_nodes(p)
        else:
            vel, prs = flow.frame(vel, prs, t)
        j += 1
        drag, lift = flow.coefficients(vel, prs)
        cd.append(drag), cl.append(lift)
        if t_sat is not None:
            courant = max(courant, flow.courant(vel))
    out = shedding_metrics(np.array(cl), np.array(cd), c.dt, 2 * r, u_mean)
    out.update(reynolds=reynolds, substeps=k, solver_dt=solver.dt, max_courant=courant,
               spinup_time=t_sat, n_vertices=len(pts), n_nodes=n, continuous=continuous,
               seconds=time.perf_counter() - start)
    return out


def _row(m: dict) -> str:
    return (f"| {m['solver_dt']:.5f} | {m['substeps']} | {m['max_courant']:.2f} | "
            f"{'continuous' if m['continuous'] else 'restart'} | {m['strouhal']:.4f} | "
            f"{m['cl_amplitude']:.4f} | {m['cl_max']:.4f} | {m['cd_mean']:.4f} | "
            f"{m['cd_max']:.4f} | {m['spinup_time']:.2f} | {m['seconds']:.0f} |")


HEADER = ("| solver dt | steps per frame | max Courant | history | St | c_L amplitude | c_L,max | "
          "mean c_D | c_D,max | spin-up (s) | wall (s) |\n|" + "---|" * 11)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("dfg", "convergence"))
    p.add_argument("--h-min", type=float, default=None)
    p.add_argument("--h-wake", type=float, default=None)
    p.add_argument("--h-max", type=float, default=None)
    p.add_argument("--reynolds", type=float, default=None,
                   help="convergence: Re (default 200, the fastest training flow)")
    p.add_argument("--courant", default="1", help="comma-separated Courant bounds")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--continuous", action="store_true")
    p.add_argument("--json", default=None, help="append every result as a JSON line here")
    a = p.parse_args(argv)
    base = DFG2D2Config() if a.mode == "dfg" else CylinderFlowConfig()
    sizes = {k: v for k, v in (("h_min", a.h_min), ("h_wake", a.h_wake), ("h_max", a.h_max))
             if v is not None}
    re = a.reynolds or (100.0 if a.mode == "dfg" else 200.0)
    print(HEADER)
    results = []
    for courant in (float(x) for x in a.courant.split(",")):
        cfg = dataclasses.replace(base, courant=courant, **sizes)
        for cont in ((False, True) if a.continuous else (False,)):
            m = run(cfg, re, a.frames, continuous=cont)
            m.update(courant_bound=courant, h_min=cfg.h_min, h_wake=cfg.h_wake, h_max=cfg.h_max)
            results.append(m)
            print(_row(m), flush=True)
            if a.json:
                with open(a.json, "a") as f:
                    f.write(json.dumps(m) + "\n")
    if a.mode == "dfg":
        for key, (lo, hi) in PUBLISHED.items():
            got = results[-1][key]
            print(f"{key}: {got:.4f} (published {lo}-{hi}) "
                  f"{'inside' if lo <= got <= hi else 'OUTSIDE'}")
    return results


if __name__ == "__main__":
    main()
