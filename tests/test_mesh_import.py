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


# --- users' own meshes: VTU/PVD/XDMF series, field mapping, node-type rules ------------------

from sciops._errors import ConfigError  # noqa: E402
from sciops.data import MeshField, write_vtu, write_xdmf  # noqa: E402
from sciops.data._mesh_import import (  # noqa: E402
    convert_mesh,
    parse_field_map,
    parse_node_types,
    read_mesh_trajectories,
)


def _channel(nx=5, ny=3):
    """A 2 × 1 rectangle of (nx × ny) nodes split into triangles, and a hole-free boundary."""
    x, y = np.meshgrid(np.linspace(0, 2, nx), np.linspace(0, 1, ny), indexing="ij")
    pts = np.stack([x.ravel(), y.ravel()], 1)
    idx = np.arange(nx * ny).reshape(nx, ny)
    tri = []
    for i in range(nx - 1):
        for j in range(ny - 1):
            a, b, c, d = idx[i, j], idx[i + 1, j], idx[i + 1, j + 1], idx[i, j + 1]
            tri += [[a, b, c], [a, c, d]]
    return pts, np.asarray(tri)


def _openfoam_like_series(folder, steps=3):
    """VTU files as a CFD code writes them: 3-component U, scalar p, no node types; written out
    of order in the file system's eyes (step 10 after step 2)."""
    pts, tri = _channel()
    names = []
    for k in (0, 2, 10)[:steps]:
        u = np.stack([pts[:, 0] + k, pts[:, 1] - k, np.zeros(len(pts))], 1)[None]
        m = MeshField(pts, {"triangle": tri}, {"U": u, "p": (pts[:, :1] * k)[None]})
        names.append(write_vtu(folder / f"flow_{k}.vtu", m).name)
    return pts, tri, names


def test_field_map_and_node_type_specs_parse():
    assert parse_field_map(["velocity=U[0,1]", "pressure=p"]) == {"velocity": "U[0,1]",
                                                                    "pressure": "p"}
    assert parse_field_map(["velocity=vx,vy"]) == {"velocity": ["vx", "vy"]}
    rule = parse_node_types("boundary:inflow=xmin,outflow=xmax,walls=ymin+ymax")
    assert rule.kind == "boundary" and rule.assign == ((4, ("xmin",)), (5, ("xmax",)),
                                                       (6, ("ymin", "ymax")))
    assert parse_node_types("sets:in=INFLOW,cyl=1").assign == (("in", 4), ("cyl", 1))
    with pytest.raises(ConfigError, match="unknown node type 'FLUIDISH'"):
        parse_node_types("sets:in=FLUIDISH")
    with pytest.raises(ConfigError, match="unknown side"):
        parse_node_types("boundary:inflow=left")
    with pytest.raises(ConfigError, match="--field 'velocity'"):
        parse_field_map(["velocity"])
    with pytest.raises(ConfigError, match="mapped twice"):
        parse_field_map(["velocity=U", "velocity=V"])


def test_vtu_folder_with_field_map_and_boundary_rules(tmp_path):
    pts, tri, _ = _openfoam_like_series(tmp_path)
    (m,) = read_mesh_trajectories(tmp_path, fields=["velocity=U[0,1]", "pressure=p"],
                                  node_types="boundary:inflow=xmin,outflow=xmax,walls=ymin+ymax")
    assert sorted(m.fields) == ["pressure", "velocity"]
    v = np.asarray(m.fields["velocity"])
    assert v.shape == (3, 15, 2)
    # ordered by the number in the name: 0, 2, 10 (not the string order 0, 10, 2)
    np.testing.assert_allclose(v[:, 0, 0], [0, 2, 10])
    nt = np.asarray(m.node_type).reshape(5, 3)
    assert nt[0, 1] == 4 and nt[-1, 1] == 5  # inflow / outflow sides
    assert (nt[:, 0] == 6).all() and (nt[:, -1] == 6).all()  # walls, corners included
    assert (nt[1:-1, 1] == 0).all()  # interior


def test_pvd_times_scalar_components_and_node_type_field(tmp_path):
    pts, tri = _channel()
    files = []
    for k, t in ((1, 0.02), (0, 0.01)):  # the collection lists them out of time order
        nt = np.where(pts[:, 0] == 0, 4, 0)[None, :, None].astype(float)
        m = MeshField(pts, {"triangle": tri},
                      {"vx": np.full((1, 15, 1), k), "vy": np.full((1, 15, 1), -k), "kind": nt})
        files.append((t, write_vtu(tmp_path / f"s{k}.vtu", m).name))
    (tmp_path / "flow.pvd").write_text(
        '<?xml version="1.0"?><VTKFile type="Collection"><Collection>'
        + "".join(f'<DataSet timestep="{t}" file="{f}"/>' for t, f in files)
        + "</Collection></VTKFile>")
    (m,) = read_mesh_trajectories(tmp_path / "flow.pvd", fields=["velocity=vx,vy"],
                                  node_types="field:kind")
    np.testing.assert_allclose(np.asarray(m.times), [0.01, 0.02])
    np.testing.assert_allclose(np.asarray(m.fields["velocity"])[:, 0], [[0, 0], [1, -1]])
    assert "kind" not in m.fields and int(np.asarray(m.node_type).sum()) == 4 * 3


