"""The one vocabulary of array dimension names used in jaxtyping annotations across sciops.

Dimension names: ``batch nodes edges channels *spatial modes atoms time samples``.
"""

from typing import Any

import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, PyTree, Shaped

# A batch is a flat mapping from field name to an array whose leading axis is the batch.
Batch = dict[str, Any]
NDArray = np.ndarray

__all__ = [
    "Array",
    "ArrayLike",
    "Batch",
    "Float",
    "Int",
    "NDArray",
    "PRNGKeyArray",
    "PyTree",
    "Shaped",
]
