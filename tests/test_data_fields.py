"""GridField, MeshField and Atoms: invariants, HDF5 round trips, VTU/XDMF (meshio), extxyz (ASE)."""

import os
import sys

import numpy as np
import pytest

from sciops import DataError
from sciops.data import (
    Atoms,
    GridField,
    MeshField,
    atoms_at,
    grid_field,
    mesh_field,
    read_atoms_dataset,
    read_extxyz,
    read_grid_dataset,
    read_mesh_dataset,
    read_vtu,
    read_xdmf,
    write_atoms_dataset,
    write_extxyz,
    write_grid_dataset,
    write_mesh_dataset,
    write_vtu,
    write_xdmf,
)

# -- GridField -----------------------------------------------------------------------------------


def test_grid_coordinates_and_subsample():
    g = GridField(np.zeros((1, 5, 9)), bounds=[(0, 1), (-1, 3)])
    assert g.spacing == (0.25, 0.5)
    c = g.coordinates()
    assert c.shape == (2, 5, 9)
    np.testing.assert_allclose(c[0, :, 0], [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(c[1, 0, [0, -1]], [-1, 3])  # both ends are nodes
    p = GridField(np.zeros((1, 8)), bounds=[(0, 2 * np.pi)], periodic=True)
    np.testing.assert_allclose(p.axes()[0], np.arange(8) * 2 * np.pi / 8)  # upper end left out
    # Subsampling a field of its own coordinates gives the coarse grid's coordinates.
    fine = GridField(GridField(np.zeros((1, 9, 17))).coordinates())
    coarse = fine.subsample((2, 4))
    np.testing.assert_allclose(coarse.values, GridField(np.zeros((1, 5, 5))).coordinates())
    with pytest.raises(DataError, match=r"factor 3 does not divide n - 1 = 8 on axis 0"):
        fine.subsample(3)


def test_grid_resample_linear_exact_and_second_order():
    g = GridField(np.zeros((1, 5, 9)), bounds=[(0, 1), (0, 2)])
    x, y = g.coordinates()
    lin = GridField(np.stack([1 + 2 * x - 3 * y, x * y]), bounds=g.bounds)
    r = lin.resample((7, 13))
    xr, yr = r.coordinates()
    # Multilinear interpolation reproduces bilinear functions exactly.
    np.testing.assert_allclose(r.values[0], 1 + 2 * xr - 3 * yr, atol=1e-12)
    np.testing.assert_allclose(r.values[1], xr * yr, atol=1e-12)
    # On a periodic axis the error of linear interpolation falls as h² (order 2).
    target = np.sin(2 * np.pi * np.arange(256) / 256)
    errors = []
    for n in (16, 32, 64):
        f = GridField(np.sin(2 * np.pi * np.arange(n) / n)[None], periodic=True)
        errors.append(np.abs(f.resample((256,)).values[0] - target).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(orders, 2.0, atol=0.05)


def test_grid_field_is_a_pytree():
    import jax

    g = GridField(np.arange(12.0, dtype=np.float32).reshape(1, 3, 4), bounds=[(0, 1), (0, 2)],
                  mask=np.ones((3, 4), bool))
    doubled = jax.jit(lambda f: GridField(2 * f.values, f.bounds, f.mask, f.periodic))(g)
    np.testing.assert_array_equal(np.asarray(doubled.values), 2 * g.values)
    assert doubled.bounds == g.bounds and doubled.spacing == (0.5, 2 / 3)
    assert len(jax.tree.leaves(g)) == 2  # values and mask; bounds and periodic are static


def test_grid_validation_names_shapes():
    with pytest.raises(DataError, match=r"2 spatial axes \(values shape \(1, 4, 4\)\) but 1 bounds"):
        GridField(np.zeros((1, 4, 4)), bounds=[(0, 1)])
    with pytest.raises(DataError, match=r"mask shape \(4, 3\) differs from the spatial shape "
                                        r"\(4, 4\)"):
        GridField(np.zeros((2, 4, 4)), mask=np.ones((4, 3), bool))
    with pytest.raises(DataError, match=r"at least one spatial axis, got shape \(4,\)"):
        GridField(np.zeros(4))
    with pytest.raises(DataError, match=r"bounds of axis 0 must be finite with lower < upper"):
        GridField(np.zeros((1, 4)), bounds=[(1, 0)])


def test_grid_dataset_round_trip_with_mask(tmp_path):
    rng = np.random.default_rng(0)
    bounds = ((0.0, 2.0), (-1.0, 1.0))
    masks = [rng.random((6, 5)) > 0.4 for _ in range(3)]
    a = [GridField(rng.normal(size=(2, 6, 5)).astype(np.float32), bounds, m) for m in masks]
    u = [GridField(rng.normal(size=(1, 6, 5)), bounds, periodic=(True, False)) for _ in range(3)]
    path = write_grid_dataset(tmp_path / "g.h5", {"a": a, "u": u}, attrs={"problem": "toy"},
                              units={"u": "K"})
    ds = read_grid_dataset(path)
    assert sorted(ds.keys()) == ["a", "a_mask", "u"]
    assert ds.attrs["kind"] == "grid" and ds.field_attrs["u"]["units"] == "K"
    for i in range(3):
        ga, gu = grid_field(ds, "a", i), grid_field(ds, "u", i)
        np.testing.assert_array_equal(ga.values, a[i].values)
        np.testing.assert_array_equal(ga.mask, masks[i])
        assert ga.bounds == bounds and ga.periodic == (False, False)
        np.testing.assert_array_equal(gu.values, u[i].values)
        assert gu.periodic == (True, False) and gu.mask is None
    with pytest.raises(DataError, match=r"field 'u' sample 1 \(shape \(1, 6, 4\)"):
        write_grid_dataset(tmp_path / "bad.h5", {"u": [u[0], GridField(np.zeros((1, 6, 4)))]})


# -- MeshField -----------------------------------------------------------------------------------


def _square_mesh(nx, ny, n_steps, seed=0):
    """A structured triangulation of the unit square with two node fields over time."""
    x, y = np.meshgrid(np.linspace(0, 1, nx), np.linspace(0, 1, ny), indexing="ij")
    points = np.stack([x.ravel(), y.ravel()], axis=1)
    idx = np.arange(nx * ny).reshape(nx, ny)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    tri = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)]).astype(np.int64)
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n_steps)
    fields = {"velocity": rng.normal(size=(n_steps, nx * ny, 2)),
              "pressure": rng.normal(size=(n_steps, nx * ny, 1))}
    node_type = ((x.ravel() == 0) | (x.ravel() == 1)).astype(np.int32)
    return MeshField(points, {"triangle": tri}, fields, node_type, t)


