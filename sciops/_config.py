"""Typed configuration: YAML → frozen dataclasses, with errors that name the key path.

Every config section in sciops is a frozen dataclass whose field names equal the constructor
arguments they feed. `from_dict` checks a plain mapping (parsed YAML) against such a dataclass:
unknown keys (naming the closest valid key), missing keys, wrong types and `Literal` choices are
`ConfigError`s that name the dotted key path, e.g. ``model.n_modes: expected list of int, got 'abc'``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import pathlib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar, Union

import yaml

from ._errors import ConfigError

T = TypeVar("T")

__all__ = ["from_dict", "to_dict", "load_yaml", "apply_overrides", "closest"]


def closest(name: str, options) -> str:
    """A ' (did you mean 'x'?)' suffix naming the closest of `options`, or ''."""
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _describe(tp) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin in (list, tuple, Sequence):
        inner = [a for a in args if a is not Ellipsis]
        return f"list of {_describe(inner[0])}" if inner else "list"
    if origin in (dict, Mapping):
        return f"mapping of {_describe(args[1])}" if args else "mapping"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


# YAML 1.2 core-schema floats that PyYAML (YAML 1.1) leaves as strings, such as ``1e-3``
# (1.1 wants ``1.0e-3``): https://yaml.org/spec/1.2.2/#1032-tag-resolution
_YAML12_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"
                           r"|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$")


def _yaml12_float(text: str) -> float:
    low = text.lower()
    if low.endswith(".inf"):
        return -math.inf if low.startswith("-") else math.inf
    if low == ".nan":
        return math.nan
    return float(text)


def _convert(tp, value, path: str):
    """Convert `value` to type `tp`, raising a ConfigError naming `path`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    bad = ConfigError(f"{path}: expected {_describe(tp)}, got {value!r}")
    if tp is Any:
        return value
    if tp is type(None):
        if value is None:
            return None
        raise bad
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{path}: expected one of {', '.join(map(repr, args))}, got {value!r}"
                          + (closest(str(value), map(str, args)) if isinstance(value, str) else ""))
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, path)
            except ConfigError as e:
                errors.append(e)
        # One non-None alternative: its own, more specific, message is the clearest.
        if len(errors) == 1:
            raise errors[0]
        raise bad
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value) and isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise bad
        return from_dict(tp, value, path)
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise bad
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{path}: expected a list of {len(args)} items, got {value!r}")
            return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
        inner = args[0] if args else Any
        return tuple(_convert(inner, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp in (dict,):
        if not isinstance(value, Mapping):
            raise bad
        vt = args[1] if args else Any
        return {str(k): _convert(vt, v, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _YAML12_FLOAT.match(value.strip()):
            return _yaml12_float(value.strip())
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise bad


def from_dict(cls: type[T], data: Mapping[str, Any] | None, path: str = "") -> T:
    """Build the dataclass `cls` from a mapping, checking keys and types.

    **Arguments:**

    - `cls`: a (frozen) dataclass type.
    - `data`: the parsed YAML mapping (``None`` counts as empty).
    - `path`: the dotted key path of this section, used in error messages.

    **Returns:** an instance of `cls`.

    **Raises:** `ConfigError` naming the key path for unknown, missing or ill-typed keys.
    """
    data = {} if data is None else data
    prefix = f"{path}." if path else ""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(f"{prefix}{key}: unknown key{closest(str(key), fields)}; valid keys: "
                              + ", ".join(sorted(fields)))
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}{name}: missing required key ({_describe(hints[name])})")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path or 'config'}: {e}") from None


def to_dict(obj) -> Any:
    """The plain (YAML-safe) form of a config dataclass, recursively."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    return obj


def load_yaml(path: str | pathlib.Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a syntax error is a ConfigError naming file and line."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        raise ConfigError(f"{path}: YAML syntax error at {where}: {e.problem}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: YAML error: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML) to a nested mapping copy."""
    import copy

    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected dotted.key=value")
        key, _, raw = item.partition("=")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        parts = key.strip().split(".")
        node = data
        for i, p in enumerate(parts[:-1]):
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"{'.'.join(parts[: i + 1])}: is not a section, cannot set {key}")
            node = nxt
        node[parts[-1]] = value
    return data
