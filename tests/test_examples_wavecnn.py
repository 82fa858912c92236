"""The wave-CNN tutorial notebook executes end to end at its small sizes."""

import ast
import pathlib

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_notebook_is_up_to_date(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "build", ROOT / "examples" / "_build_wavecnn_notebook.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.main(tmp_path / "nb.ipynb")
    fresh = nbformat.read(tmp_path / "nb.ipynb", as_version=4)
    shipped = nbformat.read(ROOT / "examples" / "wavecnn.ipynb", as_version=4)
    assert [c.source for c in fresh.cells] == [c.source for c in shipped.cells]


def test_notebook_executes(tmp_path):
    nb = nbformat.read(ROOT / "examples" / "wavecnn.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    lines = [line for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
             for line in o.get("text", "").splitlines()]
    # 32 -> 32 channels, 5x5: 25,632 dense parameters against 8 * (32 + 10 + 32) + 32 = 624.
    assert "params: full 25,632, CP-8 624 (41x fewer)" in lines
    diff = next(x for x in lines if x.startswith("CP vs its dense twin"))
    assert float(diff.split(":")[1]) < 1e-4
    results = ast.literal_eval(next(x for x in lines if x.startswith("{'full'")))
    # Training cuts the one-step error of the initial model (~ the extrapolation): by half for the
    # dense model; the tiny CP-4 model (width 8) learns slower in these 120 steps (0.20 -> 0.14).
    assert results["full"]["l2"] < 0.5 * results["full"]["l2_untrained"], results
    assert results["cp-4"]["l2"] < 0.8 * results["cp-4"]["l2_untrained"], results
    assert results["cp-4"]["conv_params"] * 10 < results["full"]["conv_params"]
