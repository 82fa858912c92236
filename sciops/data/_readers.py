"""`read_dataset`: users' own files (MATLAB, PDEBench HDF5, npz, PyTorch, ASE, rMD17) as a
`Dataset`, behind the one ``data.path`` config key.

The format is told from the file's first bytes (`detect_format`). Grid fields are picked and
renamed with a key mapping (``{"x": "coeff", "y": "sol"}``: the run's field ``x`` is the file's
``coeff``), given an axis layout, cut to the selected time steps and channels, subsampled and
handed out as `(channels, *spatial)` float32 samples (`GridView`), all lazily where the format
allows: v7.3 .mat, HDF5, uncompressed .npz members and .npy are read a batch at a time;
v5 .mat, compressed .npz and .pt files are read whole, as their formats require.
Atomistic formats go to `read_atoms_file`.
"""

from __future__ import annotations

import os
import pathlib
import struct
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._errors import DataError
from ._dataset import Dataset
from ._formats import FORMATS, detect_format
from ._gridview import GridView, parse_key_spec, parse_layout, spatial_layout

__all__ = ["read_dataset", "read_npz", "read_torch"]

_ALIASES = {"pdebench": "hdf5", "mat": None, "matlab": None, "extxyz": "ase", "md22": "rmd17"}
# Layouts stored by sciops writers ("samples channels x0 x1") in GridView's vocabulary.
_SCIOPS_AXES = {"channels": "c", "time": "t"}


def _npy_member(path: pathlib.Path, info: zipfile.ZipInfo):
    """A stored (uncompressed) .npy member of a zip archive, memory-mapped in place."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
        if header[:4] != b"PK\x03\x04":
            raise DataError(f"{path}: member {info.filename!r}: bad local zip header")
        n_name, n_extra = struct.unpack("<HH", header[26:30])
        f.seek(info.header_offset + 30 + n_name + n_extra)
        version = np.lib.format.read_magic(f)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read(f)
        offset = f.tell()
    if dtype.hasobject:
        raise DataError(f"{path}: member {info.filename!r} holds Python objects; only numeric "
                        "arrays are read")
    if 0 in shape:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of a `.npz` archive: stored members memory-mapped (read as indexed),
    compressed members (`numpy.savez_compressed`) read into memory.

    **Raises:** `DataError` naming the file or member when it cannot be read.
    """
    path = pathlib.Path(path)
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
        loaded = None
        for info in infos:
            name = info.filename.removesuffix(".npy")
            if info.compress_type == zipfile.ZIP_STORED:
                out[name] = _npy_member(path, info)
            else:
                loaded = loaded if loaded is not None else np.load(path, allow_pickle=False)
                out[name] = loaded[name]
    except (zipfile.BadZipFile, OSError, ValueError, struct.error) as e:
        raise DataError(f"{path}: not a readable .npz archive: {e}") from None
    return out


