"""Checkpoints: a JSON header (config, versions, step, metrics) plus the array leaves (orbax).

A checkpoint is a folder ``checkpoints/step_00001000/`` holding ``header.json`` and ``state/``,
an orbax (`StandardCheckpointer`) tree of the training state's array leaves (model and
optimizer state), saved by every process of a multi-process run for the shards it owns. The
folder is written under a temporary name in the same directory and renamed into place once
complete, so a process killed mid-write (even by SIGKILL) leaves either the previous checkpoints
only or the complete new one. Leftovers of an interrupted write are ignored by readers and
removed only by the next writer (which holds the run lock, `sciops.train.RunLock`): a reader
never deletes anything, because the ``.tmp-`` folder it sees may be a running fit's write in
progress. Old checkpoints are pruned by renaming them to a ``.tmp-`` name first, so a reader
sees a checkpoint whole or not at all.

The header records the SHA-256 of every file of ``state/``; `load_checkpoint` verifies them,
so a truncated or bit-flipped checkpoint is a one-line `DataError`, never silently loaded.
Restoring takes the target shardings, so a run can resume on another mesh or device count.
Never pickle.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import shutil
from typing import Any

import equinox as eqx
import jax
import numpy as np

from .._errors import DataError

__all__ = ["save_checkpoint", "latest_checkpoint", "load_checkpoint", "list_checkpoints",
           "verify_checkpoint"]

_NAME = re.compile(r"^step_(\d{8})$")


def _versions() -> dict[str, str]:
    import jax
    import optax

    from .._version import __version__

    return {"sciops": __version__, "jax": jax.__version__, "equinox": eqx.__version__,
            "optax": optax.__version__}


def _fsync_dir(path: pathlib.Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _checksums(state_dir: pathlib.Path) -> dict[str, str]:
    """SHA-256 of every file under `state_dir`, by path relative to it."""
    out = {}
    for p in sorted(state_dir.rglob("*")):
        if p.is_file():
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            out[p.relative_to(state_dir).as_posix()] = h.hexdigest()
    return out


def _array_leaves(state: Any) -> dict[str, Any]:
    leaves = jax.tree.leaves(eqx.filter(state, eqx.is_array))
    return {f"leaf_{i:05d}": x for i, x in enumerate(leaves)}


def save_checkpoint(directory: str | os.PathLike, step: int, state: Any,
                    header: dict[str, Any], keep: int = 2) -> pathlib.Path:
    """Write `state` (a pytree holding arrays) as the checkpoint of `step`, atomically.

    Every process of a multi-process run must call this (orbax writes each process's shards);
    process 0 writes the header and renames the folder into place.

    **Arguments:**

    - `directory`: the run's ``checkpoints/`` folder.
    - `step`: the number of optimizer steps taken.
    - `state`: the pytree to save (model, optimizer state); non-array leaves are not saved
      (they come from the config when loading).
    - `header`: JSON-serialisable metadata (config, metrics); versions are added.
    - `keep`: how many most recent checkpoints to keep.
    """
    import orbax.checkpoint as ocp

    directory = pathlib.Path(directory).absolute()
    final = directory / f"step_{step:08d}"
    tmp = directory / f".tmp-{final.name}"
    primary = jax.process_index() == 0
    if primary:
        directory.mkdir(parents=True, exist_ok=True)
        _clean_leftovers(directory)
        tmp.mkdir()
    _barrier(f"ckpt-start-{step}")
    try:
        with ocp.StandardCheckpointer() as ckptr:
            ckptr.save(tmp / "state", _array_leaves(state))
            ckptr.wait_until_finished()
        _barrier(f"ckpt-saved-{step}")
        if primary:
            with open(tmp / "header.json", "w") as f:
                json.dump({"step": step, "versions": _versions(), **header,
                           "checksums": _checksums(tmp / "state")}, f, indent=1, default=str)
                f.flush()
                os.fsync(f.fileno())
            if final.exists():
                _remove(final)
            os.rename(tmp, final)
            _fsync_dir(directory)
    except BaseException:
        if primary:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    if primary:
        for old in list_checkpoints(directory)[:-keep]:
            _remove(old)
    _barrier(f"ckpt-done-{step}")
    return final


def _remove(path: pathlib.Path) -> None:
    """Delete a checkpoint folder so that readers see it whole or not at all: rename, then
    remove."""
    doomed = path.with_name(f".tmp-del-{path.name}")
    try:
        os.rename(path, doomed)
    except OSError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def _clean_leftovers(directory: pathlib.Path) -> None:
    """Remove the ``.tmp-`` folders of interrupted writes (the writer only, under the run
    lock)."""
    for p in directory.iterdir():
        if p.name.startswith(".tmp-"):
            shutil.rmtree(p, ignore_errors=True)


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def list_checkpoints(directory: str | os.PathLike) -> list[pathlib.Path]:
    """Complete checkpoints in `directory`, oldest first.

    Folders of writes in progress (``.tmp-*``) are skipped and never touched: they may belong
    to a fit running in another process.
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        if _NAME.match(p.name) and (p / "header.json").is_file() and (p / "state").is_dir():
            found.append(p)
    return sorted(found)


def latest_checkpoint(directory: str | os.PathLike) -> pathlib.Path | None:
    """The newest complete checkpoint in `directory`, or None (nothing is verified or deleted)."""
    ckpts = list_checkpoints(directory)
    return ckpts[-1] if ckpts else None


def _read_header(path: pathlib.Path) -> dict[str, Any]:
    try:
        header = json.loads((path / "header.json").read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: checkpoint is gone or incomplete (no header.json)") from None
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: corrupt checkpoint header ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(header, dict) or not isinstance(header.get("step"), int):
        raise DataError(f"{path}: corrupt checkpoint header (no integer 'step')")
    return header


def verify_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Check a checkpoint's files against the SHA-256 sums in its header; return the header.

    **Raises:** `DataError` naming the checkpoint and the first file that is missing,
    truncated, altered or unexpected.
    """
    path = pathlib.Path(path)
    header = _read_header(path)
    want = header.get("checksums")
    if want is None:  # written before checksums existed: nothing to compare against
        return header
    have = _checksums(path / "state")
    for name in sorted(set(want) | set(have)):
        if name not in have:
            raise DataError(f"{path}: corrupt checkpoint (file state/{name} is missing)")
        if name not in want:
            raise DataError(f"{path}: corrupt checkpoint (unexpected file state/{name})")
        if have[name] != want[name]:
            raise DataError(f"{path}: corrupt checkpoint (state/{name} does not match its "
                            "SHA-256 in header.json: truncated or altered)")
    return header


def load_checkpoint(path: str | os.PathLike, like: Any, sharding=None
                    ) -> tuple[Any, dict[str, Any]]:
    """Read a checkpoint into a pytree shaped like `like`; returns `(state, header)`.

    **Arguments:**

    - `path`: the checkpoint folder.
    - `like`: a pytree with the structure, shapes and dtypes of the saved state (e.g. a freshly
      built model and optimizer state); its non-array leaves are kept as they are.
    - `sharding`: where to put the arrays (a `jax.sharding.Sharding` for every leaf, e.g.
      replicated over the current mesh); default: the first local device.
    """
    import orbax.checkpoint as ocp

    path = pathlib.Path(path).absolute()
    arrays, rest = eqx.partition(like, eqx.is_array)
    flat, treedef = jax.tree.flatten(arrays)
    if sharding is None:
        sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = {f"leaf_{i:05d}": jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype
                                                    if not hasattr(x, "dtype") else x.dtype,
                                                    sharding=sharding)
              for i, x in enumerate(flat)}
    header = verify_checkpoint(path)
    try:
        with ocp.StandardCheckpointer() as ckptr:
            restored = ckptr.restore(path / "state", target)
    except Exception as e:  # orbax/tensorstore raise many types; the user needs one line
        raise DataError(f"{path}: cannot read checkpoint ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); was the architecture "
                        "changed since it was written?") from None
    leaves = [restored[f"leaf_{i:05d}"] for i in range(len(flat))]
    return eqx.combine(jax.tree.unflatten(treedef, leaves), rest), header