def test_mesh_validation_and_edges():
    m = _square_mesh(3, 4, 2)
    assert m.n_nodes == 12 and m.n_times == 2
    e = m.edges()
    # A structured triangulation of an nx × ny grid has (nx-1)ny + nx(ny-1) + (nx-1)(ny-1) edges.
    assert e.shape == (2 * 4 + 3 * 3 + 2 * 3, 2) and (e[:, 0] < e[:, 1]).all()
    with pytest.raises(DataError, match=r"triangle cells refer to nodes 0\.\.12, but the mesh has "
                                        r"12 nodes"):
        MeshField(m.points, {"triangle": np.array([[0, 1, 12]])})
    with pytest.raises(DataError, match=r"field 'p' must have shape \(time, 12, channels\), got "
                                        r"\(2, 11, 1\)"):
        MeshField(m.points, m.cells, {"p": np.zeros((2, 11, 1))})
    with pytest.raises(DataError, match=r"quad cells must have shape \(cells, 4\), got \(1, 3\)"):
        MeshField(m.points, {"quad": np.array([[0, 1, 2]])})
    with pytest.raises(DataError, match=r"different numbers of time steps"):
        MeshField(m.points, m.cells, {"p": np.zeros((2, 12, 1)), "q": np.zeros((3, 12, 1))})