def read_torch(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch file holding a dict of tensors (neuraloperator's `.pt` data
    sets), through torch's weights-only loader (no arbitrary code runs), memory-mapped when the
    file is in PyTorch's zip format.

    **Raises:** `DataError` naming the file when torch is missing, the file is not a plain dict
    of tensors, or the weights-only loader refuses it.
    """
    path = pathlib.Path(path)
    try:
        import torch
    except ImportError:
        raise DataError(f"{path}: reading PyTorch files needs torch (pip install torch); or "
                        "save the tensors with numpy.savez") from None
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) files cannot be memory-mapped
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, ...
        raise DataError(f"{path}: torch's weights-only loader refused the file "
                        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(obj, Mapping):
        raise DataError(f"{path}: holds a {type(obj).__name__}, expected a dict of tensors")
    out = {}
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            out[str(k)] = v.detach().numpy()
        elif isinstance(v, np.ndarray):
            out[str(k)] = v
    if not out:
        raise DataError(f"{path}: no tensors in the dict (keys: {', '.join(map(str, obj))})")
    return out


def _sciops_layouts(dataset: Dataset) -> dict[str, str]:
    out = {}
    for k, fa in dataset.field_attrs.items():
        axes = str(fa.get("layout", "")).split()
        if axes[:1] == ["samples"] and len(axes) - 1 == len(dataset.shape(k)):
            out[k] = " ".join(_SCIOPS_AXES.get(a, a) for a in axes[1:])
    return out


def _sources(path: pathlib.Path, fmt: str, names: list[str] | None):
    """(arrays, default layouts, whether arrays are in memory) of a grid-data file."""
    if fmt in ("mat5", "mat73"):
        from ._matlab import read_mat

        arrays = read_mat(path, names, fmt)
        # The FNO paper's files: space first, time last (ns_*.mat: u is (N, 64, 64, T)).
        layouts = {k: " ".join(("x", "y", "t")) for k, a in arrays.items()
                   if not isinstance(a, DataError) and a.ndim == 4}
        return arrays, layouts, fmt == "mat5"
    if fmt == "hdf5":
        from ._pdebench import read_foreign_hdf5

        arrays, layouts = read_foreign_hdf5(path)
        return arrays, layouts, False
    if fmt == "npz":
        arrays = read_npz(path)
        return arrays, {}, not all(isinstance(a, np.memmap) for a in arrays.values())
    if fmt == "npy":
        try:
            return {path.stem: np.load(path, mmap_mode="r", allow_pickle=False)}, {}, False
        except ValueError as e:
            raise DataError(f"{path}: not a readable .npy file: {e}") from None
    if fmt == "pt":
        return read_torch(path), {}, False
    raise DataError(f"{path}: format {fmt!r} holds no grid fields")


def _resolve_format(path: pathlib.Path, format: str) -> str:
    fmt = _ALIASES.get(format, format)
    if fmt.startswith("ase:"):  # an ASE format name, e.g. ase:vasp-out
        pass
    elif fmt is None or fmt == "auto":
        fmt = detect_format(path)
        if format in ("mat", "matlab") and fmt not in ("mat5", "mat73"):
            raise DataError(f"{path}: data.format is {format!r} but the file is {fmt}")
    elif fmt not in FORMATS:
        raise DataError(f"data.format: unknown format {format!r}; one of auto, "
                        f"{', '.join(FORMATS)}, pdebench, mat")
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    return fmt


def read_dataset(path: str | os.PathLike, *, format: str = "auto",
                 keys: Mapping[str, str] | None = None,
                 layout: Mapping[str, str] | None = None,
                 subsample: int | Sequence[int] = 1,
                 units: Mapping[str, str] | None = None,
                 lazy: bool = True) -> Dataset:
    """Open a data file in any format sciops reads, as a `Dataset`.

    **Arguments:**

    - `path`: the file (see `detect_format` for the formats).
    - `format`: ``"auto"`` (from the content) or a format name (``mat``, ``pdebench``, ...).
    - `keys`: field name in the run → key in the file, optionally with a selection on named
      axes: ``{"x": "coeff", "y": "sol"}``, ``{"x": "u[t=0:10]", "y": "u[t=10:20]"}``. Default:
      every array of the file under its own name. For atoms: ``positions``, ``species``,
      ``energy``, ``forces``, ``stress`` → the file's names (`read_atoms_file`).
    - `layout`: field or file key → its per-sample axes (``"x y t"``; ``t`` time, ``c``
      channels, other names space). Default: the format's (sciops files' ``layout``
      attribute; PDEBench: time first, channels last; the FNO paper's 4-D .mat arrays
      ``x y t``) or else all axes spatial.
    - `subsample`: keep every `r`-th node per spatial axis (one int, or one per axis).
    - `units`: atoms: quantity → the file's units, converted to eV and Å (`read_atoms_file`);
      grid fields: recorded as the field's ``units`` attribute.
    - `lazy`: keep the file open and read batches on demand (`False`: read everything).

    **Returns:** a `Dataset` of grid fields `(channels, *spatial)` (float32) or of padded atoms
    (`write_atoms_dataset`'s layout); its `attrs` record the source file, format and mapping.
    A file in the sciops schema without `keys`, `layout` or `subsample` is returned exactly as
    `read_hdf5` reads it.

    **Raises:** `DataError`, one line naming the file and key: a missing key (with the keys the
    file has), a layout that does not fit the array's rank, NaN/inf in a sample (when read),
    fields with different numbers of samples, an unreadable file.
    """
    path = pathlib.Path(path)
    fmt = _resolve_format(path, format)
    keys = dict(keys or {})
    layout = dict(layout or {})
    if fmt.split(":")[0] in ("ase", "rmd17") or (fmt == "npz" and _looks_atomistic(path)):
        from ._atoms_readers import read_atoms_file

        return read_atoms_file(path, format="rmd17" if fmt == "npz" else fmt, keys=keys,
                               units=units)
    if fmt == "sciops":
        from ._hdf5 import read_hdf5

        base = read_hdf5(path)
        if not keys and not layout and subsample == 1:
            return base if lazy else base.in_memory()
        arrays, defaults, eager = dict(base.arrays), _sciops_layouts(base), False
    else:
        wanted = [parse_key_spec(v, f"data.keys.{k}")[0] for k, v in keys.items()] or None
        arrays, defaults, eager = _sources(path, fmt, wanted)
    specs = ({k: parse_key_spec(v, f"data.keys.{k}") for k, v in keys.items()} if keys else
             {k: (k, {}) for k, a in arrays.items() if not isinstance(a, DataError)})
    fields: dict[str, Any] = {}
    field_attrs: dict[str, dict[str, Any]] = {}
    for name, (key, select) in specs.items():
        if key not in arrays:
            raise DataError(f"{path}: no key {key!r} (data.keys.{name}); keys present: "
                            f"{', '.join(sorted(arrays)) or 'none'}")
        a = arrays[key]
        if isinstance(a, DataError):
            raise a
        where = f"{path}: key {key!r}"
        if a.ndim < 1:
            raise DataError(f"{where}: a scalar, not an array of samples")
        if a.ndim == 1 and not select and not layout.get(name, layout.get(key)):
            fields[name] = a  # one number per sample (a parameter such as nu)
            field_attrs[name] = {"source_key": key}
            continue
        given = layout.get(name, layout.get(key))
        axes = parse_layout(given or defaults.get(key) or spatial_layout(a.ndim - 1), a.ndim - 1,
                            f"{where}" + (f" (data.layout: {given!r})" if given else
                                          f" of sample shape {tuple(a.shape[1:])}"))
        view = GridView(a, axes, select, subsample, where)
        fields[name] = view
        field_attrs[name] = {"layout": "samples channels " + " ".join(
                                 f"x{i}" for i in range(len(view.spatial))),
                             "source_key": keys.get(name, key), "source_layout": " ".join(axes)}
        if units and name in units:
            field_attrs[name]["units"] = units[name]
    counts = {f"{specs[n][0]!r}": int(a.shape[0]) for n, a in fields.items()}
    if len(set(counts.values())) > 1:
        raise DataError(f"{path}: keys have different numbers of samples ("
                        + ", ".join(f"{k}: {v}" for k, v in counts.items())
                        + ("); choose the keys with data.keys" if not keys else ")"))
    attrs = {"kind": "grid", "source": str(path), "source_format": fmt, "keys": keys,
             "layout": layout, "subsample": subsample}
    dataset = Dataset(fields, attrs, name=str(path), field_attrs=field_attrs)
    if eager or not lazy:
        # The format is in memory already: convert once (subsampled float32), drop the rest.
        dataset = dataset.in_memory()
    return dataset


def _looks_atomistic(path: pathlib.Path) -> bool:
    with zipfile.ZipFile(path) as z:
        names = {n.removesuffix(".npy") for n in z.namelist()}
    return {"coords", "nuclear_charges"} <= names or {"R", "z"} <= names
