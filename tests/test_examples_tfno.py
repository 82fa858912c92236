"""The TFNO tutorial notebook executes end to end at its small default size."""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_tfno_notebook_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_tfno",
                                                  ROOT / "examples" / "_build_tfno_notebook.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    # the committed notebook is what the builder makes
    committed = nbformat.read(ROOT / "examples" / "tfno.ipynb", as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in builder.build().cells]
    nb = builder.build()
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    nbformat.write(nb, tmp_path / "tfno_executed.ipynb")
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    # the two contraction paths agree, and stitching the identity gives the field back
    stitch = [float(line.split()[-1]) for line in text.splitlines()
              if line.startswith("stitch(identity) error:")]
    assert len(stitch) == 1 and stitch[0] < 1e-5
    diffs = [float(line.split()[-1]) for line in text.splitlines()
             if line.startswith(("CP ", "Tucker ", "TT "))]
    assert len(diffs) == 6 and max(diffs) < 1e-4
    assert "MG-TFNO (2x2 patches, 1 level) test rel. L2" in text