def test_mesh_dataset_pads_meshes_of_different_sizes(tmp_path):
    meshes = [_square_mesh(3, 4, 5, seed=0), _square_mesh(5, 5, 5, seed=1),
              _square_mesh(2, 3, 5, seed=2)]
    path = write_mesh_dataset(tmp_path / "m.h5", meshes, attrs={"problem": "toy"},
                              units={"pressure": "Pa"})
    ds = read_mesh_dataset(path)
    assert ds.shape("points") == (25, 2) and ds.shape("velocity") == (5, 25, 2)
    assert ds.shape("cells_triangle") == (32, 3)
    batch = ds.load()
    assert batch["node_mask"].sum(axis=1).tolist() == [12, 25, 6]
    assert batch["cells_triangle_mask"].sum(axis=1).tolist() == [12, 32, 4]
    assert (batch["velocity"][0, :, 12:] == 0).all()  # padding nodes hold zeros
    for i, m in enumerate(meshes):
        back = mesh_field(ds, i)
        np.testing.assert_array_equal(back.points, m.points)
        np.testing.assert_array_equal(back.cells["triangle"], m.cells["triangle"])
        np.testing.assert_array_equal(back.node_type, m.node_type)
        np.testing.assert_array_equal(back.times, m.times)
        for k in m.fields:
            np.testing.assert_array_equal(back.fields[k], m.fields[k])
    odd = MeshField(meshes[0].points, meshes[0].cells, {"velocity": meshes[0].fields["velocity"]},
                    meshes[0].node_type, meshes[0].times)
    with pytest.raises(DataError, match=r"trajectory 1 .* differs from trajectory 0"):
        write_mesh_dataset(tmp_path / "bad.h5", [meshes[0], odd])


def test_vtu_round_trip(tmp_path):
    m = _square_mesh(4, 3, 3)
    path = write_vtu(tmp_path / "out" / "m.vtu", m, step=2)
    back = read_vtu(path)
    np.testing.assert_array_equal(back.points, m.points)
    np.testing.assert_array_equal(back.cells["triangle"], m.cells["triangle"])
    np.testing.assert_array_equal(back.node_type, m.node_type)
    assert back.n_times == 1
    for k in m.fields:
        np.testing.assert_array_equal(back.fields[k][0], m.fields[k][2])
    assert read_vtu(path, dim=3).points.shape == (12, 3)
    with pytest.raises(DataError, match=r"nope\.vtu: mesh file not found"):
        read_vtu(tmp_path / "nope.vtu")
    (tmp_path / "bad.vtu").write_text("<VTKFile>not really</VTKFile>")
    with pytest.raises(DataError, match=r"bad\.vtu: cannot read mesh"):
        read_vtu(tmp_path / "bad.vtu")


def test_xdmf_time_series_round_trip_keeps_h5_next_to_xdmf(tmp_path, monkeypatch):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    m = _square_mesh(4, 5, 4)
    path = write_xdmf(tmp_path / "series" / "flow.xdmf", m)
    assert (tmp_path / "series" / "flow.h5").is_file()
    assert os.getcwd() == str(elsewhere) and not list(elsewhere.iterdir())
    back = read_xdmf(path)
    np.testing.assert_array_equal(back.points, m.points)
    np.testing.assert_array_equal(back.cells["triangle"], m.cells["triangle"])
    np.testing.assert_array_equal(back.node_type, m.node_type)
    np.testing.assert_allclose(back.times, m.times)
    for k in m.fields:
        np.testing.assert_array_equal(back.fields[k], m.fields[k])
    (tmp_path / "series" / "flow.h5").unlink()
    with pytest.raises(DataError, match=rf"{path}: cannot read XDMF time series"):
        read_xdmf(path)


# -- Atoms ---------------------------------------------------------------------------------------


