"""`sciops.mlip`: the interatomic-potential entry points users reach for.

`Calculator.from_run(RUN_DIR)` is an ASE calculator (energy in eV, forces in eV/Å, stress in
eV/Å³) for a trained `mlip` run, usable with ASE's `VelocityVerlet` and `Langevin`; `run_md`
runs NVE / Langevin MD of a trained potential compiled in one `lax.scan` (neighbour lists
rebuilt inside the loop). Needs the `mlip` extra (e3nn-jax, ASE); imported lazily so `import sciops` does not require it.
"""

from __future__ import annotations

__all__ = ["Calculator", "run_md"]  # noqa: F822 (provided lazily by __getattr__ below)


def __getattr__(name):
    if name == "Calculator":
        from .models.mlip._calculator import Calculator

        return Calculator
    if name == "run_md":
        from .models.mlip._md import run_md

        return run_md
    raise AttributeError(f"module 'sciops.mlip' has no attribute {name!r}")
