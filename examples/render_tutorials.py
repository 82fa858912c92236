"""Execute every tutorial notebook and write it, with its outputs, to docs/tutorials/ (the docs
site renders those with mkdocs-jupyter; the notebooks in examples/ stay output-free).

    python examples/render_tutorials.py [NAME ...]      # from the repository root

Each notebook is built by its `examples/_build_<name>_notebook.py`, executed with nbclient in
the repository root (so `configs/...` resolve), and writes only under a temporary folder.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TUTORIALS = ("darcy", "distributed", "tfno", "deeponet", "meshformer", "wavecnn", "mlip")


def builder(name: str):
    """The `_build_<name>_notebook` module."""
    path = ROOT / "examples" / f"_build_{name}_notebook.py"
    spec = importlib.util.spec_from_file_location(f"_build_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook(name: str):
    """The tutorial's notebook (no outputs), as its builder makes it."""
    import nbformat

    module = builder(name)
    if hasattr(module, "build"):
        return module.build()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                for kind, src in module.CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def execute(nb, timeout: int = 1200, path: str | pathlib.Path = ROOT):
    """Run `nb` in place in a fresh kernel whose working directory is `path` (default the
    repository root). The kernel's temporary folder (``TMPDIR``, where the tutorials write
    everything) is a fresh one, removed afterwards."""
    import os
    import tempfile

    import nbclient

    before = os.environ.get("TMPDIR")
    with tempfile.TemporaryDirectory(prefix="sciops-tutorial-") as tmp:
        os.environ["TMPDIR"] = tmp  # the kernel process inherits it
        try:
            nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(path)}}).execute()
        finally:
            if before is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = before
    return nb


def main(names=TUTORIALS) -> None:
    import nbformat

    out = ROOT / "docs" / "tutorials"
    out.mkdir(exist_ok=True)
    for name in names:
        t0 = time.perf_counter()
        nb = execute(notebook(name))
        nbformat.write(nb, out / f"{name}.ipynb")
        print(f"{name}: executed in {time.perf_counter() - t0:.0f} s -> {out / f'{name}.ipynb'}")


if __name__ == "__main__":
    main(sys.argv[1:] or TUTORIALS)