def _structures(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for n in (3, 5, 2):
        cell = np.diag([5.0, 6.0, 7.0])
        out.append(Atoms(rng.random((n, 3)) * 5, rng.integers(1, 9, n), cell, (True, True, False),
                         energy=rng.normal(), forces=rng.normal(size=(n, 3)),
                         stress=np.diag(rng.normal(size=3))))
    return out


def test_atoms_validation_and_padding():
    a = _structures()[0]
    p = a.pad(6)
    assert p.positions.shape == (6, 3) and p.n_atoms == 3
    assert p.mask.tolist() == [True] * 3 + [False] * 3 and p.species[3:].tolist() == [0] * 3
    u = p.unpad()
    np.testing.assert_array_equal(u.positions, a.positions)
    np.testing.assert_array_equal(u.forces, a.forces)
    with pytest.raises(DataError, match=r"forces must have shape \(2, 3\), got \(3, 3\)"):
        Atoms(np.zeros((2, 3)), [1, 1], forces=np.zeros((3, 3)))
    with pytest.raises(DataError, match=r"periodic boundary conditions \(True, True, True\) need a cell"):
        Atoms(np.zeros((2, 3)), [1, 1], pbc=True)
    with pytest.raises(DataError, match=r"atomic numbers must lie in 1\.\.118"):
        Atoms(np.zeros((2, 3)), [1, 0])
    with pytest.raises(DataError, match=r"positions must have shape \(atoms, 3\), got \(2, 2\)"):
        Atoms(np.zeros((2, 2)), [1, 1])


def test_atoms_dataset_round_trip(tmp_path):
    structures = _structures()
    path = write_atoms_dataset(tmp_path / "a.h5", structures, n_max=8)
    ds = read_atoms_dataset(path)
    assert ds.shape("positions") == (8, 3) and ds.shape("forces") == (8, 3)
    assert ds.field_attrs["energy"]["units"] == "eV"
    assert ds.load()["mask"].sum(axis=1).tolist() == [3, 5, 2]
    for i, s in enumerate(structures):
        back = atoms_at(ds, i)
        for k in ("positions", "species", "cell", "energy", "forces", "stress"):
            np.testing.assert_array_equal(getattr(back, k), getattr(s, k))
        assert back.pbc == (True, True, False)
    partial = [structures[0], Atoms(structures[1].positions, structures[1].species)]
    with pytest.raises(DataError, match=r"structure 1 lacks cell but structure 0 has"):
        write_atoms_dataset(tmp_path / "bad.h5", partial)


@pytest.mark.parametrize("keys", [("energy", "forces", "stress"),
                                  ("REF_energy", "REF_forces", "REF_stress")])
def test_extxyz_round_trip(tmp_path, keys):
    energy_key, forces_key, stress_key = keys
    structures = _structures(1)
    path = write_extxyz(tmp_path / "s.extxyz", structures, energy_key=energy_key,
                        forces_key=forces_key, stress_key=stress_key)
    back = read_extxyz(path, energy_key=energy_key, forces_key=forces_key, stress_key=stress_key)
    assert len(back) == 3
    # ASE writes positions and forces with 8 decimals, energies and stresses in full.
    for s, b in zip(structures, back, strict=True):
        np.testing.assert_allclose(b.positions, s.positions, rtol=0, atol=5e-9)
        np.testing.assert_array_equal(b.species, s.species)
        np.testing.assert_allclose(b.cell, s.cell)
        assert b.pbc == s.pbc
        np.testing.assert_allclose(b.energy, s.energy, rtol=1e-12)
        np.testing.assert_allclose(b.forces, s.forces, rtol=0, atol=5e-9)
        np.testing.assert_allclose(b.stress, s.stress, rtol=0, atol=5e-9)


def test_extxyz_missing_key_names_file_and_frame(tmp_path):
    structures = _structures(2)
    structures[1] = Atoms(structures[1].positions, structures[1].species, structures[1].cell,
                          structures[1].pbc, forces=structures[1].forces)
    path = tmp_path / "s.xyz"
    import ase
    import ase.io

    frames = []
    for s in structures:
        at = ase.Atoms(numbers=s.species, positions=s.positions, cell=s.cell, pbc=s.pbc)
        at.arrays["dft_forces"] = np.asarray(s.forces)
        if s.energy is not None:
            at.info["dft_energy"] = float(s.energy)
        frames.append(at)
    ase.io.write(path, frames, format="extxyz")
    with pytest.raises(DataError, match=rf"{path}: frame 1 has no energy under key 'dft_energy'"):
        read_extxyz(path, energy_key="dft_energy", forces_key="dft_forces")
    only_forces = read_extxyz(path, energy_key=None, forces_key="dft_forces")
    np.testing.assert_allclose(only_forces[1].forces, structures[1].forces)
    assert only_forces[0].energy is None
    (tmp_path / "junk.xyz").write_text("3\nnot a header\nH 0 0\n")
    with pytest.raises(DataError, match=r"junk\.xyz: cannot parse as extended XYZ"):
        read_extxyz(tmp_path / "junk.xyz")


def test_extxyz_without_ase_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ase", None)
    monkeypatch.setitem(sys.modules, "ase.io", None)
    with pytest.raises(ImportError, match=r"needs ASE; install it with `pip install 'sciops\[mlip\]'`"):
        read_extxyz(tmp_path / "x.xyz")
