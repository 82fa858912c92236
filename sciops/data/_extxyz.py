"""Extended XYZ (and any file ASE reads) ↔ `Atoms`, through ASE (an optional dependency, imported when used).

Reference energies, forces and stresses live under configurable keys: ASE puts the standard
names (``energy``, ``forces``, ``stress``) on a single-point calculator and any other name
(``REF_energy``, ``dft_forces``...) in ``atoms.info`` / ``atoms.arrays``; both are searched.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np

from .._errors import DataError
from ._atoms import Atoms

__all__ = ["read_ase_structure", "read_extxyz", "read_structures", "write_extxyz"]

# Properties ASE's extxyz code routes to a SinglePointCalculator instead of info/arrays.
_CALC_KEYS = ("energy", "free_energy", "forces", "stress")


def _ase():
    try:
        import ase.io
    except ImportError:
        raise ImportError("reading and writing extxyz files needs ASE; install it with "
                          "`pip install 'sciops[mlip]'` (or `pip install ase`)") from None
    return ase


def _lookup(atoms, key: str):
    if key in atoms.arrays:
        return atoms.arrays[key]
    if key in atoms.info:
        return atoms.info[key]
    calc = atoms.calc
    if calc is not None and key in getattr(calc, "results", {}):
        return calc.results[key]
    return None


def _full_stress(s) -> np.ndarray:
    s = np.asarray(s, dtype=np.float64)
    if s.shape == (3, 3):
        return s
    if s.size == 9:
        return s.reshape(3, 3)
    if s.size == 6:  # Voigt order xx yy zz yz xz xy (ASE's)
        xx, yy, zz, yz, xz, xy = s.ravel()
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    raise ValueError(f"stress of shape {s.shape}")


def read_extxyz(path: str | os.PathLike, *, energy_key: str | None = "energy",
                forces_key: str | None = "forces", stress_key: str | None = None,
                index: str | int | slice = ":") -> list[Atoms]:
    """Read structures from an extended XYZ file (`read_structures` with ``format="extxyz"``).

    **Arguments:**

    - `path`: the `.xyz`/`.extxyz` file.
    - `energy_key`, `forces_key`, `stress_key`: where the reference values are; `None` skips
      that quantity. A stress may be given as 3×3, 9 or Voigt-6 numbers.
    - `index`: frames to read, as ASE understands it (``":"`` all, ``"::10"``, an int).

    **Returns:** a list of `Atoms` (positions in Å, energies in eV).

    **Raises:** `DataError` naming the file and frame when a key is missing or malformed, or
    when the file cannot be parsed; `ImportError` when ASE is not installed.
    """
    return read_structures(path, format="extxyz", energy_key=energy_key, forces_key=forces_key,
                           stress_key=stress_key, index=index)


def read_ase_structure(path: str | os.PathLike, label: str):
    """One structure (the file's last frame) as an `ase.Atoms`, for a command's or generator's
    input file; `label` (e.g. ``"md structure"``) starts the `DataError` of a missing file or
    one ASE cannot parse."""
    ase = _ase()
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{label} {path}: no such file")
    try:
        return ase.io.read(path)
    except Exception as e:  # ASE raises many types for files it cannot parse
        raise DataError(f"{label} {path}: not a structure file ASE can read "
                        f"({type(e).__name__}: {e})") from None


def read_structures(path: str | os.PathLike, *, format: str | None = None,
                    energy_key: str | None = "energy", forces_key: str | None = "forces",
                    stress_key: str | None = None,
                    index: str | int | slice = ":") -> list[Atoms]:
    """Read structures from any file `ase.io.read` understands (extxyz, ASE trajectories,
    VASP OUTCAR/vasprun.xml, ...), in ASE's units (Å, eV).

    **Arguments:**

    - `path`: the file.
    - `format`: an ASE format name; default: ASE guesses from the name and content.
    - `energy_key`, `forces_key`, `stress_key`, `index`: as in `read_extxyz`. Values a
      calculator attached (OUTCAR, .traj) are found under ``energy``, ``forces``, ``stress``.

    **Returns:** a list of `Atoms`.

    **Raises:** `DataError` naming the file and frame when a key is missing or malformed, or
    when ASE cannot read the file; `ImportError` when ASE is not installed.
    """
    ase = _ase()
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{path}: structure file not found")
    try:
        frames = ase.io.read(path, index=index, format=format)
    except Exception as e:  # ASE raises assorted errors on malformed files
        what = {"extxyz": "extended XYZ", None: "any format ASE reads"}.get(format, format)
        raise DataError(f"{path}: cannot parse as {what}: {type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}") from None
    if not isinstance(frames, list):
        frames = [frames]
    out = []
    for i, at in enumerate(frames):
        values = {}
        for name, key in (("energy", energy_key), ("forces", forces_key),
                          ("stress", stress_key)):
            if key is None:
                continue
            v = _lookup(at, key)
            if v is None:
                have = sorted(set(at.info) | set(at.arrays)
                              | set(getattr(at.calc, "results", {}) if at.calc else {}))
                raise DataError(f"{path}: frame {i} has no {name} under key {key!r}; keys "
                                f"present: {', '.join(have)}")
            try:
                values[name] = (np.asarray(v, np.float64).reshape(()) if name == "energy"
                                else _full_stress(v) if name == "stress"
                                else np.asarray(v, np.float64))
            except ValueError as e:
                raise DataError(f"{path}: frame {i}: {name} under key {key!r} is malformed "
                                f"({e})") from None
        cell = np.asarray(at.cell.array, np.float64)
        has_cell = bool(np.abs(cell).sum() > 0)
        try:
            out.append(Atoms(np.asarray(at.positions, np.float64),
                             np.asarray(at.numbers, np.int32),
                             cell if has_cell else None, tuple(bool(p) for p in at.pbc),
                             values.get("energy"), values.get("forces"), values.get("stress")))
        except DataError as e:
            raise DataError(f"{path}: frame {i}: {e}") from None
    return out


def write_extxyz(path: str | os.PathLike, structures: Sequence[Atoms], *,
                 energy_key: str = "energy", forces_key: str = "forces",
                 stress_key: str = "stress") -> pathlib.Path:
    """Write structures to an extended XYZ file with their reference values under the keys.

    **Returns:** the path written. **Raises:** `ImportError` when ASE is not installed.
    """
    ase = _ase()
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for s in structures:
        s = s.unpad()
        at = ase.Atoms(numbers=np.asarray(s.species), positions=np.asarray(s.positions),
                       cell=None if s.cell is None else np.asarray(s.cell), pbc=s.pbc)
        results = {}
        for value, key, per_atom in ((s.energy, energy_key, False), (s.forces, forces_key, True),
                                     (s.stress, stress_key, False)):
            if value is None:
                continue
            value = np.asarray(value, np.float64)
            if key in _CALC_KEYS:
                results[key] = float(value) if value.ndim == 0 else value
            elif per_atom:
                at.arrays[key] = value
            else:
                at.info[key] = float(value) if value.ndim == 0 else value
        if results:
            at.calc = SinglePointCalculator(at, **results)
        frames.append(at)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(path, frames, format="extxyz")
    return path
