"""An ASE calculator for a trained `mlip` potential: energy (eV), forces (eV/Å) and stress
(eV/Å³), usable with ASE's optimisers and molecular dynamics (VelocityVerlet, Langevin).

Each call builds the neighbour list on the host (one vectorised pass for small cells, linear-time
cell lists for large ones), pads it to an edge budget that only grows (in steps of 256 edges, with
25 % headroom), and evaluates one compiled function held by the calculator (energy and forces, or
energy, forces and stress when ASE asks for the stress); a trajectory with a fixed number of atoms
therefore compiles once or a few times. The model's arrays are split from its static structure
once, so a call hands only arrays to the compiled function.
"""

from __future__ import annotations

import warnings
from typing import Literal

import equinox as eqx
import jax
import numpy as np
from ase.calculators.calculator import Calculator as _ASECalculator
from ase.calculators.calculator import all_changes

from ..._errors import ConfigError
from ._family import MLIPConfig, check_structure
from ._neighbors import pad_graph
from ._potential import TDNPotential, energy_forces, energy_forces_stress

__all__ = ["Calculator"]


def _compiled(static, with_stress: bool):
    """One jitted evaluation for the model structure `static` (arrays are the first argument)."""
    fn = energy_forces_stress if with_stress else energy_forces

    def evaluate(params, positions, species, mask, cell, graph):
        return fn(eqx.combine(params, static), positions, species, mask, cell, graph)

    return jax.jit(evaluate)


class Calculator(_ASECalculator):
    """ASE calculator around a `TDNPotential`.

    **Arguments:**

    - `model`: the trained potential.
    - `config`: its `MLIPConfig` (cutoff, minimum distance).
    - `edge_headroom`: factor over the current edge count when the edge budget grows.
    - `untrained_stress`: what a request for the stress does when the model was trained without
      stresses (`model.energy_scale.stress_trained` false): ``"warn"`` (a `UserWarning`, then
      the model's stress, which nothing constrained) or ``"raise"`` (`ConfigError`).

    Structures with an element absent from the training set, two atoms closer than
    `config.min_distance`, or a periodic cell narrower than the cutoff raise `DataError` naming
    the problem. Stress is provided for fully periodic cells (ASE's sign and Voigt order).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model: TDNPotential, config: MLIPConfig, *, edge_headroom: float = 1.25,
                 untrained_stress: Literal["warn", "raise"] = "warn", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(config, MLIPConfig):
            raise ConfigError(f"Calculator: expected an MLIPConfig, got {type(config).__name__}")
        if untrained_stress not in ("warn", "raise"):
            raise ConfigError(f"Calculator untrained_stress: expected 'warn' or 'raise', got "
                              f"{untrained_stress!r}")
        self.untrained_stress = untrained_stress
        self.model = model
        self.config = config
        self.edge_headroom = float(edge_headroom)
        self.max_edges = 0
        self._params, static = eqx.partition(model, eqx.is_array)
        self._evaluate = {s: _compiled(static, s) for s in (False, True)}
        self._known = np.asarray(model.energy_scale.known)
        self._dtype = np.dtype(model.embedding.dtype)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        pos = np.asarray(a.positions, np.float64)
        pbc = np.asarray(a.pbc, bool)
        cell = np.asarray(a.cell.array, np.float64)
        z = np.asarray(a.numbers, np.int32)
        centers, neighbors, shifts = check_structure(
            self.config, pos, z, cell if np.abs(cell).sum() > 0 else None, pbc,
            where=f"structure {a.get_chemical_formula()}",
            known=self._known)
        if len(centers) > self.max_edges:
            need = int(np.ceil(len(centers) * self.edge_headroom))
            self.max_edges = 256 * int(np.ceil(need / 256))
        graph = pad_graph(centers, neighbors, shifts, self.max_edges)
        graph = graph._replace(shifts=graph.shifts.astype(self._dtype))
        with_stress = "stress" in properties and bool(pbc.all())
        if with_stress and not self.model.energy_scale.stress_trained:
            msg = ("Calculator: stress asked of a model trained without stresses (stress_weight "
                   "0 or no 'stress' in its data); its stress is unconstrained and can be far "
                   "off the reference")
            if self.untrained_stress == "raise":
                raise ConfigError(msg)
            warnings.warn(msg, UserWarning, stacklevel=2)
        out = self._evaluate[with_stress](self._params, pos.astype(self._dtype), z,
                                          np.ones(len(z), bool), cell.astype(self._dtype), graph)
        self.results["energy"] = self.results["free_energy"] = float(out[0])
        self.results["forces"] = np.asarray(out[1], np.float64)
        if with_stress:
            s = np.asarray(out[2], np.float64)
            self.results["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2],
                                               s[0, 1]])
