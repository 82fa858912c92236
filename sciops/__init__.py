"""sciops: learned PDE operators and simulators in JAX.

Subpackages, bottom layer first: `sciops.data` (fields, HDF5/XDMF/extxyz), `sciops.pde`
(reference solvers), `sciops.nn` (layers), `sciops.models` (the five families),
`sciops.train` (the sharded driver), `sciops.eval` (evaluation, rollouts); `sciops.mlip` holds
the ASE calculator (extra `mlip`).

The main entry points: `load_config` → `fit` → `load_run` / `evaluate_run`.
"""

__version__ = "0.1.0"

from . import data as data
from . import models as models
from . import nn as nn
from . import pde as pde
from ._errors import ConfigError as ConfigError
from ._errors import DataError as DataError
from ._errors import SciopsError as SciopsError
from ._errors import TrainingError as TrainingError
from ._malloc import tune_malloc as tune_malloc
from .eval import evaluate_run as evaluate_run
from .train import fit as fit
from .train import load_config as load_config
from .train import load_run as load_run
