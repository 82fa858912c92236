"""sciops: learned PDE operators and simulators in JAX.

Subpackages, bottom layer first: `sciops.data` (fields, HDF5/XDMF/extxyz), `sciops.pde`
(reference solvers), `sciops.nn` (layers), `sciops.models` (the five families),
`sciops.train` (the sharded driver), `sciops.eval` (evaluation, rollouts); `sciops.mlip` holds
the ASE calculator (extra `mlip`).

The main entry points: `load_config` → `fit` → `load_run` / `evaluate_run`.

`import sciops` is light: the subpackages and the entry points are imported on first use, so
`import sciops.data` does not load the training driver, optax or evaluation.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._errors import ConfigError as ConfigError
from ._errors import DataError as DataError
from ._errors import SciopsError as SciopsError
from ._errors import TrainingError as TrainingError
from ._malloc import malloc_tuning_state as malloc_tuning_state
from ._malloc import tune_malloc as tune_malloc
from ._version import __version__ as __version__

if TYPE_CHECKING:
    from . import data as data
    from . import eval as eval
    from . import models as models
    from . import nn as nn
    from . import pde as pde
    from . import train as train
    from .eval import evaluate_run as evaluate_run
    from .train import fit as fit
    from .train import load_config as load_config
    from .train import load_run as load_run

_SUBPACKAGES = ("data", "pde", "nn", "models", "train", "eval", "cli")
_ENTRY_POINTS = {"fit": "train", "load_config": "train", "load_run": "train",
                 "evaluate_run": "eval"}


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name in _ENTRY_POINTS:
        return getattr(importlib.import_module(f".{_ENTRY_POINTS[name]}", __name__), name)
    raise AttributeError(f"module 'sciops' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBPACKAGES) | set(_ENTRY_POINTS))
