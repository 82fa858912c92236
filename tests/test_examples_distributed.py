"""The distributed-training tutorial (virtual CPU devices) is up to date and executes: one
device, data parallelism and data x space decomposition give the same test error; at smoke sizes
in the default run, at its own small sizes as a `slow` test."""

import pathlib
import re

import nbformat
import pytest
from _notebooks import at_smoke_size, execute, notebook

ROOT = pathlib.Path(__file__).resolve().parents[1]

# 16 + 8 fields at 16^2, 4x4 modes, 1 Fourier layer, 2 steps (the tutorial: 64 + 8 at 32^2, 8x8
# modes, 4 layers, 20 steps; compiling the three runs is most of its time). The first cell sets
# the virtual devices, so the sizes are edited where the tutorial lists them.
SMOKE_EDITS = {'"data.generate.n_samples=72"': '"data.generate.n_samples=24"',
               '"data.generate.resolution=32"': '"data.generate.resolution=16"',
               '"data.n_train=64"': '"data.n_train=16"',
               '"model.n_modes=[8, 8]"': '"model.n_modes=[4, 4]"',
               '"model.hidden_channels=8"': '"model.hidden_channels=8", "model.n_layers=1"',
               '"train.steps=20"': '"train.steps=2"'}


def test_notebook_is_up_to_date():
    shipped = nbformat.read(ROOT / "examples" / "distributed.ipynb", as_version=4)
    assert [c.source for c in shipped.cells] == [c.source for c in notebook("distributed").cells]


def _run(nb):
    before = sorted(p.name for p in ROOT.iterdir())
    out = execute(nb)
    assert sorted(p.name for p in ROOT.iterdir()) == before
    errors = {m.group(1): float(m.group(2))
              for m in re.finditer(r"^(\w+)\s+test relative L2 (\S+)$", out, re.M)}
    assert set(errors) == {"one_device", "data_parallel", "data_x_space"}
    assert max(errors.values()) - min(errors.values()) < 1e-4
    # four devices, each holding a quarter of the batch-by-rows tiles
    assert out.count("holds (slice(") == 4
    return out


def test_notebook_executes_at_smoke_size():
    out = _run(at_smoke_size(notebook("distributed"), replace=SMOKE_EDITS))
    assert "16 train, 8 test samples; fields x (1, 16, 16)" in out  # the smoke sizes ran


@pytest.mark.slow
def test_notebook_executes():
    _run(notebook("distributed"))
