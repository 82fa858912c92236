"""sciops.models: the model families and their one contract, the `Family` record.
Imports from sciops.data, sciops.pde, sciops.nn."""

from ._family import Family as Family
from ._family import default_trainable as default_trainable
from ._family import family as family
from ._family import family_names as family_names
from ._family import model_config as model_config
from ._family import register_family as register_family
from ._grid_rollout import GRID_BASELINES as GRID_BASELINES
from ._grid_rollout import GridBaseline as GridBaseline
from ._grid_rollout import grid_rollout as grid_rollout
from ._grid_rollout import simulate_frames as simulate_frames
