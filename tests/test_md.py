"""Compiled MD (`run_md`): the jitted velocity-Verlet loop follows ASE's VelocityVerlet driving
the same model step for step, neighbour-list rebuilds inside the loop change nothing, NVE
conserves energy, Langevin thermalises, and bad arguments are clear errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciops._errors import ConfigError, DataError
from sciops.mlip import run_md
from sciops.models.mlip import FAMILIES, MLIPConfig
from sciops.models.mlip._calculator import Calculator
from sciops.models.mlip._family import predict

FAM = FAMILIES["mlip"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A small untrained potential with a physical repulsive scale: its energy scale is raised so
    that forces are 0.1 eV/Å RMS on a rattled cell (as in test_calculator.py)."""
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
    cfg = MLIPConfig(cutoff=3.6, lmax=1, channels=8, n_layers=1, n_basis=6, radial_hidden=16,
                     readout_hidden=16, max_neighbors=40,
                     cp_cache_dir=str(tmp_path_factory.mktemp("cp")))
    model = FAM.build(cfg, ds, key=jax.random.key(0))
    sample = {k: jnp.asarray(v[0]) for k, v in ds.take([0]).items()}
    _, f, _, _ = eqx.filter_jit(predict)(cfg, model, sample)
    rms = float(jnp.sqrt(jnp.mean(f**2)))
    model = eqx.tree_at(lambda m: m.energy_scale.scale, model,
                        model.energy_scale.scale * 0.1 / rms)
    return cfg, model


def _atoms(seed=0):
    from ase.build import bulk

    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    a.rattle(0.05, seed=seed)
    rng = np.random.default_rng(seed)
    a.set_velocities(rng.normal(size=(32, 3)) * 0.02)
    return a


def test_compiled_nve_follows_ase_velocity_verlet(setup):
    from ase import units
    from ase.md.verlet import VelocityVerlet

    cfg, model = setup
    a = _atoms()
    args = (a.positions, a.numbers, a.get_masses(), np.asarray(a.cell), a.pbc)
    # skin 0.02 Å: rebuilds inside the loop; skin 1 Å: the first list serves all steps
    # (and in chunks of 3 + 1 frames: the state carries over between compiled calls)
    out = run_md(model, cfg, *args, velocities=a.get_velocities(), n_steps=20, dt_fs=2.0,
                 skin=0.02, record_every=5, chunk_frames=3)
    wide = run_md(model, cfg, *args, velocities=a.get_velocities(), n_steps=20, dt_fs=2.0,
                  skin=1.0, record_every=5)
    assert out.rebuilds > 2 and wide.rebuilds == 1
    np.testing.assert_allclose(out.positions, wide.positions, atol=1e-5)
    b = a.copy()
    b.calc = Calculator(model, cfg)
    dyn = VelocityVerlet(b, 2.0 * units.fs)
    for frame in range(4):
        dyn.run(5)
        np.testing.assert_allclose(out.positions[frame], b.positions, atol=1e-4)
        assert out.potential[frame] == pytest.approx(b.get_potential_energy(), abs=1e-4)
        assert out.kinetic[frame] == pytest.approx(b.get_kinetic_energy(), rel=1e-4)
    total = out.potential + out.kinetic
    assert np.ptp(total) < 0.05 * np.ptp(out.potential) + 1e-6


def test_langevin_thermalises_and_bad_arguments(setup):
    cfg, model = setup
    a = _atoms(1)
    args = (a.positions, a.numbers, a.get_masses(), np.asarray(a.cell), a.pbc)
    out = run_md(model, cfg, *args, n_steps=300, dt_fs=2.0, thermostat="langevin",
                 temperature_K=300.0, friction_per_fs=0.05, record_every=10,
                 key=jax.random.key(3))
    # after 600 fs with a 20 fs relaxation time, the mean temperature of the last half is near
    # 300 K (32 atoms: the instantaneous temperature fluctuates by ~sqrt(2/96) = 14 %)
    assert np.mean(out.temperature[15:]) == pytest.approx(300.0, rel=0.25)
    with pytest.raises(ConfigError, match="thermostat: expected 'nve' or 'langevin'"):
        run_md(model, cfg, *args, n_steps=2, thermostat="nvt")
    with pytest.raises(ConfigError, match="need n_steps >= 1"):
        run_md(model, cfg, *args, n_steps=0)
    # cutoff 3.6 + skin 4 = 7.6 Å exceeds the 7.22 Å cell: the 27-image search would miss edges
    with pytest.raises(DataError, match="not above cutoff \\+ skin = 7.6 Å"):
        run_md(model, cfg, *args, n_steps=2, skin=4.0)


def test_md_command_errors(tmp_path, capsys):
    from sciops.cli import main

    assert main(["md", str(tmp_path / "run"), str(tmp_path / "none.xyz")]) == 2
    assert capsys.readouterr().err.strip() == f"error: md structure {tmp_path / 'none.xyz'}: no such file"
    bad = tmp_path / "bad.xyz"
    bad.write_text("not a structure\n")
    assert main(["md", str(tmp_path / "run"), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: md structure {bad}: not a structure file ASE can read")
    assert "\n" not in err
