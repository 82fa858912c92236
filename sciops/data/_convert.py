"""`convert_file`: a user's file into the sciops HDF5 schema, with provenance.

Grid and atomistic files go through `read_dataset` (same keys, layout, subsampling and units as
``data.*`` in a run) and are copied a block of samples at a time, so a file larger than memory
converts in bounded memory. Mesh formats (XDMF/VTU/PVD series, MeshGraphNets folders,
graph-physics H5) are delegated to the mesh importer of `sciops.data._mesh_import`. The
output's root attributes record the source path (``converted_from``), its SHA-256, the format
and the mapping.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from .._errors import DataError

__all__ = ["convert_file", "sha256_of"]

_MESH_SUFFIXES = (".xdmf", ".xmf", ".pvd", ".vtu", ".tfrecord", ".msh")
# Samples per block: about this many bytes, so conversion memory stays bounded.
_BLOCK_BYTES = 256 * 1024 * 1024


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, or of a folder's files (names and contents, in sorted order)."""
    path = pathlib.Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        if path.is_dir():
            h.update(str(p.relative_to(path)).encode() + b"\0")
        with open(p, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


def _is_mesh(source: pathlib.Path, format: str) -> bool:
    return (format in ("mesh", "meshgraphnets", "graph-physics") or source.is_dir()
            or source.suffix.lower() in _MESH_SUFFIXES)


def _convert_mesh(source: pathlib.Path, out: pathlib.Path, meta, split: str,
                  max_trajectories: int | None, fields=None, node_types=None
                  ) -> tuple[pathlib.Path, dict[str, Any]]:
    from ._mesh_import import convert_mesh, import_mesh_data

    if not source.exists():
        raise DataError(f"{source}: not found")
    if meta is not None or (source.suffix.lower() in (".h5", ".hdf5") and not source.is_dir()
                            and not (fields or node_types)):
        written = import_mesh_data(source, out, split=split, meta=meta,
                                   max_trajectories=max_trajectories)
    else:  # XDMF/PVD/VTU series, MeshGraphNets folders, with a field map / node-type rule
        written = convert_mesh(source, out, fields=fields, node_types=node_types, split=split,
                               max_trajectories=max_trajectories)
    return written, {"source_format": "mesh"}


def convert_file(source: str | os.PathLike, out: str | os.PathLike, *, format: str = "auto",
            keys: Mapping[str, str] | None = None, layout: Mapping[str, str] | None = None,
            subsample: int | Sequence[int] = 1, units: Mapping[str, str] | None = None,
            meta: str | os.PathLike | None = None, split: str = "train",
            max_trajectories: int | None = None, fields=None,
            node_types=None) -> pathlib.Path:
    """Write `source` as a sciops data set at `out` (atomically: nothing is left on failure).

    **Arguments:**

    - `source`: a file `read_dataset` reads, or a mesh data set (an XDMF/VTU/PVD series, a
      MeshGraphNets folder with ``meta.json``, a graph-physics ``.h5`` with its `meta` JSON).
    - `out`: the `.h5` file to write.
    - `format`, `keys`, `layout`, `subsample`, `units`: as in `read_dataset`.
    - `meta`, `split`, `max_trajectories`: for mesh data sets (as `import_mesh_data`).
    - `fields`, `node_types`: for mesh series, the field mapping and node-type rule of
      `sciops.data.convert_mesh`.

    **Returns:** the path written. Root attributes: ``converted_from`` (the source's absolute
    path), ``source_sha256``, ``source_format``, ``keys``, ``layout``, ``subsample``, and
    ``units_converted_from`` for atoms; ``problem`` is ``import:<format>``.

    **Raises:** `DataError` (one line naming the file and key) on any mismatch; the source's
    own errors as `read_dataset` raises them.
    """
    import h5py

    from ._hdf5 import open_hdf5_writer
    from ._readers import read_dataset

    source, out = pathlib.Path(source), pathlib.Path(out)
    if out.exists() and out.is_dir():
        raise DataError(f"{out}: is a folder; give the output .h5 file")
    if source.resolve() == out.resolve():
        raise DataError(f"{out}: the output would overwrite the source")
    if _is_mesh(source, format):
        written, info = _convert_mesh(source, out, meta, split, max_trajectories, fields,
                                      node_types)
        with h5py.File(written, "r+") as f:
            f.attrs["converted_from"] = str(source.resolve())
            f.attrs["source_sha256"] = sha256_of(source)
            for k, v in info.items():
                f.attrs[k] = v
        return written
    ds = read_dataset(source, format=format, keys=keys, layout=layout, subsample=subsample,
                      units=units)
    try:
        kind = ds.attrs.get("kind", "arrays")
        attrs = {"kind": kind, "problem": f"import:{ds.attrs.get('source_format', format)}",
                 "converted_from": str(source.resolve()), "source_sha256": sha256_of(source),
                 "source_format": ds.attrs.get("source_format", format),
                 "keys": dict(keys or {}), "layout": dict(layout or {}),
                 "subsample": subsample}
        if kind == "atoms":
            attrs["units_converted_from"] = ds.attrs.get("units_converted_from", {})
        per_sample = max(1, ds.nbytes() // max(1, len(ds)))
        block = max(1, _BLOCK_BYTES // per_sample)
        with open_hdf5_writer(out, attrs, ds.field_attrs) as w:
            for start in range(0, len(ds), block):
                w.append(ds.take(slice(start, min(start + block, len(ds)))))
    finally:
        ds.close()
    return out
