"""Build examples/meshformer.ipynb (run: python examples/_build_meshformer_notebook.py)."""

from __future__ import annotations

import pathlib
import sys

CELLS = [
    ("md", """# Mesh transformer on cylinder flow

Vortex shedding past a cylinder, solved by sciops' own finite-element Navier–Stokes solver on an
unstructured triangular mesh; a mesh transformer (attention restricted to mesh neighbourhoods,
Garnier et al. 2025) learns the change per step; a rollout compares it with the truth.

The sizes in the next cell keep this notebook under a minute on a laptop CPU. For real runs use
`sciops fit configs/cylinder_flow_transformer.yaml` and `sciops rollout`."""),
    ("code", """# small sizes: raise them for a real run
N_TRAJECTORIES = 3      # 2 for training, 1 held out
N_STEPS = 20            # recorded steps per trajectory
H_MIN, H_MAX = 0.02, 0.05  # mesh edge lengths (the configs use 0.01 / 0.035)
TRAIN_STEPS = 40"""),
    ("code", """import pathlib
import numpy as np
import jax, equinox as eqx, optax
from sciops.pde.flow import CylinderFlowConfig, generate_cylinder_flow, NodeType
from sciops.data import read_mesh_dataset

work = pathlib.Path("meshformer_tutorial"); work.mkdir(exist_ok=True)
cfg = CylinderFlowConfig(n_trajectories=N_TRAJECTORIES, n_steps=N_STEPS, spinup=0.5,
                         spinup_max=0.5, h_min=H_MIN, h_max=H_MAX)  # real runs: spinup_max 15
generate_cylinder_flow(cfg, work / "cylinder.h5", progress=False)
ds = read_mesh_dataset(work / "cylinder.h5")
print(ds)
print("per trajectory:", [{k: round(v, 3) if isinstance(v, float) else v
                           for k, v in p.items() if k != "center"} for p in ds.attrs["trajectory_params"]])"""),
    ("md", """The data set stores every trajectory padded to one node count, with a mask, node types
(MeshGraphNets' codes) and the velocity and pressure at every node and step. Each trajectory is
also written as XDMF for ParaView."""),
    ("code", """import matplotlib.pyplot as plt
from matplotlib.tri import Triangulation
s = {k: v[0] for k, v in ds.take([0]).items()}
n = int(s["n_nodes"])
tri = Triangulation(s["points"][:n, 0], s["points"][:n, 1], s["cells_triangle"][s["cells_triangle_mask"]])
fig, ax = plt.subplots(2, 1, figsize=(9, 4.5), constrained_layout=True)
ax[0].triplot(tri, lw=0.3, color="0.6")
for t in (NodeType.INFLOW, NodeType.OUTFLOW, NodeType.WALL_BOUNDARY, NodeType.OBSTACLE):
    m = s["node_type"][:n] == t
    ax[0].plot(*s["points"][:n][m].T, ".", ms=4, label=t.name)
ax[0].legend(fontsize=7, ncol=4); ax[0].set_aspect("equal")
im = ax[1].tripcolor(tri, np.linalg.norm(s["velocity"][-1, :n], axis=-1), shading="gouraud")
ax[1].set_aspect("equal"); fig.colorbar(im, ax=ax[1], label="|u| at the last step")"""),
    ("md", """## The model

Each head attends to its own neighbourhood: the mesh neighbours, the 2-hop neighbours, the
nodes at exactly 2 hops (dilation 2), and global nodes linked to every node. `prepare` builds
the padded edge lists (with an `(edges, heads)` mask) and Laplacian-eigenvector encodings once,
on the host, so that the jitted step compiles once."""),
    ("code", """from sciops.models.meshformer import FAMILIES, MeshTransformerConfig, Neighbourhood, prepare

config = MeshTransformerConfig(
    width=32, heads=4, n_layers=3, n_global=2, laplacian_pe=4,
    layers=((Neighbourhood(hops=1), Neighbourhood(hops=2), Neighbourhood(hops=1, dilation=2),
             Neighbourhood(hops=1, global_nodes=True)),))
family = FAMILIES["meshformer"]
train = prepare(config, ds.subset(slice(0, N_TRAJECTORIES - 1))).in_memory()
model = family.build(config, train, key=jax.random.key(0))
print("parameters:", sum(x.size for x in jax.tree.leaves(eqx.filter(model.net, eqx.is_array))))
print("edges per distinct layer graph:", train.shape("graph0_senders"))"""),
    ("code", """params, static = eqx.partition(model, eqx.is_inexact_array)
opt = optax.adam(1e-3)
state = opt.init(params)

@eqx.filter_jit
def step(params, state, batch, key):
    (value, _), g = jax.value_and_grad(
        lambda p: family.loss(config, eqx.combine(p, static), batch, key=key), has_aux=True)(params)
    updates, state = opt.update(g, state, params)
    return optax.apply_updates(params, updates), state, value

batch = train.take(np.arange(len(train)))
key = jax.random.key(1)
losses = []
for i in range(TRAIN_STEPS):
    key, k = jax.random.split(key)
    params, state, value = step(params, state, batch, k)
    losses.append(float(value))
model = eqx.combine(params, static)
print(f"loss: first {losses[0]:.3f}, last {np.mean(losses[-5:]):.3f}")"""),
    ("md", """## Rollout

`sciops rollout RUN --data FILE` does the same from a run folder; here the run is assembled
in memory. It scores the model by the MeshGraphNets protocol (teacher-forced one-step error over
every frame, rollout-1/50/all) beside persistence and linear extrapolation, and writes the
predicted trajectory as XDMF, per-step RMSE as CSV/JSON, an error-vs-step plot, truth /
prediction / error snapshots and an animation."""),
    ("code", """import types
from sciops.eval import mesh_rollout
run = types.SimpleNamespace(config=types.SimpleNamespace(model=config), model=model, family=family)
held_out = work / "cylinder_xdmf" / f"traj_{N_TRAJECTORIES - 1:03d}.xdmf"
res = mesh_rollout(run, held_out, out_dir=work / "rollout", progress=False)
print(res["table"])  # the model beside persistence and linear extrapolation
print(sorted(p.name for p in (work / "rollout").iterdir()))"""),
    ("code", """from IPython.display import Image, display
display(Image(filename=str(work / "rollout" / "rmse_vs_step.png")))
snap = sorted((work / "rollout").glob("*snapshot_velocity*.png"))[-1]
display(Image(filename=str(snap)))"""),
]


def main(path: str | pathlib.Path = pathlib.Path(__file__).with_name("meshformer.ipynb")):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else
                nbformat.v4.new_code_cell(src) for kind, src in CELLS]
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    main(*sys.argv[1:])
