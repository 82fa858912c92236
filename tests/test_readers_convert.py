"""`sciops convert`: users' files into the sciops schema with provenance (source, SHA-256,
mapping), identical values to reading the source directly; mesh data sets delegated to the
mesh importer; bad input is one line, exit 2, nothing written."""

import hashlib
import json

import numpy as np
from test_readers import write_mat73

from sciops.cli import main
from sciops.data import read_atoms_dataset, read_dataset, read_hdf5, read_mesh_dataset
from sciops.data._mesh_import import encode_example, write_tfrecord


def _write_meshgraphnets(folder, n_traj, rng, t=3):
    """A MeshGraphNets data-set folder (meta.json + train.tfrecord) of small triangle meshes."""
    meta = {"dt": 0.01, "trajectory_length": t,
            "field_names": ["cells", "mesh_pos", "node_type", "velocity"],
            "features": {"cells": {"type": "static", "shape": [1, -1, 3], "dtype": "int32"},
                         "mesh_pos": {"type": "static", "shape": [1, -1, 2], "dtype": "float32"},
                         "node_type": {"type": "static", "shape": [1, -1, 1], "dtype": "int32"},
                         "velocity": {"type": "dynamic", "shape": [t, -1, 2],
                                      "dtype": "float32"}}}
    (folder / "meta.json").write_text(json.dumps(meta))
    cells = np.array([[0, 1, 2], [1, 3, 2]], "<i4")
    write_tfrecord(folder / "train.tfrecord", [encode_example({
        "cells": cells.tobytes(), "mesh_pos": rng.random((4, 2)).astype("<f4").tobytes(),
        "node_type": np.array([0, 0, 6, 4], "<i4").tobytes(),
        "velocity": rng.standard_normal((t, 4, 2)).astype("<f4").tobytes()})
        for _ in range(n_traj)])


def test_convert_mat73_with_provenance(tmp_path, capsys):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(7, 9, 9, 4))
    src = tmp_path / "ns.mat"
    write_mat73(src, {"u": u, "a": u[..., 0]})
    out = tmp_path / "ns.h5"
    assert main(["convert", str(src), str(out), "--key", "x=u[t=0:2]", "--key", "y=u[t=2:4]",
                 "--subsample", "2"]) == 0
    assert "7 samples" in capsys.readouterr().out
    ds = read_hdf5(out)
    direct = read_dataset(src, keys={"x": "u[t=0:2]", "y": "u[t=2:4]"}, subsample=2)
    for k in ("x", "y"):
        np.testing.assert_array_equal(ds.load()[k], direct.load()[k])
    assert ds.attrs["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert ds.attrs["converted_from"] == str(src.resolve()) and ds.attrs["source_format"] == "mat73"
    assert ds.attrs["keys"] == {"x": "u[t=0:2]", "y": "u[t=2:4]"} and ds.attrs["subsample"] == 2
    assert ds.attrs["kind"] == "grid" and ds.field_attrs["x"]["layout"] == "samples channels x0 x1"
    # the converted file reads like any sciops data set (and feeds a run unchanged)
    assert read_dataset(out).shape("x") == (2, 5, 5)


def test_convert_rmd17_to_an_atoms_data_set(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "rmd17_h2o.npz", nuclear_charges=np.array([8, 1, 1]),
             coords=rng.normal(size=(4, 3, 3)), energies=np.arange(4.0),
             forces=rng.normal(size=(4, 3, 3)))
    out = tmp_path / "h2o.h5"
    assert main(["convert", str(tmp_path / "rmd17_h2o.npz"), str(out), "--units",
                 "energy=kcal/mol", "--units", "forces=kcal/mol/Å"]) == 0
    ds = read_atoms_dataset(out)
    np.testing.assert_allclose(ds.load()["energy"], np.arange(4.0) * 0.0433641043, rtol=1e-8)
    assert ds.attrs["units_converted_from"] == {"energy": "kcal/mol", "forces": "kcal/mol/Å"}
    assert ds.field_attrs["forces"]["units"] == "eV/Å"


def test_convert_meshgraphnets_folder_is_delegated(tmp_path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "cylinder_flow"
    folder.mkdir()
    _write_meshgraphnets(folder, 2, rng)
    out = tmp_path / "cyl.h5"
    assert main(["convert", str(folder), str(out)]) == 0
    ds = read_mesh_dataset(out)
    assert len(ds) == 2 and len(ds.attrs["source_sha256"]) == 64


def test_convert_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    np.savez(tmp_path / "a.npz", x=np.zeros((3, 4, 4)), y=np.zeros((2, 4, 4)))
    out = tmp_path / "a.h5"
    assert main(["convert", str(tmp_path / "a.npz"), str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "keys have different numbers of samples ('x': 3, 'y': 2)" in err[0]
    assert main(["convert", str(tmp_path / "a.npz"), str(out), "--key", "x"]) == 2
    assert "convert --key 'x': expected NAME=VALUE" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "a.npz"), str(out), "--key", "x=x",
                 "--subsample", "two"]) == 2
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]
