"""Molecular reference data (`sciops generate molecule`, GFN2-xTB via tblite): the stored energy
and forces are the reference method's at the stored positions (forces = -dE/dx by central
differences, in eV/Å), the centre of mass stays fixed, and bad input is one clear error."""

import h5py
import numpy as np
import pytest

from sciops._errors import ConfigError, DataError

pytest.importorskip("tblite")


@pytest.fixture(scope="module")
def ethanol(tmp_path_factory):
    from sciops.data import read_atoms_dataset
    from sciops.pde.molecules import MoleculeConfig, generate

    path = tmp_path_factory.mktemp("mol") / "ethanol.h5"
    cfg = MoleculeConfig(n_samples=4, equilibration_steps=10, sample_every=5, seed=1)
    generate(cfg, path)
    ds = read_atoms_dataset(path, lazy=False)
    return cfg, path, ds.take(np.arange(len(ds)))


def test_molecule_samples_are_the_reference_values(ethanol):
    from ase import Atoms
    from tblite.ase import TBLite

    cfg, path, d = ethanol
    assert d["energy"].shape == (4,) and d["positions"].shape == (4, 9, 3)
    assert sorted(d["species"][0].tolist()) == [1] * 6 + [6, 6, 8]
    assert not d["pbc"].any() and "stress" not in d
    with h5py.File(path) as f:
        assert "tblite GFN2-xTB" in str(f.attrs["reference"])
        assert float(f.attrs["generate_seconds"]) > 0
    k = 2
    a = Atoms(numbers=d["species"][k], positions=d["positions"][k])
    a.calc = TBLite(method="GFN2-xTB", verbosity=0)
    assert a.get_potential_energy() == pytest.approx(float(d["energy"][k]), abs=1e-8)
    # forces are -dE/dx of the stored energy (not the constraint-projected ones), eV/Å
    h = 1e-4
    for atom, axis in ((0, 0), (8, 2)):
        e = []
        for s in (h, -h):
            b = a.copy()
            b.positions[atom, axis] += s
            b.calc = TBLite(method="GFN2-xTB", verbosity=0)
            e.append(b.get_potential_energy())
        assert -(e[0] - e[1]) / (2 * h) == pytest.approx(float(d["forces"][k, atom, axis]),
                                                          abs=1e-4)
    # the centre of mass is fixed across samples (FixCom)
    m = a.get_masses()
    com = np.einsum("a,fad->fd", m, d["positions"]) / m.sum()
    np.testing.assert_allclose(com, com[0][None].repeat(4, 0), atol=1e-8)


def test_molecule_bad_input(tmp_path):
    from sciops.pde.molecules import MoleculeConfig, generate

    with pytest.raises(ConfigError, match="'ethanol' is not in ASE's G2 collection"):
        generate(MoleculeConfig(molecule="ethanol", n_samples=1), tmp_path / "x.h5")
    with pytest.raises(DataError, match="structure_in .*none.xyz: no such file"):
        generate(MoleculeConfig(structure_in=str(tmp_path / "none.xyz"), n_samples=1),
                 tmp_path / "x.h5")
    with pytest.raises(ConfigError, match="method: expected one of GFN2-xTB, GFN1-xTB"):
        MoleculeConfig(method="DFT")
