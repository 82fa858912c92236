"""Build `examples/wavecnn.ipynb` (run: ``python examples/_build_wavecnn_notebook.py``)."""

from __future__ import annotations

import pathlib

import nbformat

CELLS = [
    ("md", """# A priori compressed CNN wave simulator

This tutorial follows Boukraichi et al., *A priori compression of convolutional neural networks
for wave simulators* (2023), with `sciops`:

1. **Data** from the package's own solver: the 2-D acoustic wave equation
   $u_{tt} = c(\\mathbf{x})^2 \\Delta u$ in a heterogeneous medium, Ricker point sources, an
   absorbing sponge layer, leapfrog finite differences (second order in space and time).
2. **Compressed convolutions**: a dense $k\\times k$ kernel against its CP form (1×1, one 1-D
   filter along each axis, 1×1), parameters and FLOPs as the layers report them.
3. **Training** the same simulator with dense and with CP convolutions from scratch, then
   rolling both out autoregressively.

Sizes are tiny so that the notebook runs in about a minute on a CPU; the full-size runs are
`sciops fit configs/wave2d.yaml`, `sciops fit configs/wave2d_cp.yaml` and
`benchmarks/wavecnn_compression.py`."""),
    ("code", """# Small sizes (raise them for real results).
RES, N_TRAJ, N_FRAMES, STEPS = 20, 24, 16, 120
MODEL = dict(width=8, depth=3, kernel_size=5, history=2, rollout_steps=12)"""),
    ("code", """import pathlib
import tempfile

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from sciops.data import read_hdf5
from sciops.models import family
from sciops.models.wavecnn import WaveCNNConfig, rollout
from sciops.nn import CPConv, FullConv
from sciops.pde import problem
from sciops.pde.wave import WaveConfig

workdir = pathlib.Path(tempfile.mkdtemp())"""),
    ("md", """## 1. Wave data
`problem("wave")` simulates `N_TRAJ` trajectories and writes the frames `u` `(n, time, y, x)`
and the wave speed `c` `(n, 1, y, x)` to an HDF5 file. Frames start once the sources have
stopped, so a simulator that sees only frames and $c$ can predict them."""),
    ("code", """# refine=1 solves on the stored grid itself (fast, for this tutorial); the default, 2, solves
# on a 2x finer grid so that the data are within ~1 % of the PDE (docs/data.md, convergence)
cfg = WaveConfig(n_samples=N_TRAJ, resolution=RES, n_frames=N_FRAMES, frame_dt=0.03,
                 frequency=2.5, source_width=0.05, sponge_width=6, refine=1,
                 convergence_samples=0)
problem("wave").generate(cfg, workdir / "wave.h5", progress=False)
data = read_hdf5(workdir / "wave.h5", lazy=False)
print(data)
u, c = data.load()["u"], data.load()["c"]
fig, axes = plt.subplots(1, 5, figsize=(12, 2.6))
axes[0].imshow(c[0, 0]); axes[0].set_title("wave speed c")
for ax, t in zip(axes[1:], (0, 5, 10, 15)):
    ax.imshow(u[0, t], cmap="RdBu_r", vmin=-abs(u[0]).max(), vmax=abs(u[0]).max())
    ax.set_title(f"frame {t}")
for ax in axes: ax.set_xticks([]); ax.set_yticks([])"""),
    ("md", """## 2. Compressed convolutions
A CP convolution of rank $R$ stands for the dense kernel
$W_{oiab} = \\sum_r V_{or} U_{ri} F^{(y)}_{ra} F^{(x)}_{rb}$. It runs factored, and equals the
dense convolution with that kernel."""),
    ("code", """key = jax.random.key(0)
full = FullConv(32, 32, (5, 5), key=key)
cp = CPConv(32, 32, (5, 5), rank=8, key=key)
x = jax.random.normal(key, (32, 64, 64))
dense_twin = FullConv(32, 32, (5, 5), weight=cp.full_kernel(), key=key)
print(f"params: full {full.n_params:,}, CP-8 {cp.n_params:,} ({full.n_params / cp.n_params:.0f}x fewer)")
print(f"MFLOPs at 64x64: full {full.flops((64, 64)) / 1e6:.1f}, CP-8 {cp.flops((64, 64)) / 1e6:.2f}")
print("CP vs its dense twin, max |difference|:", float(jnp.abs(cp(x) - dense_twin(x)).max()))"""),
    ("md", """## 3. Train dense and CP simulators
The family's loss draws one random window per trajectory (`history` frames in, the next frame
out). A minimal loop over it (the `sciops fit` driver adds sharding, checkpoints, logging):"""),
    ("code", """fam = family("wavecnn")
train, test = data.subset(np.arange(N_TRAJ - 4)), data.subset(np.arange(N_TRAJ - 4, N_TRAJ))


def fit(config, steps=STEPS, lr=3e-3, batch=8, seed=0):
    model = fam.build(config, train, key=jax.random.key(seed))
    opt = optax.adam(optax.cosine_decay_schedule(lr, steps))
    state = opt.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def step(model, state, batch, key):
        grads, _ = eqx.filter_grad(lambda m: fam.loss(config, m, batch, key=key), has_aux=True)(model)
        updates, state = opt.update(grads, state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), state

    arrays, rng, key = train.load(), np.random.default_rng(seed), jax.random.key(seed + 1)
    for _ in range(steps):
        idx = rng.choice(len(train), batch, replace=False)
        key, sub = jax.random.split(key)
        model, state = step(model, state, {k: v[idx] for k, v in arrays.items()}, sub)
    return model


metrics = eqx.filter_jit(fam.metrics)  # compiled once per model: op by op it compiles each op
test_batch = {k: jnp.asarray(v) for k, v in test.load().items()}
results, models = {}, {}
for name, config in [("full", WaveCNNConfig(conv="full", **MODEL)),
                     ("cp-4", WaveCNNConfig(conv="cp", rank=4, **MODEL))]:
    untrained = metrics(config, fam.build(config, train, key=jax.random.key(0)), test_batch)
    models[name] = model = fit(config)
    m = metrics(config, model, test_batch)
    results[name] = {"conv_params": model.conv_params,
                     "l2_untrained": float(untrained["l2"].mean()),
                     "l2": float(m["l2"].mean()), "rollout_l2": float(m["rollout_l2"].mean())}
print(results)"""),
    ("md", """`l2` is the one-step relative error on held-out trajectories (`l2_untrained`: the
initial model, close to the leapfrog extrapolation $2u^n - u^{n-1}$), `rollout_l2` the error of
the autoregressive rollout. Roll both models out on one test trajectory:"""),
    ("code", """from sciops.plot import Column, plot_fields

k, steps = MODEL["history"], MODEL["rollout_steps"]
traj, speed = test_batch["u"][0], test_batch["c"][0]
preds = {name: eqx.filter_jit(rollout)(m, traj[:k], speed, steps) for name, m in models.items()}
times = [0, steps // 3, 2 * steps // 3, steps - 1]
truth = np.asarray(traj)[[k + t for t in times]]
plot_fields([Column("truth u", truth, scale="u", diverging=True)]
            + [Column(f"{name} rollout u", np.asarray(preds[name])[times], scale="u",
                      diverging=True) for name in ("full", "cp-4")],
            row_labels=[f"test trajectory 0, step {t + 1}" for t in times],
            title="Rollouts of the full and the CP (rank 4) simulator");"""),
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
