"""Reference atoms data: the potentials (analytic LJ pair energy, forces and stress as derivatives
of the energy), Langevin equipartition, and the HDF5 / extxyz outputs with configurable keys."""

import numpy as np
import pytest

from sciops._errors import ConfigError, DataError
from sciops.data import read_atoms_dataset, read_extxyz
from sciops.pde.atoms import AtomsConfig, generate, reference_calculator, sample_md

TINY = dict(n_samples=6, temperatures=(300.0, 900.0), equilibration_steps=10, sample_every=4)


def test_lj_matches_analytic_pair_energy():
    from ase import Atoms

    cfg = AtomsConfig(potential="lj")
    s, e = cfg.lj_sigma, cfg.lj_epsilon
    for r in (2.3, 2.6, 3.0, 3.5):  # inside the smoothing onset (ASE: ro = 0.66 rc = 3.63 Å)
        a = Atoms("Cu2", positions=[[0, 0, 0], [r, 0, 0]])
        a.calc = reference_calculator(cfg)
        assert a.get_potential_energy() == pytest.approx(4 * e * ((s / r) ** 12 - (s / r) ** 6),
                                                         rel=1e-12)


@pytest.mark.parametrize("potential", ["emt", "lj"])
def test_reference_forces_and_stress_are_energy_derivatives(potential):
    from ase.build import bulk

    cfg = AtomsConfig(potential=potential)
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    a.rattle(0.1, seed=1)
    a.calc = reference_calculator(cfg)
    f, s = a.get_forces(), a.get_stress(voigt=False)
    h = 1e-5
    for atom, c in [(0, 0), (9, 2)]:
        e = []
        for d in (h, -h):
            b = a.copy()
            b.calc = reference_calculator(cfg)
            b.positions[atom, c] += d
            e.append(b.get_potential_energy())
        assert -(e[0] - e[1]) / (2 * h) == pytest.approx(f[atom, c], abs=1e-6)
    vol = a.get_volume()
    for i, j in [(0, 0), (0, 1)]:
        e = []
        for d in (h, -h):
            b = a.copy()
            b.calc = reference_calculator(cfg)
            eps = np.eye(3)
            eps[i, j] += d / 2
            eps[j, i] += d / 2
            b.set_cell(b.cell @ eps, scale_atoms=True)
            e.append(b.get_potential_energy())
        # ASE's sign convention, which the mlip model's stress follows: σ = V⁻¹ ∂E/∂ε.
        assert (e[0] - e[1]) / (2 * h) / vol == pytest.approx(s[i, j], abs=1e-7)


def test_langevin_equipartition():
    cfg = AtomsConfig(equilibration_steps=100, sample_every=10)
    _, kinetic = sample_md(cfg, 600.0, 30, np.random.default_rng(0))
    # 32 atoms: one sample fluctuates by ~sqrt(2/(3N)) = 14 %; the mean of 30 by a few %.
    assert np.mean(kinetic) == pytest.approx(600.0, rel=0.15)


def test_generate_hdf5_and_extxyz_with_custom_keys(tmp_path):
    out = tmp_path / "cu.h5"
    xyz = tmp_path / "cu.extxyz"
    cfg = AtomsConfig(**TINY, extxyz_out=str(xyz), energy_key="REF_energy",
                      forces_key="REF_forces", stress_key="REF_stress")
    generate(cfg, out, progress=False)
    ds = read_atoms_dataset(out, lazy=False)
    d = ds.load()
    assert len(ds) == 6 and d["positions"].shape == (6, 32, 3) and d["mask"].all()
    assert set(d["species"].ravel().tolist()) == {29}
    assert np.isfinite(d["energy"]).all() and np.isfinite(d["forces"]).all()
    assert ds.attrs["problem"] == "atoms"
    assert sorted(ds.attrs["temperature"]) == [300.0] * 3 + [900.0] * 3
    assert ds.attrs["temperature"] != sorted(ds.attrs["temperature"])  # shuffled
    # EMT forces of an MD snapshot sum to zero (momentum conservation of the reference).
    np.testing.assert_allclose(d["forces"].sum(axis=1), 0.0, atol=1e-8)
    frames = read_extxyz(xyz, energy_key="REF_energy", forces_key="REF_forces",
                         stress_key="REF_stress")
    np.testing.assert_allclose([float(f.energy) for f in frames], d["energy"], rtol=1e-10)
    np.testing.assert_allclose(np.asarray(frames[2].forces), d["forces"][2], atol=1e-8)
    # And back: converting the extxyz gives the same data set.
    back = tmp_path / "back.h5"
    generate(AtomsConfig(extxyz_in=str(xyz), energy_key="REF_energy", forces_key="REF_forces",
                         stress_key="REF_stress"), back, progress=False)
    d2 = read_atoms_dataset(back, lazy=False).load()
    np.testing.assert_allclose(d2["positions"], d["positions"], atol=1e-8)
    np.testing.assert_allclose(d2["stress"], d["stress"], atol=1e-10)


def test_bad_inputs(tmp_path):
    xyz = tmp_path / "a.extxyz"
    generate(AtomsConfig(**TINY, extxyz_out=str(xyz)), tmp_path / "a.h5", progress=False)
    with pytest.raises(DataError, match=r"a.extxyz: frame 0 has no energy under key 'dft_E'"):
        generate(AtomsConfig(extxyz_in=str(xyz), energy_key="dft_E"), tmp_path / "b.h5",
                 progress=False)
    with pytest.raises(ConfigError, match="EMT has parameters for"):
        AtomsConfig(element="Fe")
    with pytest.raises(ConfigError, match="temperatures"):
        AtomsConfig(temperatures=(300.0, -5.0))
