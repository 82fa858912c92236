"""Build `examples/tfno.ipynb`, the TFNO / MG-TFNO tutorial (run: python examples/_build_tfno_notebook.py).

The notebook is generated from the cells below so that it stays reviewable as code; the test
`tests/test_examples_tfno.py` executes the generated notebook at its small default size.
"""

from __future__ import annotations

import pathlib

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    ("md", """# Tensorized and multi-grid Fourier neural operators (TFNO, MG-TFNO)

This tutorial follows Kossaifi et al., *Multi-Grid Tensorized Fourier Neural Operator for
High-Resolution PDEs* (TMLR 2024) with sciops:

1. the spectral weights of an FNO in CP, Tucker and tensor-train form, jointly for all layers;
2. compression against error on 2-D Navier–Stokes data made by `sciops.pde.navier_stokes`;
3. multi-grid patching: patches with coarser context, trained as independent samples, stitched;
4. zero-shot super-resolution.

The sizes in the next cell are tiny so that the notebook runs in about a minute on a laptop
CPU; raise them (and `STEPS`) for meaningful errors, or use `configs/mg_tfno_navier_stokes.yaml`
with `sciops fit`."""),
    ("code", """RESOLUTION = 32      # training grid
N_TRAIN, N_TEST = 48, 8
STEPS = 30           # optimizer steps per model
WIDTH, MODES = 8, 8
MODELS = ("dense", "tucker 0.2", "cp 0.05")  # the spectral weights compared below
SEED = 0"""),
    ("code", """import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from sciops.data import Dataset
from sciops.models import family
from sciops.nn import CP, TT, FactorizedSpectralWeight, Tucker
from sciops.pde.navier_stokes import NavierStokesConfig, generate_arrays

fno = family("fno")"""),
    ("md", """## Data: vorticity on the torus

$\\partial_t w + u\\cdot\\nabla w = \\nu\\Delta w + f$, pseudo-spectral with 2/3 dealiasing and a
Crank–Nicolson/Heun time step (second order, checked against the Taylor–Green decay in the
tests). The operator to learn maps $w(0)$ to $w(1)$ at $\\nu = 10^{-3}$."""),
    ("code", """t0 = time.perf_counter()
cfg = NavierStokesConfig(n_samples=N_TRAIN + N_TEST, resolution=RESOLUTION, viscosity=1e-3,
                         horizon=1.0, dt=0.02, seed=SEED)
arrays = generate_arrays(cfg)
train = Dataset({k: v[:N_TRAIN] for k, v in arrays.items()})
test = Dataset({k: v[N_TRAIN:] for k, v in arrays.items()})
print(train, f"generated in {time.perf_counter() - t0:.1f} s")
fig, ax = plt.subplots(1, 2, figsize=(6, 3))
for a, k in zip(ax, ["x", "y"]):
    a.imshow(arrays[k][0, 0], cmap="RdBu_r"); a.set_title(f"{k}: w(t={'0' if k == 'x' else '1'})")
    a.axis("off")"""),
    ("md", """## Factorized spectral weights

One Fourier layer multiplies the retained Fourier coefficients by a complex tensor
$W \\in \\mathbb C^{C \\times C \\times m_1 \\times m_2}$. A joint factorization holds the weights of
all $L$ layers as one tensor of shape $(L, C, C, m_1, m_2)$ in CP, Tucker or tensor-train form;
`rank` is an int or the fraction of the dense parameter count. The forward pass contracts the
input with the factors directly (`implementation: factorized`) — the same numbers as rebuilding
$W$ first."""),
    ("code", """key = jax.random.key(SEED)
x = jax.random.normal(key, (32, 16, 9)) + 1j * jax.random.normal(jax.random.key(1), (32, 16, 9))


@eqx.filter_jit  # one compiled program per pair (op by op, every operation compiles on its own)
def max_difference(w, wr, x):
    return jnp.max(jnp.abs(w.contract(x, 2) - wr.contract(x, 2)))


print(f"{'format':8} {'rank':>6} {'params':>9} {'compression':>11}  max|factorized - reconstructed|")
for fmt in (CP, Tucker, TT):
    for rank in (0.1, 0.01):
        w = FactorizedSpectralWeight(fmt(rank), 4, 32, 32, (16, 16), key=key)
        wr = FactorizedSpectralWeight(fmt(rank), 4, 32, 32, (16, 16), key=key, reconstruct=True)
        diff = float(max_difference(w, wr, x))
        print(f"{fmt.__name__:8} {rank:6} {w.param_count():9,} "
              f"{w.dense_param_count() / w.param_count():10.1f}x  {diff:.1e}")"""),
    ("code", """ranks = np.geomspace(0.005, 0.5, 12)
fig, ax = plt.subplots(figsize=(5, 3.2))
for fmt in (CP, Tucker, TT):
    counts = [FactorizedSpectralWeight(fmt(float(r)), 4, 32, 32, (16, 16), key=key).param_count()
              for r in ranks]
    ax.loglog(ranks, 2 * 4 * 32 * 32 * 16 * 9 / np.array(counts), "o-", label=fmt.__name__)
ax.set_xlabel("rank (fraction of dense parameters)"); ax.set_ylabel("compression")
ax.set_title("joint factorization, 4 layers, width 32, 16x16 modes"); ax.legend()"""),
    ("md", """## Compression against error

The same training budget for the dense FNO and for factorized ones (joint Tucker and CP);
`benchmarks/tfno_compression.py` does this at full size."""),
    ("code", """def fit(model_cfg, steps=STEPS, lr=5e-3):
    config = fno.config(**{k: tuple(v) if isinstance(v, list) else v for k, v in model_cfg.items()})
    model = fno.build(config, train, key=jax.random.key(SEED))
    # only the network trains; the fitted normalisers stay fixed
    params, net_static = eqx.partition(model.net, eqx.is_inexact_array)
    opt = optax.adam(optax.cosine_decay_schedule(lr, steps))
    state = opt.init(params)

    @eqx.filter_jit
    def step(params, state, batch, key):
        def f(p):
            return fno.loss(config, eqx.tree_at(lambda m: m.net, model, eqx.combine(p, net_static)),
                            batch, key=key)[0]
        value, grads = eqx.filter_value_and_grad(f)(params)
        updates, state = opt.update(grads, state)
        return eqx.apply_updates(params, updates), state, value

    data = train.load()
    rng = np.random.default_rng(SEED)
    for i in range(steps):
        idx = rng.choice(N_TRAIN, 8, replace=False)
        params, state, value = step(params, state, {k: v[idx] for k, v in data.items()},
                                    jax.random.key(i))
    model = eqx.tree_at(lambda m: m.net, model, eqx.combine(params, net_static))
    return config, model


metrics = eqx.filter_jit(fno.metrics)  # compiled once per model: op by op it compiles each op


def test_error(config, model, data=None):
    data = (data or test).load()
    return float(jnp.mean(metrics(config, model, data)["l2"]))


base = dict(n_modes=[MODES, MODES], hidden_channels=WIDTH, n_layers=4,
            lifting_channels=2 * WIDTH, projection_channels=2 * WIDTH)
results = {}
variants = {"dense": {}, "tucker 0.2": dict(factorization="tucker", rank=0.2),
            "cp 0.05": dict(factorization="cp", rank=0.05)}
for name in MODELS:
    t0 = time.perf_counter()
    config, model = fit({**base, **variants[name]})
    w = model.net.spectral_weight
    n = sum(a.size for a in jax.tree.leaves(eqx.filter(w, eqx.is_array)))
    results[name] = (config, model, n, test_error(config, model))
    print(f"{name:12} spectral params {n:7,}  test rel. L2 {100 * results[name][3]:.1f} %  "
          f"({time.perf_counter() - t0:.1f} s)")"""),
    ("code", """dense_n = 2 * base["n_layers"] * WIDTH * WIDTH * MODES * (MODES // 2 + 1)  # the dense FNO's
fig, ax = plt.subplots(figsize=(4.5, 3))
for name, (_, _, n, err) in results.items():
    ax.scatter(dense_n / n, 100 * err); ax.annotate(name, (dense_n / n, 100 * err))
ax.set_xscale("log"); ax.set_xlabel("spectral compression"); ax.set_ylabel("test rel. L2 (%)")"""),
    ("md", """## Multi-grid patching

A field is cut into $p\\times p$ patches that overlap by `mg_padding` of a patch; each patch
gets `mg_levels` coarser views of its surroundings as extra channels. Training takes one random
patch per field (so a step holds patches, not fields); evaluation predicts every patch and
blends the overlaps back into the whole field. On the torus the padding wraps around
(`mg_boundary: periodic`); for Dirichlet problems use `reflect`."""),
    ("code", """from sciops.models.fno import MGPatching

mg = MGPatching(2, levels=2, padding=0.25, boundary="periodic")
field = jnp.asarray(arrays["x"][0])
patches = mg.patchify(field)
print("patches:", patches.shape, "(patches, channels x (levels + 1), padded patch grid)")
fig, ax = plt.subplots(1, 4, figsize=(10, 2.6))
ax[0].imshow(field[0], cmap="RdBu_r"); ax[0].set_title("field")
for lv in range(3):
    ax[lv + 1].imshow(patches[0, lv], cmap="RdBu_r"); ax[lv + 1].set_title(f"patch 0, level {lv}")
for a in ax:
    a.axis("off")
# stitching the patches' own level-0 channels gives the field back
print("stitch(identity) error:", float(jnp.max(jnp.abs(mg.stitch(patches[:, :1], field.shape[1:]) - field))))"""),
    ("code", """config_mg, model_mg = fit({**base, "factorization": "tucker", "rank": 0.2, "mg_patches": 2,
                           "mg_levels": 1, "mg_padding": 0.25, "mg_boundary": "periodic"})
err_mg = test_error(config_mg, model_mg)
print(f"MG-TFNO (2x2 patches, 1 level) test rel. L2 {100 * err_mg:.1f} % "
      f"(TFNO without patches: {100 * results['tucker 0.2'][3]:.1f} %)")"""),
    ("md", """## Zero-shot super-resolution

The spectral weights act on a fixed set of Fourier modes, so a model trained at
`RESOLUTION`² evaluates on a finer grid of the same problem. `sciops evaluate` reports every test
resolution listed under `data.test`."""),
    ("code", """fine_cfg = NavierStokesConfig(n_samples=N_TEST, resolution=2 * RESOLUTION, viscosity=1e-3,
                              horizon=1.0, dt=0.02, seed=SEED + 1)
fine = Dataset(generate_arrays(fine_cfg))
config, model, _, err = results["tucker 0.2"]
err_fine = test_error(config, model, fine)
print(f"TFNO trained at {RESOLUTION}^2: test rel. L2 {100 * err:.1f} % at {RESOLUTION}^2, "
      f"{100 * err_fine:.1f} % at {2 * RESOLUTION}^2")
sample = fine.load()
pred = eqx.filter_jit(model)(jnp.asarray(sample["x"][0]))
fig, ax = plt.subplots(1, 3, figsize=(8, 2.6))
for a, img, title in zip(ax, [sample["y"][0, 0], pred[0], pred[0] - sample["y"][0, 0]],
                         ["truth (fine grid)", "prediction", "error"]):
    a.imshow(img, cmap="RdBu_r"); a.set_title(title); a.axis("off")"""),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src)
                for kind, src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def main(path: str | pathlib.Path | None = None) -> pathlib.Path:
    path = pathlib.Path(__file__).with_name("tfno.ipynb") if path is None else pathlib.Path(path)
    nbformat.write(build(), path)
    return path


if __name__ == "__main__":
    print(main())
