"""Multi-grid patching: peak memory per device of a training step, and the test error.

For 1, 4 and 16 patches (1, 2, 4 per side) on NS-2D at 64² (periodic, so patches wrap around),
the training step of a TFNO is compiled for a batch of 8 samples sharded over 4 (virtual CPU)
devices, and the executable's own memory analysis gives the bytes one device needs (arguments
+ outputs + temporaries − aliased). With ``mg_train: one`` a sample is one random patch per
field, so the activations per device shrink with the patch; with ``all`` every patch of every
field is a sample and the memory per device stays that of whole fields. Each configuration is
then trained for the same steps and evaluated on whole test fields (stitched), against the
unpatched model (target: error <= 1.2x the unpatched error).

    python benchmarks/mg_memory.py --no-all-training
    # overlap 1/4 and the patch FNO's domain padding 1/4 (lower error, more memory)
    python benchmarks/mg_memory.py --no-all-training --padding 0.25 --patch-domain-padding 0.25
    python benchmarks/mg_memory.py --memory-only      # the compiled steps' memory only
"""

from __future__ import annotations

import os

# 4 virtual CPU devices for the sharded compile; must be set before JAX starts
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import argparse  # noqa: E402
import json  # noqa: E402

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

# run as `python benchmarks/mg_memory.py`: its folder is on sys.path
from _tfno_common import FNO, evaluate, load, model_config, navier_stokes, total_params, train  # noqa: E402
from jax.sharding import NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from sciops.train import OptimizerConfig, make_optimizer  # noqa: E402


def step_memory(config, data, batch_size: int = 8) -> dict[str, int]:
    """Bytes per device of one compiled, data-sharded training step."""
    mesh = jax.make_mesh((len(jax.devices()),), ("data",),
                         axis_types=(jax.sharding.AxisType.Auto,))
    model = FNO.build(config, data, key=jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt = make_optimizer(OptimizerConfig(lr=1e-3), 100)
    state = opt.init(params)

    def step(params, state, batch, key):
        def f(p):
            return FNO.loss(config, eqx.combine(p, static), batch, key=key)[0]
        value, grads = jax.value_and_grad(f)(params)
        updates, state = opt.update(grads, state, params)
        return eqx.apply_updates(params, updates), state, value

    arrays = data.take(np.arange(batch_size))
    batch = {k: jax.device_put(v, NamedSharding(mesh, P("data"))) for k, v in arrays.items()}
    replicated = NamedSharding(mesh, P())
    params, state = jax.device_put((params, state), replicated)
    compiled = jax.jit(step).lower(params, state, batch, jax.random.key(1)).compile()
    m = compiled.memory_analysis()
    peak = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
            - m.alias_size_in_bytes)
    return {"temp_bytes": int(m.temp_size_in_bytes), "peak_bytes": int(peak)}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--n-test", type=int, default=50)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--modes", type=int, default=16)
    parser.add_argument("--padding", type=float, default=0.125,
                        help="patch overlap (mg_padding), fraction of the patch size")
    parser.add_argument("--patch-domain-padding", type=float, default=0.0,
                        help="the patch FNO's domain padding (model.padding) for the patched "
                             "runs: a padded patch is not periodic, unlike the torus the "
                             "unpatched model sees")
    parser.add_argument("--patch-steps", type=float, default=1.0,
                        help="training steps of a patched run as a multiple of --steps (the "
                             "patched runs see 1/patches of the pixels per step with "
                             "mg_train: one)")
    parser.add_argument("--equal-pixels", action="store_true",
                        help="train a run of p x p patches for p^2 * --steps steps (one patch per "
                             "field per step: the same number of pixels as the unpatched run)")
    parser.add_argument("--sides", default="1,2,4",
                        help="patches per side to run, comma-separated (1 = unpatched)")
    parser.add_argument("--no-all-training", action="store_true",
                        help="for mg_train=all measure the memory only (no training run)")
    parser.add_argument("--memory-only", action="store_true",
                        help="measure the compiled step's memory only (no training runs)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    data = navier_stokes(args.n_train + args.n_test, 64, 1e-3)
    train_set = data.subset(slice(0, args.n_train))
    test_set = data.subset(slice(args.n_train, args.n_train + args.n_test))
    base = dict(n_modes=[args.modes, args.modes], hidden_channels=args.width, n_layers=4,
                lifting_channels=2 * args.width, projection_channels=2 * args.width,
                factorization="tucker", rank=0.1)
    sides = {int(v) for v in args.sides.split(",")}
    runs = [r for r in [(1, "one"), (2, "one"), (4, "one"), (2, "all"), (4, "all")]
            if r[0] in sides]
    print(f"NS-2D 64^2 nu=1e-3, TFNO (Tucker 0.1, width {args.width}, modes {args.modes}); "
          f"{args.steps} steps of batch {args.batch_size} (patched: x{args.patch_steps:g}), patch "
          f"overlap {args.padding:g}, patch domain padding {args.patch_domain_padding:g}; "
          f"{len(jax.devices())} devices; "
          f"{load()}", flush=True)
    rows = []
    for p, mode in runs:
        mg = {} if p == 1 else dict(mg_patches=p, mg_levels={2: 1, 4: 2}[p],
                                    mg_padding=args.padding, mg_boundary="periodic",
                                    mg_train=mode, padding=args.patch_domain_padding)
        cfg = model_config(**base, **mg)
        mem = step_memory(cfg, train_set, args.batch_size)
        row = dict(patches=p * p, levels=mg.get("mg_levels", 0), train=mode if p > 1 else "-",
                   **mem, l2=float("nan"), h1=float("nan"), s_per_step=float("nan"))
        if not (args.memory_only or (mode == "all" and args.no_all_training)):
            steps = (args.steps if p == 1 else p * p * args.steps if args.equal_pixels
                     else int(round(args.patch_steps * args.steps)))
            model, step_s = train(cfg, train_set, steps, batch_size=args.batch_size)
            err = evaluate(cfg, model, test_set)
            row.update(steps=steps, params=total_params(model), l2=err["l2"], h1=err["h1"],
                       s_per_step=step_s)
        row["load"] = os.getloadavg()[0]
        rows.append(row)
        print(json.dumps(row), flush=True)
    base_row = rows[0]  # the unpatched run when it is in --sides
    if args.memory_only:
        base_row = {**base_row, "l2": float("nan")}
    print("\n| patches | levels | training samples | steps | peak MiB / device | temp MiB | "
          "vs unpatched | test rel. L2 | vs unpatched | rel. H1 | s / step |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['patches']} | {r['levels']} | {r['train']} | {r.get('steps', '-')} | "
              f"{r['peak_bytes'] / 2**20:.1f} | "
              f"{r['temp_bytes'] / 2**20:.1f} | {r['peak_bytes'] / base_row['peak_bytes']:.2f}x | "
              f"{100 * r['l2']:.2f} % | {r['l2'] / base_row['l2']:.2f}x | {100 * r['h1']:.2f} % | "
              f"{r['s_per_step']:.3f} |")
    print(f"\n{load()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
