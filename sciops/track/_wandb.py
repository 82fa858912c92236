"""Weights & Biases (the `track` extra): the same records, figures and config as TensorBoard."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from typing import Any

from .._errors import ConfigError
from ._tracker import Tracker


class WandbTracker(Tracker):
    """Sends the metrics as ``<split>/<metric>`` at their step, figures as `wandb.Image`, the
    config as the run's config and the final metrics as its summary.

    The project, entity and mode come from W&B's own settings (`WANDB_PROJECT`, `wandb login`,
    `WANDB_MODE=offline` to log without a network; `wandb sync` uploads later); the project
    defaults to ``sciops``.

    `close` finishes the W&B run; W&B's service then writes out and closes the run's files in
    the background. They are complete when the process exits, or after `wandb.teardown()`,
    which waits for the service (call it before reading or syncing an offline run from the
    same Python session).

    **Arguments:**

    - `run_dir`: the run folder (W&B keeps its files in ``<run_dir>/wandb``).
    - `name`: the W&B run name (the config's `name`).
    - `resume`: continue the W&B run of this run folder (its id is kept in
      ``<run_dir>/wandb_run_id``).
    """

    def __init__(self, run_dir: str | os.PathLike, *, name: str, resume: bool = False):
        try:
            import wandb
        except ImportError:
            raise ConfigError("train.trackers: 'wandb' needs the wandb package: pip install "
                              "'sciops[track]'") from None
        self._wandb = wandb
        run_dir = pathlib.Path(run_dir)
        id_file = run_dir / "wandb_run_id"
        run_id = id_file.read_text().strip() if resume and id_file.exists() else None
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "sciops"), name=name,
                              dir=str(run_dir), id=run_id,
                              resume="allow" if run_id else None, reinit="create_new")
        id_file.write_text(self.run.id + "\n")

    def log_record(self, record: Mapping[str, Any]) -> None:
        split = str(record.get("split", "train"))
        values = {f"{split}/{k}": float(v) for k, v in record.items()
                  if k not in ("step", "split") and isinstance(v, int | float)}
        self.run.log(values, step=int(record["step"]))

    def log_image(self, name: str, png: str | os.PathLike, step: int) -> None:
        self.run.log({name: self._wandb.Image(str(png))}, step=step)

    def log_config(self, config: Mapping[str, Any],
                   final: Mapping[str, Mapping[str, float]]) -> None:
        self.run.config.update(dict(config), allow_val_change=True)
        self.run.summary.update({f"final/{split}/{k}": float(v) for split, m in final.items()
                                 for k, v in m.items()})

    def close(self) -> None:
        self.run.finish()
