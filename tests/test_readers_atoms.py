"""Users' own atomistic files: the rMD17 and MD22 (sGDML) .npz layouts with their units stated
and converted to eV and Å, and files read through ASE (extxyz, ASE trajectories)."""

import numpy as np
import pytest

from sciops import DataError
from sciops.data import Atoms, read_dataset, unit_factor, write_extxyz

# 1 kcal/mol in eV from the exact SI constants: 4184 J / (N_A e).
KCAL_MOL = 4184.0 / (6.02214076e23 * 1.602176634e-19)


def _rmd17(path, n_frames=5, **override):
    rng = np.random.default_rng(0)
    arrays = {"nuclear_charges": np.array([6, 1, 1, 8]),
              "coords": rng.normal(size=(n_frames, 4, 3)),
              "energies": rng.normal(size=n_frames) - 1000.0,
              "forces": rng.normal(size=(n_frames, 4, 3)),
              "old_indices": np.arange(n_frames)}
    arrays.update(override)
    np.savez(path, **arrays)
    return arrays


def test_unit_factors():
    assert KCAL_MOL == pytest.approx(0.0433641, rel=1e-6)
    assert unit_factor("energy", "kcal/mol") == pytest.approx(KCAL_MOL, rel=1e-12)
    assert unit_factor("forces", "kcal/mol/Å") == pytest.approx(KCAL_MOL, rel=1e-12)
    assert unit_factor("forces", "Hartree/Bohr") == pytest.approx(51.4220674763, rel=1e-9)
    assert unit_factor("positions", "Bohr") == pytest.approx(0.529177210903)
    assert unit_factor("stress", "eV/Å^3") == 1.0
    with pytest.raises(DataError, match=r"data\.units\.energy: unknown unit 'kcal'"):
        unit_factor("energy", "kcal")


def test_rmd17_layout_converted_from_kcal_per_mol(tmp_path):
    raw = _rmd17(tmp_path / "rmd17_ethanol.npz")
    ds = read_dataset(tmp_path / "rmd17_ethanol.npz",
                      units={"energy": "kcal/mol", "forces": "kcal/mol/Å"})
    assert len(ds) == 5 and ds.attrs["kind"] == "atoms"
    d = ds.load()
    np.testing.assert_allclose(d["energy"], raw["energies"] * KCAL_MOL, rtol=1e-12)
    np.testing.assert_allclose(d["forces"], raw["forces"] * KCAL_MOL, rtol=1e-12)
    np.testing.assert_array_equal(d["positions"], raw["coords"])
    np.testing.assert_array_equal(d["species"][3], [6, 1, 1, 8])
    assert d["mask"].all() and (d["n_atoms"] == 4).all()
    assert ds.attrs["units_converted_from"] == {"energy": "kcal/mol", "forces": "kcal/mol/Å"}
    assert ds.field_attrs["energy"]["units"] == "eV"
    with pytest.raises(DataError, match=r"rmd17_ethanol\.npz: data\.units\.energy: the rmd17 "
                                        r"\.npz layout does not record its units"):
        read_dataset(tmp_path / "rmd17_ethanol.npz")
    # the old (MD17) energies instead of the recomputed ones, through the key mapping
    _rmd17(tmp_path / "old.npz", old_energies=np.zeros(5))
    ds = read_dataset(tmp_path / "old.npz", keys={"energy": "old_energies"},
                      units={"energy": "kcal/mol", "forces": "kcal/mol/Å"})
    np.testing.assert_array_equal(ds.load()["energy"], np.zeros(5))


def test_md22_sgdml_layout_and_its_errors(tmp_path):
    rng = np.random.default_rng(1)
    R, F = rng.normal(size=(3, 2, 3)), rng.normal(size=(3, 2, 3))
    np.savez(tmp_path / "md22_Ac-Ala3-NHMe.npz", R=R, E=np.arange(3.0)[:, None], F=F,
             z=np.array([1, 1]))
    ds = read_dataset(tmp_path / "md22_Ac-Ala3-NHMe.npz",
                      units={"energy": "kcal/mol", "forces": "kcal/mol/A"})
    np.testing.assert_allclose(ds.load()["energy"], np.arange(3.0) * KCAL_MOL)
    np.savez(tmp_path / "short.npz", R=R, E=np.arange(2.0), F=F, z=np.array([1, 1]))
    with pytest.raises(DataError, match=r"short\.npz: key 'E' has shape \(2,\); expected \(3,\)"):
        read_dataset(tmp_path / "short.npz", units={"energy": "eV", "forces": "eV/Å"})
    F[2, 1, 0] = np.inf
    np.savez(tmp_path / "inf.npz", R=R, E=np.arange(3.0), F=F, z=np.array([1, 1]))
    with pytest.raises(DataError, match=r"inf\.npz: key 'F': non-finite value \(NaN or inf\) "
                                        r"in frame 2"):
        read_dataset(tmp_path / "inf.npz", units={"energy": "eV", "forces": "eV/Å"})
    with pytest.raises(DataError, match=r"no key 'Q' \(the forces, data\.keys\.forces\); keys "
                                        r"present: E, F, R, z"):
        read_dataset(tmp_path / "inf.npz", keys={"forces": "Q"}, units={"energy": "eV"})


@pytest.mark.parametrize("suffix", [".extxyz", ".traj"])
def test_files_ase_reads(tmp_path, suffix):
    ase_io = pytest.importorskip("ase.io")
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(2)
    structures = [Atoms(rng.uniform(0, 3, size=(n, 3)), np.array([29] * n), np.eye(3) * 3.6,
                        True, float(-3.5 * n), rng.normal(size=(n, 3))) for n in (4, 3)]
    path = tmp_path / f"cu{suffix}"
    if suffix == ".extxyz":
        write_extxyz(path, structures)
    else:
        import ase

        frames = []
        for s in structures:
            at = ase.Atoms(numbers=np.asarray(s.species), positions=np.asarray(s.positions),
                           cell=np.asarray(s.cell), pbc=True)
            at.calc = SinglePointCalculator(at, energy=float(s.energy), forces=np.asarray(s.forces))
            frames.append(at)
        ase_io.write(path, frames)
    ds = read_dataset(path)
    d = ds.load()
    assert ds.attrs["kind"] == "atoms" and len(ds) == 2 and d["positions"].shape == (2, 4, 3)
    np.testing.assert_allclose(d["energy"], [-14.0, -10.5])
    np.testing.assert_allclose(d["forces"][1, :3], structures[1].forces)
    assert not d["mask"][1, 3] and d["species"][1, 3] == 0
    # energies stated in kcal/mol are converted; an unknown key names what the frames hold
    conv = read_dataset(path, units={"energy": "kcal/mol"}).load()
    np.testing.assert_allclose(conv["energy"], d["energy"] * KCAL_MOL)
    with pytest.raises(DataError, match=r"frame 0 has no energy under key 'REF_energy'; keys "
                                        r"present: .*energy"):
        read_dataset(path, keys={"energy": "REF_energy"})
