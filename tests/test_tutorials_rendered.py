"""The tutorials the docs site renders (docs/tutorials/*.ipynb, committed executed by
examples/render_tutorials.py) are the current notebooks, executed without errors, on the public
API and trained through `fit`, and each is in the site's navigation (the same check fails
`mkdocs build --strict` through the hook in tools/tutorials.py)."""

import importlib.util
import pathlib

import nbformat
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
RENDERED = sorted((ROOT / "docs" / "tutorials").glob("*.ipynb"))


def _tools():
    spec = importlib.util.spec_from_file_location("tutorials", ROOT / "tools" / "tutorials.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOLS = _tools()


def _nav_files(entries):
    for entry in entries:
        for value in (entry.values() if isinstance(entry, dict) else [entry]):
            if isinstance(value, list):
                yield from _nav_files(value)
            else:
                yield value


def test_every_tutorial_is_rendered_and_in_the_nav():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    nav = [f for f in _nav_files(config["nav"]) if f.startswith("tutorials/")]
    assert sorted(nav) == sorted(f"tutorials/{p.name}" for p in RENDERED)
    assert {p.stem for p in RENDERED} == set(TOOLS.render_module().TUTORIALS)
    assert "tools/tutorials.py" in config["hooks"]


@pytest.mark.parametrize("path", RENDERED, ids=lambda p: p.stem)
def test_rendered_tutorial_is_current_and_ran(path):
    assert TOOLS.problems(path.stem) == []


def test_the_check_finds_each_problem(tmp_path):
    """A stale copy, an unexecuted or failed cell, a private import and a hand-written loop are
    each reported (the check cannot pass vacuously)."""
    good = nbformat.read(ROOT / "docs" / "tutorials" / "darcy.ipynb", as_version=4)
    code = [c for c in good.cells if c.cell_type == "code"]
    stale = nbformat.reads(nbformat.writes(good), as_version=4)
    stale.cells[0].source += " "
    unrun = nbformat.reads(nbformat.writes(good), as_version=4)
    [c for c in unrun.cells if c.cell_type == "code"][1].execution_count = None
    failed = nbformat.reads(nbformat.writes(good), as_version=4)
    [c for c in failed.cells if c.cell_type == "code"][-1].outputs.append(
        nbformat.v4.new_output("error", ename="ValueError", evalue="boom", traceback=[]))
    found = {}
    for name, nb in {"stale": stale, "unrun": unrun, "failed": failed}.items():
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
        found[name] = TOOLS.problems("darcy", tmp_path / f"{name}.ipynb")
    assert found == {"stale": ["darcy: stale.ipynb is stale: run python examples/render_tutorials.py darcy"],
                     "unrun": ["darcy: unrun.ipynb was not executed"],
                     "failed": ["darcy: failed.ipynb failed: ValueError: boom"]}
    assert TOOLS.problems("darcy", tmp_path / "none.ipynb")[0].startswith("darcy: no rendered copy")
    assert len(code) > 3
    assert TOOLS.code_problems("t", ["from sciops.models.fno._mg import stitch",
                                     "from sciops.nn import (SpectralConv,\n    _rank)",
                                     "import sciops._config",
                                     "from sciops.train import fit, load_run"]) == [
        "t: imports the private 'sciops.models.fno._mg'",
        "t: imports the private 'from sciops.nn import (SpectralConv,\\n    _rank'",
        "t: imports the private 'sciops._config'"]
    assert TOOLS.code_problems("t", ["g = jax.value_and_grad(loss)(p)", "opt = optax.adam(1e-3)"]) \
        == ["t: trains in a hand-written loop (uses jax.value_and_grad, optax.); train with "
            "sciops.train.fit"]


def test_benchmarks_and_docs_use_the_public_api():
    """Benchmarks and the docs' text and examples name only public sciops modules and names
    (the brief: where a private name was needed, it was made public)."""
    files = sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "docs").rglob("*.md"))
    found = {str(p.relative_to(ROOT)): TOOLS.private_names(p.read_text()) for p in files}
    assert {k: v for k, v in found.items() if v} == {}
    assert len(files) > 40
