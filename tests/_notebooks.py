"""Running a tutorial notebook in a test, at its own sizes or at smoke sizes.

A tutorial (`examples/_build_<name>_notebook.py`) opens with a code cell of sizes. The default
test run executes it with that cell replaced by smoke sizes (tiny data, a few optimizer steps), so
that every cell runs and the checks that hold at any size (exact identities, agreement of two
code paths, files written, a finite loss that falls) are made in seconds; the tutorial at its own
sizes, with its accuracy checks, is a `slow` test. The committed notebook is never changed.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib
import re

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _render_module():
    spec = importlib.util.spec_from_file_location(
        "render_tutorials", ROOT / "examples" / "render_tutorials.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook(name: str) -> nbformat.NotebookNode:
    """The tutorial's notebook (no outputs), as its builder makes it."""
    return _render_module().notebook(name)


def at_smoke_size(nb: nbformat.NotebookNode, sizes: str | None = None,
                  replace: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """`nb` with its first code cell replaced by `sizes` and each `old: new` of `replace` applied.

    Each `old` must occur exactly once in the notebook's code, so that a builder change which
    moves or drops a size fails here rather than silently running the full size.
    """
    code = [c for c in nb.cells if c.cell_type == "code"]
    if sizes is not None:
        old_names = set(re.findall(r"^(\w+(?:, \w+)*) =", code[0].source, re.M))
        new_names = set(re.findall(r"^(\w+(?:, \w+)*) =", sizes, re.M))
        assert old_names == new_names, (old_names, new_names)
        code[0].source = sizes
    for old, new in (replace or {}).items():
        hits = [c for c in code if old in c.source]
        assert len(hits) == 1 and hits[0].source.count(old) == 1, f"{old!r} is not in one place"
        hits[0].source = hits[0].source.replace(old, new)
    return nb


def execute(nb: nbformat.NotebookNode, path: str | pathlib.Path = ROOT,
            timeout: int = 600) -> str:
    """Run `nb` in place in a fresh kernel whose working directory is `path`, with a fresh
    temporary folder removed afterwards (`examples/render_tutorials.py`); its printed text."""
    _render_module().execute(nb, timeout=timeout, path=path)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))


def number(pattern: str, text: str) -> float:
    """The float captured by `pattern`'s first group in `text`, checked finite."""
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in the notebook's output"
    value = float(found.group(1))
    assert math.isfinite(value), (pattern, value)
    return value
