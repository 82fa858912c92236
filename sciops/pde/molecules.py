"""Molecular reference data no one here wrote: an rMD17-like data set (structures, energies and
forces of one molecule sampled by Langevin MD) from the extended tight-binding method GFN2-xTB
of `tblite` (its ASE calculator; Bannwarth, Ehlert & Grimme, J. Chem. Theory Comput. 15, 1652
(2019)). rMD17 itself samples DFT MD at 500 K (Christensen & von Lilienfeld, 2020); here the
reference is GFN2-xTB, which is cheap enough to run offline on a laptop core.

The molecule comes from ASE's G2 collection by name (``CH3CH2OH`` ethanol, ``CH3CHO``,
``C6H6``, ...) or from any structure file ASE reads (e.g. aspirin). It is equilibrated at
`temperature` and then sampled every `sample_every` steps; the centre of mass is fixed. Units:
Å, eV, eV/Å (ASE's); no cell, no stress.

tblite parallelises with OpenMP; on a shared machine its default thread count makes each call
up to 100× slower (measured here: 2 ms single-threaded against 0.5–4 s with the default pool
under load), so the calls run inside `threadpoolctl.threadpool_limits(threads)`.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .._errors import ConfigError, DataError
from ..data import read_ase_structure
from ._problem import Problem

__all__ = ["MoleculeConfig", "PROBLEMS", "generate", "sample_molecule"]

_METHODS = ("GFN2-xTB", "GFN1-xTB")


@dataclasses.dataclass(frozen=True)
class MoleculeConfig:
    """Molecular reference data: one molecule by Langevin MD with GFN2-xTB (tblite) -> energy,
    forces.

    The keys of `data.generate` / `sciops generate molecule`.

    **Fields:**

    - `molecule` [-]: a name in ASE's G2 collection (``CH3CH2OH`` is ethanol).
    - `structure_in` [-]: instead of `molecule`, a structure file ASE reads (e.g. aspirin).
    - `method` [-]: ``"GFN2-xTB"`` or ``"GFN1-xTB"``.
    - `temperature` [K]: Langevin target temperature (rMD17 used 500 K).
    - `n_samples` [count]: number of structures.
    - `timestep_fs` [fs]: Langevin time step.
    - `friction` [1/fs]: Langevin friction.
    - `equilibration_steps` [count]: MD steps before the first sample.
    - `sample_every` [count]: MD steps between samples.
    - `threads` [count]: OpenMP threads of the tblite calls.
    - `seed` [-]: seeds the velocities and the Langevin noise.
    """

    molecule: str = "CH3CH2OH"
    structure_in: str | None = None
    method: str = "GFN2-xTB"
    temperature: float = 500.0
    n_samples: int = 500
    timestep_fs: float = 0.5
    friction: float = 0.01
    equilibration_steps: int = 400
    sample_every: int = 10
    threads: int = 1
    seed: int = 0

    def __post_init__(self):
        if self.method not in _METHODS:
            raise ConfigError(f"data.generate.method: expected one of {', '.join(_METHODS)}, got "
                              f"{self.method!r}")
        if self.n_samples < 1 or self.sample_every < 1 or self.equilibration_steps < 0:
            raise ConfigError(f"data.generate: need n_samples >= 1, sample_every >= 1, "
                              f"equilibration_steps >= 0; got {self.n_samples}, "
                              f"{self.sample_every}, {self.equilibration_steps}")
        if not self.temperature > 0 or not self.timestep_fs > 0 or self.threads < 1:
            raise ConfigError(f"data.generate: need temperature > 0, timestep_fs > 0, threads "
                              f">= 1; got {self.temperature}, {self.timestep_fs}, {self.threads}")


def _molecule(config: MoleculeConfig):
    from ase.build import molecule
    from ase.collections import g2

    if config.structure_in is not None:
        atoms = read_ase_structure(config.structure_in, "data.generate.structure_in")
    elif config.molecule in g2.names:
        atoms = molecule(config.molecule)
    else:
        raise ConfigError(f"data.generate.molecule: {config.molecule!r} is not in ASE's G2 "
                          f"collection (e.g. CH3CH2OH, CH3CHO, C6H6); give structure_in for "
                          f"other molecules")
    atoms.pbc = False
    atoms.cell = np.zeros((3, 3))
    return atoms


def sample_molecule(config: MoleculeConfig):
    """`n_samples` Langevin snapshots as `sciops.data.Atoms` (energy, forces) and their kinetic
    temperatures (K)."""
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary
    from tblite.ase import TBLite
    from threadpoolctl import threadpool_limits

    from ..data import Atoms
    from .atoms import thermalize

    atoms = _molecule(config)
    atoms.calc = TBLite(method=config.method, verbosity=0)
    rng = np.random.default_rng(config.seed)
    seed = int(rng.integers(2**31))
    thermalize(atoms, config.temperature, np.random.RandomState(seed))
    Stationary(atoms)
    atoms.set_constraint(FixCom())
    dyn = Langevin(atoms, config.timestep_fs * units.fs, temperature_K=config.temperature,
                   friction=config.friction / units.fs, fixcm=False,
                   rng=np.random.RandomState(seed + 1))
    out, kinetic = [], []
    with threadpool_limits(config.threads):
        dyn.run(config.equilibration_steps)
        for _ in range(config.n_samples):
            dyn.run(config.sample_every)
            e = atoms.get_potential_energy()
            f = atoms.get_forces(apply_constraint=False)
            if not (np.isfinite(e) and np.isfinite(f).all()):
                raise DataError(f"molecule: the {config.method} MD at {config.temperature} K "
                                f"produced non-finite values; lower the temperature or time step")
            out.append(Atoms(atoms.positions.copy(), atoms.numbers.astype(np.int32), None,
                             (False, False, False), np.float64(e), f.copy(), None))
            kinetic.append(atoms.get_temperature())
    return out, np.array(kinetic)


def generate(config: MoleculeConfig, path, *, progress: bool = True) -> None:
    """Sample the molecule and write the HDF5 file `path` (sciops atoms schema: ``positions``,
    ``species``, ``mask``, ``n_atoms``, ``pbc``, ``cell``, ``energy``, ``forces``; Å, eV, eV/Å),
    with the reference method, the kinetic temperatures and the generation time as attributes.
    """
    from ..data import write_atoms_dataset

    del progress  # one MD run: no meaningful progress bar
    start = time.perf_counter()
    structures, kinetic = sample_molecule(config)
    attrs = {"problem": "molecule", "config": dataclasses.asdict(config),
             "reference": f"tblite {config.method}",
             "kinetic_temperature": kinetic.tolist(),
             "generate_seconds": time.perf_counter() - start}
    write_atoms_dataset(path, structures, attrs)


PROBLEMS = {"molecule": Problem("molecule", MoleculeConfig, generate)}
