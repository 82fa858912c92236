"""The DeepONet tutorial notebook is what its builder makes, and executes: at smoke sizes in the
default run (every cell; zero off the domain, finite errors), at its own small sizes as a `slow`
test (multi-task training learns all three tasks)."""

import math
import pathlib

import nbformat
import pytest
from _notebooks import at_smoke_size, execute, notebook

ROOT = pathlib.Path(__file__).resolve().parents[1]

# 20 samples per data set, 3 optimizer steps per model, one transfer size, narrow networks (the
# tutorial: 150 / 200 samples, 300 steps, sizes 10, 20, 40, width 64)
SMOKE = """N_FISHER, FISHER_STEPS = 20, 3
N_DARCY, DARCY_RES, DARCY_STEPS = 20, 16, 3
TRANSFER_SIZES, TRANSFER_STEPS = (10,), 3
WIDTH = dict(branch_width=16, branch_depth=2, trunk_width=16, trunk_depth=2, latent=8)"""


def test_notebook_is_up_to_date():
    shipped = nbformat.read(ROOT / "examples" / "deeponet.ipynb", as_version=4)
    assert [c.source for c in notebook("deeponet").cells] == [c.source for c in shipped.cells]


def _run(nb, tmp_path):
    outputs = execute(nb, tmp_path)
    # Predictions off the domain are exactly zero.
    assert "largest |prediction| outside the domain: 0.0" in outputs
    line = next(x for x in outputs.splitlines() if "'l2/zeldovich'" in x)
    return eval(line)  # a printed dict of floats


def test_notebook_executes_at_smoke_size(tmp_path):
    errors = _run(at_smoke_size(notebook("deeponet"), SMOKE), tmp_path)
    assert set(errors) >= {"l2/fisher", "l2/nws", "l2/zeldovich"}, errors
    assert all(math.isfinite(v) and v > 0 for v in errors.values()), errors


@pytest.mark.slow
def test_notebook_executes(tmp_path):
    errors = _run(notebook("deeponet"), tmp_path)
    # Multi-task training learns all three tasks (the untrained error is ~1).
    assert all(v < 0.5 for v in errors.values()), errors
