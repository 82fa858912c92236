"""The `wavecnn` family: a CNN wave simulator whose convolutions are compressed a priori
(Boukraichi et al., 2023). Imports from sciops.data, sciops.nn."""

from ._family import CONVS as CONVS
from ._family import FAMILIES as FAMILIES
from ._family import WaveCNNConfig as WaveCNNConfig
from ._model import WaveCNN as WaveCNN
from ._model import rollout as rollout
