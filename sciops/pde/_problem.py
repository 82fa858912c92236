"""The registry of data-generating problems (`sciops generate PROBLEM`, `data.generate`)."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

from .._config import closest
from .._errors import ConfigError

__all__ = ["Problem", "problem", "problem_names"]


@dataclasses.dataclass(frozen=True)
class Problem:
    """A data-generating problem.

    **Fields:**

    - `name`: the value of `data.generate.problem` and of `sciops generate NAME`.
    - `config`: a frozen dataclass of the generator's parameters (its YAML keys and
      `--key value` CLI options); every field has a default.
    - `generate(config, path, *, progress=True) -> None`: solve and write the data set to the
      HDF5 file `path` (atomically), with the config stored as provenance.
    """

    name: str
    config: type
    generate: Callable[..., Any]


_MODULES = {
    "darcy": "sciops.pde.darcy",
    "navier_stokes": "sciops.pde.navier_stokes",
    "fisher": "sciops.pde.fisher",
    "darcy_masked": "sciops.pde.darcy_masked",
    "heat3d": "sciops.pde.heat",
    "wave": "sciops.pde.wave",
    "cylinder_flow": "sciops.pde.flow",
    "dfg_2d_2": "sciops.pde.flow",
    "transport": "sciops.pde.flow",
    "atoms": "sciops.pde.atoms",
}


def problem_names() -> list[str]:
    return sorted(_MODULES)


def problem(name: str) -> Problem:
    if name not in _MODULES:
        raise ConfigError(f"data.generate.problem: unknown problem {name!r}{closest(name, _MODULES)};"
                          f" known: {', '.join(problem_names())}")
    module = importlib.import_module(_MODULES[name])
    return module.PROBLEMS[name]
