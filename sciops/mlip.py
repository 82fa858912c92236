"""`sciops.mlip`: the interatomic-potential entry points users reach for.

`Calculator.from_run(RUN_DIR)` is an ASE calculator (energy in eV, forces in eV/Å, stress in
eV/Å³) for a trained `mlip` run, usable with ASE's `VelocityVerlet` and `Langevin`. Needs the
`mlip` extra (e3nn-jax, ASE); imported lazily so `import sciops` does not require it.
"""

from __future__ import annotations

__all__ = ["Calculator"]  # noqa: F822 (provided lazily by __getattr__ below)


def __getattr__(name):
    if name == "Calculator":
        from .models.mlip._calculator import Calculator

        return Calculator
    raise AttributeError(f"module 'sciops.mlip' has no attribute {name!r}")
