"""Help text made from the config dataclasses' own docstrings (one source of truth).

A config dataclass documents each field in its docstring's `**Fields:**` list as

    - `name` [unit]: what it is.
    - `first`, `second` [unit]: one description for several fields.

The unit is `1` for a dimensionless quantity, `-` for something without one (a name, a seed, a
switch), or the unit itself (`s`, `m²/s`, `Å`, `count`, `cells`, ...). The allowed values come
from the field's type (`Literal[...]` choices, `int`, `float`, tuples, `None`).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
import types
import typing

_ITEM = re.compile(r"^- ((?:`\w+`(?:, )?)+)(?: \[([^\]]+)\])?: ?(.*)$")


@dataclasses.dataclass(frozen=True)
class FieldDoc:
    """One documented field: `description` (one paragraph), `unit` (`None` if not stated)."""

    description: str
    unit: str | None


def summary(cls: type) -> str:
    """The first sentence of a class's docstring (of its first paragraph, however many lines
    that takes; a long one ends at a colon that introduces details)."""
    para = " ".join((inspect.getdoc(cls) or "").strip().split("\n\n")[0].split())
    m = re.match(r"(.+?[.!?])(?:\s|$)", para)
    text = m.group(1) if m else para
    if len(text) > 100 and ": " in text[40:]:
        text = text[:40 + text[40:].index(": ")]
    return _plain(text.rstrip(":"))


def field_docs(cls: type) -> dict[str, FieldDoc]:
    """Parse the `- `name` [unit]: text` items of a dataclass docstring, by field name."""
    doc = inspect.getdoc(cls) or ""
    out: dict[str, FieldDoc] = {}
    names: list[str] = []
    unit: str | None = None
    text: list[str] = []

    def flush():
        for n in names:
            out[n] = FieldDoc(_plain(" ".join(text)), unit)

    for line in doc.split("\n"):
        m = _ITEM.match(line)
        if m:
            flush()
            names, unit, text = re.findall(r"`(\w+)`", m.group(1)), m.group(2), [m.group(3)]
        elif names and line.startswith("  ") and line.strip():
            text.append(line.strip())
        else:
            flush()
            names, unit, text = [], None, []
    flush()
    return out


def _plain(text: str) -> str:
    """Docstring Markdown → terminal text: no backticks, no `$`, fewer backslashes."""
    text = text.replace("``", "").replace("`", "").replace("$", "").replace("\\,", " ")
    text = re.sub(r"\\(text|mathrm)\{([^}]*)\}", r"\2", text)
    return re.sub(r"\\([A-Za-z]+)", r"\1", text).replace("\\_", "_").replace("\\", "")


def allowed_values(tp) -> str:
    """What a field of type `tp` accepts, in words (`one of 'a', 'b'`, `integer`, ...)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        text = " or ".join(allowed_values(a) for a in inner)
        return f"{text}, or null" if type(None) in args else text
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(args[0])}"
        if len(args) == 2 and args[0] == args[1]:
            return f"a range [lo, hi] of two {_plural(args[0])}"
        return "a list of " + ", ".join(allowed_values(a) for a in args)
    if tp is bool:
        return "true or false"
    return {int: "integer", float: "number", str: "text"}.get(tp, getattr(tp, "__name__", str(tp)))


def _plural(tp) -> str:
    return {int: "integers", float: "numbers", str: "strings"}.get(tp, allowed_values(tp))


def _unit_text(unit: str | None) -> str:
    return {None: "unit not stated", "1": "dimensionless", "-": "no unit"}.get(unit, unit)


def _default(f: dataclasses.Field) -> str | None:
    """The default as shown, or `None` for a required field."""
    if f.default is not dataclasses.MISSING:
        return _shown(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return _shown(f.default_factory())
    return None


def _shown(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        value = list(value)
    if dataclasses.is_dataclass(value):
        return "{...}"
    return "null" if value is None else repr(value)


def _field_lines(cls: type, label, values=None, width: int = 100) -> list[str]:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    lines, first_of = [], {}
    for f in dataclasses.fields(cls):
        doc = docs.get(f.name, FieldDoc("(not documented)", None))
        default = _default(f)
        if values is None:
            value = "required" if default is None else f"default {default}"
        else:
            now = _shown(getattr(values, f.name))
            value = now + ("" if now == default else
                           " (required)" if default is None else f" (default {default})")
        lines.append(f"  {label(f.name)}  {allowed_values(hints[f.name])}; "
                     f"{_unit_text(doc.unit)}; {value}")
        if doc.description in first_of:  # one description for several fields: once
            lines.append(f"      (as {first_of[doc.description]})")
            continue
        first_of[doc.description] = label(f.name)
        lines += textwrap.wrap(doc.description, width, initial_indent=" " * 6,
                               subsequent_indent=" " * 6)
    return lines


def options_help(cls: type, *, width: int = 100) -> str:
    """`--key` lines for every field of `cls`: allowed values, unit, default, description."""
    return "\n".join(_field_lines(cls, lambda n: f"--{n.replace('_', '-')}", width=width))


def keys_help(sections: list[tuple[str, str, type, object]], *, width: int = 100) -> str:
    """`prefix.key` lines for every field of each `(title, prefix, config class, config value)`:
    allowed values, unit, the value in use (and the default where it differs), description."""
    lines = []
    for title, prefix, cls, values in sections:
        lines += ["", f"{title}: {summary(cls)}"]
        lines += _field_lines(cls, lambda n, s=prefix: f"{s}.{n}", values, width)
    return "\n".join(lines[1:])
