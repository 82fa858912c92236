"""Memory levers per family (issue #23, part 3): activation memory of one forward+backward in
float32, bfloat16, with block rematerialisation and with both, and the test error of a short
identical training in float32 and in bfloat16 + remat, beside the trivial baseline.

What is measured (docs/memory.md says why both):

- **saved activations**: the bytes the forward pass keeps for the backward pass,
  `sciops.nn.saved_activation_bytes` of the training loss (`sciops.train.make_loss`), without
  the residuals that are the loss's own arguments (parameters, batch). Backend-independent:
  what a GPU holds between the passes.
- **CPU temp**: `memory_analysis().temp_size_in_bytes` of the compiled value-and-gradient on
  this machine's XLA CPU backend (peak of its temporary buffers, activations included).

Each family is measured at one size where activations outweigh parameters (a batch of the
prepared samples of a small generated data set, tiled to `--batch` samples; memory is read from
the compiled program, nothing runs). The training runs `sciops.fit` twice on the same small
data set with the same seed and steps, `train.precision`/`train.remat` switched; the baseline
is the same model with every trainable leaf zero, i.e. the fitted normalisers alone (the mean
field for FNO and DeepONet, the mean change for the mesh simulators, per-species energy shifts
and zero forces for the potential; for the wave CNN its last layer zero: the leapfrog
extrapolation).

Run: ``python benchmarks/memory_levers.py [--families fno ...] [--steps 300] [--no-train]
[--no-memory]``
(writes benchmarks/memory_levers.json).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import tempfile
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from sciops import fit
from sciops.models import family
from sciops.nn import MemoryPolicy, saved_activation_bytes
from sciops.train import (
    config_from_dict,
    evaluate_dataset,
    make_loss,
    prepare_data,
    trainable_filter,
)

HERE = pathlib.Path(__file__).parent
DATA = pathlib.Path(os.environ.get("SCIOPS_BENCH_DATA", tempfile.gettempdir())) / "memlev-data"

# family: (data.generate, model section for the memory size, model section for training,
#          n_test, the metric reported)
_MESH = {"problem": "transport", "n_trajectories": 10, "n_steps": 8, "h": 0.1, "dt": 0.04,
         "xdmf": False}
CASES = {
    "fno": ({"problem": "darcy", "n_samples": 56, "resolution": 32},
            {"n_modes": [8, 8], "hidden_channels": 32, "n_layers": 4, "lifting_channels": 32,
             "projection_channels": 32},
            {"n_modes": [8, 8], "hidden_channels": 16, "n_layers": 4,
             "lifting_channels": 16, "projection_channels": 16}, 8, "rel_l2"),
    "deeponet": ({"problem": "darcy_masked", "n_samples": 56, "resolution": 24,
                  "geometries": ["square", "disk"]},
                 {"input_key": "f", "mask_key": "mask", "task_key": "geometry",
                  "task_names": ["square", "disk"], "branch_width": 64, "branch_depth": 3,
                  "trunk_width": 128, "trunk_depth": 4, "latent": 32},
                 {"input_key": "f", "mask_key": "mask", "task_key": "geometry",
                  "task_names": ["square", "disk"], "branch_width": 32, "branch_depth": 2,
                  "trunk_width": 32, "trunk_depth": 2, "latent": 16}, 8, None),
    "meshformer": (_MESH, {"state_fields": ["concentration"], "output_fields": [],
                           "width": 64, "heads": 4, "n_layers": 4, "n_global": 1,
                           "random_walk_pe": 4, "edge_multiple": 64, "eval_rollout_steps": 2},
                   {"state_fields": ["concentration"], "output_fields": [],
                    "width": 16, "heads": 2, "n_layers": 2, "n_global": 1,
                    "random_walk_pe": 4, "edge_multiple": 64, "eval_rollout_steps": 2}, 2, None),
    "meshgraphnet": (_MESH, {"state_fields": ["concentration"], "output_fields": [],
                             "latent": 64, "message_passing_steps": 6, "mlp_depth": 2,
                             "edge_multiple": 64, "eval_rollout_steps": 2},
                     {"state_fields": ["concentration"], "output_fields": [],
                      "latent": 16, "message_passing_steps": 3, "mlp_depth": 1,
                      "edge_multiple": 64, "eval_rollout_steps": 2}, 2, None),
    "wavecnn": ({"problem": "wave", "n_samples": 12, "resolution": 32, "n_frames": 8,
                 "frame_dt": 0.03, "sponge_width": 4, "source_width": 0.05},
                {"width": 32, "depth": 6, "kernel_size": 3, "history": 2, "rollout_steps": 2},
                {"width": 8, "depth": 3, "kernel_size": 3, "history": 2, "rollout_steps": 2},
                2, None),
    "mlip": ({"problem": "atoms", "n_samples": 24, "repeat": 1, "equilibration_steps": 4,
              "sample_every": 2, "temperatures": [300.0, 600.0]},
             {"cutoff": 3.0, "lmax": 2, "channels": 16, "n_layers": 4, "n_basis": 8,
              "radial_hidden": 16, "readout_hidden": 16, "max_neighbors": 16},
             {"cutoff": 3.0, "lmax": 1, "channels": 8, "n_layers": 2, "n_basis": 6,
              "radial_hidden": 16, "readout_hidden": 16, "max_neighbors": 16}, 4, None),
}
POLICIES = {"float32": MemoryPolicy(), "bf16": MemoryPolicy("bfloat16"),
            "remat": MemoryPolicy(None, "nothing_saveable"),
            "bf16+remat": MemoryPolicy("bfloat16", "nothing_saveable")}
TRAIN_BATCH = {"meshformer": 4, "meshgraphnet": 4}  # (8 training trajectories)
TRAIN_SWITCHES = {"float32": {}, "bf16+remat": {"precision": "bfloat16", "remat": "blocks"}}


def _raw(name: str, model: dict, steps: int, batch: int) -> dict:
    gen, _, _, n_test, _ = CASES[name]
    tag = hashlib.sha1(json.dumps(gen, sort_keys=True).encode()).hexdigest()[:10]
    return {"name": f"memlev-{name}", "seed": 0,
            "data": {"path": str(DATA / f"{gen['problem']}-{tag}.h5"),
                     "generate": gen, "n_test": n_test},
            "model": {"family": name, **model},
            "train": {"steps": steps, "batch_size": batch, "eval_batch_size": 8,
                      "log_every": 50, "progress": False, "mesh": {"data": 1},
                      "trackers": [], "optimizer": {"lr": 3e-3, "warmup_steps": 10}}}


def measure_memory(name: str, batch_size: int) -> dict:
    gen, model_section, _, _, _ = CASES[name]
    config = config_from_dict(_raw(name, model_section, 1, 2))
    DATA.mkdir(parents=True, exist_ok=True)
    bundle = prepare_data(config.data, progress=False)
    fam = family(name)
    model = fam.build(config.model, bundle.train, key=jax.random.key(0))
    data = fam.prepare(config.model, bundle.train) if fam.prepare is not None else bundle.train
    small = data.take(np.arange(2))
    reps = -(-batch_size // 2)
    batch = {k: jnp.asarray(np.concatenate([v] * reps)[:batch_size]) for k, v in small.items()}
    params, frozen = eqx.partition(model, trainable_filter(model, base=fam.trainable(model)))
    key = jax.random.key(1)
    out = {"batch": batch_size, "model": model_section,
           "param_bytes": int(sum(x.nbytes for x in jax.tree.leaves(params)))}
    for tag, policy in POLICIES.items():
        loss = make_loss(fam, config.model, policy)
        grad = jax.jit(jax.value_and_grad(loss, has_aux=True))
        t0 = time.perf_counter()
        compiled = grad.lower(params, frozen, batch, key).compile()
        out[tag] = {"saved_activation_bytes": saved_activation_bytes(
            lambda p, loss=loss: loss(p, frozen, batch, key)[0], params),
                    "cpu_temp_bytes": int(compiled.memory_analysis().temp_size_in_bytes),
                    "compile_s": round(time.perf_counter() - t0, 1)}
        print(name, tag, out[tag], flush=True)
    return out


def _zero(name: str, model, spec):
    """The baseline: every trainable leaf zero (the wave CNN: its last layer zero, so the
    network adds nothing to the leapfrog extrapolation; zeroing all of it divides by zero)."""
    if name == "wavecnn":
        return eqx.tree_at(lambda m: (m.project.weight, m.project.bias), model,
                           replace_fn=jnp.zeros_like)
    params, frozen = eqx.partition(model, spec)
    return eqx.combine(jax.tree.map(jnp.zeros_like, params), frozen)


def train_pair(name: str, steps: int, batch: int, out_root: pathlib.Path) -> dict:
    _, _, model_section, _, _ = CASES[name]
    fam = family(name)
    batch = min(batch, TRAIN_BATCH.get(name, batch))
    result = {"steps": steps, "batch": batch, "model": model_section}
    final = None
    for tag, switches in TRAIN_SWITCHES.items():
        raw = _raw(name, model_section, steps, batch)
        raw["train"].update(switches)
        config = config_from_dict(raw)
        t0 = time.perf_counter()
        run = fit(config, out=out_root / f"{name}-{tag}")
        result[tag] = {"metrics": run.metrics, "wall_s": round(time.perf_counter() - t0, 1)}
        print(name, tag, result[tag], flush=True)
        final = (config, run)
    config, run = final
    bundle = prepare_data(config.data, progress=False)
    tests = {k: fam.prepare(config.model, v) if fam.prepare is not None else v
             for k, v in bundle.tests.items()}
    zero = _zero(name, run.model, trainable_filter(run.model, base=fam.trainable(run.model)))
    result["baseline"] = {f"{k}/{m}": v for k, ds in tests.items()
                          for m, v in evaluate_dataset(fam, config.model, zero, ds, 8).items()}
    print(name, "baseline", result["baseline"], flush=True)
    return result


def main(families=tuple(CASES), steps: int = 300, batch: int = 8, memory_batch: int = 32,
         train: bool = True, memory: bool = True, out: str | None = None) -> dict:
    results = {"load": os.getloadavg(), "device": str(jax.devices()[0]),
               "steps": steps, "families": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in families:
            entry = {"memory": measure_memory(name, memory_batch)} if memory else {}
            if train:
                entry["training"] = train_pair(name, steps, batch, pathlib.Path(tmp))
            results["families"][name] = entry
    results["load_end"] = os.getloadavg()
    path = pathlib.Path(out) if out else HERE / "memory_levers.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    return results


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--families", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--memory-batch", type=int, default=32)
    p.add_argument("--no-train", action="store_true")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    main(tuple(a.families), a.steps, a.batch, a.memory_batch, not a.no_train, not a.no_memory,
         a.out)
