"""sciops.models.mlip: the TDN equivariant interatomic potential (CP or exact tensor products),
neighbour lists, the `mlip` family and an ASE calculator. Imports sciops.data and sciops.nn;
needs the `mlip` extra (e3nn-jax, ase)."""

from .._family import Family, register_family
from ._family import MLIPConfig as MLIPConfig
from ._family import build, loss, metrics
from ._family import predict as predict
from ._md import MDResult as MDResult
from ._md import MDState as MDState
from ._md import run_md as run_md
from ._neighbors import Graph as Graph
from ._neighbors import dense_neighbors as dense_neighbors
from ._neighbors import neighbor_list as neighbor_list
from ._plots import UNITS
from ._plots import plot_parity as plot_parity
from ._potential import EnergyScale as EnergyScale
from ._potential import TDNPotential as TDNPotential
from ._potential import energy_forces_stress as energy_forces_stress

FAMILIES = {"mlip": register_family(Family(name="mlip", config=MLIPConfig, build=build,
                                           loss=loss, metrics=metrics, plot=plot_parity,
                                           units=UNITS))}
"""The `mlip` family record(s), by name, as `sciops.models.family` finds them."""


def __getattr__(name):
    # The ASE calculator imports ASE at module level: load it only when asked for.
    if name == "Calculator":
        from ._calculator import Calculator

        return Calculator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
