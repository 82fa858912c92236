"""What `fit` says before its first step: the run folder, the device mesh and the data set.

A user watching a run (or reading its SLURM log) learns where its files go, what it runs on
and what it reads before the first step compiles, not at the end. Process 0 prints; the
lines go to stdout, the progress to stderr.
"""

from __future__ import annotations

import pathlib

from ..data import Dataset

__all__ = ["run_folder_line", "mesh_line", "data_line"]


def run_folder_line(run_dir: pathlib.Path, resume: bool) -> str:
    """``run folder: runs/darcy`` (and whether the run resumes there)."""
    return f"run folder: {run_dir}" + (" (resuming from its newest checkpoint)" if resume else "")


def mesh_line(mesh, batch_size: int) -> str:
    """``device mesh: data=2 over 2 cpu devices (1 process); batch 20 = 10 per data shard``."""
    import jax

    devices = list(mesh.devices.flat)
    kinds = sorted({f"{d.platform}" if d.platform == "cpu" else f"{d.platform} ({d.device_kind})"
                    for d in devices})
    axes = " x ".join(f"{a}={s}" for a, s in mesh.shape.items())
    n_proc = jax.process_count()
    per = batch_size // mesh.shape["data"]
    return (f"device mesh: {axes} over {len(devices)} {', '.join(kinds)} "
            f"device{'s' if len(devices) != 1 else ''} ({n_proc} process"
            f"{'es' if n_proc != 1 else ''}); batch {batch_size} = {per} per data shard")


def _fields(ds: Dataset) -> str:
    parts = []
    for k in ds.keys():
        unit = ds.field_attrs.get(k, {}).get("units")
        parts.append(f"{k} {tuple(ds.shape(k))}" + (f" [{unit}]" if unit else ""))
    return ", ".join(parts)


def data_line(path: str, train: Dataset, val: Dataset | None, tests: dict[str, Dataset]) -> str:
    """``data: FILE: 1000 train, 100 test samples; fields a (1, 64, 64), u (1, 64, 64)``."""
    counts = [f"{len(train)} train"]
    if val is not None:
        counts.append(f"{len(val)} val")
    counts += [f"{len(ds)} {name}" for name, ds in tests.items()]
    return f"data: {path}: {', '.join(counts)} samples; fields {_fields(train)}"
