"""Evaluate a finished run on its test sets (or on other files), and draw its loss curve."""

from __future__ import annotations

import os
import pathlib

import numpy as np

from .._errors import DataError
from ..data import read_hdf5
from ..train import load_run, make_mesh
from ..train._data import prepare_data

__all__ = ["evaluate_run"]


def evaluate_run(run_dir: str | os.PathLike, data: list[str] | None = None,
                 plots: bool = True) -> dict[str, dict[str, float]]:
    """Per-test-set mean metrics of a run's last checkpoint.

    **Arguments:**

    - `run_dir`: the run folder.
    - `data`: HDF5 files to evaluate on instead of the run's own test sets (each named by its
      file stem).
    - `plots`: write ``prediction_<set>.png`` comparison figures in the run folder.

    **Returns:** ``{test_set: {metric: value}}``.
    """
    from ..train import evaluate_dataset

    run = load_run(run_dir)
    cfg = run.config
    if data:
        sets = {}
        for path in data:
            sets[pathlib.Path(path).stem] = read_hdf5(path)
    else:
        bundle = prepare_data(cfg.data, progress=False)
        sets = dict(bundle.tests)
        if not sets and bundle.val is not None:
            sets["val"] = bundle.val
    if not sets:
        raise DataError(f"{run_dir}: the run has no test sets; pass --data FILE")
    if run.family.prepare is not None:
        sets = {k: run.family.prepare(cfg.model, v) for k, v in sets.items()}
    mesh = make_mesh({"data": 1})
    out = {}
    for name, ds in sets.items():
        out[name] = evaluate_dataset(run.family, cfg.model, run.model, ds,
                                     cfg.train.eval_batch_size, mesh)
        if plots and run.family.plot is not None:
            batch = ds.take(np.arange(min(len(ds), 4)))
            run.family.plot(cfg.model, run.model, batch,
                            pathlib.Path(run_dir) / f"prediction_{name}.png",
                            fields=getattr(ds, "field_attrs", None),
                            sample_ids=getattr(ds, "indices", np.arange(4))[:4])
    return out
