"""Atomistic files as an atoms `Dataset`: anything `ase.io` reads, and the rMD17 / MD22 `.npz`
layouts, with the file's units stated and converted to eV and Å.

- **rMD17** (Christensen & von Lilienfeld 2020, "On the role of gradients for machine learning
  of molecular energies and forces"): ``coords`` `(frames, atoms, 3)` Å, ``energies``
  `(frames,)` kcal/mol, ``forces`` `(frames, atoms, 3)` kcal/mol/Å, ``nuclear_charges``
  `(atoms,)`.
- **MD22 / sGDML** (Chmiela et al. 2023): ``R``, ``E`` `(frames, 1)`, ``F``, ``z``, same units.

Neither layout records its units, so they must be stated (``units={"energy": "kcal/mol",
"forces": "kcal/mol/Å"}``); ASE's readers deliver eV and Å and need no statement unless the
file's own keys (``REF_energy``...) hold other units.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

import numpy as np

from .._errors import DataError
from ._atoms import UNITS, atoms_arrays
from ._dataset import Dataset

__all__ = ["convert_units", "read_atoms_file", "unit_factor"]

# Exact SI values (2019 redefinition): e = 1.602176634e-19 C, N_A = 6.02214076e23 /mol;
# Hartree energy and Bohr radius from CODATA 2018.
_EV_PER_J_PER_MOL = 1.0 / (6.02214076e23 * 1.602176634e-19)
_ENERGY = {"eV": 1.0, "meV": 1e-3, "kcal/mol": 4184.0 * _EV_PER_J_PER_MOL,
           "kJ/mol": 1000.0 * _EV_PER_J_PER_MOL, "Hartree": 27.211386245988,
           "Ha": 27.211386245988, "Ry": 13.605693122994}
_LENGTH = {"Å": 1.0, "A": 1.0, "Ang": 1.0, "Angstrom": 1.0, "nm": 10.0, "Bohr": 0.529177210903,
           "bohr": 0.529177210903}
_DIMENSION = {"positions": 0, "cell": 0, "energy": 1, "forces": 2, "stress": 3}

_LAYOUTS = {
    "rmd17": {"positions": "coords", "species": "nuclear_charges", "energy": "energies",
              "forces": "forces"},
    "sgdml": {"positions": "R", "species": "z", "energy": "E", "forces": "F"},
}


def unit_factor(quantity: str, unit: str) -> float:
    """The factor that takes `quantity` (``energy``, ``forces``, ``positions``, ``cell``,
    ``stress``) from `unit` to sciops' units (eV, eV/Å, Å, eV/Å³).

    Energies: eV, meV, kcal/mol, kJ/mol, Hartree (Ha), Ry; lengths: Å (A, Ang), nm, Bohr;
    forces ``E/L`` and stress ``E/L^3`` of those.

    **Raises:** `DataError` naming ``data.units.<quantity>`` for a unit it does not know.
    """
    where = f"data.units.{quantity}"
    if quantity not in _DIMENSION:
        raise DataError(f"{where}: no units for {quantity!r}; quantities: "
                        f"{', '.join(_DIMENSION)}")
    unit = unit.strip().replace(" ", "")
    kind = _DIMENSION[quantity]
    try:
        if kind == 0:
            return _LENGTH[unit]
        if kind == 1:
            return _ENERGY[unit]
        energy, _, length = unit.rpartition("/")
        if kind == 3:
            if unit == "GPa":  # 1 eV/Å³ = 160.21766208 GPa
                return 1.0 / 160.21766208
            length = length.removesuffix("^3").removesuffix("3")
            return _ENERGY[energy] / _LENGTH[length] ** 3
        return _ENERGY[energy] / _LENGTH[length]
    except KeyError:
        expected = {0: "Å, nm, Bohr", 1: ", ".join(_ENERGY), 2: "energy/length, e.g. kcal/mol/Å",
                    3: "energy/length^3 or GPa"}[kind]
        raise DataError(f"{where}: unknown unit {unit!r}; expected {expected}") from None


def convert_units(arrays: dict[str, np.ndarray], units: Mapping[str, str] | None,
                  where: str) -> dict[str, str]:
    """Scale `arrays` in place from the stated `units` to sciops' units; returns what was
    converted (quantity → original unit) for the provenance record."""
    done = {}
    for q, unit in (units or {}).items():
        factor = unit_factor(q, unit)
        if q not in arrays:
            raise DataError(f"{where}: data.units.{q} is stated but the file gives no {q}")
        if factor != 1.0:
            arrays[q] = arrays[q] * factor
        done[q] = unit
    return done


def _finite(where: str, key: str, a: np.ndarray) -> None:
    bad = ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    if bad.any():
        raise DataError(f"{where}: key {key!r}: non-finite value (NaN or inf) in frame "
                        f"{int(np.flatnonzero(bad)[0])}")


def _read_npz_layout(path: pathlib.Path, keys: Mapping[str, str],
                     units: Mapping[str, str] | None) -> tuple[dict[str, np.ndarray], dict]:
    from ._readers import read_npz

    found = read_npz(path)
    layout = "rmd17" if "nuclear_charges" in found or "coords" in found else "sgdml"
    names = {**_LAYOUTS[layout], **keys}
    unknown = [q for q in keys if q not in _LAYOUTS["rmd17"]]
    if unknown:
        raise DataError(f"data.keys.{unknown[0]}: not an atoms quantity; quantities: "
                        f"{', '.join(_LAYOUTS['rmd17'])}")
    where = str(path)
    raw = {}
    for q, k in names.items():
        if k not in found:
            if q in ("energy", "forces") and q not in keys:
                continue
            raise DataError(f"{where}: no key {k!r} (the {q}, data.keys.{q}); keys present: "
                            f"{', '.join(sorted(found))}")
        raw[q] = np.asarray(found[k])
    pos = raw["positions"].astype(np.float64)
    if pos.ndim != 3 or pos.shape[2] != 3:
        raise DataError(f"{where}: key {names['positions']!r} has shape {pos.shape}; expected "
                        "(frames, atoms, 3)")
    n_frames, n_atoms = pos.shape[:2]
    z = raw["species"]
    if z.shape == (n_atoms,):
        z = np.broadcast_to(z, (n_frames, n_atoms))
    if z.shape != (n_frames, n_atoms) or z.dtype.kind not in "iuf" or (z != np.round(z)).any():
        raise DataError(f"{where}: key {names['species']!r} has shape {z.shape} {z.dtype}; "
                        f"expected integer atomic numbers ({n_atoms},) or ({n_frames}, {n_atoms})")
    out = {"positions": pos, "species": z.astype(np.int32),
           "mask": np.ones((n_frames, n_atoms), bool),
           "n_atoms": np.full(n_frames, n_atoms, np.int32), "pbc": np.zeros((n_frames, 3), bool)}
    if "energy" in raw:
        e = raw["energy"].astype(np.float64)
        if e.shape not in ((n_frames,), (n_frames, 1)):
            raise DataError(f"{where}: key {names['energy']!r} has shape {e.shape}; expected "
                            f"({n_frames},) or ({n_frames}, 1), one energy per frame of "
                            f"{names['positions']!r}")
        out["energy"] = e.reshape(n_frames)
    if "forces" in raw:
        f = raw["forces"].astype(np.float64)
        if f.shape != pos.shape:
            raise DataError(f"{where}: key {names['forces']!r} has shape {f.shape}; expected "
                            f"{pos.shape} like {names['positions']!r}")
        out["forces"] = f
    for q in ("positions", "energy", "forces"):
        if q in out:
            _finite(where, names[q], out[q])
    missing = [q for q in ("energy", "forces") if q in out and q not in (units or {})]
    if missing:
        raise DataError(f"{where}: data.units.{missing[0]}: the {layout} .npz layout does not "
                        f"record its units; state them (rMD17 and MD22 use "
                        f"data.units.energy=kcal/mol data.units.forces=kcal/mol/Å)")
    return out, {"layout": layout, "keys": names}


def read_atoms_file(path: str | pathlib.Path, *, format: str = "ase",
                    keys: Mapping[str, str] | None = None,
                    units: Mapping[str, str] | None = None) -> Dataset:
    """Read an atomistic file into an atoms `Dataset` in memory (`atoms_arrays`' layout, eV/Å).

    **Arguments:**

    - `path`: the file.
    - `format`: ``"rmd17"`` (an rMD17 or MD22/sGDML `.npz`), ``"ase"`` (ASE guesses the
      format) or ``"ase:<ASE format name>"`` (e.g. ``ase:vasp-out``).
    - `keys`: quantity (``positions``, ``species``, ``energy``, ``forces``, ``stress``) → the
      file's key; for ASE files only ``energy``, ``forces``, ``stress`` (keys in ``atoms.info``,
      ``atoms.arrays`` or the attached calculator's results).
    - `units`: quantity → the file's unit (`unit_factor`); required for `.npz` layouts.

    **Raises:** `DataError` naming the file and key: a missing key (with those present), wrong
    shapes, non-finite values (with the frame), unknown or missing units.
    """
    path = pathlib.Path(path)
    keys = dict(keys or {})
    if format == "rmd17":
        arrays, info = _read_npz_layout(path, keys, units)
    else:
        from ._extxyz import read_structures

        unknown = [q for q in keys if q not in ("energy", "forces", "stress")]
        if unknown:
            raise DataError(f"data.keys.{unknown[0]}: an ASE file maps only energy, forces "
                            f"and stress keys")
        ase_format = format.partition(":")[2] or None
        structures = read_structures(path, format=ase_format,
                                     energy_key=keys.get("energy", "energy"),
                                     forces_key=keys.get("forces", "forces"),
                                     stress_key=keys.get("stress"))
        arrays, _ = atoms_arrays(structures, where=str(path))
        for q in ("positions", "energy", "forces", "stress"):
            if q in arrays:
                _finite(str(path), keys.get(q, q), arrays[q])
        info = {"layout": "ase", "ase_format": ase_format or "guessed", "keys": keys}
    converted = convert_units(arrays, units, str(path))
    field_attrs = {k: {"units": UNITS[k]} for k in arrays if k in UNITS}
    attrs = {"kind": "atoms", "source": str(path), "source_format": format,
             "units_converted_from": converted, **info}
    return Dataset(arrays, attrs, name=str(path), field_attrs=field_attrs)
