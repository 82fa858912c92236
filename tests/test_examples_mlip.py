"""The MLIP (TDN) tutorial notebook is up to date and executes at its small sizes."""

import pathlib
import re

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_notebook_is_up_to_date(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "build", ROOT / "examples" / "_build_mlip_notebook.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.main(tmp_path / "nb.ipynb")
    fresh = nbformat.read(tmp_path / "nb.ipynb", as_version=4)
    shipped = nbformat.read(ROOT / "examples" / "mlip.ipynb", as_version=4)
    assert [c.source for c in fresh.cells] == [c.source for c in shipped.cells]


def test_notebook_executes(tmp_path):
    nb = nbformat.read(ROOT / "examples" / "mlip.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    out = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                  for o in c.get("outputs", []))

    def number(pattern):
        return float(re.search(pattern, out).group(1))

    # CP at 7L^2 is near exact; its equivariance error is tiny, the low rank's is not.
    assert number(r"CP R=28 \(7L²\)\s+relative error\s+(\S+)") < 1e-3
    assert number(r"CP R=12\s+relative error\s+(\S+)") > 0.1
    # Training reduces the force error and beats predicting zero force on held-out data.
    first, last = re.search(r"train force RMSE: (\S+) -> (\S+) eV/Å", out).groups()
    assert float(last) < 0.7 * float(first)
    assert number(r"held-out force MAE (\S+) eV/Å") < number(r"held-out force std: (\S+) eV/Å")
    assert number(r"trained-model force equivariance error: (\S+)") < 1e-4
    assert number(r"NVE total-energy spread over 100 fs: (\S+) meV/atom") < 1.0
