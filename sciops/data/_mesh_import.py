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

import json
import os
import pathlib
import struct
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from .._errors import DataError
from ._mesh import MeshField, write_mesh_dataset

__all__ = ["crc32c", "encode_example", "import_mesh_data", "parse_example",
           "read_graphphysics_h5", "read_meshgraphnets", "read_tfrecord", "write_tfrecord"]

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
