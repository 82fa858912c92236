"""Checkpoints: a JSON header (config, versions, step, metrics) plus the array leaves.

A checkpoint is a folder ``checkpoints/step_00001000/`` holding ``header.json`` and
``state.eqx`` (`equinox.tree_serialise_leaves` of the training state: model and optimizer
state). It is written under a temporary name in the same folder and renamed into place, so a
process killed mid-write (even by SIGKILL) leaves either the previous checkpoints only or the
complete new one; leftovers of an interrupted write are ignored and cleaned up. Never pickle.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import tempfile
from typing import Any

import equinox as eqx

from .._errors import DataError

__all__ = ["save_checkpoint", "latest_checkpoint", "load_checkpoint", "list_checkpoints"]

_NAME = re.compile(r"^step_(\d{8})$")


def _versions() -> dict[str, str]:
    import jax
    import optax

    import sciops

    return {"sciops": sciops.__version__, "jax": jax.__version__, "equinox": eqx.__version__,
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


def save_checkpoint(directory: str | os.PathLike, step: int, state: Any,
                    header: dict[str, Any], keep: int = 2) -> pathlib.Path:
    """Write `state` (a pytree of arrays) as the checkpoint of `step`, atomically.

    **Arguments:**

    - `directory`: the run's ``checkpoints/`` folder.
    - `step`: the number of optimizer steps taken.
    - `state`: the pytree to save (model, optimizer state).
    - `header`: JSON-serialisable metadata (config, metrics); versions are added.
    - `keep`: how many most recent checkpoints to keep.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step_{step:08d}"
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=directory))
    try:
        with open(tmp / "state.eqx", "wb") as f:
            eqx.tree_serialise_leaves(f, state)
            f.flush()
            os.fsync(f.fileno())
        with open(tmp / "header.json", "w") as f:
            json.dump({"step": step, "versions": _versions(), **header}, f, indent=1,
                      default=str)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(directory)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(directory: str | os.PathLike) -> list[pathlib.Path]:
    """Complete checkpoints in `directory`, oldest first; interrupted writes are removed."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        if p.name.startswith(".tmp-"):
            shutil.rmtree(p, ignore_errors=True)
            continue
        if _NAME.match(p.name) and (p / "header.json").is_file() and (p / "state.eqx").is_file():
            found.append(p)
    return sorted(found)


def latest_checkpoint(directory: str | os.PathLike) -> pathlib.Path | None:
    ckpts = list_checkpoints(directory)
    return ckpts[-1] if ckpts else None


def load_checkpoint(path: str | os.PathLike, like: Any) -> tuple[Any, dict[str, Any]]:
    """Read a checkpoint into a pytree shaped like `like`; returns `(state, header)`."""
    path = pathlib.Path(path)
    try:
        header = json.loads((path / "header.json").read_text())
        with open(path / "state.eqx", "rb") as f:
            state = eqx.tree_deserialise_leaves(f, like)
    except (OSError, ValueError, RuntimeError) as e:
        raise DataError(f"{path}: cannot read checkpoint ({e}); was the architecture changed "
                        "since it was written?") from None
    return state, header
