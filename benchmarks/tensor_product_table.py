"""Where CP tensor products pay: both product kinds, L = 1..4, C = 32 and 128, forward and
forward+backward time, compiled memory, fit error and measured equivariance error.

- kind ``edge``: feature ⊗ edge harmonics ($x_2$ one vector shared by the channels), irreps of
  the spherical-harmonic parity $0e+1o+2e+\\dots$ (the potential's own choice). Forms: CP at the
  paper's rank $7L^2$, e3nn-jax's full product, the SH-matrix form, the S2-grid Gaunt product.
- kind ``channelwise``: two multi-channel features, with per-channel path weights
  (`sciops.nn.ChannelwiseTensorProduct`), full O(3) irreps $0e+0o+1o+1e+\\dots$ (both parities,
  so the antisymmetric couplings exist). Forms: CP at $7L^2$ and at $R = d^2/6$ (the rank whose
  flop count, $3dR$ per channel, is half the dense form's $d^3$), e3nn-jax's full product, the
  dense matrix form. The Gaunt product cannot represent these irreps.

Times are medians of `--repeats` calls after a warm-up call, blocked on the result; memory is
XLA's compiled temporary buffer size of the forward+backward function. The backward pass is the
gradient of $\\sum y \\odot g$ with respect to both inputs.

    python benchmarks/tensor_product_table.py [--kind edge channelwise] [--lmax 4] \
        [--rows 256] [--channels 32 128] [--repeats 3] [--threads 2] [--json out.json]

Prints a Markdown table and the machine load (`os.getloadavg()`) before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from _pinning import pin_threads  # a sibling script: the script folder is on sys.path


def _time(fn, *args, repeats: int) -> float:
    import jax

    jax.block_until_ready(fn(*args))  # compile + warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _products(kind: str, L: int, cache_dir, key, only=None):

    from sciops.nn import (
        ChannelwiseTensorProduct,
        make_tensor_product,
        o3_irreps,
        paper_rank,
        sh_parity_irreps,
    )

    if kind == "edge":
        ir = sh_parity_irreps(L)
        forms = {f"CP R=7L²={paper_rank(L)}": ("cp", paper_rank(L)), "e3nn-jax full": ("e3nn", None),
                 "SH-matrix": ("sh_matrix", None), "S2-grid Gaunt": ("s2grid", None)}
        return ir, {name: make_tensor_product(form, ir, ir, ir, rank=rank, cache_dir=cache_dir)
                    for name, (form, rank) in forms.items() if only is None or form in only}
    ir = o3_irreps(L)
    d = 2 * (L + 1) ** 2
    forms = {f"CP R=7L²={paper_rank(L)}": ("cp", paper_rank(L)),
             f"CP R=d²/6={d * d // 6}": ("cp", d * d // 6),
             "e3nn-jax full": ("e3nn", None), "dense matrix": ("exact", None)}
    return ir, {name: ChannelwiseTensorProduct(
        make_tensor_product(form, ir, ir, ir, rank=rank, cache_dir=cache_dir), 1, key=key)
        for name, (form, rank) in forms.items() if only is None or form in only}


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kind", nargs="+", default=["edge", "channelwise"],
                   choices=["edge", "channelwise"])
    p.add_argument("--lmax", type=int, default=4)
    p.add_argument("--lmin", type=int, default=1)
    p.add_argument("--rows", type=int, default=256, help="edges or nodes per call")
    p.add_argument("--channels", type=int, nargs="+", default=[32, 128])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--forms", nargs="+", default=None,
                   choices=["cp", "e3nn", "sh_matrix", "s2grid", "exact"],
                   help="only these forms (default all; 'exact' is the dense matrix form of the "
                   "channel-wise kind)")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    pin_threads(args.threads)

    import e3nn_jax as e3nn
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from sciops.nn import ChannelwiseTensorProduct, equivariance_error

    load_before = os.getloadavg()
    print(f"jax {jax.__version__}, devices {jax.devices()}, threads {args.threads}, "
          f"load before {load_before}", flush=True)
    rows = []
    for kind in args.kind:
        for L in range(args.lmin, args.lmax + 1):
            key = jax.random.key(L)
            ir, products = _products(kind, L, args.cache_dir, key, args.forms)
            d = e3nn.Irreps(ir).dim
            for name, prod in products.items():
                tp = prod.tp if isinstance(prod, ChannelwiseTensorProduct) else prod
                eq = equivariance_error(tp, key=key, n_rotations=4, n_samples=32,
                                        channelwise=kind == "channelwise")
                row = {"kind": kind, "L": L, "dim": d, "product": name,
                       "rank": getattr(tp, "rank", None), "fit_error": tp.relative_error,
                       "equivariance_error": eq}
                for c in args.channels:
                    if isinstance(prod, ChannelwiseTensorProduct):
                        prod_c = ChannelwiseTensorProduct(tp, c, key=key)
                        params, static = eqx.partition(prod_c, eqx.is_array)
                    else:
                        params, static = None, prod

                    def apply(params, x1, x2, static=static):
                        m = static if params is None else eqx.combine(params, static)
                        return jax.vmap(m)(x1, x2)

                    k1, k2, k3 = jax.random.split(jax.random.fold_in(key, c), 3)
                    x1 = jax.random.normal(k1, (args.rows, c, d))
                    x2 = jax.random.normal(k2, (args.rows, c, d) if kind == "channelwise"
                                           else (args.rows, d))
                    g = jax.random.normal(k3, (args.rows, c, d))
                    fwd = jax.jit(apply)
                    bwd = jax.jit(jax.grad(lambda p, a, b, g: jnp.sum(apply(p, a, b) * g),
                                           argnums=(1, 2)))
                    row[f"fwd_ms_C{c}"] = 1e3 * _time(fwd, params, x1, x2, repeats=args.repeats)
                    row[f"fwdbwd_ms_C{c}"] = 1e3 * _time(bwd, params, x1, x2, g,
                                                         repeats=args.repeats)
                    mem = bwd.lower(params, x1, x2, g).compile().memory_analysis()
                    row[f"mem_MB_C{c}"] = (getattr(mem, "temp_size_in_bytes", 0) / 2**20
                                           if mem is not None else float("nan"))
                rows.append(row)
                print(json.dumps(row), flush=True)
    load_after = os.getloadavg()
    _print_table(rows, args, load_before, load_after)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "load_before": load_before, "load_after": load_after,
                       "rows_per_call": args.rows, "repeats": args.repeats,
                       "threads": args.threads}, fh, indent=1)
    return rows


def _print_table(rows, args, load_before, load_after):
    chans = args.channels
    print(f"\n{args.rows} rows (edges or nodes) per call, median of {args.repeats}, "
          f"{args.threads} threads; load before {tuple(round(x, 2) for x in load_before)}, "
          f"after {tuple(round(x, 2) for x in load_after)}\n")
    head = ("| kind | L | product | rank | fit error | equiv. error | "
            + " | ".join(f"fwd ms C={c} | fwd+bwd ms C={c} | MB C={c}" for c in chans)
            + f" | fwd+bwd vs fastest exact (C={chans[-1]}) |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for row in rows:
        exact = [r for r in rows if r["kind"] == row["kind"] and r["L"] == row["L"]
                 and r["fit_error"] == 0.0]
        best = min(r[f"fwdbwd_ms_C{chans[-1]}"] for r in exact) if exact else float("nan")
        fe = row["fit_error"]
        fe_s = "n/a (Gaunt)" if fe != fe else f"{fe:.1e}"
        print(f"| {row['kind']} | {row['L']} | {row['product']} | {row['rank'] or '–'} | {fe_s} "
              f"| {row['equivariance_error']:.1e} | "
              + " | ".join(f"{row[f'fwd_ms_C{c}']:.2f} | {row[f'fwdbwd_ms_C{c}']:.2f} | "
                           f"{row[f'mem_MB_C{c}']:.1f}" for c in chans)
              + f" | {best / row[f'fwdbwd_ms_C{chans[-1]}']:.2f}× |")


if __name__ == "__main__":
    main()
