"""Build `examples/distributed.ipynb`, data-parallel and domain-decomposed training on virtual
CPU devices (run: ``python examples/_build_distributed_notebook.py``)."""

from __future__ import annotations

import pathlib
import sys

import nbformat

CELLS = [
    ("md", """# Distributed training on virtual devices

sciops trains on a `jax.sharding.Mesh` with two named axes: `data` splits every batch over
devices (data parallelism), `space` splits every grid field into row slabs (domain
decomposition). A laptop can try both: JAX can present its CPU as several virtual devices. The
same config then runs unchanged on GPUs or across nodes (`sciops fit CONFIG --distributed
slurm`, see the distributed-training page).

The virtual devices must be set before JAX first touches a device, so this is the first cell."""),
    ("code", """import jax

jax.config.update("jax_num_cpu_devices", 4)
print(jax.devices())"""),
    ("code", """import pathlib
import tempfile

from sciops.train import fit, load_config

workdir = pathlib.Path(tempfile.mkdtemp(prefix="sciops_distributed_"))
SMALL = [f"data.path={workdir / 'darcy.h5'}", "data.generate.n_samples=72",
         "data.generate.resolution=32", "data.n_train=64", "data.n_test=8",
         "model.n_modes=[8, 8]", "model.hidden_channels=8", "model.lifting_channels=16",
         "model.projection_channels=16", "train.steps=20", "train.batch_size=8",
         "train.eval_batch_size=8", "train.eval_every=0", "train.checkpoint_every=0",
         "train.progress=false"]


def run(name, mesh, devices=None):
    config = load_config("configs/darcy.yaml", SMALL + [f"train.mesh={mesh}"])
    return fit(config, out=workdir / name, devices=devices)"""),
    ("md", """The same 20 steps three times: on one device, data-parallel over the four devices (each
holds 2 of the batch's 8 fields; XLA all-reduces the gradients), and with 2-way data
parallelism × 2-way domain decomposition (each device holds the top or bottom half of 4
fields). The mathematics is the same, so the metrics agree to floating-point rounding."""),
    ("code", """results = {"one_device": run("one_device", "{data: 1}", devices=jax.devices()[:1]),
           "data_parallel": run("data_parallel", "{data: 4}"),
           "data_x_space": run("data_x_space", "{data: 2, space: 2}")}
for name, r in results.items():
    print(f"{name:14s} test relative L2 {r.metrics['test']['l2']:.6f}")
ref = results["one_device"].metrics["test"]["l2"]
print("largest difference from one device:",
      max(abs(r.metrics["test"]["l2"] - ref) for r in results.values()))"""),
    ("md", """How a batch lies on the devices: the `data` axis splits the batch, the `space` axis the
rows of every field."""),
    ("code", """import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from sciops.train import make_mesh

mesh = make_mesh({"data": 2, "space": 2})
x = jax.device_put(np.zeros((8, 1, 32, 32), np.float32),
                   NamedSharding(mesh, P("data", None, "space", None)))
for shard in x.addressable_shards:
    print(shard.device, "holds", shard.index)"""),
    ("md", """On a cluster the same `fit` runs in one process per node or GPU; `jax.distributed` joins
them (`sciops fit CONFIG --distributed slurm|mpi|auto|explicit`), and the batch scripts in
`examples/hpc/` launch it."""),
]


def build() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                for kind, src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def main(path: str | pathlib.Path | None = None) -> None:
    nbformat.write(build(), pathlib.Path(__file__).with_name("distributed.ipynb") if path is None
                   else path)


if __name__ == "__main__":
    main(*sys.argv[1:])
