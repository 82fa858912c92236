"""sciops.models.deeponet: the multi-task DeepONet with geometry masks (Kumar, Goswami et al.
2024). Imports from sciops.data, sciops.nn."""

from .._family import Family, register_family
from ._deeponet import DeepONet as DeepONet
from ._deeponet import grid_points as grid_points
from ._family import DeepONetConfig as DeepONetConfig
from ._family import build as build
from ._family import loss as loss
from ._family import metrics as metrics
from ._family import plot as plot
from ._family import predict as predict
from ._family import relative_l2 as relative_l2

FAMILIES = {"deeponet": register_family(Family("deeponet", DeepONetConfig, build, loss, metrics,
                                               plot, units={"l2": "1", "l2_global": "1"}))}
"""The `deeponet` family record(s), by name, as `sciops.models.family` finds them."""
