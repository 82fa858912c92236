"""The mesh-transformer tutorial notebook is up to date and executes at its small sizes."""

import pathlib

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_notebook_is_up_to_date(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "build", ROOT / "examples" / "_build_meshformer_notebook.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.main(tmp_path / "nb.ipynb")
    fresh = nbformat.read(tmp_path / "nb.ipynb", as_version=4)
    shipped = nbformat.read(ROOT / "examples" / "meshformer.ipynb", as_version=4)
    assert [c.source for c in fresh.cells] == [c.source for c in shipped.cells]


def test_notebook_executes(tmp_path):
    nb = nbformat.read(ROOT / "examples" / "meshformer.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    line = next(x for x in outputs.splitlines() if x.startswith("loss: first"))
    first, last = (float(w.strip(",")) for w in line.split()[2::2])
    assert last < first  # training lowers the loss
    assert "traj_002_prediction.xdmf" in outputs and "rmse_per_step.csv" in outputs
    assert "rmse_vs_step.png" in outputs
    # everything goes under a temporary folder: nothing is left where the notebook runs
    assert list(tmp_path.iterdir()) == []
