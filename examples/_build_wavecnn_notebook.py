"""Build `examples/wavecnn.ipynb` (run: ``python examples/_build_wavecnn_notebook.py``)."""

from __future__ import annotations

import pathlib

import nbformat

CELLS = [
    ("md", """# A priori compressed CNN wave simulator

This tutorial follows Boukraichi et al., *A priori compression of convolutional neural networks
for wave simulators* (2023), with `sciops`:

1. **Compressed convolutions**: a dense $k\\times k$ kernel against its CP form (1×1, one 1-D
   filter along each axis, 1×1), parameters and FLOPs as the layers report them.
2. **Training** the same simulator with dense and with CP convolutions from scratch: the jobs
   `sciops fit configs/wave2d.yaml` and `sciops fit configs/wave2d_cp.yaml`, run through the
   Python API the CLI calls (`load_config`, `fit`, `load_run`). The first `fit` also makes the
   data with the package's own solver: the 2-D acoustic wave equation
   $u_{tt} = c(\\mathbf{x})^2 \\Delta u$ in a heterogeneous medium, Ricker point sources, an
   absorbing sponge layer, leapfrog finite differences.
3. **Rollouts** on held-out trajectories (`sciops.eval.grid_rollout`, what
   `sciops rollout RUN` runs), one-step and autoregressive, each beside the trivial simulators
   a skeptic would ask for: persistence ("predict no change") and the linear extrapolation
   $2u^n - u^{n-1}$.

Sizes are tiny so that the notebook runs in about a minute on a CPU; the full-size runs are the
two `sciops fit` commands above and `benchmarks/wavecnn_compression.py`. Everything is written
under a temporary folder."""),
    ("code", """# Small sizes (raise them for real results; the configs: 100 trajectories of 60 frames at
# 32^2, width 16, depth 4, 50-step rollouts, 1500 steps).
RES, N_TRAJ, N_FRAMES, STEPS = 20, 24, 16, 120
MODEL = dict(width=8, depth=3, kernel_size=5, history=2, rollout_steps=12)"""),
    ("code", """import pathlib
import tempfile

import numpy as np
from IPython.display import Image, display

from sciops.data import read_hdf5, write_hdf5
from sciops.eval import evaluate_run, grid_rollout
from sciops.train import fit, load_config, load_run

workdir = pathlib.Path(tempfile.mkdtemp(prefix="sciops_wavecnn_"))
# The tutorial's sizes on top of the two configs, as `sciops fit CONFIG key=value ...` takes them.
# refine=1 solves on the stored grid itself (fast, for this tutorial); the default, 2, solves on
# a 2x finer grid so that the data are within ~1 % of the PDE (docs/data.md, convergence).
overrides = [
    f"data.path={workdir / 'wave.h5'}", f"data.generate.n_samples={N_TRAJ}",
    f"data.generate.resolution={RES}", f"data.generate.n_frames={N_FRAMES}",
    "data.generate.frame_dt=0.03", "data.generate.frequency=2.5",
    "data.generate.source_width=0.05", "data.generate.sponge_width=6",
    "data.generate.refine=1", "data.generate.convergence_samples=0",
    f"data.n_train={N_TRAJ - 4}", "data.n_test=4",
    *(f"model.{k}={v}" for k, v in MODEL.items()),
    f"train.steps={STEPS}", f"train.optimizer.warmup_steps={STEPS // 10}",
    f"train.eval_every={STEPS}", f"train.checkpoint_every={STEPS}", "train.eval_batch_size=4",
    "train.progress=false"]
configs = {"full": load_config("configs/wave2d.yaml", overrides),
           "cp": load_config("configs/wave2d_cp.yaml", overrides)}
print(configs["cp"].model)"""),
    ("md", """`load_config` reads the YAML and applies the `dotted.key=value` overrides exactly as the
CLI does; a wrong key or type is an error that names it. The two configs differ only in
`model.conv` (`full` or `cp`) and `model.rank`. Both train with the configs' input noise (one
per-step second difference) and one pushforward step, which keep rollouts stable
(docs/wavecnn.md, "Rollout stability").

## 1. Compressed convolutions
A CP convolution of rank $R$ stands for the dense kernel
$W_{oiab} = \\sum_r V_{or} U_{ri} F^{(y)}_{ra} F^{(x)}_{rb}$. It runs factored, and equals the
dense convolution with that kernel."""),
    ("code", """import jax
import jax.numpy as jnp

from sciops.nn import CPConv, FullConv

key = jax.random.key(0)
full = FullConv(32, 32, (5, 5), key=key)
cp = CPConv(32, 32, (5, 5), rank=8, key=key)
x = jax.random.normal(key, (32, 32, 32))
dense_twin = FullConv(32, 32, (5, 5), weight=cp.full_kernel(), key=key)
print(f"params: full {full.n_params:,}, CP-8 {cp.n_params:,} ({full.n_params / cp.n_params:.0f}x fewer)")
print(f"MFLOPs at 64x64: full {full.flops((64, 64)) / 1e6:.1f}, CP-8 {cp.flops((64, 64)) / 1e6:.2f}")
print("CP vs its dense twin, max |difference|:", float(jnp.abs(cp(x) - dense_twin(x)).max()))"""),
    ("md", """## 2. Train the dense and the CP simulator
`fit` generates `data.path` from the config's `data.generate` section if the file does not
exist (the first run makes it, the second checks that it was made with the same parameters),
trains with the sharded driver (checkpoints, metrics log `metrics.jsonl`, evaluation on the test
split) and writes a run folder. The family's loss draws one random window per trajectory
(`history` frames in, the next frame out); it is the mean squared one-step error in units of the
per-step second difference."""),
    ("code", """import json

results = {name: fit(config, out=workdir / name) for name, config in configs.items()}
for name, r in results.items():
    log = [json.loads(line) for line in (r.run_dir / "metrics.jsonl").read_text().splitlines()]
    loss = [rec["loss"] for rec in log if rec["split"] == "train"]
    print(f"{name}: training loss {loss[0]:.3f} at step 10 -> {loss[-1]:.3f} at step {STEPS}, "
          f"run folder {r.run_dir.name}/: "
          + ", ".join(sorted(p.name for p in r.run_dir.iterdir() if not p.name.startswith("."))))"""),
    ("md", """The data set the first `fit` made: frames `u` `(n, time, y, x)` and the wave speed `c`
`(n, 1, y, x)`. Frames start once the sources have stopped, so a simulator that sees only frames
and $c$ can predict them."""),
    ("code", """import matplotlib.pyplot as plt

data = read_hdf5(workdir / "wave.h5", lazy=False)
print(data)
arrays = data.load()
u, c = arrays["u"], arrays["c"]
fig, axes = plt.subplots(1, 5, figsize=(12, 2.6))
axes[0].imshow(c[0, 0]); axes[0].set_title("wave speed c")
for ax, t in zip(axes[1:], np.linspace(0, N_FRAMES - 1, 4).astype(int)):
    ax.imshow(u[0, t], cmap="RdBu_r", vmin=-abs(u[0]).max(), vmax=abs(u[0]).max())
    ax.set_title(f"frame {t}")
for ax in axes: ax.set_xticks([]); ax.set_yticks([])"""),
    ("md", """## 3. Rollouts beside the trivial simulators
`load_run` restores a run folder (config, family, last checkpoint); `grid_rollout` is what
`sciops rollout RUN --data FILE` runs. It rolls the model and the two baselines through the
same protocol and writes the predicted frames, per-step errors (CSV/JSON) and figures. The
held-out trajectories are the last 4 of the data set (the runs' test split), written to their
own file. `boundary="model"` keeps the model's own values on the outermost ring of nodes, as the
runs' test metrics do (`sciops rollout`'s default, `truth`, imposes the true ring instead), so
that the one-step and rollout errors below are those `fit` reported."""),
    ("code", """n_test = configs["full"].data.n_test
test_file = write_hdf5(workdir / "wave_test.h5", {k: v[-n_test:] for k, v in arrays.items()},
                       field_attrs=data.field_attrs)
steps = MODEL["rollout_steps"]
runs = {name: load_run(r.run_dir) for name, r in results.items()}
scores = {}
for name, run in runs.items():
    forced = grid_rollout(run, test_file, mode="teacher_forced", boundary="model", steps=steps,
                          out_dir=workdir / name / "one_step", progress=False, plots=False)
    free = grid_rollout(run, test_file, boundary="model", steps=steps,
                        out_dir=workdir / name / "rollout", progress=False, animation=False,
                        plots=name == "cp")  # the snapshot figure of the CP model's rollout
    scores[name] = (forced, free)
rows = [(f"{name} ({run.model.conv_params:,} conv params)", scores[name][0]["rel_l2_total"],
         scores[name][1]["rel_l2_total"], scores[name][1]["rel_l2_final"])
        for name, run in runs.items()]
forced, free = scores["full"]
rows += [(b.replace("_", " "), forced["baselines"][b]["rel_l2_total"],
          free["baselines"][b]["rel_l2_total"], free["baselines"][b]["rel_l2_final"])
         for b in forced["baselines"]]
print(f"relative L2 on {n_test} held-out trajectories   one-step   rollout ({steps} steps)   "
      "last frame")
for label, one, roll, last in rows:
    print(f"{label:<42}{one:>9.4f}{roll:>22.4f}{last:>13.4f}")"""),
    ("md", """*One-step* is the teacher-forced error pooled over the first `rollout_steps` steps
(every step starts from true frames); *rollout* is the autoregressive error pooled over the
same steps, from the first `history` true frames; *last frame* the rollout's error at its last
step. The models' rows equal the runs' own test metrics `l2` and `rollout_l2`.

What the numbers say at this size (120 optimizer steps, width 8, 20 training trajectories at
20²): one step ahead both simulators are about three times better than persistence and about
1.5 times better than the linear extrapolation. Over 12 autoregressive steps their errors grow
to the order of the field itself (a relative error of 1 is what predicting zero everywhere
would score): still below persistence, whose error exceeds 1 once the waves have moved on, and
far below the linear extrapolation, which blows up, but not a usable simulator; the CP model,
with 7x fewer convolution parameters, is behind the dense one. These tiny runs show the
workflow, not the method's accuracy: the full-size study (1500 steps, width 16, 90
trajectories; `benchmarks/wavecnn_compression.py`) is where that is measured. The figures of
the runs and of the CP rollout:"""),
    ("code", """for name, r in results.items():
    for png in sorted(r.run_dir.glob("*.png")):  # loss curve, test predictions
        print(name, png.name)
        display(Image(filename=str(png)))
for png in sorted((workdir / "cp" / "rollout").glob("*.png")):  # truth / rollout / error
    display(Image(filename=str(png)))"""),
    ("md", """`evaluate_run` is what `sciops evaluate RUN` prints: the run's test metrics, recomputed
from the last checkpoint."""),
    ("code", """print(evaluate_run(results["cp"].run_dir, plots=False))"""),
    ("md", """The compression study at full size (parameters, FLOPs, memory, training time, 1-step
and 50-step errors, train/test gap, CPU inference time) is `benchmarks/wavecnn_compression.py`;
its table is in the benchmarks page."""),
]


def main(path: str | pathlib.Path | None = None) -> None:
    path = pathlib.Path(__file__).with_name("wavecnn.ipynb") if path is None else path
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                for kind, src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, path)


if __name__ == "__main__":
    main()
