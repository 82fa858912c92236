"""Importers for published mesh-simulation data layouts, without TensorFlow or PyTorch.

- **DeepMind MeshGraphNets** (Pfaff et al. 2021): a folder with ``meta.json`` and
  ``<split>.tfrecord``. Each TFRecord record is a ``tf.train.Example`` whose features are
  ``bytes_list`` entries holding one raw little-endian array each, named by
  ``meta["field_names"]`` and shaped by ``meta["features"][name]["shape"]`` (``static``
  fields have a leading axis of 1 and are tiled over time; ``dynamic`` fields have
  ``trajectory_length`` steps). TFRecord framing: ``uint64 length``, ``uint32 masked
  crc32c(length)``, ``data``, ``uint32 masked crc32c(data)``; the mask is
  ``((crc >> 15) | (crc << 17)) + 0xa282ead8``. The Example protobuf is declared here with
  TensorFlow's field numbers and parsed by the ``protobuf`` package.
- **graph-physics H5** (the layout of Garnier et al.'s training code): one HDF5 file with a
  group per trajectory holding one dataset per feature, and a JSON meta file with ``dt`` and
  ``features: {name: {type, shape, dtype}}``; arrays are reshaped by the meta shapes, and static
  fields (mesh_pos, cells, node_type) may carry a leading time axis of 1 or of the trajectory
  length (their first frame is used).

Both yield `MeshField` trajectories; `import_mesh_data` converts either to the sciops mesh
data-set layout (`write_mesh_dataset`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import struct
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from .._errors import DataError
from ._mesh import MeshField, write_mesh_dataset

__all__ = ["NODE_TYPE_NAMES", "NodeTypeRule", "apply_field_map", "assign_node_types",
           "convert_mesh", "crc32c", "encode_example", "import_mesh_data", "parse_example",
           "parse_field_map", "parse_node_types", "read_graphphysics_h5", "read_meshgraphnets",
           "read_mesh_trajectories", "read_tfrecord", "write_tfrecord"]

_MESH_KEYS = ("mesh_pos", "cells", "node_type")

# ---------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.
_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)
_CRC_TABLE = tuple(_CRC_TABLE)


def crc32c(data: bytes) -> int:
    """CRC-32C of `data` (pure Python: about a megabyte per second)."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def write_tfrecord(path: str | os.PathLike, records: Sequence[bytes]) -> pathlib.Path:
    """Write records with TFRecord framing (both CRCs computed)."""
    path = pathlib.Path(path)
    with open(path, "wb") as fh:
        for rec in records:
            head = struct.pack("<Q", len(rec))
            fh.write(head + struct.pack("<I", _masked(crc32c(head))))
            fh.write(rec + struct.pack("<I", _masked(crc32c(rec))))
    return path


