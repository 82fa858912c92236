"""The default-job tutorial (the Darcy FNO through load_config/fit/load_run) is up to date and
executes at its small sizes, writing only under a temporary folder."""

import importlib.util
import pathlib
import re

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_darcy", ROOT / "examples" / "_build_darcy_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebook_is_up_to_date():
    shipped = nbformat.read(ROOT / "examples" / "darcy.ipynb", as_version=4)
    assert [c.source for c in shipped.cells] == [c.source for c in _builder().build().cells]


def test_notebook_executes(tmp_path):
    # runs where the tests run (configs/ must resolve), but writes only under its temporary folder
    nb = _builder().build()
    before = sorted(p.name for p in ROOT.iterdir())
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    assert sorted(p.name for p in ROOT.iterdir()) == before
    out = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                  for o in c.get("outputs", []))
    fno, mean = (float(x) for x in re.search(
        r"test relative L2: FNO (\S+) %, mean training field (\S+) %", out).groups())
    # the trained FNO beats the mean training field by a wide margin (measured: 8.2 % vs 36 %)
    assert fno < 0.5 * mean and mean > 20
    assert "loss_curve.png" in out and "prediction_test.png" in out
    # load_run + evaluate_run give back the metrics fit reported
    assert "FieldOperator from run" in out
