"""Build `examples/mlip.ipynb` (run: ``python examples/_build_mlip_notebook.py``)."""

from __future__ import annotations

import pathlib
import sys

import nbformat

CELLS = [
    ("md", """# An equivariant interatomic potential with CP tensor products (TDN)

This tutorial follows *Tensor Decomposition Networks for Fast Machine Learning Interatomic
Potential Computations* (2025) with `sciops`:

1. **Data** from a real classical potential: copper with ASE's effective-medium theory (EMT),
   sampled by Langevin molecular dynamics at two temperatures.
2. **Tensor products**: the Clebsch–Gordan product of all paths up to $L$ as a rank-$R$ CP
   decomposition, its approximation and equivariance errors, and the exact forms it replaces.
3. **Training** the potential on energies and forces (forces are $-\\partial E/\\partial x$),
   parity plots on held-out structures, and an equivariance check of the trained model.
4. **Molecular dynamics** with the model as an ASE calculator.

Sizes are tiny so that the notebook runs in about a minute on a CPU; the full-size runs are
`sciops fit configs/mlip_cu_emt.yaml` (CP), `configs/mlip_cu_emt_exact.yaml` (exact product)
and `benchmarks/mlip_md.py`."""),
    ("code", """# Small sizes (raise them for real results).
N_SAMPLES, N_TEST, STEPS = 16, 4, 60
MODEL = dict(cutoff=4.0, lmax=1, channels=8, n_layers=1, n_basis=6, radial_hidden=16,
             readout_hidden=16, max_neighbors=32)"""),
    ("code", """import pathlib
import tempfile

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from sciops.data import read_atoms_dataset
from sciops.models import family
from sciops.models.mlip import Calculator, MLIPConfig
from sciops.nn import (CPTensorProduct, E3nnTensorProduct, GauntS2TensorProduct,
                       SHMatrixTensorProduct, equivariance_error)
from sciops.pde import problem
from sciops.pde.atoms import AtomsConfig, thermalize

workdir = pathlib.Path(tempfile.mkdtemp())"""),
    ("md", """## 1. Reference data
`problem("atoms")` runs Langevin MD of a 32-atom copper cell with EMT at each temperature
(each with a small random strain) and stores positions, species, cell, energy, forces and
stress in the sciops HDF5 schema, shuffled over temperatures."""),
    ("code", """cfg = AtomsConfig(n_samples=N_SAMPLES, temperatures=(300.0, 900.0), equilibration_steps=40,
                  sample_every=5)
problem("atoms").generate(cfg, workdir / "cu.h5", progress=False)
data = read_atoms_dataset(workdir / "cu.h5", lazy=False)
print(data)
train, test = data.subset(slice(0, N_SAMPLES - N_TEST)), data.subset(slice(N_SAMPLES - N_TEST, None))
f_test = test.load()["forces"]
print(f"held-out force std: {f_test.std():.3f} eV/Å")"""),
    ("md", """## 2. Tensor products
The fused CG tensor $T$ couples features $x_1$ (channels × irreps) with an edge's spherical
harmonics $x_2$: $y_{ck} = \\sum_{ij} T_{ijk} x_{1,ci} x_{2,j}$. The CP form
$T \\approx \\sum_r a_r\\otimes b_r\\otimes c_r$ is fitted once (and cached on disk); its
equivariance error is bounded by twice its relative error. Below: a deliberately low rank, the
paper's $7L^2$, and the exact forms."""),
    ("code", """ir = "0e+1o+2e"
products = {"CP R=12": CPTensorProduct(ir, ir, ir, 12), "CP R=28 (7L²)": CPTensorProduct(ir, ir, ir),
            "e3nn-jax full": E3nnTensorProduct(ir, ir, ir), "SH-matrix": SHMatrixTensorProduct(ir, ir, ir),
            "S2-grid Gaunt": GauntS2TensorProduct(ir, ir, ir)}
for name, tp in products.items():
    eq = equivariance_error(tp, key=jax.random.key(0), n_rotations=4, n_samples=32)
    print(f"{name:15s} relative error {tp.relative_error:9.2e}   equivariance error {eq:9.2e}")"""),
    ("md", """## 3. Training
The family's `build` fits per-species energy shifts and the energy scale on the training split;
`loss` computes energies, forces and the neighbour lists of a padded batch inside `jit`."""),
    ("code", """fam = family("mlip")
mcfg = MLIPConfig(**MODEL)
model = fam.build(mcfg, train, key=jax.random.key(0))
batch = {k: jnp.asarray(v) for k, v in train.load().items()}
params, static = eqx.partition(model, eqx.is_inexact_array)
opt = optax.adam(optax.cosine_decay_schedule(1e-2, STEPS))
state = opt.init(params)

@jax.jit
def step(params, state):
    (loss, logs), g = jax.value_and_grad(
        lambda p: fam.loss(mcfg, eqx.combine(p, static), batch), has_aux=True)(params)
    updates, state = opt.update(g, state)
    return optax.apply_updates(params, updates), state, logs

history = []
for i in range(STEPS):
    params, state, logs = step(params, state)
    history.append(float(logs["forces_rmse"]))
model = eqx.combine(params, static)
print(f"train force RMSE: {history[0]:.3f} -> {history[-1]:.3f} eV/Å")"""),
    ("code", """from sciops.models.mlip import predict
from sciops.plot import plot_parity

tb = {k: jnp.asarray(v) for k, v in test.load().items()}
predict_batch = jax.jit(jax.vmap(lambda b: predict(mcfg, model, b)))
e, f, s, _ = predict_batch(tb)
m = eqx.filter_jit(fam.metrics)(mcfg, model, tb)  # compiled: op by op it takes seconds
print(f"held-out force MAE {float(m['forces_mae'].mean()):.3f} eV/Å, "
      f"energy MAE {1e3 * float(m['energy_mae'].mean()):.1f} meV/atom")
plot_parity(tb["forces"], f, quantity="force component", unit="eV/Å",
            title="Held-out forces: model against EMT")
plot_parity(np.asarray(tb["energy"]) / 32, np.asarray(e) / 32, quantity="energy per atom",
            unit="eV", title="Held-out energies: model against EMT");"""),
    ("md", """### Equivariance of the trained model
Rotating (and inverting) a structure rotates its forces: $F(Rx) = R\\,F(x)$, here for every
held-out structure."""),
    ("code", """import e3nn_jax as e3nn

R = -np.asarray(e3nn.rand_matrix(jax.random.key(1)))  # an improper rotation
moved = {**tb, "positions": tb["positions"] @ R.T, "cell": tb["cell"] @ R.T}
_, f_moved, _, _ = predict_batch(moved)  # the held-out structures, rotated (same compiled program)
err = float(jnp.abs(f_moved - f @ R.T).max() / jnp.abs(f).max())
print(f"trained-model force equivariance error: {err:.1e}")"""),
    ("md", """## 4. Molecular dynamics
`Calculator(model, config)` is an ASE calculator (`Calculator.from_run(RUN_DIR)` reads a run
folder of `sciops fit`). A short NVE run with velocity Verlet at 1 fs:"""),
    ("code", """from ase import units
from ase.build import bulk
from ase.md.verlet import VelocityVerlet

atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
atoms.calc = Calculator(model, mcfg)
thermalize(atoms, 300.0, np.random.RandomState(0))
dyn = VelocityVerlet(atoms, 1.0 * units.fs)
energies = []
for _ in range(20):
    dyn.run(5)
    energies.append(atoms.get_total_energy() / len(atoms))
drift = 1e3 * (max(energies) - min(energies))
print(f"NVE total-energy spread over 100 fs: {drift:.3f} meV/atom")"""),
]


def main(path: str | pathlib.Path = pathlib.Path(__file__).parent / "mlip.ipynb") -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md"
                else nbformat.v4.new_code_cell(src) for kind, src in CELLS]
    nbformat.write(nb, path)


if __name__ == "__main__":
    main(*sys.argv[1:])
