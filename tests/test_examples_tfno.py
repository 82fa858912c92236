"""The TFNO tutorial notebook is what its builder makes, and executes end to end: at smoke sizes in
the default run (every cell; the two contraction paths agree, stitching the identity gives the
field back), at its own small sizes as a `slow` test."""

import pathlib

import nbformat
import pytest
from _notebooks import at_smoke_size, execute, notebook

ROOT = pathlib.Path(__file__).resolve().parents[1]

# 8 + 4 fields at 16^2, width 4, 4x4 modes, 1 Fourier layer, 2 steps, one factorized model
# besides the MG-TFNO, 2 ranks in the compression plot (the tutorial: 48 + 8 at 32^2, width 8, 8x8
# modes, 4 layers, 30 steps, dense/Tucker/CP, 12 ranks; compiling the models, whose layer loop is
# unrolled, is most of its time)
SMOKE = """RESOLUTION = 16
N_TRAIN, N_TEST = 8, 4
STEPS = 2
WIDTH, MODES = 4, 4
MODELS = ("tucker 0.2",)
SEED = 0"""
SMOKE_EDITS = {"hidden_channels=WIDTH, n_layers=4,": "hidden_channels=WIDTH, n_layers=1,",
               "ranks = np.geomspace(0.005, 0.5, 12)": "ranks = np.geomspace(0.005, 0.5, 2)"}


def test_notebook_is_up_to_date():
    committed = nbformat.read(ROOT / "examples" / "tfno.ipynb", as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in notebook("tfno").cells]


def _run(nb, tmp_path):
    text = execute(nb)
    nbformat.write(nb, tmp_path / "tfno_executed.ipynb")
    # the two contraction paths agree, and stitching the identity gives the field back
    stitch = [float(line.split()[-1]) for line in text.splitlines()
              if line.startswith("stitch(identity) error:")]
    assert len(stitch) == 1 and stitch[0] < 1e-5
    diffs = [float(line.split()[-1]) for line in text.splitlines()
             if line.startswith(("CP ", "Tucker ", "TT "))]
    assert len(diffs) == 6 and max(diffs) < 1e-4
    assert "MG-TFNO (2x2 patches, 1 level) test rel. L2" in text
    return text


def test_notebook_executes_at_smoke_size(tmp_path):
    text = _run(at_smoke_size(notebook("tfno"), SMOKE, SMOKE_EDITS), tmp_path)
    # Tucker at 0.2 of the dense 2 x 1 layer x 4 x 4 channels x 4 x 3 modes = 384 parameters
    assert "tucker 0.2   spectral params" in text


@pytest.mark.slow
def test_notebook_executes(tmp_path):
    _run(notebook("tfno"), tmp_path)
