"""Bytes communicated per training step and peak memory per device, from the compiled HLO:
data-parallel vs domain-decomposed FNO, against the analytic minimum of an all-to-all FFT.

Runs on virtual CPU devices (the partitioning XLA chooses is the same program a multi-GPU run
gets; only the timings would differ), so it needs no accelerator:

    python benchmarks/distributed_comm.py            # 4 devices, 128² and 512²
    python benchmarks/distributed_comm.py --sizes 128 --devices 4

Per step it compiles `value_and_grad` of a relative-L2 loss of the FNO for a global batch on a
mesh `{data: p}` (data parallel) and `{space: p}` (domain decomposed), sums the result sizes of
every collective in the optimised HLO (all-reduce, all-gather, all-to-all, collective-permute,
reduce-scatter) — bytes that leave or enter a device — and reads the peak device memory from
`compiled.memory_analysis()`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys


def _setup(devices: int) -> None:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={devices}")


_OPS = ("all-reduce", "all-gather", "all-to-all", "collective-permute", "reduce-scatter")
_SHAPE = re.compile(r"([a-z]+\d*)\[([\d,]*)\]")
_BYTES = {"f32": 4, "c64": 8, "f64": 8, "c128": 16, "s32": 4, "bf16": 2, "f16": 2, "pred": 1}


def collectives(hlo: str):
    """(op, dtype, elements) of every result of every collective instruction in an HLO text
    (a combined collective returns a tuple: each element counts)."""
    for line in hlo.splitlines():
        for op in _OPS:
            for call in (f" {op}(", f" {op}-start("):
                if call in line and "=" in line:
                    result = line[line.index("=") + 1:line.index(call)]
                    for dtype, dims in _SHAPE.findall(result):
                        n = 1
                        for d in dims.split(","):
                            if d:
                                n *= int(d)
                        yield op, dtype, n


def collective_bytes(hlo: str) -> dict[str, int]:
    """Sum of the result sizes (bytes, per device) of each kind of collective in an HLO text."""
    out = dict.fromkeys(_OPS, 0)
    for op, dtype, n in collectives(hlo):
        out[op] += n * _BYTES.get(dtype, 4)
    return out


def largest_collective(hlo: str) -> int:
    """Elements in the largest result of any collective (a gathered field would show here)."""
    return max((n for _, _, n in collectives(hlo)), default=0)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 512])
    p.add_argument("--devices", type=int, default=4)
    p.add_argument("--batch", type=int, default=4, help="global batch")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--modes", type=int, default=16)
    args = p.parse_args(argv)
    if "jax" not in sys.modules:
        _setup(args.devices)
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    from sciops.models.fno import FNO
    from sciops.nn import batch_vmap

    pdev = args.devices
    rows = []
    for s in args.sizes:
        model = FNO(1, 1, (args.modes, args.modes), hidden_channels=args.width, n_layers=4,
                    lifting_channels=2 * args.width, projection_channels=2 * args.width,
                    positional_embedding=False, key=jax.random.key(0))
        params, static = eqx.partition(model, eqx.is_inexact_array)
        n_params = sum(x.size for x in jax.tree.leaves(params))
        x = jnp.ones((args.batch, 1, s, s))
        y = jnp.ones((args.batch, 1, s, s))

        def loss(params, x, y, static=static):
            m = eqx.combine(params, static)
            pred = batch_vmap(m)(x)
            return jnp.mean(jnp.sum((pred - y) ** 2, axis=(1, 2, 3)) / jnp.sum(y ** 2, (1, 2, 3)))

        layouts = [("data-parallel", (pdev, 1), P("data"))]
        layouts += [(f"domain-decomposed, space={q}", (1, q), P(None, None, "space"))
                    for q in (1, 2, 4) if q <= pdev and q != 1] + [
                    ("single device", (1, 1), P())]
        for layout, shape, spec in layouts:
            mesh = jax.make_mesh(shape, ("data", "space"), axis_types=(AxisType.Auto,) * 2,
                                 devices=jax.devices()[:shape[0] * shape[1]])
            xs = jax.device_put(x, NamedSharding(mesh, spec))
            ys = jax.device_put(y, NamedSharding(mesh, spec))
            ps = jax.device_put(params, NamedSharding(mesh, P()))
            with jax.set_mesh(mesh):
                compiled = jax.jit(jax.value_and_grad(loss)).lower(ps, xs, ys).compile()
            hlo = compiled.as_text()
            comm = collective_bytes(hlo)
            mem = compiled.memory_analysis()
            peak = (mem.temp_size_in_bytes + mem.argument_size_in_bytes +
                    mem.output_size_in_bytes - mem.alias_size_in_bytes)
            field_elems = args.batch * args.width * s * s
            biggest = max(largest_collective(hlo), 0)
            rows.append({"size": s, "layout": layout, "devices": shape[0] * shape[1],
                         "params": n_params, "comm_bytes": sum(comm.values()), **comm,
                         "peak_bytes": peak,
                         "largest_collective_vs_field": biggest / field_elems})
        # The analytic minimum of a slab all-to-all FFT: per transform every device sends and
        # receives (p-1)/p of its slab of the complex field; a Fourier layer needs a forward and
        # an inverse transform, in the forward pass and again in the backward pass.
        field = args.batch * args.width * s * (s // 2 + 1) * 8 / pdev  # c64 slab per device
        rows.append({"size": s, "layout": "all-to-all FFT minimum (4 layers, fwd+bwd)",
                     "devices": pdev, "params": n_params,
                     "comm_bytes": 4 * 2 * 2 * field * (pdev - 1) / pdev})
    print(f"load average: {os.getloadavg()}")
    print("| grid | layout | devices | MB communicated / step | peak MB / device | "
          "largest collective / field |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        peak = r.get("peak_bytes")
        frac = r.get("largest_collective_vs_field")
        print(f"| {r['size']}² | {r['layout']} | {r['devices']} | {r['comm_bytes'] / 1e6:.2f} | "
              f"{'' if peak is None else f'{peak / 1e6:.1f}'} | "
              f"{'' if frac is None else f'{frac:.3f}'} |")
    return rows


if __name__ == "__main__":
    main()
