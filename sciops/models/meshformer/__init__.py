"""The `meshformer` family (mesh transformer with adjacency-restricted attention; Garnier et al.
2025) and the `meshgraphnet` baseline (Pfaff et al. 2021), sharing one data interface: sciops
mesh data sets (`sciops.data.write_mesh_dataset`) passed through `prepare`."""

import dataclasses as _dc

from .._family import Family
from ._config import MeshGraphNetConfig as MeshGraphNetConfig
from ._config import MeshTransformerConfig as MeshTransformerConfig
from ._config import Neighbourhood as Neighbourhood
from ._family import build, loss, metrics, plot
from ._family import prepare as prepare
from ._mgn import MeshGraphNet as MeshGraphNet
from ._simulator import MeshSimulator as MeshSimulator
from ._transformer import MeshTransformer as MeshTransformer

# `prepare` (host-side graph building) is passed when the Family record has that hook.
_extra = {"prepare": prepare} if "prepare" in {f.name for f in _dc.fields(Family)} else {}

FAMILIES = {
    "meshformer": Family("meshformer", MeshTransformerConfig, build, loss, metrics, plot, **_extra),
    "meshgraphnet": Family("meshgraphnet", MeshGraphNetConfig, build, loss, metrics, plot,
                           **_extra),
}
"""The `meshformer` and `meshgraphnet` family records, by name, as `sciops.models.family` finds
them."""
