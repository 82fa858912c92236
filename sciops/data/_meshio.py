"""VTU and XDMF files ↔ `MeshField`, through meshio.

A VTU file holds one time step; an XDMF file holds a time series (the mesh once, then the node
fields at every step, with the heavy data in an HDF5 file next to the `.xdmf`). Node fields are
meshio point data of shape `(nodes, channels)`; `node_type` travels as an integer point field.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping

import numpy as np

from .._errors import DataError
from ._mesh import CELL_NODES, MeshField

__all__ = ["CELL_DIMENSION", "read_gmsh", "read_vtu", "read_xdmf", "read_xdmf_units",
           "write_vtu", "write_xdmf"]

CELL_DIMENSION = {"vertex": 0, "line": 1, "triangle": 2, "quad": 2, "tetra": 3, "pyramid": 3,
                  "wedge": 3, "hexahedron": 3}
"""Topological dimension of each cell type (meshio names)."""

_NODE_TYPE = "node_type"


def _cells(mesh: MeshField) -> list[tuple[str, np.ndarray]]:
    return [(k, np.asarray(v)) for k, v in mesh.cells.items()]


def _point_data(mesh: MeshField, step: int | None) -> dict[str, np.ndarray]:
    data = {} if step is None else {k: np.asarray(v[step]) for k, v in mesh.fields.items()}
    if mesh.node_type is not None:
        data[_NODE_TYPE] = np.asarray(mesh.node_type)
    return data


def _points(path, points, dim: int | None) -> np.ndarray:
    """Points with `dim` columns; `None` drops a third column that is identically zero (VTU
    always stores three, so a planar mesh comes back two-dimensional as it was written)."""
    points = np.asarray(points)
    if dim is None:
        dim = 2 if points.shape[1] == 3 and not np.any(points[:, 2]) else points.shape[1]
    if not 1 <= dim <= points.shape[1]:
        raise DataError(f"{path}: cannot give {points.shape[1]}-D points {dim} dimensions")
    if np.any(points[:, dim:]):
        raise DataError(f"{path}: points have non-zero coordinates beyond dimension {dim}")
    return points[:, :dim]


def _from_meshio(path, points, cells, point_data: list[dict[str, np.ndarray]],
                 times=None, dim: int | None = None) -> MeshField:
    try:
        points = _points(path, points, dim)
        cell_dict = {}
        for block in cells:
            if block.type not in CELL_NODES:
                raise DataError(f"{path}: cell type {block.type!r} is not supported; known: "
                                f"{', '.join(CELL_NODES)}")
            data = np.asarray(block.data)
            cell_dict[block.type] = (np.concatenate([cell_dict[block.type], data])
                                     if block.type in cell_dict else data)
        node_type = None
        fields: dict[str, list[np.ndarray]] = {}
        for step in point_data:
            for k, v in step.items():
                v = np.asarray(v)
                if k == _NODE_TYPE:
                    node_type = v.astype(np.int32).reshape(-1)
                    continue
                fields.setdefault(k, []).append(v.reshape(v.shape[0], -1))
        stacked = {k: np.stack(v) for k, v in fields.items()}
        return MeshField(np.asarray(points), cell_dict, stacked, node_type,
                         None if times is None else np.asarray(times, np.float64))
    except DataError as e:
        raise DataError(f"{path}: {e}") from None


def write_vtu(path: str | os.PathLike, mesh: MeshField, step: int = 0) -> pathlib.Path:
    """Write time step `step` of `mesh` (mesh, node fields and node types) as a VTU file."""
    import meshio

    path = pathlib.Path(path)
    if mesh.fields and not -mesh.n_times <= step < mesh.n_times:
        raise DataError(f"{path}: step {step} out of range for {mesh.n_times} time steps")
    path.parent.mkdir(parents=True, exist_ok=True)
    points = np.asarray(mesh.points)
    # VTU stores 3-D points; pad here rather than let meshio print a warning.
    points = np.concatenate([points, np.zeros((points.shape[0], 3 - points.shape[1]),
                                              points.dtype)], axis=1)
    meshio.Mesh(points, _cells(mesh),
                point_data=_point_data(mesh, step if mesh.fields else None)).write(path)
    return path


def read_vtu(path: str | os.PathLike, dim: int | None = None) -> MeshField:
    """Read a VTU file (or any single-step mesh format meshio reads) as a one-step `MeshField`.

    `dim` keeps that many point coordinates; by default a third coordinate that is zero
    everywhere is dropped (VTU pads planar meshes to 3-D).
    """
    import meshio

    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{path}: mesh file not found")
    try:
        m = meshio.read(path)
    except Exception as e:  # meshio raises ReadError, ValueError, XML errors...
        raise DataError(f"{path}: cannot read mesh: {type(e).__name__}: {e}") from None
    return _from_meshio(path, m.points, m.cells, [m.point_data] if m.point_data else [], None,
                        dim)


def read_gmsh(path: str | os.PathLike, dim: int | None = None) -> MeshField:
    """Read a gmsh ``.msh`` mesh (any version meshio reads) as a field-less `MeshField`.

    gmsh writes the elements of every physical group: for a volume mesh the boundary triangles
    and lines beside the tetrahedra. Only the cells of the highest topological dimension are
    kept (the mesh the data live on; the groups stay in the file for ``--node-types sets:...``),
    and gmsh's bookkeeping point data (``gmsh:dim_tags``) are dropped. `dim` as in `read_vtu`.
    """
    import meshio

    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{path}: mesh file not found")
    try:
        m = meshio.read(path, file_format="gmsh")
    except Exception as e:  # meshio raises ReadError, ValueError...
        raise DataError(f"{path}: cannot read gmsh mesh: {type(e).__name__}: {e}") from None
    blocks = [b for b in m.cells if b.type in CELL_DIMENSION]
    if not blocks:
        raise DataError(f"{path}: no cells of a supported type; the file has "
                        f"{', '.join(sorted({b.type for b in m.cells})) or 'none'}")
    top = max(CELL_DIMENSION[b.type] for b in blocks)
    point_data = {k: v for k, v in m.point_data.items() if not k.startswith("gmsh:")}
    return _from_meshio(path, m.points, [b for b in blocks if CELL_DIMENSION[b.type] == top],
                        [point_data] if point_data else [], None, dim)


_XDMF_TOPOLOGY = {"vertex": "Polyvertex", "line": "Polyline", "triangle": "Triangle",
                  "quad": "Quadrilateral", "tetra": "Tetrahedron", "pyramid": "Pyramid",
                  "wedge": "Wedge", "hexahedron": "Hexahedron"}
_XDMF_NUMBER = {"i": "Int", "u": "UInt", "f": "Float"}
_UNITS_INFO = "sciops:units"


def _data_item(h5_name: str, dataset: str, array: np.ndarray) -> str:
    dims = " ".join(str(d) for d in array.shape)
    kind = _XDMF_NUMBER[array.dtype.kind]
    return (f'<DataItem DataType="{kind}" Dimensions="{dims}" Format="HDF" '
            f'Precision="{array.dtype.itemsize}">{h5_name}:{dataset}</DataItem>')


def write_xdmf(path: str | os.PathLike, mesh: MeshField,
               units: Mapping[str, str] | None = None) -> pathlib.Path:
    """Write every time step of `mesh` as an XDMF 3 time series.

    The heavy data go to ``<stem>.h5`` next to the `.xdmf` file, the points and cells once:
    every step's grid refers to the same HDF5 datasets, so ParaView shows one temporal block
    (meshio's writer adds a separate, field-less mesh grid that ParaView lists as a second
    block). Times are `mesh.times` or the step numbers; `units` (field name, ``"points"`` or
    ``"times"`` → unit string) are stored in an ``Information`` element that `read_xdmf_units`
    returns.
    """
    import json
    from xml.sax.saxutils import quoteattr

    import h5py

    path = pathlib.Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    h5_path = path.with_suffix(".h5")
    times = (np.asarray(mesh.times, np.float64) if mesh.times is not None
             else np.arange(mesh.n_times, dtype=np.float64))
    points = np.asarray(mesh.points)
    if points.shape[1] == 1:
        points = np.concatenate([points, np.zeros_like(points)], 1)
    cells = _cells(mesh)
    if len(cells) != 1:
        raise DataError(f"{path}: XDMF output needs one cell type, got {[c for c, _ in cells]}")
    ctype, conn = cells[0]
    conn = np.ascontiguousarray(conn, np.int64)
    tmp = h5_path.with_name(f".{h5_path.name}.tmp")
    with h5py.File(tmp, "w") as f:
        f["mesh/points"] = points
        f[f"mesh/{ctype}"] = conn
        if mesh.node_type is not None:
            f["mesh/node_type"] = np.asarray(mesh.node_type, np.int32)
        for k, v in mesh.fields.items():
            v = np.asarray(v)
            for step in range(v.shape[0]):  # one dataset per step: any XDMF reader follows it
                f[f"fields/{k}/{step:05d}"] = v[step]
    os.replace(tmp, h5_path)
    h5 = h5_path.name
    topo_extra = ' NodesPerElement="2"' if ctype == "line" else ""
    mesh_xml = (f'<Topology TopologyType="{_XDMF_TOPOLOGY[ctype]}" NumberOfElements='
                f'"{len(conn)}"{topo_extra}>{_data_item(h5, f"/mesh/{ctype}", conn)}</Topology>'
                f'<Geometry GeometryType="{"XYZ" if points.shape[1] == 3 else "XY"}">'
                f'{_data_item(h5, "/mesh/points", points)}</Geometry>')
    if mesh.node_type is not None:
        nt = np.asarray(mesh.node_type, np.int32)
        mesh_xml += (f'<Attribute Name="{_NODE_TYPE}" AttributeType="Scalar" Center="Node">'
                     f'{_data_item(h5, "/mesh/node_type", nt)}</Attribute>')
    lines = ['<?xml version="1.0"?>', '<Xdmf Version="3.0">', "<Domain>"]
    if units:
        lines.append(f'<Information Name="{_UNITS_INFO}" Value={quoteattr(json.dumps(dict(units)))}/>')
    lines.append('<Grid Name="TimeSeries" GridType="Collection" CollectionType="Temporal">')
    steps = range(mesh.n_times) if mesh.n_times else [None]
    for step in steps:
        t = 0.0 if step is None else float(times[step])
        lines.append(f'<Grid Name="step_{0 if step is None else step:05d}" GridType="Uniform">'
                     f'<Time Value="{t!r}"/>{mesh_xml}')
        for k, v in mesh.fields.items():
            if step is None:
                break
            a = np.asarray(v[step])
            kind = "Scalar" if a.shape[1] == 1 else "Vector" if a.shape[1] in (2, 3) else "Matrix"
            lines.append(f'<Attribute Name="{k}" AttributeType="{kind}" Center="Node">'
                         f'{_data_item(h5, f"/fields/{k}/{step:05d}", a)}</Attribute>')
        lines.append("</Grid>")
    lines += ["</Grid>", "</Domain>", "</Xdmf>"]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def read_xdmf_units(path: str | os.PathLike) -> dict[str, str]:
    """The units `write_xdmf` stored in an XDMF file (empty if none)."""
    import json
    from xml.etree import ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    for info in root.iter("Information"):
        if info.get("Name") == _UNITS_INFO:
            try:
                return {str(k): str(v) for k, v in json.loads(info.get("Value", "{}")).items()}
            except json.JSONDecodeError:
                return {}
    return {}


def read_xdmf(path: str | os.PathLike, dim: int | None = None) -> MeshField:
    """Read an XDMF time series (as `write_xdmf` writes it) as a `MeshField` (`dim` as in
    `read_vtu`)."""
    import meshio

    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{path}: mesh file not found")
    try:
        with meshio.xdmf.TimeSeriesReader(path) as reader:
            points, cells = reader.read_points_cells()
            times, steps = [], []
            for k in range(reader.num_steps):
                t, point_data, _ = reader.read_data(k)
                times.append(t)
                steps.append(point_data)
    except DataError:
        raise
    except Exception as e:  # XML errors, missing HDF5 file, meshio ReadError
        raise DataError(f"{path}: cannot read XDMF time series: {type(e).__name__}: {e}") from None
    # A mesh written without fields has one step holding only node types.
    has_fields = any(k != _NODE_TYPE for s in steps for k in s)
    return _from_meshio(path, points, cells, steps, times if has_fields else None, dim)
