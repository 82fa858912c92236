"""The default-job tutorial (the Darcy FNO through load_config/fit/load_run) is what its builder
makes, and executes, writing only under a temporary folder: at smoke sizes in the default run
(every step of the job, the run folder read back), at its own small sizes as a `slow` test (the
FNO beats the mean training field)."""

import pathlib

import nbformat
import pytest
from _notebooks import at_smoke_size, execute, notebook, number

ROOT = pathlib.Path(__file__).resolve().parents[1]

# 24 + 40 samples at 16^2, 4x4 modes, 4 steps (the tutorial: 100 + 40 at 32^2, 8x8, 150 steps;
# the config's batch of 20 needs 20 training samples)
SMOKE = "N_SAMPLES, RESOLUTION, MODES, STEPS = 64, 16, 4, 4"


def test_notebook_is_up_to_date():
    shipped = nbformat.read(ROOT / "examples" / "darcy.ipynb", as_version=4)
    assert [c.source for c in shipped.cells] == [c.source for c in notebook("darcy").cells]


def _run(nb):
    # runs where the tests run (configs/ must resolve), but writes only under its temporary folder
    before = sorted(p.name for p in ROOT.iterdir())
    out = execute(nb)
    assert sorted(p.name for p in ROOT.iterdir()) == before
    assert "loss_curve.png" in out and "prediction_test.png" in out
    # load_run + evaluate_run give back the metrics fit reported
    assert "FieldOperator from run" in out
    return (number(r"test relative L2: FNO (\S+) %", out),
            number(r"test relative L2: FNO \S+ %, mean training field (\S+) %", out))


def test_notebook_executes_at_smoke_size():
    fno, mean = _run(at_smoke_size(notebook("darcy"), SMOKE))
    assert 0 < fno < 1e3 and mean > 10


@pytest.mark.slow
def test_notebook_executes():
    fno, mean = _run(notebook("darcy"))
    # the trained FNO beats the mean training field by a wide margin (measured: 8.2 % vs 36 %)
    assert fno < 0.5 * mean and mean > 20


def test_a_tutorial_kernel_writes_into_a_temporary_folder_that_is_removed():
    """Tutorials write under `tempfile.mkdtemp()`; the kernel that runs them (tests and
    examples/render_tutorials.py) gets a fresh TMPDIR, removed afterwards, so no run leaves
    files behind in the machine's temporary folder."""
    import os
    import tempfile

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import pathlib, tempfile\nd = pathlib.Path(tempfile.mkdtemp())\n"
        "(d / 'f.txt').write_text('x')\nprint(d)")]
    before = os.environ.get("TMPDIR")
    written = pathlib.Path(execute(nb).strip())
    assert written.name and not written.exists()
    assert written.parent.parent == pathlib.Path(tempfile.gettempdir())
    assert written.parent.name.startswith("sciops-tutorial-")
    assert os.environ.get("TMPDIR") == before