def read_tfrecord(path: str | os.PathLike, *, verify_data: bool = False) -> Iterator[bytes]:
    """Yield the records of a TFRecord file.

    The length CRC is always checked; the data CRC when `verify_data` (pure-Python CRC:
    slow for the multi-megabyte records of real data sets).

    **Raises:** `DataError` naming the file and the record on truncation or a CRC mismatch.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{path}: TFRecord file not found")
    with open(path, "rb") as fh:
        i = 0
        while True:
            head = fh.read(12)
            if not head:
                return
            if len(head) < 12:
                raise DataError(f"{path}: record {i}: truncated header")
            (length,) = struct.unpack("<Q", head[:8])
            (crc,) = struct.unpack("<I", head[8:])
            if crc != _masked(crc32c(head[:8])):
                raise DataError(f"{path}: record {i}: length CRC mismatch (not a TFRecord file?)")
            data = fh.read(length)
            tail = fh.read(4)
            if len(data) < length or len(tail) < 4:
                raise DataError(f"{path}: record {i}: truncated ({len(data)} of {length} bytes)")
            if verify_data and struct.unpack("<I", tail)[0] != _masked(crc32c(data)):
                raise DataError(f"{path}: record {i}: data CRC mismatch")
            yield data
            i += 1


# ---------------------------------------------------------------------------------------------
# tf.train.Example, declared with TensorFlow's field numbers (tensorflow/core/example/*.proto)
_EXAMPLE_CLASSES = None


def _example_classes():
    global _EXAMPLE_CLASSES
    if _EXAMPLE_CLASSES is not None:
        return _EXAMPLE_CLASSES
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="sciops/tf_example.proto",
                                             package="tensorflow", syntax="proto3")

    def message(name, fields, nested=()):
        m = fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name, oneof in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
            if oneof is not None:
                f.oneof_index = oneof
        for n in nested:
            m.nested_type.add().CopyFrom(n)
        return m

    rep, opt = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    message("BytesList", [("value", 1, F.TYPE_BYTES, rep, None, None)])
    message("FloatList", [("value", 1, F.TYPE_FLOAT, rep, None, None)])
    message("Int64List", [("value", 1, F.TYPE_INT64, rep, None, None)])
    feat = message("Feature", [("bytes_list", 1, F.TYPE_MESSAGE, opt, ".tensorflow.BytesList", 0),
                               ("float_list", 2, F.TYPE_MESSAGE, opt, ".tensorflow.FloatList", 0),
                               ("int64_list", 3, F.TYPE_MESSAGE, opt, ".tensorflow.Int64List", 0)])
    feat.oneof_decl.add(name="kind")
    entry = descriptor_pb2.DescriptorProto(name="FeatureEntry")
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=opt)
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, label=opt,
                    type_name=".tensorflow.Feature")
    entry.options.map_entry = True
    message("Features", [("feature", 1, F.TYPE_MESSAGE, rep, ".tensorflow.Features.FeatureEntry",
                          None)], nested=[entry])
    message("Example", [("features", 1, F.TYPE_MESSAGE, opt, ".tensorflow.Features", None)])
    pool = descriptor_pool.DescriptorPool()  # private: never clashes with TensorFlow's own
    pool.Add(fdp)
    _EXAMPLE_CLASSES = {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(
        f"tensorflow.{n}")) for n in ("Example", "Feature")}
    return _EXAMPLE_CLASSES


def encode_example(features: Mapping[str, bytes]) -> bytes:
    """Serialise a ``tf.train.Example`` whose features are single ``bytes_list`` values."""
    ex = _example_classes()["Example"]()
    for k, v in features.items():
        ex.features.feature[k].bytes_list.value.append(bytes(v))
    return ex.SerializeToString(deterministic=True)


def parse_example(record: bytes) -> dict[str, bytes | list]:
    """Parse a serialised ``tf.train.Example``: name → bytes (one bytes value), or a list of
    floats / ints / several bytes values."""
    from google.protobuf.message import DecodeError

    ex = _example_classes()["Example"]()
    try:
        ex.ParseFromString(record)
    except DecodeError as e:
        raise DataError(f"not a tf.train.Example record: {e}") from None
    out: dict[str, bytes | list] = {}
    for k, f in ex.features.feature.items():
        kind = f.WhichOneof("kind")
        vals = list(getattr(f, kind).value) if kind else []
        out[k] = vals[0] if kind == "bytes_list" and len(vals) == 1 else vals
    return out


def _dtype(name: str, where: str) -> np.dtype:
    name = str(name).replace("<dtype: '", "").replace("'>", "")
    try:
        return np.dtype(name)
    except TypeError:
        raise DataError(f"{where}: unknown dtype {name!r}") from None


def _to_mesh(arrays: dict[str, np.ndarray], meta: Mapping, dt: float, where: str) -> MeshField:
    missing = [k for k in _MESH_KEYS if k not in arrays]
    if missing:
        raise DataError(f"{where}: missing mesh feature(s) {missing}; features: {sorted(arrays)}")
    pos = arrays["mesh_pos"]
    pos = pos[0] if pos.ndim == 3 else pos
    cells = arrays["cells"]
    cells = cells[0] if cells.ndim == 3 else cells
    node_type = arrays["node_type"]
    node_type = (node_type[0] if node_type.ndim == 3 else node_type).reshape(-1).astype(np.int32)
    kinds = {3: "triangle", 4: "tetra"}
    if cells.shape[-1] not in kinds:
        raise DataError(f"{where}: cells with {cells.shape[-1]} nodes are not supported")
    fields = {}
    for k, a in arrays.items():
        if k in _MESH_KEYS or meta["features"][k].get("type", "dynamic") != "dynamic":
            continue
        fields[k] = a if a.ndim == 3 else a[..., None]
    n_t = next(iter(fields.values())).shape[0] if fields else 0
    try:
        return MeshField(pos.astype(np.float32), {kinds[cells.shape[-1]]: cells.astype(np.int32)},
                         fields, node_type, np.arange(n_t) * dt if fields else None)
    except DataError as e:
        raise DataError(f"{where}: {e}") from None


def read_meshgraphnets(folder: str | os.PathLike, split: str = "train", *,
                       verify_data: bool = False) -> Iterator[MeshField]:
    """Yield the trajectories of a DeepMind MeshGraphNets data set folder (see module doc)."""
    folder = pathlib.Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise DataError(f"{folder}: no meta.json (not a MeshGraphNets data set folder)")
    try:
        meta = json.loads(meta_path.read_text())
        names, feats = meta["field_names"], meta["features"]
    except (json.JSONDecodeError, KeyError) as e:
        raise DataError(f"{meta_path}: malformed meta ({type(e).__name__}: {e})") from None
    dt = float(meta.get("dt", 1.0))
    for i, rec in enumerate(read_tfrecord(folder / f"{split}.tfrecord", verify_data=verify_data)):
        where = f"{folder / (split + '.tfrecord')}: record {i}"
        try:
            ex = parse_example(rec)
        except DataError as e:
            raise DataError(f"{where}: {e}") from None
        arrays = {}
        for k in names:
            spec = feats[k]
            if spec.get("type") == "dynamic_varlen":
                raise DataError(f"{where}: feature {k!r} is dynamic_varlen (remeshing data sets "
                                "are not supported)")
            if k not in ex or not isinstance(ex[k], bytes):
                raise DataError(f"{where}: feature {k!r} missing or not a single bytes value")
            a = np.frombuffer(ex[k], dtype=_dtype(spec["dtype"], where).newbyteorder("<"))
            try:
                arrays[k] = a.reshape(spec["shape"]).astype(a.dtype.newbyteorder("="))
            except ValueError:
                raise DataError(f"{where}: feature {k!r} has {a.size} values, which do not fit "
                                f"the shape {spec['shape']}") from None
        yield _to_mesh(arrays, meta, dt, where)


def read_graphphysics_h5(path: str | os.PathLike, meta_path: str | os.PathLike
                         ) -> Iterator[MeshField]:
    """Yield the trajectories of a graph-physics H5 file with its JSON meta (see module doc)."""
    import h5py

    path, meta_path = pathlib.Path(path), pathlib.Path(meta_path)
    for p in (path, meta_path):
        if not p.is_file():
            raise DataError(f"{p}: file not found")
    try:
        meta = json.loads(meta_path.read_text())
        feats = meta["features"]
    except (json.JSONDecodeError, KeyError) as e:
        raise DataError(f"{meta_path}: malformed meta ({type(e).__name__}: {e})") from None
    dt = float(meta.get("dt", 1.0))
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file ({e})") from None
    with f:
        for key in sorted(f.keys(), key=lambda s: (len(s), s)):
            group = f[key]
            where = f"{path}: trajectory {key!r}"
            arrays = {}
            for k, spec in feats.items():
                if k not in group:
                    raise DataError(f"{where}: missing feature {k!r}")
                a = group[k][()].astype(_dtype(spec["dtype"], where))
                try:
                    arrays[k] = a.reshape(spec["shape"])
                except ValueError:
                    raise DataError(f"{where}: feature {k!r} of shape {a.shape} does not fit "
                                    f"the meta shape {spec['shape']}") from None
            yield _to_mesh(arrays, meta, dt, where)


def import_mesh_data(source: str | os.PathLike, out_path: str | os.PathLike, *,
                     split: str = "train", meta: str | os.PathLike | None = None,
                     max_trajectories: int | None = None) -> pathlib.Path:
    """Convert a MeshGraphNets folder (`source` a folder) or a graph-physics H5 file (`source`
    an .h5 file with its `meta` JSON) into a sciops mesh data set at `out_path`."""
    source = pathlib.Path(source)
    if source.is_dir():
        it = read_meshgraphnets(source, split)
        label = "meshgraphnets"
    else:
        if meta is None:
            raise DataError(f"{source}: a graph-physics H5 file needs its meta JSON file")
        it = read_graphphysics_h5(source, meta)
        label = "graph-physics"
    trajectories = []
    for m in it:
        trajectories.append(m)
        if max_trajectories is not None and len(trajectories) >= max_trajectories:
            break
    if not trajectories:
        raise DataError(f"{source}: no trajectories")
    dt = (float(trajectories[0].times[1] - trajectories[0].times[0])
          if trajectories[0].times is not None and len(trajectories[0].times) > 1 else 1.0)
    return write_mesh_dataset(out_path, trajectories,
                              attrs={"problem": f"import:{label}", "imported_from": str(source),
                                     "dt": dt})


# ---------------------------------------------------------------------------------------------
# Users' own meshes: XDMF / VTU / PVD series, MeshGraphNets folders, sciops .h5, with a field
# mapping and node-type rules.

# MeshGraphNets' node-type names (sciops.pde.flow.NodeType has the same numbers; not imported
# here so that reading data does not pull in the PDE solvers).
NODE_TYPE_NAMES = {"NORMAL": 0, "OBSTACLE": 1, "AIRFOIL": 2, "HANDLE": 3, "INFLOW": 4,
                   "OUTFLOW": 5, "WALL_BOUNDARY": 6, "WALL": 6}
_SIDES = ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")


def _node_type_code(text: str, where: str) -> int:
    t = text.strip()
    if t.upper() in NODE_TYPE_NAMES:
        return NODE_TYPE_NAMES[t.upper()]
    if t.isdigit() and 0 <= int(t) <= 8:
        return int(t)
    raise DataError(f"{where}: unknown node type {t!r}; expected an integer 0..8 or one of "
                    f"{', '.join(NODE_TYPE_NAMES)}")


def parse_field_map(items: Sequence[str] | Mapping[str, Any] | None
                    ) -> dict[str, str | list[str]] | None:
    """Turn ``["velocity=U", "velocity=velocity_x,velocity_y", "p=pressure"]`` (the CLI's
    repeated ``--field`` values, or a mapping already) into ``{target: source or [scalar
    sources]}``. A source may pick components: ``U[0,1]`` is the first two columns of ``U``.

    **Raises:** `ConfigError` for an item without ``=`` or a target named twice.
    """
    from .._errors import ConfigError

    if items is None:
        return None
    if isinstance(items, Mapping):
        return {str(k): (list(v) if isinstance(v, (list, tuple)) else str(v))
                for k, v in items.items()}
    out: dict[str, str | list[str]] = {}
    for item in items:
        target, sep, source = str(item).partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not target or not source:
            raise ConfigError(f"--field {item!r}: expected TARGET=SOURCE or "
                              "TARGET=SCALAR1,SCALAR2,... (e.g. velocity=U)")
        if target in out:
            raise ConfigError(f"--field {item!r}: field {target!r} is mapped twice")
        parts = [s.strip() for s in _split_outside_brackets(source)]
        out[target] = parts[0] if len(parts) == 1 else parts
    return out


def _split_outside_brackets(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


def _source_column(fields: Mapping[str, np.ndarray], source: str, where: str) -> np.ndarray:
    """``(time, nodes, channels)`` values of `source` (``NAME`` or ``NAME[i,j,...]``)."""
    name, _, sel = source.partition("[")
    if name not in fields:
        raise DataError(f"{where}: no field {name!r}; the file has "
                        f"{', '.join(sorted(fields)) or 'no fields'}")
    a = np.asarray(fields[name])
    if not sel:
        return a
    try:
        cols = [int(c) for c in sel.rstrip("]").split(",")]
    except ValueError:
        raise DataError(f"{where}: bad component selection {source!r}; expected NAME[0,1]") from None
    if any(not 0 <= c < a.shape[2] for c in cols):
        raise DataError(f"{where}: {source!r} selects components {cols} of a field with "
                        f"{a.shape[2]}")
    return a[:, :, cols]


def apply_field_map(mesh: MeshField, fields: Mapping[str, str | Sequence[str]] | None,
                    where: str = "mesh") -> MeshField:
    """The trajectory with its node fields renamed / assembled by `fields` (``{target: source
    or [scalar sources]}``, see `parse_field_map`); fields not named keep their names, the
    sources used are dropped. `None` returns `mesh` unchanged.

    **Raises:** `DataError` naming the missing source field (and the file's fields).
    """
    if not fields:
        return mesh
    src = dict(mesh.fields)
    out, used = {}, set()
    for target, source in fields.items():
        if isinstance(source, str):
            out[target] = _source_column(src, source, where)
            used.add(source.partition("[")[0])
        else:
            cols = [_source_column(src, s, where) for s in source]
            if any(c.shape[2] != 1 for c in cols):
                raise DataError(f"{where}: {target}={','.join(source)}: every component must "
                                "be a scalar field")
            out[target] = np.concatenate(cols, axis=2)
            used.update(s.partition("[")[0] for s in source)
    for k, v in src.items():
        if k not in used and k not in out:
            out[k] = v
    return MeshField(mesh.points, mesh.cells, out, mesh.node_type, mesh.times)


@dataclasses.dataclass(frozen=True)
class NodeTypeRule:
    """How node types are assigned (`parse_node_types` builds it from a CLI string).

    **Fields:**

    - `kind` [-]: ``"file"`` (the file's ``node_type`` field), ``"field"`` (an integer point
      field `name`), ``"sets"`` (cell sets / gmsh physical groups, `assign` maps set name →
      type; nodes in no set are NORMAL) or ``"boundary"`` (`assign` maps type → sides
      ``xmin``...; every other boundary node is OBSTACLE, interior nodes NORMAL).
    - `name` [-]: the point field for ``"field"``.
    - `assign` [-]: ``(key, value)`` pairs, in the order given (a node matched twice takes the
      later one).
    - `mesh` [-]: for ``"sets"``, the file whose cell sets are read (default the data's first
      file).
    - `tol` [1]: for ``"boundary"``, a side is within this fraction of the bounding box.
    """

    kind: str = "file"
    name: str | None = None
    assign: tuple[tuple[str, Any], ...] = ()
    mesh: str | None = None
    tol: float = 1e-6


def parse_node_types(spec: str | NodeTypeRule | None) -> NodeTypeRule:
    """Parse ``None`` (the file's ``node_type`` field), ``"field:NAME"``,
    ``"sets:inlet=INFLOW,walls=WALL_BOUNDARY,cyl=OBSTACLE[;mesh=FILE]"`` or
    ``"boundary:inflow=xmin,outflow=xmax,walls=ymin+ymax[;tol=1e-6]"`` (type names are
    MeshGraphNets' `NodeType` names or integers 0..8; boundary keys are ``inflow``,
    ``outflow``, ``walls`` or a type name).

    **Raises:** `ConfigError` naming the bad part of the spec.
    """
    from .._errors import ConfigError

    if spec is None or isinstance(spec, NodeTypeRule):
        return spec or NodeTypeRule()
    kind, sep, rest = str(spec).partition(":")
    kind = kind.strip()
    where = f"--node-types {spec!r}"
    if not sep or kind not in ("field", "sets", "boundary"):
        raise ConfigError(f"{where}: expected field:NAME, sets:SET=TYPE,... or "
                          "boundary:inflow=xmin,outflow=xmax,walls=ymin+ymax")
    if kind == "field":
        if not rest.strip():
            raise ConfigError(f"{where}: field:NAME needs the point field's name")
        return NodeTypeRule("field", name=rest.strip())
    body, *options = rest.split(";")
    opts = {}
    for o in options:
        k, s, v = o.partition("=")
        if not s or k.strip() not in ("mesh", "tol"):
            raise ConfigError(f"{where}: unknown option {o!r}; options are mesh=FILE (sets) and "
                              "tol=FRACTION (boundary)")
        opts[k.strip()] = v.strip()
    pairs = []
    for item in filter(None, (s.strip() for s in body.split(","))):
        key, s, value = item.partition("=")
        if not s or not key.strip() or not value.strip():
            raise ConfigError(f"{where}: {item!r} is not KEY=VALUE")
        key, value = key.strip(), value.strip()
        try:
            if kind == "sets":
                pairs.append((key, _node_type_code(value, where)))
            else:
                code = {"inflow": 4, "outflow": 5, "walls": 6, "wall": 6}.get(key.lower())
                code = _node_type_code(key, where) if code is None else code
                sides = tuple(value.lower().split("+"))
                bad = [x for x in sides if x not in _SIDES]
                if bad:
                    raise ConfigError(f"{where}: unknown side(s) {bad}; sides are "
                                      f"{', '.join(_SIDES)}")
                pairs.append((code, sides))
        except DataError as e:
            raise ConfigError(str(e)) from None
    if not pairs:
        raise ConfigError(f"{where}: no assignments")
    try:
        tol = float(opts.get("tol", 1e-6))
    except ValueError:
        raise ConfigError(f"{where}: tol must be a number, got {opts['tol']!r}") from None
    return NodeTypeRule(kind, assign=tuple(pairs), mesh=opts.get("mesh"), tol=tol)


def _boundary_nodes(mesh: MeshField) -> np.ndarray:
    """Nodes on a facet that belongs to one cell only (triangles: edges; tetrahedra: faces)."""
    facets = []
    for ctype, conn in mesh.cells.items():
        conn = np.asarray(conn)
        if ctype == "triangle":
            facets.append(np.sort(conn[:, [[0, 1], [1, 2], [2, 0]]].reshape(-1, 2), axis=1))
        elif ctype == "quad":
            facets.append(np.sort(conn[:, [[0, 1], [1, 2], [2, 3], [3, 0]]].reshape(-1, 2), 1))
        elif ctype == "tetra":
            f = conn[:, [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]].reshape(-1, 3)
            facets.append(np.sort(f, axis=1))
    if not facets:
        raise DataError("boundary rules need triangle, quad or tetra cells; the mesh has "
                        f"{', '.join(mesh.cells) or 'none'}")
    width = max(f.shape[1] for f in facets)
    facets = [f for f in facets if f.shape[1] == width]
    uniq, count = np.unique(np.concatenate(facets), axis=0, return_counts=True)
    return np.unique(uniq[count == 1])


def _cell_set_nodes(path: pathlib.Path, points: np.ndarray, where: str) -> dict[str, np.ndarray]:
    """Cell set name → node indices of `points` (matched by coordinates) from a meshio file."""
    import meshio
    from scipy.spatial import cKDTree

    try:
        m = meshio.read(path)
    except Exception as e:
        raise DataError(f"{path}: cannot read mesh for its cell sets: {type(e).__name__}: {e}"
                        ) from None
    if not m.cell_sets:
        raise DataError(f"{path}: no cell sets (gmsh physical groups) in the file")
    mp = np.asarray(m.points)[:, : points.shape[1]]
    dist, idx = cKDTree(points).query(mp)
    scale = float(np.ptp(points, axis=0).max()) or 1.0
    out = {}
    for name, blocks in m.cell_sets.items():
        nodes = [np.asarray(m.cells[b].data)[np.asarray(ids, int)].reshape(-1)
                 for b, ids in enumerate(blocks) if ids is not None and len(ids)]
        nodes = np.unique(np.concatenate(nodes)) if nodes else np.zeros(0, int)
        if nodes.size and dist[nodes].max() > 1e-6 * scale:
            raise DataError(f"{where}: cell set {name!r} of {path} has nodes that are not mesh "
                            "nodes of the data (different mesh?)")
        out[name] = idx[nodes]
    return out


def assign_node_types(mesh: MeshField, rule: NodeTypeRule | str | None,
                      where: str = "mesh", first_file: str | os.PathLike | None = None
                      ) -> MeshField:
    """The trajectory with node types from `rule` (see `parse_node_types`).

    **Raises:** `DataError` for a missing point field, an unknown cell set, a side no node lies
    on, or (rule ``None``) a file without ``node_type``.
    """
    rule = parse_node_types(rule)
    n = mesh.n_nodes
    if rule.kind == "file":
        if mesh.node_type is None:
            raise DataError(f"{where}: no node_type point field; give node types with "
                            "--node-types field:NAME, sets:... or boundary:...")
        return mesh
    fields = dict(mesh.fields)
    if rule.kind == "field":
        if rule.name not in fields:
            raise DataError(f"{where}: no point field {rule.name!r} for the node types; the file "
                            f"has {', '.join(sorted(fields)) or 'no fields'}")
        v = np.asarray(fields.pop(rule.name))[0].reshape(n, -1)
        if v.shape[1] != 1 or not np.allclose(v, np.round(v)):
            raise DataError(f"{where}: node-type field {rule.name!r} must be one integer per node")
        nt = np.round(v[:, 0]).astype(np.int32)
    elif rule.kind == "sets":
        path = pathlib.Path(rule.mesh or first_file or "")
        if not path.is_file():
            raise DataError(f"{where}: node types from cell sets need a mesh file with them "
                            "(sets:...;mesh=FILE)")
        sets = _cell_set_nodes(path, np.asarray(mesh.points), where)
        nt = np.zeros(n, np.int32)
        for name, code in rule.assign:
            if name not in sets:
                raise DataError(f"{where}: no cell set {name!r} in {path}; it has "
                                f"{', '.join(sorted(k for k in sets if ':' not in k))}")
            nt[sets[name]] = code
    else:
        pts = np.asarray(mesh.points, float)
        lo, hi = pts.min(0), pts.max(0)
        tol = rule.tol * float((hi - lo).max())
        bnd = _boundary_nodes(mesh)
        nt = np.zeros(n, np.int32)
        nt[bnd] = NODE_TYPE_NAMES["OBSTACLE"]
        for code, sides in rule.assign:
            for side in sides:
                axis = "xyz".index(side[0])
                if axis >= pts.shape[1]:
                    raise DataError(f"{where}: side {side} of a {pts.shape[1]}-D mesh")
                edge = lo[axis] if side.endswith("min") else hi[axis]
                on = bnd[np.abs(pts[bnd, axis] - edge) <= tol]
                if not on.size:
                    raise DataError(f"{where}: no boundary node on side {side}")
                nt[on] = code
    return MeshField(mesh.points, mesh.cells, fields, nt, mesh.times)


def _number_in_name(p: pathlib.Path) -> tuple:
    import re

    nums = re.findall(r"\d+", p.stem)
    return (int(nums[-1]) if nums else -1, p.name)


def _vtu_series(files: Sequence[pathlib.Path], times: Sequence[float] | None, where: str
                ) -> MeshField:
    from ._meshio import read_vtu

    steps = [read_vtu(f) for f in files]
    first = steps[0]
    for f, s in zip(files, steps, strict=True):
        if s.n_nodes != first.n_nodes:
            raise DataError(f"{f}: {s.n_nodes} nodes, the series' first file {files[0].name} "
                            f"has {first.n_nodes} (node count must not change)")
        if set(s.fields) != set(first.fields):
            raise DataError(f"{f}: fields {sorted(s.fields)} differ from the first file's "
                            f"{sorted(first.fields)}")
    fields = {k: np.concatenate([np.asarray(s.fields[k]) for s in steps]) for k in first.fields}
    t = np.asarray(times if times is not None else np.arange(len(files)), np.float64)
    return MeshField(first.points, first.cells, fields, first.node_type, t)


def _read_pvd(path: pathlib.Path) -> tuple[list[pathlib.Path], list[float]]:
    from xml.etree import ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise DataError(f"{path}: not a readable PVD file ({e})") from None
    entries = []
    for ds in root.iter("DataSet"):
        if "file" not in ds.attrib:
            raise DataError(f"{path}: a DataSet without a file attribute")
        try:
            t = float(ds.get("timestep", len(entries)))
        except ValueError:
            raise DataError(f"{path}: DataSet timestep {ds.get('timestep')!r} is not a number"
                            ) from None
        entries.append((t, path.parent / ds.attrib["file"]))
    if not entries:
        raise DataError(f"{path}: no DataSet entries")
    entries.sort(key=lambda e: e[0])
    for _, f in entries:
        if not f.is_file():
            raise DataError(f"{path}: file {f} of the collection not found")
    return [f for _, f in entries], [t for t, _ in entries]


def _raw_trajectories(source: pathlib.Path, split: str, max_trajectories: int | None
                      ) -> list[tuple[str, MeshField, dict[str, str], pathlib.Path | None]]:
    """(name, trajectory, units, first meshio file) of every trajectory of `source`."""
    import glob

    from ._mesh import mesh_field, read_mesh_dataset
    from ._meshio import read_xdmf, read_xdmf_units

    text = str(source)
    if any(c in text for c in "*?["):
        files = sorted((pathlib.Path(p) for p in glob.glob(text)), key=_number_in_name)
        if not files:
            raise DataError(f"{source}: no file matches")
        return [(files[0].parent.name, _vtu_series(files, None, text), {}, files[0])]
    if not source.exists():
        raise DataError(f"{source}: not found")
    if source.is_dir():
        if (source / "meta.json").is_file():
            out = []
            for i, m in enumerate(read_meshgraphnets(source, split)):
                if max_trajectories is not None and i >= max_trajectories:
                    break
                out.append((f"traj_{i:03d}", m, {}, None))
            return out
        files = sorted(source.glob("*.vtu"), key=_number_in_name)
        if not files:
            raise DataError(f"{source}: a folder with neither meta.json (MeshGraphNets) nor "
                            ".vtu files")
        return [(source.name, _vtu_series(files, None, str(source)), {}, files[0])]
    suffix = source.suffix.lower()
    if suffix in (".xdmf", ".xmf"):
        return [(source.stem, read_xdmf(source), read_xdmf_units(source), source)]
    if suffix == ".pvd":
        files, times = _read_pvd(source)
        return [(source.stem, _vtu_series(files, times, str(source)), {}, files[0])]
    if suffix == ".vtu":
        return [(source.stem, _vtu_series([source], None, str(source)), {}, source)]
    if suffix == ".msh":
        from ._meshio import read_gmsh

        return [(source.stem, read_gmsh(source), {}, source)]
    if suffix in (".h5", ".hdf5"):
        ds = read_mesh_dataset(source)
        units = {k: str(a["units"]) for k, a in ds.field_attrs.items() if "units" in a}
        n = len(ds) if max_trajectories is None else min(len(ds), max_trajectories)
        return [(f"traj_{i:03d}", mesh_field(ds, i), units, None) for i in range(n)]
    raise DataError(f"{source}: expected an .xdmf time series, a .pvd file, a .vtu file or "
                    "folder / glob of them, a gmsh .msh mesh, a MeshGraphNets folder or a "
                    "sciops mesh .h5")


def read_mesh_trajectories(source: str | os.PathLike, *,
                           fields: Mapping[str, Any] | Sequence[str] | None = None,
                           node_types: str | NodeTypeRule | None = None, split: str = "train",
                           max_trajectories: int | None = None, with_names: bool = False):
    """Read a user's mesh simulation as sciops `MeshField` trajectories.

    **Arguments:**

    - `source`: an ``.xdmf`` time series; a ``.pvd`` collection of VTU files (times from its
      ``timestep`` attributes); a ``.vtu`` file, a folder of ``.vtu`` files or a glob of them
      (one step each, ordered by the last number in the name, times = step numbers); a gmsh
      ``.msh`` mesh (its cells of the highest dimension and no fields; node types from its
      physical groups with ``sets:...``); a MeshGraphNets folder (``meta.json`` + ``<split>.tfrecord``); or a sciops mesh ``.h5``.
    - `fields`: ``{target: source}`` or ``{target: [scalar sources]}`` or the CLI strings
      (`parse_field_map`); `None` keeps the file's names.
    - `node_types`: a `parse_node_types` spec; `None` takes the ``node_type`` point field.
    - `split`, `max_trajectories`: which MeshGraphNets split, and at most how many.
    - `with_names`: return ``(name, trajectory, units)`` triples instead.

    **Raises:** `DataError` (one line naming the file and the field, set or side) or
    `ConfigError` (a malformed mapping or spec).
    """
    source = pathlib.Path(source)
    field_map = parse_field_map(fields)
    rule = parse_node_types(node_types)
    out = []
    for name, m, units, first in _raw_trajectories(source, split, max_trajectories):
        where = f"{source} ({name})"
        m = assign_node_types(apply_field_map(m, field_map, where), rule, where, first)
        if field_map:
            units = {t: units[s] for t, s in field_map.items() if isinstance(s, str)
                     and s.partition("[")[0] in units} | {
                         k: v for k, v in units.items() if k not in field_map}
        out.append((name, m, units) if with_names else m)
        if max_trajectories is not None and len(out) >= max_trajectories:
            break
    if not out:
        raise DataError(f"{source}: no trajectories")
    return out


def convert_mesh(source: str | os.PathLike, out_path: str | os.PathLike, *,
                 fields: Mapping[str, Any] | Sequence[str] | None = None,
                 node_types: str | NodeTypeRule | None = None, split: str = "train",
                 max_trajectories: int | None = None) -> pathlib.Path:
    """Write a user's mesh simulation (any `read_mesh_trajectories` source) in the sciops mesh
    layout (`write_mesh_dataset`), with provenance attributes ``imported_from``,
    ``import_format``, ``field_map`` and ``node_types``.

    **Raises:** as `read_mesh_trajectories`; nothing is written on failure.
    """
    source = pathlib.Path(source)
    triples = read_mesh_trajectories(source, fields=fields, node_types=node_types, split=split,
                                     max_trajectories=max_trajectories, with_names=True)
    meshes = [m for _, m, _ in triples]
    t = meshes[0].times
    dt = float(t[1] - t[0]) if t is not None and len(t) > 1 else 1.0
    fmt = ("meshgraphnets" if source.is_dir() and (source / "meta.json").is_file() else
           "vtu" if source.is_dir() or source.suffix.lower() in ("", ".vtu") else
           source.suffix.lower().lstrip("."))
    return write_mesh_dataset(
        out_path, meshes, units=triples[0][2] or None,
        attrs={"problem": f"import:{fmt}", "imported_from": str(source.absolute()),
               "import_format": fmt, "field_map": parse_field_map(fields) or {},
               "node_types": str(node_types or "file"), "dt": dt})
