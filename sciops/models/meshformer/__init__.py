"""The `meshformer` family (mesh transformer with adjacency-restricted attention; Garnier et al.
2025) and the `meshgraphnet` baseline (Pfaff et al. 2021), sharing one data interface: sciops
mesh data sets (`sciops.data.write_mesh_dataset`) passed through `prepare`."""

from .._family import Family, register_family
from ._config import MeshGraphNetConfig as MeshGraphNetConfig
from ._config import MeshTransformerConfig as MeshTransformerConfig
from ._config import Neighbourhood as Neighbourhood
from ._family import build, loss, metrics, plot
from ._family import prepare as prepare
from ._metrics import BASELINES as BASELINES
from ._metrics import baseline_one_step as baseline_one_step
from ._metrics import baseline_rollout as baseline_rollout
from ._metrics import inflow_speed as inflow_speed
from ._metrics import relative_scale as relative_scale
from ._metrics import rmse_table as rmse_table
from ._metrics import step_mse as step_mse
from ._mgn import MeshGraphNet as MeshGraphNet
from ._partition import partition as partition_mesh
from ._partition import unpartition as unpartition
from ._rollout import format_rollout_table as format_rollout_table
from ._rollout import mesh_rollout as mesh_rollout
from ._simulator import MeshSimulator as MeshSimulator
from ._transformer import MeshTransformer as MeshTransformer


def partition_run(config, dataset, parts: int):
    """`Family.partition` of `meshformer` and `meshgraphnet`: `partition_mesh` with the
    config's `partition` method."""
    return partition_mesh(config, dataset, parts, method=config.partition)


FAMILIES = {
    "meshformer": register_family(Family("meshformer", MeshTransformerConfig, build, loss,
                                         metrics, plot, prepare=prepare, rollout=mesh_rollout,
                                         partition=partition_run)),
    "meshgraphnet": register_family(Family("meshgraphnet", MeshGraphNetConfig, build, loss,
                                           metrics, plot, prepare=prepare,
                                           rollout=mesh_rollout, partition=partition_run)),
}
"""The `meshformer` and `meshgraphnet` family records, by name, as `sciops.models.family` finds
them."""
