"""What kind of data file is this? Told from the first bytes, not from the suffix.

| format | how it is recognised |
|---|---|
| ``mat73`` | MATLAB v7.3: a 512-byte userblock whose text starts ``MATLAB 7.3 MAT-file``, then HDF5 |
| ``mat5`` | MATLAB v5 / v7 (`scipy.io`): 116 bytes of text starting ``MATLAB``, version 0x0100 and the endian mark ``IM``/``MI`` at bytes 124–127 |
| ``sciops`` | HDF5 (signature ``\\x89HDF\\r\\n\\x1a\\n``) with the root attribute ``sciops_schema`` |
| ``hdf5`` | any other HDF5 file: root arrays (PDEBench's single-file layout, neuraloperator sets converted by hand) or PDEBench's per-seed groups |
| ``npz`` | a zip archive (``PK\\x03\\x04``) of ``.npy`` members |
| ``pt`` | a zip archive holding ``*/data.pkl`` (PyTorch's format since 1.6), or a legacy pickle with a ``.pt``/``.pth`` suffix |
| ``npy`` | a single NumPy array (``\\x93NUMPY``) |
| ``ase`` | anything `ase.io` recognises (extxyz, ASE trajectories, VASP OUTCAR, ...) |

The HDF5 signature may sit at byte 0, 512, 1024, 2048, ... (after a userblock), as the HDF5
specification allows (Format Specification 3.0, §II.A "Format Signature and Superblock").
"""

from __future__ import annotations

import os
import pathlib
import zipfile

from .._errors import DataError

__all__ = ["FORMATS", "detect_format"]

FORMATS = ("sciops", "hdf5", "mat5", "mat73", "npz", "npy", "pt", "ase", "rmd17")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _hdf5_offset(path: pathlib.Path, head: bytes) -> int | None:
    """Byte offset of the HDF5 superblock, or None if the file is not HDF5."""
    if head.startswith(_HDF5_SIGNATURE):
        return 0
    size = path.stat().st_size
    with open(path, "rb") as f:
        offset = 512
        while offset + 8 <= size and offset <= 1 << 20:
            f.seek(offset)
            if f.read(8) == _HDF5_SIGNATURE:
                return offset
            offset *= 2
    return None


def _is_sciops(path: pathlib.Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "sciops_schema" in f.attrs
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file (corrupt or truncated?): {e}") from None


def detect_format(path: str | os.PathLike) -> str:
    """The format of the data file at `path` (one of `FORMATS`), from its content.

    **Raises:** `DataError` naming the file when it does not exist or its first bytes match no
    format sciops reads (with the bytes, and a hint to set ``data.format``).
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    with open(path, "rb") as f:
        head = f.read(128)
    if head.startswith(b"MATLAB 7.3 MAT-file"):
        if _hdf5_offset(path, head) is None:
            raise DataError(f"{path}: a MATLAB 7.3 header but no HDF5 data after it (truncated?)")
        return "mat73"
    if (head.startswith(b"MATLAB") and len(head) == 128 and head[126:128] in (b"IM", b"MI")):
        return "mat5"
    offset = _hdf5_offset(path, head)
    if offset is not None:
        return "sciops" if offset == 0 and _is_sciops(path) else "hdf5"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except zipfile.BadZipFile as e:
            raise DataError(f"{path}: a zip header but not a readable archive: {e}") from None
        if any(n.endswith("data.pkl") for n in names):
            return "pt"
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        raise DataError(f"{path}: a zip archive that is neither .npz (members {names[:5]}) nor "
                        "a PyTorch file")
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head[:1] == b"\x80" and path.suffix in (".pt", ".pth"):
        return "pt"
    try:
        from ase.io.formats import filetype

        filetype(str(path), guess=False)
        return "ase"
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - ASE raises assorted errors for formats it does not know
        pass
    raise DataError(f"{path}: cannot tell the format from the first bytes {head[:16]!r}; "
                    f"set data.format to one of {', '.join(FORMATS)}")
