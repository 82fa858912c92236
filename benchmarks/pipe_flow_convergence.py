"""Mesh and time-step convergence of the `pipe_flow` solver: the study behind the data's defaults.

One trajectory (the first of the default draw: its Re, pulsation and sphere) is solved
`--spinup` plus `--frames` records at several resolutions; each run is compared with the finest
run of its study:

- `mesh`: `h_min` and `h_max` scaled by `--scales` at Courant number `--ref-courant` (small);
  the reference's velocity is evaluated at the run's interior nodes (farther than h_min from
  the walls and the sphere, which the meshes approximate differently) by its P2 interpolant;
- `dt`: the default mesh at Courant numbers `--courants` (solver substeps per 0.05 frame).

Errors: the relative RMS velocity error at the last record, and the largest error of the
sphere's drag coefficient over the records relative to the largest reference drag.

    python benchmarks/pipe_flow_convergence.py --out docs/img/pipe_flow_convergence.png
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

from sciops.pde.flow import NodeType
from sciops.pde.pipe_flow import PipeFlowConfig, build_pipe_flow, draw_trajectories


def run(config: PipeFlowConfig, draw, n_frames: int) -> dict:
    """Solve and keep the flow object (for probing), the drag per record and the last state."""
    flow = build_pipe_flow(config, *draw)
    vel, prs = flow.initial_state()
    n_spin = int(round(config.spinup / config.dt))
    cds, start = [], time.perf_counter()
    for j in range(n_spin + n_frames):
        vel, prs = flow.frame(vel, prs, j * config.dt)
        if j + 1 > n_spin:
            cds.append(flow.drag_coefficient(vel, prs))
    return {"flow": flow, "velocity": vel, "drag": np.asarray(cds),
            "seconds": time.perf_counter() - start, "nodes": len(flow.points),
            "substeps": flow.substeps, "courant": flow.courant(vel)}


def compare(r: dict, ref: dict, h_min: float) -> dict:
    flow, obstacle = r["flow"], r["flow"].obstacle
    x = flow.points
    inner = flow.node_type == NodeType.NORMAL
    inner &= np.hypot(x[:, 1], x[:, 2]) < flow.radius - h_min
    inner &= np.linalg.norm(x - np.asarray(obstacle[:3]), axis=1) > obstacle[3] + h_min
    probe = ref["flow"].solver.vb.probes(x[inner].T)
    u_ref = np.stack([probe @ ref["velocity"][:, i] for i in range(3)], 1)
    u = r["velocity"][inner]
    return {"velocity_rel_rms": float(np.sqrt(((u - u_ref) ** 2).sum(1).mean()
                                              / (u_ref**2).sum(1).mean())),
            "drag_rel_max": float(np.abs(r["drag"] - ref["drag"]).max() / np.abs(ref["drag"]).max())}


def main(scales=(1.5, 1.2, 1.0, 0.8, 0.65), courants=(4.0, 2.0, 1.0, 0.5, 0.25),
         ref_courant: float = 0.5, spinup: float = 1.0, frames: int = 20, out=None) -> dict:
    base = PipeFlowConfig(spinup=spinup, workers=1)
    draw = draw_trajectories(base)[0]
    rows: dict[str, list] = {"mesh": [], "dt": []}
    runs = [(s, run(dataclasses.replace(base, h_min=base.h_min * s, h_max=base.h_max * s,
                                        courant=ref_courant), draw, frames)) for s in scales]
    for s, r in runs[:-1]:
        rows["mesh"].append({"scale": s, "h_min": base.h_min * s, "h_max": base.h_max * s,
                             "nodes": r["nodes"], "seconds": r["seconds"],
                             **compare(r, runs[-1][1], base.h_min * s)})
        print("mesh", rows["mesh"][-1], flush=True)
    runs = [(c, run(dataclasses.replace(base, courant=c), draw, frames)) for c in courants]
    for c, r in runs[:-1]:
        rows["dt"].append({"courant": c, "substeps": r["substeps"], "solver_dt": base.dt / r["substeps"],
                           "max_courant_last": r["courant"], "seconds": r["seconds"],
                           **compare(r, runs[-1][1], base.h_min)})
        print("dt", rows["dt"][-1], flush=True)
    result = {"draw": [float(v) for v in draw[:3]] + [list(map(float, draw[3]))],
              "reference": {"scale": scales[-1], "courant": courants[-1]}, **rows}
    if out:
        import pathlib

        from sciops.plot import plot_curve_panels

        out = pathlib.Path(out)
        out.with_suffix(".json").write_text(json.dumps(result, indent=2))
        def panel(rows, x, xlabel, title):
            return {"series": {k: ([r[x] for r in rows], [r[m] for r in rows]) for k, m in
                               (("velocity (last record)", "velocity_rel_rms"),
                                ("drag (max over records)", "drag_rel_max"))},
                    "xlabel": xlabel, "ylabel": "relative error vs the finest run",
                    "title": title, "logy": True, "styles": {"velocity (last record)": "o-",
                                                              "drag (max over records)": "s--"}}

        plot_curve_panels([panel(rows["mesh"], "h_min", "h_min (h_max = 25/8 h_min)",
                                 "mesh, small solver time step"),
                           panel(rows["dt"], "solver_dt", "solver time step",
                                 "time step, default mesh")],
                          title="pipe_flow convergence (one trajectory)", path=out)
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scales", default="1.5,1.2,1.0,0.8,0.65")
    ap.add_argument("--courants", default="4,2,1,0.5,0.25")
    ap.add_argument("--ref-courant", type=float, default=0.5)
    ap.add_argument("--spinup", type=float, default=1.0)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    main(tuple(map(float, a.scales.split(","))), tuple(map(float, a.courants.split(","))),
         a.ref_courant, a.spinup, a.frames, a.out)
