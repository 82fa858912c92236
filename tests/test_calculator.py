"""The ASE calculator: agrees with the training-path prediction, conserves energy in NVE
(VelocityVerlet), runs Langevin, and rejects bad structures with clear errors."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciops._errors import ConfigError, DataError
from sciops.models.mlip import FAMILIES, MLIPConfig
from sciops.models.mlip._calculator import Calculator
from sciops.models.mlip._family import predict
from sciops.pde.atoms import thermalize

FAM = FAMILIES["mlip"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small untrained potential whose energy scale is raised so that forces are 0.1 eV/Å RMS
    on a rattled cell (an untrained model's forces are tiny, which would make the NVE check
    vacuous). It is not a physical potential (no repulsive core), so the MD below stays short
    and cold; benchmarks/mlip_md.py runs NVE/NVT with a trained model."""
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from sciops.data import Dataset

    rows = []
    for k in range(2):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
        a.rattle(0.1, seed=k)
        a.calc = EMT()
        rows.append(dict(positions=a.positions, species=a.numbers.astype(np.int32),
                         mask=np.ones(32, bool), cell=np.asarray(a.cell), pbc=a.pbc,
                         energy=np.float64(a.get_potential_energy()), forces=a.get_forces()))
    ds = Dataset({k: np.stack([r[k] for r in rows]) for k in rows[0]}, name="cu")
    # lmax 1, one layer (as test_md.py): the calculator's agreement with the training path and
    # energy conservation do not depend on the size; test_mlip checks the L = 2, 2-layer model
    cfg = MLIPConfig(cutoff=3.6, lmax=1, channels=8, n_layers=1, n_basis=6, radial_hidden=16,
                     readout_hidden=16, max_neighbors=24,
                     cp_cache_dir=str(tmp_path_factory.mktemp("cp")))
    model = FAM.build(cfg, ds, key=jax.random.key(0))
    sample = {k: jnp.asarray(v[0]) for k, v in ds.take([0]).items()}
    _, f, _, _ = eqx.filter_jit(predict)(cfg, model, sample)
    rms = float(jnp.sqrt(jnp.mean(f**2)))
    model = eqx.tree_at(lambda m: m.energy_scale.scale, model,
                        model.energy_scale.scale * 0.1 / rms)
    return cfg, model, ds


def test_calculator_matches_training_path(setup):
    from ase import Atoms

    cfg, model, ds = setup
    s = ds.take([1])
    a = Atoms(numbers=s["species"][0], positions=s["positions"][0], cell=s["cell"][0], pbc=True)
    a.calc = Calculator(model, cfg)
    e, f, st, _ = eqx.filter_jit(predict)(cfg, model, {k: jnp.asarray(v[0]) for k, v in s.items()})
    assert a.get_potential_energy() == pytest.approx(float(e), rel=1e-6)
    np.testing.assert_allclose(a.get_forces(), np.asarray(f), atol=1e-5)
    st = np.asarray(st)
    # this model was fitted without stresses: asking for one warns (or raises, by option)
    assert not model.energy_scale.stress_trained
    with pytest.warns(UserWarning, match="stress asked of a model trained without stresses"):
        stress = a.get_stress()
    np.testing.assert_allclose(stress,
                               [st[0, 0], st[1, 1], st[2, 2], st[1, 2], st[0, 2], st[0, 1]],
                               atol=1e-6)
    assert np.sqrt(np.mean(a.get_forces() ** 2)) == pytest.approx(0.1, rel=0.3)
    # MD asks for forces only: the path without the strain derivative gives the same numbers.
    b = a.copy()
    b.calc = Calculator(model, cfg)
    np.testing.assert_allclose(b.get_forces(), np.asarray(f), atol=1e-5)
    assert b.get_potential_energy() == pytest.approx(float(e), rel=1e-6)
    assert "stress" not in b.calc.results
    b.calc = Calculator(model, cfg, untrained_stress="raise")
    with pytest.raises(ConfigError, match="stress asked of a model trained without stresses"):
        b.get_stress()
    c = a.copy()
    c.calc = Calculator(eqx.tree_at(lambda m: m.energy_scale, model, dataclasses.replace(
        model.energy_scale, stress_trained=True)), cfg, untrained_stress="raise")
    np.testing.assert_allclose(c.get_stress(), stress, atol=1e-6)


def test_nve_conserves_energy_and_langevin_runs(setup):
    from ase import units
    from ase.build import bulk
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary
    from ase.md.verlet import VelocityVerlet

    cfg, model, _ = setup
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    a.calc = Calculator(model, cfg)
    thermalize(a, 100.0, np.random.RandomState(0))
    Stationary(a)
    x0 = a.positions.copy()
    dyn = VelocityVerlet(a, 1.0 * units.fs)
    total, potential = [], []
    for _ in range(100):
        dyn.run(2)
        total.append(a.get_total_energy())
        potential.append(a.get_potential_energy())
    total, potential = np.array(total), np.array(potential)
    # 200 steps, one compiled evaluation (fixed atoms, an edge budget that did not need to grow).
    assert a.calc._evaluate[False]._cache_size() == 1
    drift = np.abs(total - total[0]).max() / len(a)
    assert drift < 1e-3  # eV/atom over 200 fs
    # Not vacuous: atoms moved and the potential energy exchanged with the kinetic.
    assert np.abs(a.positions - x0).max() > 0.02
    assert np.ptp(potential) / len(a) > 20 * drift
    a.calc = Calculator(model, cfg)
    lang = Langevin(a, 2.0 * units.fs, temperature_K=100, friction=0.02 / units.fs,
                    fixcm=False, rng=np.random.RandomState(1))
    lang.run(20)
    assert np.isfinite(a.get_potential_energy()) and 0 < a.get_temperature() < 3000


def test_bad_structures(setup):
    from ase.build import bulk

    cfg, model, _ = setup
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    a.numbers[5] = 28
    a.calc = Calculator(model, cfg)
    with pytest.raises(DataError, match=r"Ni \(Z=28\) not in the training set \(Cu\)"):
        a.get_potential_energy()
    b = bulk("Cu", "fcc", a=3.4, cubic=True)
    b.calc = Calculator(model, cfg)
    with pytest.raises(DataError, match="cell too small for the cutoff"):
        b.get_forces()
