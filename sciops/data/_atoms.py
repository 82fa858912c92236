"""Atomic structures: `Atoms`, padded to a fixed atom count for batching, and their HDF5 storage."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from .._errors import DataError
from ._dataset import Dataset
from ._hdf5 import read_hdf5, write_hdf5

__all__ = ["Atoms", "atoms_arrays", "atoms_at", "read_atoms_dataset", "write_atoms_dataset"]

# Units of the stored quantities (ASE's conventions: Å, eV).
UNITS = {"positions": "Å", "cell": "Å", "energy": "eV", "forces": "eV/Å", "stress": "eV/Å^3"}
_OPTIONAL = ("cell", "energy", "forces", "stress")


def _as_array(x):
    return x if isinstance(x, (np.ndarray, jax.Array)) else np.asarray(x)


class Atoms(eqx.Module):
    """One atomic structure with optional reference energy, forces and stress.

    **Arguments:**

    - `positions`: Cartesian positions, shape `(atoms, 3)` (Å).
    - `species`: atomic numbers, integer shape `(atoms,)`; 0 marks padding.
    - `cell`: optional lattice vectors as rows, shape `(3, 3)` (Å); required when any `pbc`.
    - `pbc`: periodicity along each cell vector.
    - `energy`: optional total energy, shape `()` (eV).
    - `forces`: optional forces, shape `(atoms, 3)` (eV/Å).
    - `stress`: optional stress tensor, shape `(3, 3)` (eV/Å³).
    - `mask`: optional boolean `(atoms,)`, `True` for real atoms; set by `pad`.

    **Raises:** `DataError` naming the array and its shape when shapes disagree.
    """

    positions: Float[Array, "atoms 3"]
    species: Int[Array, " atoms"]
    cell: Float[Array, "3 3"] | None
    energy: Float[Array, ""] | None
    forces: Float[Array, "atoms 3"] | None
    stress: Float[Array, "3 3"] | None
    mask: Bool[Array, " atoms"] | None
    pbc: tuple[bool, bool, bool] = eqx.field(static=True)

    def __init__(self, positions, species, cell=None, pbc: bool | Sequence[bool | np.bool_] = False,
                 energy=None, forces=None, stress=None, mask=None):
        self.positions = _as_array(positions)
        self.species = _as_array(species)
        self.cell = None if cell is None else _as_array(cell)
        self.pbc = ((bool(pbc),) * 3 if isinstance(pbc, (bool, np.bool_))
                    else tuple(bool(p) for p in pbc))
        self.energy = None if energy is None else _as_array(energy)
        self.forces = None if forces is None else _as_array(forces)
        self.stress = None if stress is None else _as_array(stress)
        self.mask = None if mask is None else _as_array(mask)

    def __check_init__(self):
        p = tuple(self.positions.shape)
        if len(p) != 2 or p[1] != 3:
            raise DataError(f"Atoms: positions must have shape (atoms, 3), got {p}")
        n = p[0]
        expected = {"species": (n,), "cell": (3, 3), "energy": (), "forces": (n, 3),
                    "stress": (3, 3), "mask": (n,)}
        for name, shape in expected.items():
            a = getattr(self, name)
            if a is not None and tuple(a.shape) != shape:
                raise DataError(f"Atoms: {name} must have shape {shape}, got {tuple(a.shape)}")
        if not np.issubdtype(self.species.dtype, np.integer):
            raise DataError(f"Atoms: species must be integer atomic numbers, got "
                            f"{self.species.dtype}")
        if self.mask is not None and self.mask.dtype != bool:
            raise DataError(f"Atoms: mask must be boolean, got {self.mask.dtype}")
        if len(self.pbc) != 3:
            raise DataError(f"Atoms: pbc needs 3 flags, got {self.pbc}")
        if any(self.pbc) and self.cell is None:
            raise DataError(f"Atoms: periodic boundary conditions {self.pbc} need a cell")
        if not isinstance(self.species, jax.core.Tracer) and n:
            z = np.asarray(self.species)
            real = np.ones(n, bool) if self.mask is None or isinstance(
                self.mask, jax.core.Tracer) else np.asarray(self.mask)
            if (z[real] < 1).any() or (z > 118).any():
                raise DataError(f"Atoms: atomic numbers must lie in 1..118 for real atoms, got "
                                f"{sorted(set(z[real].tolist()))}")

    @property
    def n_atoms(self) -> int:
        """Real atoms (without padding)."""
        if self.mask is None:
            return int(self.positions.shape[0])
        return int(np.asarray(self.mask).sum())

    def pad(self, n_max: int) -> Atoms:
        """The structure padded at the end to `n_max` atoms (species 0, zero positions and
        forces) with `mask` marking the real ones."""
        n = self.n_atoms
        if n_max < n:
            raise DataError(f"Atoms.pad: cannot pad {n} atoms to {n_max}")
        a = self.unpad()

        def grow(x, fill=0):
            x = np.asarray(x)
            out = np.full((n_max, *x.shape[1:]), fill, x.dtype)
            out[:n] = x
            return out

        return Atoms(grow(a.positions), grow(a.species), a.cell, a.pbc, a.energy,
                     None if a.forces is None else grow(a.forces), a.stress,
                     np.arange(n_max) < n)

    def unpad(self) -> Atoms:
        """The real atoms only, without a mask."""
        if self.mask is None:
            return self
        m = np.asarray(self.mask)
        return Atoms(np.asarray(self.positions)[m], np.asarray(self.species)[m], self.cell,
                     self.pbc, self.energy,
                     None if self.forces is None else np.asarray(self.forces)[m], self.stress)


def atoms_arrays(structures: Sequence[Atoms], n_max: int | None = None,
                 where: str = "structures") -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """The data-set arrays of `structures`, padded to a common atom count with a mask.

    Layout: ``positions`` `(samples, atoms, 3)`, ``species`` `(samples, atoms)` (0 on
    padding), ``mask`` `(samples, atoms)`, ``n_atoms`` `(samples,)`, ``pbc`` `(samples, 3)`,
    and when every structure has them ``cell`` `(samples, 3, 3)`, ``energy`` `(samples,)`,
    ``forces`` `(samples, atoms, 3)`, ``stress`` `(samples, 3, 3)`. Units are Å and eV.

    **Arguments:**

    - `structures`: the structures.
    - `n_max`: the padded atom count (default the largest structure).
    - `where`: the file or label named in messages.

    **Returns:** ``(arrays, field_attrs)`` with the ``units`` of each quantity.

    **Raises:** `DataError` naming the structure that lacks a quantity others have.
    """
    structures = [s.unpad() for s in structures]
    if not structures:
        raise DataError(f"{where}: no structures")
    largest = max(s.n_atoms for s in structures)
    n_max = largest if n_max is None else n_max
    if n_max < largest:
        raise DataError(f"{where}: n_max={n_max} is smaller than the largest structure "
                        f"({largest} atoms)")
    present = {k: [getattr(s, k) is not None for s in structures] for k in _OPTIONAL}
    for k, flags in present.items():
        if any(flags) and not all(flags):
            i = flags.index(not flags[0])
            raise DataError(f"{where}: structure {i} {'has' if flags[i] else 'lacks'} {k} but "
                            f"structure 0 {'has' if flags[0] else 'does not'}")
    padded = [s.pad(n_max) for s in structures]
    arrays: dict[str, np.ndarray] = {
        "positions": np.stack([np.asarray(s.positions) for s in padded]),
        "species": np.stack([np.asarray(s.species) for s in padded]).astype(np.int32),
        "mask": np.stack([np.asarray(s.mask) for s in padded]),
        "n_atoms": np.array([s.n_atoms for s in structures], np.int32),
        "pbc": np.array([s.pbc for s in structures], bool),
    }
    for k in _OPTIONAL:
        if all(present[k]):
            arrays[k] = np.stack([np.asarray(getattr(s, k)) for s in padded])
    return arrays, {k: {"units": UNITS[k]} for k in arrays if k in UNITS}


def write_atoms_dataset(path: str | os.PathLike, structures: Sequence[Atoms],
                        attrs: Mapping[str, Any] | None = None,
                        n_max: int | None = None) -> pathlib.Path:
    """Write structures as one data set, padded to a common atom count with a mask
    (layout: `atoms_arrays`).

    **Arguments:**

    - `path`: the `.h5` file.
    - `structures`: the structures.
    - `attrs`: root attributes.
    - `n_max`: the padded atom count (default the largest structure).

    **Raises:** `DataError` naming the structure that lacks a quantity others have.
    """
    arrays, field_attrs = atoms_arrays(structures, n_max, str(path))
    return write_hdf5(path, arrays, {"kind": "atoms", **(attrs or {})}, field_attrs)


def read_atoms_dataset(path: str | os.PathLike, **kwargs) -> Dataset:
    """Read a data set written by `write_atoms_dataset` (arguments as `read_hdf5`)."""
    dataset = read_hdf5(path, **kwargs)
    missing = [k for k in ("positions", "species", "mask") if k not in dataset]
    if missing:
        raise DataError(f"{path}: not a sciops atoms data set: missing {', '.join(missing)}")
    return dataset


def atoms_at(dataset: Dataset, position: int, *, padded: bool = False) -> Atoms:
    """Structure `position` of an atoms data set (without padding unless `padded`)."""
    s = {k: v[0] for k, v in dataset.take([position]).items()}
    a = Atoms(s["positions"], s["species"], s.get("cell"),
              tuple(s["pbc"]) if "pbc" in s else False, s.get("energy"), s.get("forces"),
              s.get("stress"), s["mask"])
    return a if padded else a.unpad()
