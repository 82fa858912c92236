"""The public API and its docstrings, as the API reference (mkdocstrings/griffe) sees them.

Used twice: as an mkdocs hook (`hooks:` in mkdocs.yml), which logs a warning per undocumented
public symbol, so `mkdocs build --strict` fails; and by `tests/test_api_docs.py`.

A public module is one listed in `PUBLIC_MODULES` (each has a page under docs/api/); its public
symbols are the names it defines or re-exports explicitly (`from ._x import A as A`, or `__all__`),
without a leading underscore; the redundant-alias convention is griffe's extension
`griffe_public_redundant_aliases`, which the mkdocstrings handler loads too (mkdocs.yml), so the
check and the rendered pages agree on what is public. Each must have a docstring: classes and functions their own,
module-level constants an attribute docstring (a string literal on the line after them).
"""

from __future__ import annotations

import logging
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]

PUBLIC_MODULES = (
    "sciops", "sciops.data", "sciops.pde", "sciops.nn", "sciops.models", "sciops.models.fno",
    "sciops.models.deeponet", "sciops.models.meshformer", "sciops.models.wavecnn",
    "sciops.models.mlip", "sciops.train", "sciops.eval", "sciops.plot", "sciops.track", "sciops.mlip",
    "sciops.cli",
)


def extensions():
    """The griffe extensions the API reference uses (see the module docstring)."""
    import griffe

    return griffe.load_extensions("griffe_public_redundant_aliases")


def public_symbols(package=None) -> dict[str, object]:
    """Dotted name → the griffe object it resolves to, for every public symbol."""
    import griffe

    if package is None:
        package = griffe.load("sciops", search_paths=[str(ROOT)], resolve_aliases=True,
                              resolve_external=False, extensions=extensions(),
                              try_relative_path=False)
    out = {}
    for dotted in PUBLIC_MODULES:
        module = package if dotted == "sciops" else package[dotted.split(".", 1)[1]]
        for name, member in module.members.items():
            if name.startswith("_") or not member.is_public:
                continue
            try:
                target = member.final_target if member.is_alias else member
            except Exception:  # noqa: BLE001 - an alias griffe cannot resolve: report it
                out[f"{dotted}.{name}"] = None
                continue
            if not target.is_module:
                out[f"{dotted}.{name}"] = target
    return out


def undocumented() -> list[str]:
    """Public symbols without a docstring (or whose re-export cannot be resolved)."""
    return sorted(name for name, obj in public_symbols().items()
                  if obj is None or obj.docstring is None or not obj.docstring.value.strip())


def undocumented_pages() -> list[str]:
    """Public modules that no page under docs/api/ renders (`::: module`)."""
    text = "\n".join(p.read_text() for p in (ROOT / "docs" / "api").glob("*.md"))
    return [m for m in PUBLIC_MODULES if f"::: {m}\n" not in text + "\n" and m != "sciops.data"]


def on_pre_build(config, **kwargs) -> None:
    """mkdocs hook: a warning (an error under --strict) per undocumented public symbol."""
    log = logging.getLogger("mkdocs.plugins.sciops_api")
    for name in undocumented():
        log.warning(f"public symbol without a docstring: {name}")
    for module in undocumented_pages():
        log.warning(f"public module without an API page under docs/api/: {module}")
