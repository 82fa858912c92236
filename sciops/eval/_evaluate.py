"""Evaluate a finished (or running) run on its test sets, or on other files.

Data are read exactly as `fit` read them: a relative ``data.path`` is resolved against the
working directory the run was started in (``run.json``), a missing file is an error (never
regenerated behind the user's back), and a file given with ``--data`` must fit the run's model
(the family's `build` accepts it and gives the same parameter shapes) and hold no NaN/Inf.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import equinox as eqx
import jax
import numpy as np

from .._errors import DataError
from .._progress import Progress
from ..train import (
    DataConfig,
    Run,
    check_finite,
    evaluate_dataset,
    load_run,
    make_mesh,
    prepare_data,
    read_data,
    run_info,
)

__all__ = ["evaluate_run"]


def _resolved(run: Run) -> DataConfig:
    """The run's data section with paths resolved against its working directory, no generation."""
    cwd = pathlib.Path(run_info(run.run_dir).get("cwd", os.getcwd()))
    data = run.config.data

    def at(p: str) -> str:
        return str(p if pathlib.Path(p).is_absolute() else cwd / p)

    return dataclasses.replace(data, path=at(data.path), generate=None,
                               test={k: at(v) for k, v in data.test.items()})


def _shapes(model) -> list:
    return [(tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


def _checked(run: Run, path: str):
    """A `--data` file read as the run's own files are, and checked against its model."""
    cfg = run.config
    ds = dataclasses.replace(cfg.data, path=path, generate=None, n_train=None, n_val=0, n_test=0)
    dataset = read_data(ds, path)  # with the run's reader options (format, keys, layout...)
    check_finite(dataset, path, "data")
    try:
        like = run.family.build(cfg.model, dataset.subset(np.arange(min(len(dataset), 4))),
                                key=jax.random.key(0))
    except (DataError, KeyError, ValueError, TypeError, IndexError) as e:
        raise DataError(f"--data {path}: does not fit this {run.family.name!r} run: {e}") from None
    if _shapes(like) != _shapes(run.model):
        raise DataError(f"--data {path}: its fields give a model of other shapes than the "
                        f"run's (a {run.family.name!r} model for other data)")
    return dataset


def evaluate_run(run_dir: str | os.PathLike, data: list[str] | None = None,
                 plots: bool = True, progress: bool = False) -> dict[str, dict[str, float]]:
    """Per-test-set mean metrics of a run's last checkpoint.

    **Arguments:**

    - `run_dir`: the run folder.
    - `data`: data files to evaluate on instead of the run's own test sets (each named by its
      file stem), read with the run's `data` reader options and checked against its model.
    - `plots`: write ``prediction_<set>.png`` comparison figures in the run folder.
    - `progress`: report each set's progress on stderr (a bar on a terminal, lines in logs).

    **Returns:** ``{test_set: {metric: value}}``.

    **Raises:** `DataError` naming the file when it is missing, does not fit the run's model,
    or holds NaN/Inf.
    """
    run = load_run(run_dir)
    cfg = run.config
    if data:
        sets = {pathlib.Path(p).stem: _checked(run, p) for p in data}
    else:
        bundle = prepare_data(_resolved(run), progress=False)
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
        bar = Progress(len(ds), f"evaluate {name}", unit="sample") if progress else None
        try:
            out[name] = evaluate_dataset(run.family, cfg.model, run.model, ds,
                                         cfg.train.eval_batch_size, mesh,
                                         on_batch=None if bar is None else bar.update)
        finally:
            if bar is not None:
                bar.close()
        if plots and run.family.plot is not None:
            batch = ds.take(np.arange(min(len(ds), 4)))
            run.family.plot(cfg.model, run.model, batch,
                            pathlib.Path(run_dir) / f"prediction_{name}.png",
                            fields=getattr(ds, "field_attrs", None),
                            sample_ids=getattr(ds, "indices", np.arange(4))[:4])
    return out
