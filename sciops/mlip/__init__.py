"""`sciops.mlip`: a trained interatomic potential put to work, from its run folder.

`Calculator.from_run(RUN_DIR)` is an ASE calculator (energy in eV, forces in eV/Å, stress in
eV/Å³) for a trained `mlip` run, usable with ASE's `VelocityVerlet` and `Langevin`;
`md_from_run` is what `sciops md` runs: NVE / Langevin MD of a run's potential on a structure
file, compiled in one `lax.scan` (`run_md`, with neighbour lists rebuilt inside the loop).

This is the top library layer (above `sciops.eval`): it reads run folders through
`sciops.train.load_run`, which the model layer (`sciops.models.mlip`) may not import. Needs the
`mlip` extra (e3nn-jax, ASE); `import sciops` does not import it.
"""

from ..models.mlip import run_md as run_md
from ._run import Calculator as Calculator
from ._run import md_from_run as md_from_run
