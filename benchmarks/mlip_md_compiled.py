"""Compiled MD against the ASE-driven loop on the same system: fcc Cu (108 atoms by default),
velocity Verlet at 1 fs from 300 K, the same TDN potential driven three ways:

- ASE's `VelocityVerlet` with `sciops.mlip.Calculator` (one jitted force call per step, host
  neighbour list, Python in between);
- `sciops.mlip.run_md` (the whole loop in `lax.scan`, neighbour lists with a skin rebuilt inside);
- for scale, ASE's own EMT calculator under the same `VelocityVerlet`.

Reports atom-steps per second (after a warm-up: compilation excluded, and stated separately) and
the NVE total-energy drift of the compiled run (largest deviation from the first frame and the
linear-fit slope, eV/atom). The model is a finished `mlip` run (`--run`) or, without one, the
untrained potential of `--config` (throughput does not depend on the weights; drift does, so a
drift figure is only reported for a trained run).

    python benchmarks/mlip_md_compiled.py [--run runs/mlip_cu_emt] [--repeat 3] \
        [--ase-steps 50] [--steps 1000] [--threads 2] [--json out.json]

Prints a Markdown table and the machine load before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from _pinning import pin_threads  # a sibling script: the script folder is on sys.path


def _model(args, tensor_product: str | None = None):
    """(model, model config, description): the run's, or the untrained potential of the config
    (with `tensor_product` overriding the config's product)."""
    if args.run:
        from sciops.train import load_run

        run = load_run(args.run)
        return run.model, run.config.model, f"trained run {args.run}"
    import jax

    from sciops.models.mlip import FAMILIES
    from sciops.train import load_config

    over = []
    if tensor_product is not None:
        over = [f"model.tensor_product={tensor_product}"] + (
            [] if tensor_product == "cp" else ["model.cp_rank=null"])
    cfg = load_config(args.config, over)
    # An untrained potential needs only the fitted statistics: take them from a tiny EMT set.
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from sciops.data import Dataset

    rows = []
    for k in range(2):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
        a.rattle(0.1, seed=k)
        a.calc = EMT()
        rows.append(dict(positions=a.positions, species=a.numbers.astype(np.int32),
                         mask=np.ones(len(a), bool), cell=np.asarray(a.cell), pbc=a.pbc,
                         energy=np.float64(a.get_potential_energy()), forces=a.get_forces()))
    ds = Dataset({k: np.stack([r[k] for r in rows]) for k in rows[0]}, name="cu")
    model = FAMILIES["mlip"].build(cfg.model, ds, key=jax.random.key(0))
    return model, cfg.model, (f"untrained potential of {args.config}"
                              + (f" ({tensor_product})" if tensor_product else ""))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", default=None, help="a finished mlip run folder")
    p.add_argument("--config", default="configs/mlip_cu_emt.yaml")
    p.add_argument("--repeat", type=int, default=3, help="cubic fcc cells per axis (3: 108)")
    p.add_argument("--temperature", type=float, default=300.0)
    p.add_argument("--ase-steps", type=int, default=50)
    p.add_argument("--steps", type=int, default=1000, help="compiled steps (multiple of 100)")
    p.add_argument("--skin", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    pin_threads(args.threads)

    from ase import units
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.md.velocitydistribution import Stationary
    from ase.md.verlet import VelocityVerlet

    from sciops.mlip import Calculator, run_md
    from sciops.pde.atoms import thermalize

    load_before = os.getloadavg()
    model, cfg, what = _model(args)
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(args.repeat)
    thermalize(atoms, args.temperature, np.random.RandomState(0))
    Stationary(atoms)
    n = len(atoms)
    report = {"model": what, "atoms": n, "load_before": load_before, "threads": args.threads}

    def ase_rate(calc):
        a = atoms.copy()
        a.calc = calc
        dyn = VelocityVerlet(a, 1.0 * units.fs)
        t = time.perf_counter()
        dyn.run(1)  # first force call: compilation for the sciops calculator
        first = time.perf_counter() - t
        t = time.perf_counter()
        dyn.run(args.ase_steps)
        return n * args.ase_steps / (time.perf_counter() - t), first

    report["ase_sciops_atom_steps_per_s"], report["ase_sciops_first_s"] = ase_rate(
        Calculator(model, cfg))
    report["ase_emt_atom_steps_per_s"], _ = ase_rate(EMT())
    print(json.dumps(report), flush=True)

    kw = dict(velocities=atoms.get_velocities(), dt_fs=1.0, skin=args.skin, record_every=10,
              chunk_frames=10)
    md_args = (model, cfg, atoms.positions, atoms.numbers, atoms.get_masses(),
               np.asarray(atoms.cell), atoms.pbc)
    t = time.perf_counter()
    run_md(*md_args, n_steps=100, **kw)  # compiles the 100-step chunk the timed run reuses
    report["compiled_first_100_steps_s"] = time.perf_counter() - t
    t = time.perf_counter()
    res = run_md(*md_args, n_steps=args.steps, **kw)
    wall = time.perf_counter() - t
    report["compiled_atom_steps_per_s"] = n * args.steps / wall
    report["compiled_rebuilds"] = res.rebuilds
    total = (res.potential + res.kinetic) / n
    t_ps = 0.01 * np.arange(1, len(total) + 1)
    report["compiled_ps"] = args.steps / 1000
    report["compiled_mean_T_K"] = float(np.mean(res.temperature))
    report["compiled_max_drift_eV_per_atom"] = float(np.max(np.abs(total - total[0])))
    report["compiled_drift_slope_eV_per_atom_per_ps"] = float(np.polyfit(t_ps, total, 1)[0])
    report["dtype"] = str(model.embedding.dtype)
    report["load_after"] = os.getloadavg()
    print(json.dumps(report), flush=True)

    r = report
    print(f"\n{n} Cu atoms, 1 fs velocity Verlet from {args.temperature} K, {what}, "
          f"{args.threads} threads, {r['dtype']}; load before "
          f"{tuple(round(x, 1) for x in r['load_before'])}, after "
          f"{tuple(round(x, 1) for x in r['load_after'])}\n")
    print("| loop | atom-steps/s | vs ASE-driven sciops |")
    print("|---|---|---|")
    base = r["ase_sciops_atom_steps_per_s"]
    for name, key in (("ASE VelocityVerlet + sciops Calculator", "ase_sciops_atom_steps_per_s"),
                      ("sciops.mlip.run_md (lax.scan)", "compiled_atom_steps_per_s"),
                      ("ASE VelocityVerlet + ASE EMT (reference)", "ase_emt_atom_steps_per_s")):
        print(f"| {name} | {r[key]:.4g} | {r[key] / base:.2f}× |")
    drift = (f"max |E - E0| {r['compiled_max_drift_eV_per_atom']:.2e} eV/atom, slope "
             f"{r['compiled_drift_slope_eV_per_atom_per_ps']:.2e} eV/atom/ps")
    print(f"\ncompiled NVE over {r['compiled_ps']} ps ({r['compiled_rebuilds']} list builds, "
          f"mean T {r['compiled_mean_T_K']:.0f} K): {drift}"
          + ("" if args.run else " (untrained potential: not a drift figure for the model)"))
    print(f"first 100 compiled steps incl. compilation {r['compiled_first_100_steps_s']:.1f} s; "
          f"first ASE-driven step incl. compilation {r['ase_sciops_first_s']:.1f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1, default=float)
    return report


if __name__ == "__main__":
    main()