def test_gmsh_physical_groups_give_node_types(tmp_path):
    gmsh = pytest.importorskip("gmsh")
    gmsh.initialize()
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        r = gmsh.model.occ.addRectangle(0, 0, 0, 2, 1)
        gmsh.model.occ.synchronize()
        lines = [t for _, t in gmsh.model.getBoundary([(2, r)])]
        gmsh.model.addPhysicalGroup(1, [lines[3]], name="inlet")  # x = 0
        gmsh.model.addPhysicalGroup(1, [lines[1]], name="outlet")  # x = 2
        gmsh.model.addPhysicalGroup(1, [lines[0], lines[2]], name="walls")
        gmsh.model.addPhysicalGroup(2, [r], name="fluid")
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.4)
        gmsh.model.mesh.generate(2)
        gmsh.write(str(tmp_path / "geom.msh"))
    finally:
        gmsh.finalize()
    import meshio

    g = meshio.read(tmp_path / "geom.msh")
    pts = g.points[:, :2]
    used = np.unique(g.cells_dict["triangle"])
    tri = np.searchsorted(used, g.cells_dict["triangle"])
    pts = pts[used]
    u = np.stack([pts[:, 1] * (1 - pts[:, 1])] * 2, 1)[None].repeat(2, 0)
    write_xdmf(tmp_path / "flow.xdmf", MeshField(pts, {"triangle": tri}, {"velocity": u},
                                                 times=[0.0, 0.1]))
    spec = f"sets:inlet=INFLOW,outlet=OUTFLOW,walls=WALL_BOUNDARY;mesh={tmp_path / 'geom.msh'}"
    (m,) = read_mesh_trajectories(tmp_path / "flow.xdmf", node_types=spec)
    nt, p = np.asarray(m.node_type), pts
    assert (nt[np.isclose(p[:, 1], 0) | np.isclose(p[:, 1], 1)] == 6).all()  # walls win corners
    inner = (p[:, 1] > 1e-9) & (p[:, 1] < 1 - 1e-9)
    assert (nt[np.isclose(p[:, 0], 0) & inner] == 4).all()
    assert (nt[np.isclose(p[:, 0], 2) & inner] == 5).all()
    assert (nt[(p[:, 0] > 1e-9) & (p[:, 0] < 2 - 1e-9) & inner] == 0).all()
    with pytest.raises(DataError, match="no cell set 'cylinder'"):
        read_mesh_trajectories(tmp_path / "flow.xdmf", node_types=spec.replace("inlet", "cylinder"))


def test_user_mesh_mismatches_are_one_line_errors(tmp_path):
    _openfoam_like_series(tmp_path)
    with pytest.raises(DataError, match="no field 'velocity'; the file has U, p"):
        read_mesh_trajectories(tmp_path, fields=["velocity=velocity"], node_types="field:p")
    with pytest.raises(DataError, match="no node_type point field"):
        read_mesh_trajectories(tmp_path)
    with pytest.raises(DataError, match="selects components"):
        read_mesh_trajectories(tmp_path, fields=["velocity=U[0,3]"], node_types="field:p")
    with pytest.raises(DataError, match="side zmax of a 2-D mesh"):
        read_mesh_trajectories(tmp_path, node_types="boundary:walls=ymin,inflow=zmax")
    pts, tri = _channel(4, 3)
    write_vtu(tmp_path / "flow_99.vtu", MeshField(pts, {"triangle": tri},
                                                  {"U": np.zeros((1, 12, 3)),
                                                   "p": np.zeros((1, 12, 1))}))
    with pytest.raises(DataError, match="flow_99.vtu: 12 nodes, the series' first file "
                                        "flow_0.vtu has 15"):
        read_mesh_trajectories(tmp_path, node_types="field:p")


def test_convert_mesh_writes_the_sciops_layout_with_provenance(tmp_path):
    src = tmp_path / "vtu"
    src.mkdir()
    _openfoam_like_series(src)
    out = convert_mesh(src, tmp_path / "flow.h5", fields=["velocity=U[0,1]"],
                       node_types="boundary:inflow=xmin,outflow=xmax,walls=ymin+ymax")
    ds = read_mesh_dataset(out)
    assert ds.attrs["import_format"] == "vtu" and dict(ds.attrs["field_map"]) == {
        "velocity": "U[0,1]"}
    assert ds.attrs["node_types"].startswith("boundary:")
    assert sorted(ds.attrs["fields"]) == ["p", "velocity"]
    (back,) = read_mesh_trajectories(out)
    np.testing.assert_allclose(np.asarray(back.fields["velocity"])[:, 3, 0], [0.5, 2.5, 10.5])
    assert not (tmp_path / "bad.h5").exists()
    with pytest.raises(DataError):
        convert_mesh(src, tmp_path / "bad.h5", fields=["velocity=W"])
    assert not (tmp_path / "bad.h5").exists()


def test_sciops_convert_cli_on_a_vtu_folder(tmp_path, capsys):
    from sciops.cli._main import main

    src = tmp_path / "vtu"
    src.mkdir()
    _openfoam_like_series(src)
    rule = "boundary:inflow=xmin,outflow=xmax,walls=ymin+ymax"
    assert main(["convert", str(src), str(tmp_path / "a.h5"), "--field", "velocity=U[0,1]",
                 "--node-types", rule]) == 0
    ds = read_mesh_dataset(tmp_path / "a.h5")
    assert ds.shape("velocity") == (3, 15, 2) and ds.attrs["source_format"] == "mesh"
    assert main(["convert", str(src), str(tmp_path / "b.h5"), "--field", "velocity=W",
                 "--node-types", rule]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no field 'W'" in err[0], err
    assert not (tmp_path / "b.h5").exists()
