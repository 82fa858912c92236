"""The mesh-transformer tutorial notebook is what its builder makes, and executes: at smoke sizes
in the default run, at its own small sizes as a `slow` test."""

import pathlib

import nbformat
import pytest
from _notebooks import at_smoke_size, execute, notebook

ROOT = pathlib.Path(__file__).resolve().parents[1]

# 2 trajectories (1 to train, 1 held out) of 6 steps on a coarse mesh, 6 optimizer steps, 1
# transformer layer (the tutorial: 3 of 20, edges 0.02-0.05, 40 steps, 3 layers; compiling the
# layers is most of the training and rollout time)
SMOKE = """N_TRAJECTORIES = 2
N_STEPS = 6
H_MIN, H_MAX = 0.04, 0.1
TRAIN_STEPS = 6"""
SMOKE_EDITS = {"heads=4, n_layers=3,": "heads=4, n_layers=1,"}


def test_notebook_is_up_to_date():
    shipped = nbformat.read(ROOT / "examples" / "meshformer.ipynb", as_version=4)
    assert [c.source for c in notebook("meshformer").cells] == [c.source for c in shipped.cells]


def _run(nb, tmp_path, held_out):
    outputs = execute(nb, tmp_path)
    line = next(x for x in outputs.splitlines() if x.startswith("loss: first"))
    first, last = (float(w.strip(",")) for w in line.split()[2::2])
    assert last < first  # training lowers the loss
    assert f"{held_out}_prediction.xdmf" in outputs and "rmse_per_step.csv" in outputs
    assert "rmse_vs_step.png" in outputs
    # everything goes under a temporary folder: nothing is left where the notebook runs
    assert list(tmp_path.iterdir()) == []


def test_notebook_executes_at_smoke_size(tmp_path):
    _run(at_smoke_size(notebook("meshformer"), SMOKE, SMOKE_EDITS), tmp_path, "traj_001")


@pytest.mark.slow
def test_notebook_executes(tmp_path):
    _run(notebook("meshformer"), tmp_path, "traj_002")
