"""The distributed-training tutorial (virtual CPU devices) is up to date and executes: one
device, data parallelism and data x space decomposition give the same test error."""

import importlib.util
import pathlib
import re

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _builder():
    spec = importlib.util.spec_from_file_location(
        "build_distributed", ROOT / "examples" / "_build_distributed_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebook_is_up_to_date():
    shipped = nbformat.read(ROOT / "examples" / "distributed.ipynb", as_version=4)
    assert [c.source for c in shipped.cells] == [c.source for c in _builder().build().cells]


def test_notebook_executes():
    nb = _builder().build()
    before = sorted(p.name for p in ROOT.iterdir())
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    assert sorted(p.name for p in ROOT.iterdir()) == before
    out = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                  for o in c.get("outputs", []))
    errors = {m.group(1): float(m.group(2))
              for m in re.finditer(r"^(\w+)\s+test relative L2 (\S+)$", out, re.M)}
    assert set(errors) == {"one_device", "data_parallel", "data_x_space"}
    assert max(errors.values()) - min(errors.values()) < 1e-4
    # four devices, each holding a quarter of the batch-by-rows tiles
    assert out.count("holds (slice(") == 4
