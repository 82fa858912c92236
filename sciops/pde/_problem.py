"""The registry of data-generating problems (`sciops generate PROBLEM`, `data.generate`)."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

from .._config import closest
from .._errors import ConfigError

__all__ = ["Problem", "problem", "problem_names", "register_problem"]


@dataclasses.dataclass(frozen=True)
class Problem:
    """A data-generating problem.

    **Fields:**

    - `name`: the value of `data.generate.problem` and of `sciops generate NAME`.
    - `config`: a frozen dataclass of the generator's parameters (its YAML keys and
      `--key value` CLI options); every field has a default.
    - `generate(config, path, *, progress=True) -> None`: solve and write the data set to the
      HDF5 file `path` (atomically), with the config stored as provenance.
    - `self_convergence(config, n_samples) -> SelfConvergence`: the first `n_samples` samples
      of the data set against the same samples solved at half the grid spacing and time step
      (`None` where the data have no discretisation error to measure this way).
    """

    name: str
    config: type
    generate: Callable[..., Any]
    self_convergence: Callable[..., Any] | None = None


# The built-in problems: name -> the module that defines it (in its `PROBLEMS` mapping),
# imported on first use so that `import sciops.pde` stays light.
_BUILTIN = {
    "darcy": "sciops.pde.darcy",
    "navier_stokes": "sciops.pde.navier_stokes",
    "fisher": "sciops.pde.fisher",
    "darcy_masked": "sciops.pde.darcy_masked",
    "heat3d": "sciops.pde.heat",
    "wave": "sciops.pde.wave",
    "cylinder_flow": "sciops.pde.flow",
    "dfg_2d_2": "sciops.pde.flow",
    "transport": "sciops.pde.flow",
    "pipe_flow": "sciops.pde.pipe_flow",
    "atoms": "sciops.pde.atoms",
    "molecule": "sciops.pde.molecules",
}
_REGISTRY: dict[str, Problem] = {}


def register_problem(problem: Problem, *, replace: bool = False) -> Problem:
    """Make `problem` available to ``data.generate.problem`` and ``sciops generate``.

    **Arguments:**

    - `problem`: the record.
    - `replace`: allow replacing a problem registered under the same name (otherwise a
      `ConfigError`).

    **Returns:** `problem`.
    """
    if not isinstance(problem, Problem):
        raise ConfigError(f"register_problem: expected a sciops.pde.Problem, got "
                          f"{type(problem).__name__}")
    old = _REGISTRY.get(problem.name)
    if old is not None and old is not problem and not replace:
        raise ConfigError(f"register_problem: a problem named {problem.name!r} is already "
                          "registered (pass replace=True to replace it)")
    _REGISTRY[problem.name] = problem
    return problem


def problem_names() -> list[str]:
    """The names of the built-in and registered problems."""
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def problem(name: str) -> Problem:
    """Look up a problem by name (ConfigError naming the closest one)."""
    if name not in _REGISTRY and name in _BUILTIN:
        module = importlib.import_module(_BUILTIN[name])
        register_problem(module.PROBLEMS[name])
    if name not in _REGISTRY:
        known = problem_names()
        raise ConfigError(f"data.generate.problem: unknown problem {name!r}"
                          f"{closest(name, known)}; known: {', '.join(known)}")
    return _REGISTRY[name]
