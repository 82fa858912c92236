"""sciops: learned PDE operators and simulators in JAX."""

__version__ = "0.1.0"

from ._errors import ConfigError as ConfigError
from ._errors import DataError as DataError
from ._errors import SciopsError as SciopsError
from ._errors import TrainingError as TrainingError
