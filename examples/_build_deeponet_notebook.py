"""Build `examples/deeponet.ipynb` (run: ``python examples/_build_deeponet_notebook.py``)."""

from __future__ import annotations

import pathlib

import nbformat

CELLS = [
    ("md", """# Multi-task DeepONet with geometry masks

This tutorial trains `sciops`' DeepONet family on data made by `sciops.pde` solvers:

1. **Multi-task learning** on three Fisher-type reaction–diffusion equations: the branch sees the
   initial condition *and* the coefficients of the source term, so one model learns all tasks.
2. **Geometry masks** for Darcy flow on masked domains: the effect of giving the mask to the
   branch and the loss.
3. **Transfer learning** to a held-out geometry: a learning curve of fine-tuning against
   training from scratch.

Sizes are tiny so that the notebook runs in about a minute on a CPU; the full-size runs are
`sciops fit configs/fisher_multitask.yaml` (and `darcy_geometries`, `darcy_transfer`, `heat3d`)
and `benchmarks/deeponet_*.py`."""),
    ("code", """# Small sizes (raise them for real results).
N_FISHER, FISHER_STEPS = 150, 300
N_DARCY, DARCY_RES, DARCY_STEPS = 200, 16, 300
TRANSFER_SIZES, TRANSFER_STEPS = (10, 20, 40), 150
WIDTH = dict(branch_width=64, branch_depth=2, trunk_width=64, trunk_depth=2, latent=32)"""),
    ("code", """import equinox as eqx
import jax
import matplotlib.pyplot as plt
import numpy as np
import optax

from sciops.data import Dataset
from sciops.plot import Column, plot_fields
from sciops.models.deeponet import DeepONetConfig, build, loss, metrics, predict
from sciops.pde.darcy_masked import DarcyMaskedConfig
from sciops.pde.darcy_masked import generate_arrays as darcy_data
from sciops.pde.fisher import FisherConfig
from sciops.pde.fisher import generate_arrays as fisher_data


def fit(config, data, steps, *, model=None, trainable=None, seed=0, lr=2e-3, batch=16):
    \"\"\"A minimal training loop over the family's loss (the `sciops fit` driver does more).\"\"\"
    model = build(config, data, key=jax.random.key(seed)) if model is None else model
    spec = eqx.is_inexact_array if trainable is None else trainable
    params, frozen = eqx.partition(model, spec)
    opt = optax.adam(optax.cosine_decay_schedule(lr, steps))
    state = opt.init(params)

    @eqx.filter_jit
    def step(params, frozen, state, batch):
        value, grads = eqx.filter_value_and_grad(
            lambda p: loss(config, eqx.combine(p, frozen), batch)[0])(params)
        updates, state = opt.update(grads, state, params)
        return eqx.apply_updates(params, updates), state, value

    arrays, rng = data.load(), np.random.default_rng(seed)
    for i in range(steps):
        idx = rng.choice(len(data), min(batch, len(data)), replace=False)
        params, state, _ = step(params, frozen, state, {k: v[idx] for k, v in arrays.items()})
    return eqx.combine(params, frozen)


def test_error(config, model, data):
    out = metrics(config, model, data.load())
    return {k: float(np.nanmean(v)) for k, v in out.items() if k.startswith("l2")}"""),
    ("md", """## 1. Multi-task Fisher: one model, three source terms

$u_t = D u_{xx} + s(u)$ with $s(u) = \\sum_k c_k u^k$: Fisher–KPP $c = (0, 1, -1, 0)$,
Newell–Whitehead–Segel $(0, 1, 0, -1)$ and Zeldovich $(0, 0, 1, -1)$. The solver (Crank–Nicolson +
Newton) is tested against the exact travelling waves. Tasks alternate sample by sample."""),
    ("code", """fisher = Dataset(fisher_data(FisherConfig(n_samples=N_FISHER, n_x=32, n_t=11)),
                 {"bounds": [[0, 1], [0, 1]], "tasks": ["fisher", "nws", "zeldovich"]})
n_train = int(0.8 * N_FISHER)
f_train, f_test = fisher.subset(np.arange(n_train)), fisher.subset(np.arange(n_train, N_FISHER))
mt_config = DeepONetConfig(input_key="u0", coeff_key="coeffs", task_key="task",
                           task_names=("fisher", "nws", "zeldovich"), **WIDTH)
mt_model = fit(mt_config, f_train, FISHER_STEPS)
print({k: round(v, 4) for k, v in test_error(mt_config, mt_model, f_test).items()})"""),
    ("code", """batch = f_test.take(np.arange(3))
pred = np.asarray(predict(mt_config, mt_model, batch))
truth = np.asarray(batch["u"])[:, 0]
plot_fields([Column("truth u", truth, scale="u"), Column("DeepONet u", pred[:, 0], scale="u"),
             Column("error u", pred[:, 0] - truth, diverging=True)],
            row_labels=[f"test sample {i} ({fisher.attrs['tasks'][batch['task'][i]]})"
                        for i in range(3)],
            title="Multi-task DeepONet on held-out Fisher samples", axis_names=("x", "t"));"""),
    ("md", """## 2. Darcy on masked geometries: what the mask buys

$-\\Delta u = f$ on square, disk, triangle and L-shaped domains (zero Dirichlet off the mask).
Three variants: the mask as a branch channel *and* zeroing the output (`mask_in_branch`,
`mask_in_loss`), the mask only in the output/loss, and no mask at all. Errors are measured on the
domain in every case. At this notebook's tiny sizes (160 samples, 300 steps) the variants are
within noise of each other; `benchmarks/deeponet_darcy.py` compares them at full size."""),
    ("code", """geoms = ("square", "disk", "triangle", "l_shape")
darcy = Dataset(darcy_data(DarcyMaskedConfig(n_samples=N_DARCY, resolution=DARCY_RES,
                                             geometries=geoms)),
                {"bounds": [[0, 1], [0, 1]], "geometries": list(geoms)})
n_train = int(0.8 * N_DARCY)
d_train, d_test = darcy.subset(np.arange(n_train)), darcy.subset(np.arange(n_train, N_DARCY))
base = DeepONetConfig(input_key="f", mask_key="mask", task_key="geometry", task_names=geoms,
                      **WIDTH)
variants = {"branch + loss": base,
            "loss only": DeepONetConfig(**{**base.__dict__, "mask_in_branch": False}),
            "none": DeepONetConfig(**{**base.__dict__, "mask_in_branch": False,
                                      "mask_in_loss": False})}
darcy_models = {}
for name, config in variants.items():
    darcy_models[name] = fit(config, d_train, DARCY_STEPS, lr=3e-3)
    err = test_error(config, darcy_models[name], d_test)
    print(f"{name:14s}", {k: round(v, 3) for k, v in err.items()})"""),
    ("code", """sample = d_test.take(np.arange(4))
pred = np.asarray(predict(base, darcy_models["branch + loss"], sample))
print("largest |prediction| outside the domain:", np.abs(pred[sample["mask"] == 0]).max())
truth = np.asarray(sample["u"])[:, 0]
plot_fields([Column("truth u", truth, scale="u"), Column("DeepONet u", pred[:, 0], scale="u"),
             Column("error u", pred[:, 0] - truth, diverging=True)],
            row_labels=[f"test sample {i} ({darcy.attrs['geometries'][sample['geometry'][i]]})"
                        for i in range(4)],
            title="Masked Darcy: the branch + loss model on held-out samples");"""),
    ("md", """## 3. Transfer to a held-out geometry

Fine-tune only the branch's last layer and the output bias (the rest stays frozen, as
`transfer.trainable: ["branch.layers[-1]", bias]` does in a run config) on a few samples of the
cross-shaped domain, against training the same model from scratch on the same samples."""),
    ("code", """from sciops.train import trainable_filter

cross = Dataset(darcy_data(DarcyMaskedConfig(n_samples=140, resolution=DARCY_RES,
                                             geometries=("cross",), seed=1)),
                {"bounds": [[0, 1], [0, 1]], "geometries": ["cross"]})
c_test = cross.subset(np.arange(40, 140))
source = darcy_models["branch + loss"]
cross_config = DeepONetConfig(**{**base.__dict__, "task_names": ("cross",)})
spec = trainable_filter(source, ["branch.layers[-1]", "bias"])
curve = {"scratch": [], "fine-tune": []}
for n in TRANSFER_SIZES:
    c_train = cross.subset(np.arange(n))
    scratch = fit(cross_config, c_train, TRANSFER_STEPS, lr=3e-3, batch=min(16, n))
    tuned = fit(cross_config, c_train, TRANSFER_STEPS, model=source, trainable=spec, lr=3e-3,
                batch=min(16, n))
    curve["scratch"].append(test_error(cross_config, scratch, c_test)["l2"])
    curve["fine-tune"].append(test_error(cross_config, tuned, c_test)["l2"])
    print(n, {k: round(v[-1], 3) for k, v in curve.items()})
plt.figure(figsize=(4.5, 3))
plt.title("Transfer to the cross geometry")
for k, v in curve.items():
    plt.plot(TRANSFER_SIZES, v, "o-", label=k)
plt.xlabel("cross samples"); plt.ylabel("test relative L2"); plt.legend();"""),
]


def main(path: str | pathlib.Path | None = None) -> None:
    path = pathlib.Path(__file__).with_name("deeponet.ipynb") if path is None else path
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md"
                else nbformat.v4.new_code_cell(src) for kind, src in CELLS]
    nbformat.write(nb, str(path))


if __name__ == "__main__":
    main()
