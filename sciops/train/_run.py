"""A run folder read back: config, family and the model of a checkpoint (`load_run`).

Reading takes no lock and writes nothing, so it is safe while a fit is writing the folder: a
checkpoint pruned by the writer between listing and reading is retried with the newest one.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any

import equinox as eqx
import jax
import yaml

from .._errors import DataError
from ..data import read_hdf5
from ..models import Family
from ..models import family as get_family
from ._checkpoint import latest_checkpoint, load_checkpoint
from ._config import Config, config_from_dict
from ._optimizer import make_optimizer
from ._partition import trainable_filter

__all__ = ["Run", "RunResult", "load_run", "SAMPLE_FILE", "model_like"]

SAMPLE_FILE = "train_sample.h5"
"""The run folder's file of a few training samples (sciops HDF5): enough to rebuild the model's
shapes when the run is read back, and it carries the data's field units."""


@dataclasses.dataclass
class RunResult:
    """What `fit` returns: the run folder, the final model and the final test metrics."""

    run_dir: pathlib.Path
    model: Any
    metrics: dict[str, dict[str, float]]
    steps: int


@dataclasses.dataclass
class Run:
    """A finished (or interrupted, or running) run read back from its folder."""

    run_dir: pathlib.Path
    config: Config
    family: Family
    model: Any
    step: int


def model_like(config: Config, fam: Family, sample) -> tuple[Any, Any]:
    """A model of the run's architecture and its trainable-leaf selection (for loading)."""
    like = fam.build(config.model, sample, key=jax.random.key(0))
    spec = trainable_filter(like, config.transfer.trainable if config.transfer else None,
                            base=fam.trainable(like))
    return like, spec


def load_run(run_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None) -> Run:
    """Read a run folder back: its config, family and the model of a checkpoint.

    **Arguments:**

    - `run_dir`: the run folder.
    - `checkpoint`: a checkpoint folder (default: the newest complete one).

    **Raises:** `DataError` naming the folder when it is not a run, has no checkpoint yet,
    or its checkpoint is corrupt.
    """
    run_dir = pathlib.Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise DataError(f"{run_dir}: not a run folder (no config.yaml)")
    config = config_from_dict(yaml.safe_load(cfg_path.read_text()))
    fam = get_family(config.family)
    like, spec = model_like(config, fam, read_hdf5(run_dir / SAMPLE_FILE, lazy=False))
    opt_like = make_optimizer(config.train.optimizer, config.train.steps).init(
        eqx.filter(like, spec))
    for _ in range(5):  # a fit running in another process may prune what we listed
        ckpt = pathlib.Path(checkpoint) if checkpoint else latest_checkpoint(run_dir / "checkpoints")
        if ckpt is None:
            raise DataError(f"{run_dir}: no complete checkpoint in {run_dir / 'checkpoints'} "
                            "(yet)")
        try:
            (model, _), header = load_checkpoint(ckpt, (like, opt_like))
            break
        except DataError:
            if checkpoint or ckpt.exists():
                raise
    else:
        raise DataError(f"{run_dir}: its checkpoints kept being replaced while reading; retry")
    return Run(run_dir=run_dir, config=config, family=fam, model=model, step=int(header["step"]))
