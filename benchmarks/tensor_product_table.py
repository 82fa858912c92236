"""Tensor products side by side, L = 1..4: CP (TDN) at the paper's rank 7L² and at the smallest
near-exact rank, e3nn-jax's full product, the spherical-harmonics matrix form and the S2-grid
Gaunt product. For each: rank, relative error of the tensor it evaluates, measured equivariance
error, and time per call (jit, CPU) for C = 32 and 128 channels over many edges.

Also fits CP at 7L² to the fused tensor of *all* triangle-admissible paths (irreps of one parity,
so the antisymmetric couplings are included), for comparison with the earlier CP-ALS errors in
docs/benchmarks/mlip.md.

    nice -n 5 python benchmarks/tensor_product_table.py [--edges 2000] [--lmax 4] [--repeats 5]

Prints a Markdown table and the machine load (`os.getloadavg()`) before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def _time(fn, *args, repeats: int) -> float:
    import jax

    jax.block_until_ready(fn(*args))  # compile + warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lmax", type=int, default=4)
    p.add_argument("--edges", type=int, default=2000)
    p.add_argument("--channels", type=int, nargs="+", default=[32, 128])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--near-exact", type=float, default=1e-3,
                   help="relative error that counts as near-exact for the CP rank search")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import numpy as np

    from sciops.nn._cp_fit import cp_factors, paper_rank, rank_for_error
    from sciops.nn._tensor_product import (
        CPTensorProduct,
        E3nnTensorProduct,
        GauntS2TensorProduct,
        SHMatrixTensorProduct,
        equivariance_error,
    )

    load_before = os.getloadavg()
    print(f"jax {jax.__version__}, devices {jax.devices()}, load before {load_before}")
    rows = []
    for L in range(1, args.lmax + 1):
        ir = "+".join(f"{d}{'e' if d % 2 == 0 else 'o'}" for d in range(L + 1))
        t0 = time.perf_counter()
        r_near = rank_for_error(ir, ir, ir, args.near_exact, cache_dir=args.cache_dir)
        all_paths = "+".join(f"{d}e" for d in range(L + 1))
        err_all = cp_factors(all_paths, all_paths, all_paths, paper_rank(L),
                             cache_dir=args.cache_dir).relative_error
        print(f"L={L}: near-exact rank {r_near} (search {time.perf_counter() - t0:.0f} s); "
              f"all-paths tensor at 7L^2: {100 * err_all:.1f} %", flush=True)
        products = {
            f"CP R=7L²={paper_rank(L)}": CPTensorProduct(ir, ir, ir, paper_rank(L),
                                                         cache_dir=args.cache_dir),
            f"CP R={r_near} (near-exact)": CPTensorProduct(ir, ir, ir, r_near,
                                                          cache_dir=args.cache_dir),
            "e3nn-jax full": E3nnTensorProduct(ir, ir, ir),
            "SH-matrix": SHMatrixTensorProduct(ir, ir, ir),
            "S2-grid Gaunt": GauntS2TensorProduct(ir, ir, ir),
        }
        key = jax.random.key(L)
        for name, tp in products.items():
            eq = equivariance_error(tp, key=key, n_rotations=4, n_samples=64)
            row = {"L": L, "product": name, "rank": getattr(tp, "rank", None),
                   "rel_error": tp.relative_error, "equivariance_error": eq,
                   "all_paths_cp_error_7L2": err_all}
            f = jax.jit(jax.vmap(tp))
            d = (L + 1) ** 2
            for c in args.channels:
                k1, k2 = jax.random.split(jax.random.fold_in(key, c))
                x1 = jax.random.normal(k1, (args.edges, c, d))
                x2 = jax.random.normal(k2, (args.edges, d))
                row[f"ms_C{c}"] = 1e3 * _time(f, x1, x2, repeats=args.repeats)
            rows.append(row)
            print(json.dumps(row), flush=True)
    load_after = os.getloadavg()

    chans = args.channels
    print(f"\n{args.edges} edges per call, median of {args.repeats}; load before "
          f"{tuple(round(x, 2) for x in load_before)}, after "
          f"{tuple(round(x, 2) for x in load_after)}\n")
    head = ("| L | product | rank | rel. error | equiv. error | "
            + " | ".join(f"ms (C={c})" for c in chans) + " | speed-up vs e3nn (C="
            + str(chans[-1]) + ") |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for row in rows:
        ref = next(r for r in rows if r["L"] == row["L"] and r["product"] == "e3nn-jax full")
        rel = row["rel_error"]
        rel_s = "n/a (Gaunt)" if rel != rel else f"{rel:.1e}"
        print(f"| {row['L']} | {row['product']} | {row['rank'] or '–'} | {rel_s} | "
              f"{row['equivariance_error']:.1e} | "
              + " | ".join(f"{row[f'ms_C{c}']:.2f}" for c in chans)
              + f" | {ref[f'ms_C{chans[-1]}'] / row[f'ms_C{chans[-1]}']:.2f}× |")
    print("\nCP at 7L² on the all-paths fused tensor (both parities' couplings): "
          + ", ".join(f"L={r['L']}: {100 * r['all_paths_cp_error_7L2']:.1f} %"
                      for r in rows if r["product"].startswith("CP R=7L")))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "load_before": load_before, "load_after": load_after,
                       "edges": args.edges, "repeats": args.repeats}, fh, indent=1)
    del np, jnp
    return rows


if __name__ == "__main__":
    main()
