"""The `meshformer` family (mesh transformer with adjacency-restricted attention; Garnier et al.
2025) and the `meshgraphnet` baseline (Pfaff et al. 2021), sharing one data interface: sciops
mesh data sets (`sciops.data.write_mesh_dataset`) passed through `prepare`."""

from .._family import Family, register_family
from ._config import MeshGraphNetConfig as MeshGraphNetConfig
from ._config import MeshTransformerConfig as MeshTransformerConfig
from ._config import Neighbourhood as Neighbourhood
from ._family import build, loss, metrics, plot
from ._family import prepare as prepare
from ._mgn import MeshGraphNet as MeshGraphNet
from ._partition import partition as partition_mesh
from ._partition import unpartition as unpartition
from ._simulator import MeshSimulator as MeshSimulator
from ._transformer import MeshTransformer as MeshTransformer


def rollout_run(run, data_path, *, steps: int | None = None, start: int = 1,
                mode: str = "autoregressive", boundary: str = "truth", out_dir,
                inflow: float | None = None, animation: bool = True,
                progress: bool = True, fields=None, node_types=None,
                figures: bool = True) -> dict:
    """`Family.rollout` of `meshformer` and `meshgraphnet`: the mesh rollout driver of
    `sciops.eval` (XDMF, PVD, VTU, MeshGraphNets or sciops HDF5 trajectories with an optional
    field mapping and node-type rule; the model beside persistence and linear extrapolation;
    figures), imported when a rollout is asked for so that the model layer does not load the
    eval layer."""
    from ...eval._mesh_rollout import rollout as rollout_mesh

    return rollout_mesh(run, data_path, steps=steps, start=start, mode=mode,
                        boundary=boundary, out_dir=out_dir, inflow=inflow,
                        animation=animation, progress=progress, fields=fields,
                        node_types=node_types, figures=figures)


def partition_run(config, dataset, parts: int):
    """`Family.partition` of `meshformer` and `meshgraphnet`: `partition_mesh` with the
    config's `partition` method."""
    return partition_mesh(config, dataset, parts, method=config.partition)


FAMILIES = {
    "meshformer": register_family(Family("meshformer", MeshTransformerConfig, build, loss,
                                         metrics, plot, prepare=prepare, rollout=rollout_run,
                                         partition=partition_run)),
    "meshgraphnet": register_family(Family("meshgraphnet", MeshGraphNetConfig, build, loss,
                                           metrics, plot, prepare=prepare,
                                           rollout=rollout_run, partition=partition_run)),
}
"""The `meshformer` and `meshgraphnet` family records, by name, as `sciops.models.family` finds
them."""
