"""Reference data for interatomic potentials: structures, energies, forces and stresses sampled by
Langevin molecular dynamics at several temperatures with real classical potentials.

Potentials (both from ASE): effective-medium theory (`ase.calculators.emt.EMT`, Jacobsen,
Stoltze & Nørskov, Surf. Sci. 366, 394 (1996); parameters for Al, Cu, Ag, Au, Ni, Pd, Pt) and a
smoothly truncated Lennard-Jones pair potential (`ase.calculators.lj.LennardJones` with
``smooth=True``). For each temperature an fcc supercell, isotropically strained by a random
factor within ±`strain` (so stresses vary), is equilibrated and then sampled every
`sample_every` steps. Samples are shuffled (seeded) so that the driver's first-`n_train` /
last-`n_test` split mixes temperatures.

Alternatively, `extxyz_in` converts an existing extended-XYZ file (reference values under
configurable keys) to the same HDF5 schema.

Checked in ``tests/test_atoms_data.py``: the LJ energy against the analytic pair formula, forces
and stress against finite differences of the reference energy, equipartition of the sampled
kinetic temperature, and the HDF5 / extxyz round trips.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Literal

import numpy as np

from .._errors import ConfigError, DataError
from ._problem import Problem

__all__ = ["AtomsConfig", "PROBLEMS", "generate", "reference_calculator", "sample_md",
           "thermalize"]

_EMT_ELEMENTS = ("Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt")


@dataclasses.dataclass(frozen=True)
class AtomsConfig:
    """Atomistic reference data: fcc structures from Langevin MD (EMT or LJ) -> energy, forces, stress.

    The keys of `data.generate` / `sciops generate atoms`.

    **Fields:**

    - `potential` [-]: ``"emt"`` or ``"lj"``.
    - `element` [-]: chemical symbol (for EMT one of Al, Cu, Ag, Au, Ni, Pd, Pt).
    - `lattice_constant` [Å]: fcc cubic lattice constant; default ASE's reference value for EMT,
      $2^{2/3}\\sigma$ (nearest neighbours at the pair minimum) for LJ.
    - `repeat` [count]: the cubic 4-atom fcc cell is repeated `repeat`³ times (2 → 32 atoms).
    - `temperatures` [K]: Langevin target temperatures; samples are split evenly among them.
    - `n_samples` [count]: number of structures.
    - `timestep_fs` [fs]: Langevin time step.
    - `friction` [1/fs]: Langevin friction.
    - `equilibration_steps` [count]: MD steps before the first sample.
    - `sample_every` [count]: MD steps between samples.
    - `strain` [1]: each temperature's cell is scaled isotropically by a factor in
      $[1-\\text{strain}, 1+\\text{strain}]$.
    - `lj_sigma`, `lj_cutoff` [Å]: LJ length and cutoff; defaults fit copper roughly
      (σ = 2.338 Å, Halicioglu & Pound 1975).
    - `lj_epsilon` [eV]: LJ well depth (ε = 0.409 eV for copper).
    - `extxyz_in` [-]: instead of MD, convert this extended-XYZ file.
    - `energy_key`, `forces_key`, `stress_key` [-]: the keys of the reference values in
      `extxyz_in` (`stress_key` may be null).
    - `extxyz_out` [-]: also write the data set as extended XYZ here (same keys).
    - `seed` [-]: seeds velocities, strains, Langevin noise and the shuffle.
    """

    potential: Literal["emt", "lj"] = "emt"
    element: str = "Cu"
    lattice_constant: float | None = None
    repeat: int = 2
    temperatures: tuple[float, ...] = (300.0, 600.0, 900.0, 1200.0)
    n_samples: int = 400
    timestep_fs: float = 2.0
    friction: float = 0.02
    equilibration_steps: int = 200
    sample_every: int = 20
    strain: float = 0.02
    lj_sigma: float = 2.338
    lj_epsilon: float = 0.409
    lj_cutoff: float = 5.5
    extxyz_in: str | None = None
    extxyz_out: str | None = None
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str | None = "stress"
    seed: int = 0

    def __post_init__(self):
        if self.potential == "emt" and self.element not in _EMT_ELEMENTS:
            raise ConfigError(f"data.generate.element: EMT has parameters for "
                              f"{', '.join(_EMT_ELEMENTS)}, got {self.element!r}")
        if self.n_samples < 1 or self.repeat < 1:
            raise ConfigError(f"data.generate: n_samples and repeat must be >= 1, got "
                              f"{self.n_samples}, {self.repeat}")
        if not self.temperatures or min(self.temperatures) <= 0:
            raise ConfigError(f"data.generate.temperatures: expected positive temperatures, got "
                              f"{self.temperatures}")
        if not 0 <= self.strain < 0.2:
            raise ConfigError(f"data.generate.strain: expected 0 <= strain < 0.2, got "
                              f"{self.strain}")


def reference_calculator(config: AtomsConfig):
    """The ASE calculator of the reference potential."""
    if config.potential == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    from ase.calculators.lj import LennardJones

    return LennardJones(sigma=config.lj_sigma, epsilon=config.lj_epsilon, rc=config.lj_cutoff,
                        smooth=True)


def _crystal(config: AtomsConfig, scale: float):
    from ase.build import bulk

    a = config.lattice_constant
    if a is None and config.potential == "lj":
        a = 2 ** (2 / 3) * config.lj_sigma
    atoms = bulk(config.element, "fcc", a=a, cubic=True).repeat(config.repeat)
    atoms.set_cell(atoms.cell * scale, scale_atoms=True)
    return atoms


def thermalize(atoms, temperature: float, rng) -> None:
    """Maxwell–Boltzmann momenta at `temperature` (K): ASE ≥ 3.29's `thermalize_momenta`, or
    the older `MaxwellBoltzmannDistribution` it deprecates."""
    from ase.md import velocitydistribution as vd

    if hasattr(vd, "thermalize_momenta"):
        vd.thermalize_momenta(atoms, temperature, rng=rng)
    else:  # ASE < 3.29
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)


def sample_md(config: AtomsConfig, temperature: float, n: int, rng: np.random.Generator):
    """`n` Langevin snapshots at `temperature` as `sciops.data.Atoms` (energy, forces, stress),
    plus the instantaneous kinetic temperatures (K)."""
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary

    from ..data import Atoms

    atoms = _crystal(config, 1.0 + config.strain * rng.uniform(-1, 1))
    atoms.calc = reference_calculator(config)
    seed = int(rng.integers(2**31))
    thermalize(atoms, temperature, np.random.RandomState(seed))
    Stationary(atoms)
    # Fix the centre of mass by a constraint: ASE ≥ 3.28 deprecates Langevin's `fixcm=True`,
    # which does not sample the NVT distribution exactly for small systems.
    atoms.set_constraint(FixCom())
    dyn = Langevin(atoms, config.timestep_fs * units.fs, temperature_K=temperature,
                   friction=config.friction / units.fs, fixcm=False,
                   rng=np.random.RandomState(seed + 1))
    dyn.run(config.equilibration_steps)
    out, kinetic = [], []
    for _ in range(n):
        dyn.run(config.sample_every)
        e = atoms.get_potential_energy()
        f = atoms.get_forces()
        s = atoms.get_stress(voigt=False)
        if not (np.isfinite(e) and np.isfinite(f).all() and np.isfinite(s).all()):
            raise DataError(f"atoms: the {config.potential} MD at {temperature} K produced "
                            f"non-finite values; lower the temperature or the time step")
        out.append(Atoms(atoms.positions.copy(), atoms.numbers.astype(np.int32),
                         np.asarray(atoms.cell), tuple(atoms.pbc), np.float64(e), f, s))
        kinetic.append(atoms.get_temperature())
    return out, np.array(kinetic)


def generate(config: AtomsConfig, path, *, progress: bool = True) -> None:
    """Sample (or convert) structures and write them to the HDF5 file `path`.

    Fields (sciops atoms schema, see `sciops.data.write_atoms_dataset`): ``positions``,
    ``species``, ``mask``, ``n_atoms``, ``pbc``, ``cell``, ``energy``, ``forces``, ``stress``
    (Å, eV, eV/Å, eV/Å³ with ASE's stress sign).
    """
    from ..data import read_extxyz, write_atoms_dataset, write_extxyz

    start = time.perf_counter()
    attrs = {"problem": "atoms", "config": dataclasses.asdict(config)}
    if config.extxyz_in is not None:
        structures = read_extxyz(config.extxyz_in, energy_key=config.energy_key,
                                 forces_key=config.forces_key, stress_key=config.stress_key)
        attrs["source"] = str(config.extxyz_in)
    else:
        rng = np.random.default_rng(config.seed)
        counts = np.full(len(config.temperatures), config.n_samples // len(config.temperatures))
        counts[: config.n_samples % len(config.temperatures)] += 1
        structures, temps, kinetic = [], [], []
        items = list(zip(config.temperatures, counts, strict=True))
        if progress:
            from .._progress import progress as _progress

            items = _progress(items, desc=f"atoms {config.potential} {config.element} MD",
                              unit="temperature")
        for temperature, n in items:
            s, k = sample_md(config, float(temperature), int(n), rng)
            structures += s
            temps += [float(temperature)] * int(n)
            kinetic += k.tolist()
        order = rng.permutation(len(structures))
        structures = [structures[i] for i in order]
        attrs["temperature"] = [temps[i] for i in order]
        attrs["kinetic_temperature"] = [kinetic[i] for i in order]
    attrs["generate_seconds"] = time.perf_counter() - start
    write_atoms_dataset(path, structures, attrs)
    if config.extxyz_out is not None:
        write_extxyz(config.extxyz_out, structures, energy_key=config.energy_key,
                     forces_key=config.forces_key, stress_key=config.stress_key or "stress")


PROBLEMS = {"atoms": Problem("atoms", AtomsConfig, generate)}
