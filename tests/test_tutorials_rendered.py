"""The tutorials the docs site renders (docs/tutorials/*.ipynb, committed executed by
examples/render_tutorials.py) are the current notebooks, executed without errors, and each is
in the site's navigation."""

import importlib.util
import pathlib

import nbformat
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
RENDERED = sorted((ROOT / "docs" / "tutorials").glob("*.ipynb"))


def _nav_files(entries):
    for entry in entries:
        for value in (entry.values() if isinstance(entry, dict) else [entry]):
            if isinstance(value, list):
                yield from _nav_files(value)
            else:
                yield value


def _render_module():
    spec = importlib.util.spec_from_file_location("render", ROOT / "examples" / "render_tutorials.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_tutorial_is_rendered_and_in_the_nav():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    nav = [f for f in _nav_files(config["nav"]) if f.startswith("tutorials/")]
    assert sorted(nav) == sorted(f"tutorials/{p.name}" for p in RENDERED)
    assert {p.stem for p in RENDERED} == set(_render_module().TUTORIALS)


@pytest.mark.parametrize("path", RENDERED, ids=lambda p: p.stem)
def test_rendered_tutorial_is_current_and_ran(path):
    rendered = nbformat.read(path, as_version=4)
    fresh = _render_module().notebook(path.stem)
    assert [c.source for c in rendered.cells] == [c.source for c in fresh.cells], \
        f"{path.name} is stale: run python examples/render_tutorials.py {path.stem}"
    code = [c for c in rendered.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), f"{path.name} was not executed"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
