"""Importers of the DeepMind MeshGraphNets TFRecord layout and the graph-physics H5 layout,
checked on small files written in those layouts."""

import json
import struct

import h5py
import numpy as np
import pytest

from sciops._errors import DataError
from sciops.data import read_mesh_dataset
from sciops.data._mesh_import import (
    crc32c,
    encode_example,
    import_mesh_data,
    parse_example,
    read_graphphysics_h5,
    read_meshgraphnets,
    read_tfrecord,
    write_tfrecord,
)


def test_crc32c_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value
    assert crc32c(b"") == 0


def test_example_wire_format_matches_tensorflow_encoding():
    # Example{features{feature{key:"a" value{bytes_list{value:"xy"}}}}}, encoded by hand
    expect = bytes.fromhex("0a0d0a0b0a0161120" "60a040a027879")
    assert encode_example({"a": b"xy"}) == expect
    assert parse_example(expect) == {"a": b"xy"}


def _trajectory(rng, t=5):
    pos = rng.random((6, 2)).astype(np.float32)
    cells = np.array([[0, 1, 2], [1, 3, 2], [2, 3, 4], [3, 5, 4]], np.int32)
    node_type = np.array([4, 0, 0, 0, 6, 5], np.int32)
    vel = rng.standard_normal((t, 6, 2)).astype(np.float32)
    prs = rng.standard_normal((t, 6, 1)).astype(np.float32)
    return pos, cells, node_type, vel, prs


def _write_meshgraphnets(folder, trajs, t=5):
    meta = {"simulator": "comsol", "dt": 0.01, "collision_radius": None,
            "field_names": ["cells", "mesh_pos", "node_type", "velocity", "pressure"],
            "trajectory_length": t,
            "features": {"cells": {"type": "static", "shape": [1, -1, 3], "dtype": "int32"},
                         "mesh_pos": {"type": "static", "shape": [1, -1, 2], "dtype": "float32"},
                         "node_type": {"type": "static", "shape": [1, -1, 1], "dtype": "int32"},
                         "velocity": {"type": "dynamic", "shape": [t, -1, 2], "dtype": "float32"},
                         "pressure": {"type": "dynamic", "shape": [t, -1, 1], "dtype": "float32"}}}
    (folder / "meta.json").write_text(json.dumps(meta))
    recs = []
    for pos, cells, nt, vel, prs in trajs:
        recs.append(encode_example({"cells": cells.astype("<i4").tobytes(),
                                    "mesh_pos": pos.astype("<f4").tobytes(),
                                    "node_type": nt.astype("<i4").tobytes(),
                                    "velocity": vel.astype("<f4").tobytes(),
                                    "pressure": prs.astype("<f4").tobytes()}))
    write_tfrecord(folder / "train.tfrecord", recs)
    return recs


def test_meshgraphnets_tfrecord_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    trajs = [_trajectory(rng), _trajectory(rng)]
    recs = _write_meshgraphnets(tmp_path, trajs)
    raw = (tmp_path / "train.tfrecord").read_bytes()
    # framing: length, masked CRC of the length, data, masked CRC of the data
    assert struct.unpack("<Q", raw[:8])[0] == len(recs[0]) and raw[12:12 + len(recs[0])] == recs[0]
    assert list(read_tfrecord(tmp_path / "train.tfrecord", verify_data=True)) == recs
    meshes = list(read_meshgraphnets(tmp_path))
    assert len(meshes) == 2
    for m, (pos, cells, nt, vel, prs) in zip(meshes, trajs, strict=False):
        np.testing.assert_array_equal(np.asarray(m.points), pos)
        np.testing.assert_array_equal(np.asarray(m.cells["triangle"]), cells)
        np.testing.assert_array_equal(np.asarray(m.node_type), nt)
        np.testing.assert_array_equal(np.asarray(m.fields["velocity"]), vel)
        np.testing.assert_array_equal(np.asarray(m.fields["pressure"]), prs)
        np.testing.assert_allclose(np.asarray(m.times), 0.01 * np.arange(5))
    out = import_mesh_data(tmp_path, tmp_path / "mgn.h5")
    ds = read_mesh_dataset(out)
    assert len(ds) == 2 and ds.attrs["fields"] == ["velocity", "pressure"]
    np.testing.assert_array_equal(ds.take([1])["velocity"][0], trajs[1][3])


def test_corrupt_tfrecord_is_a_data_error(tmp_path):
    rng = np.random.default_rng(1)
    _write_meshgraphnets(tmp_path, [_trajectory(rng)])
    path = tmp_path / "train.tfrecord"
    raw = bytearray(path.read_bytes())
    raw[40] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="data CRC mismatch"):
        list(read_tfrecord(path, verify_data=True))
    path.write_bytes(bytes(raw[:30]))
    with pytest.raises(DataError, match="truncated"):
        list(read_meshgraphnets(tmp_path))
    path.write_bytes(b"not a tfrecord at all")
    with pytest.raises(DataError, match="length CRC"):
        list(read_meshgraphnets(tmp_path))


def test_graphphysics_h5_layout(tmp_path):
    rng = np.random.default_rng(2)
    t = 4
    meta = {"dt": 0.02, "features": {
        "mesh_pos": {"type": "static", "shape": [t, -1, 2], "dtype": "float32"},
        "cells": {"type": "static", "shape": [t, -1, 3], "dtype": "int32"},
        "node_type": {"type": "static", "shape": [t, -1, 1], "dtype": "int32"},
        "velocity": {"type": "dynamic", "shape": [t, -1, 2], "dtype": "float32"},
        "pressure": {"type": "dynamic", "shape": [t, -1, 1], "dtype": "float32"}}}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    trajs = [_trajectory(rng, t) for _ in range(3)]
    with h5py.File(tmp_path / "data.h5", "w") as f:
        for i, (pos, cells, nt, vel, prs) in enumerate(trajs):
            g = f.create_group(str(i))
            # static features tiled over time and stored flat, as the layout's reader reshapes
            g["mesh_pos"] = np.tile(pos, (t, 1, 1)).reshape(-1)
            g["cells"] = np.tile(cells, (t, 1, 1)).reshape(-1)
            g["node_type"] = np.tile(nt[:, None], (t, 1, 1)).reshape(-1)
            g["velocity"], g["pressure"] = vel, prs
    meshes = list(read_graphphysics_h5(tmp_path / "data.h5", tmp_path / "meta.json"))
    assert len(meshes) == 3
    np.testing.assert_array_equal(np.asarray(meshes[2].points), trajs[2][0])
    np.testing.assert_array_equal(np.asarray(meshes[2].node_type), trajs[2][2])
    np.testing.assert_array_equal(np.asarray(meshes[2].fields["pressure"]), trajs[2][4])
    np.testing.assert_allclose(np.asarray(meshes[0].times), [0, 0.02, 0.04, 0.06])
    ds = read_mesh_dataset(import_mesh_data(tmp_path / "data.h5", tmp_path / "gp.h5",
                                            meta=tmp_path / "meta.json", max_trajectories=2))
    assert len(ds) == 2
    for shape, msg in (([t, -1, 5], "'velocity'.*does not fit"), ([t, -1, 3], "trajectory '0'.*'velocity' must have shape")):
        meta["features"]["velocity"]["shape"] = shape
        (tmp_path / "bad.json").write_text(json.dumps(meta))
        with pytest.raises(DataError, match=msg):
            list(read_graphphysics_h5(tmp_path / "data.h5", tmp_path / "bad.json"))
