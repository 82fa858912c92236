"""Inference throughput of the sciops TDN potential beside MACE (mace-torch from PyPI) at the same
cutoff, degree and width, on the same structure: energy + forces per call, atom-steps per second.

Both sides are untrained models of the sizes below (throughput does not depend on the weights):
sciops with `configs/mlip_cu_emt.yaml`'s sizes (L = 2, C = 32, 2 interaction blocks, 8 Bessel
functions, cutoff 5 Å) with the CP product and with the exact SH-matrix product; MACE with
hidden irreps ``32x0e+32x1o+32x2e``, max_ell 2, correlation 3, 2 interactions, 8 Bessel
functions, the same cutoff, float64 and float32 as sciops' dtype. Each is timed through its ASE
calculator (`sciops.mlip.Calculator`, `mace.calculators.MACECalculator`, host neighbour lists
on both sides) on a rattled structure per call, after warm-up calls; sciops also through
`sciops.mlip.run_md` (compiled loop, forces only), MACE has no compiled loop.

    python benchmarks/mlip_vs_mace.py [--repeat 3] [--calls 10] [--threads 2] [--json out.json]

Needs `mace-torch` (install with --no-deps next to torch 2.13.0; see docs/mlip.md). Prints a
Markdown table and the machine load before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
from _pinning import pin_threads  # a sibling script: the script folder is on sys.path


def _mace(cutoff: float, avg_neighbors: float, dtype: str):
    import torch
    from e3nn import o3
    from mace import modules

    torch.set_default_dtype(getattr(torch, dtype))
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    model = modules.MACE(r_max=cutoff, num_bessel=8, num_polynomial_cutoff=5, max_ell=2,
                         interaction_cls=block, interaction_cls_first=block, num_interactions=2,
                         num_elements=1, hidden_irreps=o3.Irreps("32x0e+32x1o+32x2e"),
                         MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(1),
                         avg_num_neighbors=avg_neighbors, atomic_numbers=[29], correlation=3,
                         gate=torch.nn.functional.silu)
    return model.to(getattr(torch, dtype))


def _rate(calc, atoms, calls: int) -> float:
    """Atom-steps per second of energy + forces through an ASE calculator (median of calls)."""
    rng = np.random.default_rng(0)
    times = []
    for k in range(calls + 2):
        a = atoms.copy()
        a.positions += rng.normal(scale=0.05, size=a.positions.shape)
        a.calc = calc
        t = time.perf_counter()
        a.get_potential_energy()
        a.get_forces()
        if k >= 2:  # two warm-up calls (compilation, allocation)
            times.append(time.perf_counter() - t)
    return len(atoms) / statistics.median(times)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="configs/mlip_cu_emt.yaml")
    p.add_argument("--repeat", type=int, default=3, help="cubic fcc Cu cells per axis (3: 108)")
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--md-steps", type=int, default=0,
                   help="also time run_md over this many steps (0: skip)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    pin_threads(args.threads)

    import torch
    from ase.build import bulk

    torch.set_num_threads(args.threads)
    from mace.calculators import MACECalculator
    from mlip_md_compiled import _model

    from sciops.mlip import Calculator, run_md
    from sciops.pde.atoms import thermalize

    load_before = os.getloadavg()
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(args.repeat)
    thermalize(atoms, 300.0, np.random.RandomState(0))
    n = len(atoms)
    rows = {}
    ns = argparse.Namespace(run=None, config=args.config)
    for product in ("cp", "exact"):
        model, cfg, _ = _model(ns, tensor_product=product)
        dtype = str(model.embedding.dtype)
        rows[f"sciops TDN ({product}) ASE calculator, {dtype}"] = _rate(
            Calculator(model, cfg), atoms, args.calls)
        cutoff = cfg.cutoff
        print(json.dumps(rows), flush=True)
        if not args.md_steps:
            continue
        kw = dict(velocities=atoms.get_velocities(), dt_fs=1.0, skin=0.5, record_every=10,
                  chunk_frames=10)
        md = (model, cfg, atoms.positions, atoms.numbers, atoms.get_masses(),
              np.asarray(atoms.cell), atoms.pbc)
        run_md(*md, n_steps=100, **kw)
        t = time.perf_counter()
        run_md(*md, n_steps=args.md_steps, **kw)
        rows[f"sciops TDN ({product}) run_md, {dtype}"] = n * args.md_steps / (
            time.perf_counter() - t)
        print(json.dumps(rows), flush=True)
    for dtype in ("float32", "float64"):
        mace = _mace(cutoff, 42.0, dtype)
        calc = MACECalculator(models=mace, device="cpu", default_dtype=dtype)
        rows[f"MACE (mace-torch) ASE calculator, {dtype}"] = _rate(calc, atoms, args.calls)
        print(json.dumps(rows), flush=True)
    load_after = os.getloadavg()
    print(f"\n{n} Cu atoms, energy + forces per call, untrained models of equal size, "
          f"{args.threads} threads; load before {tuple(round(x, 1) for x in load_before)}, "
          f"after {tuple(round(x, 1) for x in load_after)}\n")
    base = next(v for k, v in rows.items() if k.startswith("MACE") and "float32" in k)
    print("| model and loop | atom-steps/s | vs MACE float32 |")
    print("|---|---|---|")
    for name, rate in rows.items():
        print(f"| {name} | {rate:.4g} | {rate / base:.2f}× |")
    report = {"rows": rows, "atoms": n, "load_before": load_before, "load_after": load_after,
              "threads": args.threads}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    return report


if __name__ == "__main__":
    main()
