"""Reading a trained `mlip` run back as an ASE calculator or into compiled molecular dynamics."""

from __future__ import annotations

import os
import pathlib
import time

import jax
import numpy as np

from .._errors import ConfigError
from ..data import read_ase_structure
from ..models.mlip import Calculator as _ModelCalculator
from ..models.mlip import run_md
from ..train import Run, load_run

__all__ = ["Calculator", "md_from_run"]


def _mlip_run(run_dir: str | os.PathLike, checkpoint: str | os.PathLike | None) -> Run:
    """The run folder `run_dir` read back (`checkpoint`: a given one, default the last),
    checked to hold an `mlip` potential."""
    run = load_run(run_dir, checkpoint)
    if run.config.family != "mlip":
        raise ConfigError(f"{run_dir}: a {run.config.family!r} run, not an mlip run")
    return run


class Calculator(_ModelCalculator):
    """The ASE calculator of `sciops.models.mlip.Calculator` (same arguments, units and
    errors), plus `from_run` to build it from a run folder of `sciops fit`."""

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
                 **kwargs) -> Calculator:
        """The calculator of a finished `mlip` run folder.

        **Arguments:**

        - `run_dir`: the run folder (`sciops fit` of an `mlip` config).
        - `checkpoint`: a given checkpoint folder; default the run's last.
        - `**kwargs`: the calculator's own options (`edge_headroom`, `untrained_stress`).

        **Raises:** `DataError` for a folder that is not a run or has no readable checkpoint;
        `ConfigError` for a run of another family.
        """
        run = _mlip_run(run_dir, checkpoint)
        return cls(run.model, run.config.model, **kwargs)


def md_from_run(run_dir: str | os.PathLike, structure: str | os.PathLike, *,
                out: str | os.PathLike | None = None, steps: int = 1000, dt_fs: float = 1.0,
                thermostat: str = "nve", temperature_K: float = 300.0,
                friction_per_fs: float = 0.01, skin: float = 1.0, record_every: int = 10,
                seed: int = 0, checkpoint: str | os.PathLike | None = None) -> dict:
    """`sciops md`: compiled MD of a trained `mlip` run on a structure file.

    **Arguments:**

    - `run_dir`: a finished `mlip` run folder (`checkpoint`: a given checkpoint, default last).
    - `structure`: any file ASE reads (extxyz, POSCAR, cif, ...); its velocities are used when
      it has any, else Maxwell–Boltzmann at `temperature_K`.
    - `out`: extxyz trajectory to write (positions Å, velocities, `potential_energy` eV and
      `time_fs` per frame), or None.
    - the rest as `run_md`.

    **Returns:** a summary: atoms, steps, simulated ps, wall seconds (compilation included),
    atom-steps per second, the total-energy drift (largest deviation from the first frame and
    the linear-fit slope, eV/atom and eV/atom/ps; NVE only), mean temperature (K), rebuilds.

    **Raises:** `DataError` for a missing or unreadable structure file; as
    `Calculator.from_run` for the run folder; as `run_md`.
    """
    import ase.io

    atoms = read_ase_structure(structure, "md structure")
    run = _mlip_run(run_dir, checkpoint)
    vel = atoms.get_velocities()
    vel = vel if vel is not None and np.abs(vel).sum() > 0 else None
    t = time.perf_counter()
    res = run_md(run.model, run.config.model, atoms.positions, atoms.numbers,
                 atoms.get_masses(), np.asarray(atoms.cell) if atoms.pbc.any() else None,
                 atoms.pbc, velocities=vel, n_steps=steps, dt_fs=dt_fs, thermostat=thermostat,
                 temperature_K=temperature_K, friction_per_fs=friction_per_fs, skin=skin,
                 record_every=record_every, key=jax.random.key(seed))
    wall = time.perf_counter() - t
    n = len(atoms)
    t_fs = dt_fs * np.minimum(record_every * np.arange(1, len(res.potential) + 1), steps)
    total = (res.potential + res.kinetic) / n
    summary = {"atoms": n, "steps": steps, "ps": steps * dt_fs / 1000, "thermostat": thermostat,
               "wall_s": wall, "atom_steps_per_s": n * steps / wall,
               "mean_temperature_K": float(np.mean(res.temperature)),
               "rebuilds": res.rebuilds}
    if thermostat == "nve":
        summary["max_drift_eV_per_atom"] = float(np.max(np.abs(total - total[0])))
        summary["drift_slope_eV_per_atom_per_ps"] = (
            float(np.polyfit(t_fs / 1000, total, 1)[0]) if len(total) > 1 else 0.0)
    if out is not None:
        frames = []
        for k in range(len(res.potential)):
            a = atoms.copy()
            a.positions = res.positions[k]
            a.set_velocities(res.velocities[k])
            a.info.update(potential_energy=float(res.potential[k]), time_fs=float(t_fs[k]))
            frames.append(a)
        out = pathlib.Path(out)
        tmp = out.with_name(out.name + ".tmp")
        ase.io.write(tmp, frames, format="extxyz")
        tmp.replace(out)
        summary["trajectory"] = str(out)
    return summary
