"""Which leaves of a model the optimizer updates: frozen constants and transfer-learning masks.

A leaf is trainable when the family's `Family.trainable` selects it (by default every
floating-point array outside frozen modules such as `sciops.data.Normalizer`) and, in a
transfer run, it lies under one of the `trainable` paths.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax

from .._errors import ConfigError
from ..models import default_trainable

__all__ = ["trainable_filter", "resolve_path", "module_paths"]

_TOKEN = re.compile(r"\.?([A-Za-z_]\w*)|\[(-?\d+)\]")


def resolve_path(model: Any, path: str, key: str = "transfer.trainable") -> Any:
    """The sub-tree of `model` at an attribute path such as ``branch.layers[-1]``."""
    pos, node = 0, model
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None or m.end() == pos:
            raise ConfigError(f"{key}: cannot parse {path!r} (expected e.g. 'trunk' or "
                              "'branch.layers[-1]')")
        attr, index = m.groups()
        try:
            node = getattr(node, attr) if attr is not None else node[int(index)]
        except (AttributeError, IndexError, TypeError, KeyError):
            options = ", ".join(module_paths(model))
            raise ConfigError(f"{key}: {path!r} names no part of the model; parts: "
                              f"{options}") from None
        pos = m.end()
    return node


def module_paths(model: Any) -> list[str]:
    """The top-level sub-module names of a model (for error messages)."""
    if isinstance(model, eqx.Module):
        return [k for k, v in vars(model).items()
                if any(eqx.is_array(x) for x in jax.tree.leaves(v))]
    return []


def trainable_filter(model: Any, trainable: Sequence[str] | None = None,
                     key: str = "transfer.trainable", base: Any = None) -> Any:
    """A pytree of bools like `model`: True where the optimizer updates the leaf.

    **Arguments:**

    - `model`: the model.
    - `trainable`: attribute paths (``second``, ``branch.layers[-1]``) of the parts a transfer
      run trains; none: every part.
    - `key`: the config key named in errors.
    - `base`: the leaves that may train at all (the family's `Family.trainable(model)`);
      default `sciops.models.default_trainable(model)`.
    """
    spec = default_trainable(model) if base is None else base
    if not trainable:
        return spec
    chosen = jax.tree.map(lambda _: False, spec)
    for i, path in enumerate(trainable):
        sub = resolve_path(model, path, f"{key}[{i}]")
        if not any(eqx.is_inexact_array(x) for x in jax.tree.leaves(sub)):
            raise ConfigError(f"{key}[{i}]: {path!r} holds no trainable parameters")
        chosen = eqx.tree_at(lambda t, p=path: resolve_path(t, p), chosen,
                             jax.tree.map(lambda _: True, resolve_path(chosen, path)))
    return jax.tree.map(lambda a, b: a and b, spec, chosen)
