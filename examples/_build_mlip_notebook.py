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
3. **Training** the potential on energies and forces (forces are $-\\partial E/\\partial x$)
   with the package's driver (`load_config` → `fit` → `load_run`, what `sciops fit` runs),
   parity plots on held-out structures against the trivial baselines, and an equivariance check
   of the trained model.
4. **Molecular dynamics** with the trained run as an ASE calculator.

Sizes are tiny so that the notebook runs in about a minute on a CPU; the full-size runs are
`sciops fit configs/mlip_cu_emt.yaml` (CP), `configs/mlip_cu_emt_exact.yaml` (exact product)
and `benchmarks/mlip_md.py`. Everything is written under a temporary folder."""),
    ("code", """# Small sizes (the config's own: 600 structures at 4 temperatures, L = 2, 32 channels,
# 2 layers, 3000 steps; raise them for real results).
N_SAMPLES, N_TEST, STEPS = 16, 4, 200
MODEL = dict(cutoff=4.0, lmax=1, channels=8, n_layers=1, n_basis=6, radial_hidden=16,
             readout_hidden=16, max_neighbors=32)"""),
    ("code", """import json
import pathlib
import tempfile

import jax
import numpy as np
from IPython.display import Image, display

from sciops.mlip import Calculator
from sciops.nn import (CPTensorProduct, E3nnTensorProduct, GauntS2TensorProduct,
                       SHMatrixTensorProduct, equivariance_error)
from sciops.pde.atoms import thermalize
from sciops.train import fit, load_config, load_run, prepare_data

workdir = pathlib.Path(tempfile.mkdtemp(prefix="sciops_mlip_"))
config = load_config("configs/mlip_cu_emt.yaml", [
    f"data.path={workdir / 'cu.h5'}", f"data.generate.n_samples={N_SAMPLES}",
    "data.generate.temperatures=[300.0, 900.0]", "data.generate.equilibration_steps=40",
    "data.generate.sample_every=5", f"data.n_train={N_SAMPLES - N_TEST}", f"data.n_test={N_TEST}",
    *(f"model.{k}={v}" for k, v in MODEL.items()),
    f"train.steps={STEPS}", f"train.batch_size={N_SAMPLES - N_TEST}",
    f"train.eval_batch_size={N_TEST}", "train.optimizer.lr=1e-2",
    "train.optimizer.warmup_steps=0", f"train.eval_every={STEPS}",
    f"train.checkpoint_every={STEPS}", "train.progress=false"])
print(config.model)"""),
    ("md", """`load_config` reads the YAML and applies `dotted.key=value` overrides exactly as the CLI
does (`sciops fit configs/mlip_cu_emt.yaml train.steps=60 ...`); a wrong key or type is an
error that names it.

## 1. Reference data
The config's `data.generate` section names the `atoms` problem: Langevin MD of a 32-atom copper
cell with EMT at each temperature (each with a small random strain), storing positions, species,
cell, energy, forces and stress in the sciops HDF5 schema, shuffled over temperatures.
`prepare_data` generates the file (as `fit` would) and splits it as the config says."""),
    ("code", """data = prepare_data(config.data, progress=False)
print(data.train)
test = data.tests["test"].load()
f_test, e_test = test["forces"], test["energy"] / test["n_atoms"]
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
`fit` builds the potential (per-species energy shifts and the energy scale are fitted on the
training split), trains it on energies and forces (the loss computes neighbour lists of the
padded batch inside `jit`), evaluates the held-out split and writes the run folder: config,
checkpoints, `metrics.jsonl`, TensorBoard events and the parity figures."""),
    ("code", """result = fit(config, out=workdir / "run")
log = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
train_rmse = [r["forces_rmse"] for r in log if r["split"] == "train"]
print(f"train force RMSE (logged every {config.train.log_every} steps): "
      f"{train_rmse[0]:.3f} -> {train_rmse[-1]:.3f} eV/Å")
print("run folder:", sorted(p.name for p in result.run_dir.iterdir() if not p.name.startswith(".")))"""),
    ("md", """### Against the trivial baselines
A potential has to beat predicting zero force (the mean force is zero) and predicting the mean
training energy per atom for every structure, both scored on the held-out structures as the
model is. The loss weights force components ten times the per-atom energy (the config's
`forces_weight`), so the forces are learned first: in the first few dozen steps the energy
error grows while the force error falls, and only a longer run (here 200 steps) brings the
energies well below the baseline."""),
    ("code", """m = result.metrics["test"]
e_train = data.train.load()
e_mean = float(np.mean(e_train["energy"] / e_train["n_atoms"]))
print(f"held-out force MAE {m['forces_mae']:.3f} eV/Å (zero force: {np.abs(f_test).mean():.3f} eV/Å)")
print(f"held-out energy MAE {1e3 * m['energy_mae']:.1f} meV/atom "
      f"(mean training energy: {1e3 * np.abs(e_test - e_mean).mean():.1f} meV/atom)")
for png in sorted(result.run_dir.glob("*.png")):
    display(Image(filename=str(png)))"""),
    ("md", """### Equivariance of the trained model
`sciops.mlip.Calculator.from_run(RUN_DIR)` reads the run folder back (`load_run`: config,
family, last checkpoint) as an ASE calculator (energy eV, forces eV/Å, stress eV/Å³).
Rotating (and inverting) a structure rotates its forces: $F(Rx) = R\\,F(x)$, here for every
held-out structure."""),
    ("code", """import e3nn_jax as e3nn
from ase import Atoms

calc = Calculator.from_run(result.run_dir)
print(type(calc.model).__name__, "from", load_run(result.run_dir).run_dir.name)
R = -np.asarray(e3nn.rand_matrix(jax.random.key(1)), np.float64)  # an improper rotation
err = 0.0
for k in range(len(f_test)):
    n = int(test["n_atoms"][k])
    kw = dict(numbers=test["species"][k, :n], pbc=test["pbc"][k], calculator=calc)
    f = Atoms(positions=test["positions"][k, :n], cell=test["cell"][k], **kw).get_forces()
    f_rot = Atoms(positions=test["positions"][k, :n] @ R.T, cell=test["cell"][k] @ R.T,
                  **kw).get_forces()
    err = max(err, np.abs(f_rot - f @ R.T).max() / np.abs(f).max())
print(f"trained-model force equivariance error: {err:.1e}")"""),
    ("md", """## 4. Molecular dynamics
The same calculator drives ASE's molecular dynamics. A short NVE run with velocity Verlet at
1 fs (`sciops md RUN STRUCTURE` runs the same in one compiled loop, `sciops.mlip.md_from_run`
from Python):"""),
    ("code", """from ase import units
from ase.build import bulk
from ase.md.verlet import VelocityVerlet

atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
atoms.calc = calc
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
