"""The rendered tutorials as the docs site shows them, checked.

Used twice: as an mkdocs hook (`hooks:` in mkdocs.yml), which logs a warning per problem, so
`mkdocs build --strict` fails on a stale, unexecuted or failed tutorial; and by
`tests/test_tutorials_rendered.py`.

A tutorial is a name in `examples/render_tutorials.py`'s `TUTORIALS`; its notebook is built by
`examples/_build_<name>_notebook.py` and committed executed under docs/tutorials/ (the docs
build does not execute it; the tests execute the same notebook). Its problems:

- the rendered copy is missing, or its cells differ from what the builder makes (stale);
- a code cell was not executed, or its outputs hold an error;
- its code imports a private module or name of sciops (`sciops.x._y`, `from sciops.x import
  _y`): tutorials teach the public API;
- its code trains in a hand-written loop (`jax.value_and_grad`, `jax.grad`, `optax.`) instead of
  `sciops.train.fit`.
"""

from __future__ import annotations

import importlib.util
import logging
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]

_PRIVATE = re.compile(r"\bsciops(?:\.\w+)*\._\w+|^\s*from\s+sciops(?:\.\w+)*\s+import\s+"
                      r"(?:\(\s*)?(?:[\w ,]*,\s*)?_\w+", re.M)
_HAND_LOOP = re.compile(r"\b(?:jax\.value_and_grad|jax\.grad|eqx\.filter_value_and_grad|"
                        r"eqx\.filter_grad|optax\.)")


def render_module():
    """`examples/render_tutorials.py`, imported."""
    spec = importlib.util.spec_from_file_location("render_tutorials",
                                                  ROOT / "examples" / "render_tutorials.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def private_names(text: str) -> list[str]:
    """Each private sciops module or name that `text` (code or prose) reaches for:
    ``sciops.x._y`` anywhere, or ``from sciops.x import _y``."""
    return [m.group(0).strip() for m in _PRIVATE.finditer(text)]


def code_problems(name: str, sources: list[str]) -> list[str]:
    """What a tutorial's code cells (`sources`) do that a tutorial should not."""
    code = "\n".join(sources)
    out = [f"{name}: imports the private {m!r}" for m in private_names(code)]
    loop = sorted({m.group(0) for m in _HAND_LOOP.finditer(code)})
    if loop:
        out.append(f"{name}: trains in a hand-written loop (uses {', '.join(loop)}); train with "
                   f"sciops.train.fit")
    return out


def problems(name: str, rendered: pathlib.Path | None = None) -> list[str]:
    """Every problem of tutorial `name` (its rendered copy: `rendered`, default
    docs/tutorials/<name>.ipynb), one line each; empty when there is none."""
    import nbformat

    path = ROOT / "docs" / "tutorials" / f"{name}.ipynb" if rendered is None else rendered
    cells = render_module().notebook(name).cells
    fresh = [c.source for c in cells]
    out = code_problems(name, [c.source for c in cells if c.cell_type == "code"])
    if not path.is_file():
        return out + [f"{name}: no rendered copy at {path}: run python examples/render_tutorials.py "
                      f"{name}"]
    nb = nbformat.read(path, as_version=4)
    if [c.source for c in nb.cells] != fresh:
        out.append(f"{name}: {path.name} is stale: run python examples/render_tutorials.py {name}")
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not all(c.execution_count for c in code):
        out.append(f"{name}: {path.name} was not executed")
    for c in code:
        for o in c.outputs:
            if o.output_type == "error":
                out.append(f"{name}: {path.name} failed: {o.ename}: {o.evalue}")
    return out


def on_pre_build(config, **kwargs) -> None:
    """mkdocs hook: a warning (an error under --strict) per tutorial problem."""
    log = logging.getLogger("mkdocs.plugins.sciops_tutorials")
    for name in render_module().TUTORIALS:
        for line in problems(name):
            log.warning(line)
