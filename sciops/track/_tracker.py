"""The tracker interface, the fan-out `fit` holds, and the registry of tracker names."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .._errors import ConfigError


class Tracker:
    """The callbacks `fit` makes to an experiment tracker, all no-ops here.

    A record is what `fit` appends to `metrics.jsonl`: ``{"step": int, "split": str,
    metric: float, ...}`` with the split ``train`` (loss, auxiliary losses, throughput) or an
    evaluation set (``val``, ``test``, ...). Subclass and override what the tracker stores.
    """

    def log_record(self, record: Mapping[str, Any]) -> None:
        """One metrics record (step, split and its metrics)."""

    def log_image(self, name: str, png: str | os.PathLike, step: int) -> None:
        """A figure of the run (a PNG file `fit` wrote), under `name`, at `step`."""

    def log_config(self, config: Mapping[str, Any], final: Mapping[str, Mapping[str, float]],
                   ) -> None:
        """At the end of the run: the config (nested, as in `config.yaml`) as hyper-parameters,
        with the final metrics by split."""

    def close(self) -> None:
        """Flush and release the tracker's files."""


class Trackers(Tracker):
    """Several trackers behind one: each call goes to every one of them, in order.

    **Arguments:**

    - `trackers`: the trackers (an empty sequence gives a tracker that does nothing).
    """

    def __init__(self, trackers: Sequence[Tracker] = ()):
        self.trackers = list(trackers)

    def log_record(self, record):
        for t in self.trackers:
            t.log_record(record)

    def log_image(self, name, png, step):
        for t in self.trackers:
            t.log_image(name, png, step)

    def log_config(self, config, final):
        for t in self.trackers:
            t.log_config(config, final)

    def close(self):
        for t in self.trackers:
            t.close()


def _tensorboard(run_dir, name, resume_step):
    from ._tensorboard import TensorBoardTracker

    return TensorBoardTracker(run_dir, resume_step=resume_step)


def _csv(run_dir, name, resume_step):
    from ._csv import CSVTracker

    return CSVTracker(pathlib.Path(run_dir) / "metrics.csv", resume_step=resume_step)


def _wandb(run_dir, name, resume_step):
    from ._wandb import WandbTracker

    return WandbTracker(run_dir, name=name, resume=resume_step is not None)


TRACKERS: dict[str, Callable[..., Tracker]] = {
    "tensorboard": _tensorboard, "csv": _csv, "wandb": _wandb}
"""Tracker name (as `train.trackers` lists it) → a factory `(run_dir, name, resume_step)`."""


def open_trackers(names: Iterable[str], run_dir: str | os.PathLike, *, name: str,
                  resume_step: int | None = None) -> Trackers:
    """The trackers `names` for the run folder `run_dir`.

    **Arguments:**

    - `names`: tracker names, from `TRACKERS` (`train.trackers`).
    - `run_dir`: the run folder; the trackers write there.
    - `name`: the run's name (the W&B run name).
    - `resume_step`: when resuming, the checkpoint's step: what was logged after it is dropped
      (TensorBoard purges it, the CSV rewrites itself), as `metrics.jsonl` does.

    **Returns:** one `Trackers`; an unknown name is a `ConfigError` on `train.trackers`.
    """
    names = list(names)
    for n in names:
        if n not in TRACKERS:
            raise ConfigError(f"train.trackers: unknown tracker {n!r}; known: "
                              + ", ".join(TRACKERS))
    return Trackers([TRACKERS[n](run_dir, name, resume_step) for n in names])


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """A nested config as flat ``dotted.key → value`` hyper-parameters: numbers, booleans and
    strings as they are, `None` as ``"none"``, lists and mappings without nesting as text
    (``"[16, 16]"``), as TensorBoard's and W&B's hyper-parameter tables take them."""
    out: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_config(value, f"{path}."))
        elif isinstance(value, bool | int | float | str):
            out[path] = value
        elif value is None:
            out[path] = "none"
        else:
            out[path] = str(list(value) if isinstance(value, tuple) else value)
    return out
