"""TensorBoard event files in the run folder (tensorboardX writes them; `tensorboard --logdir
runs` shows every run)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from typing import Any

from ._tracker import Tracker, flatten_config


class TensorBoardTracker(Tracker):
    """Writes scalars as ``<split>/<metric>`` (``train/loss``, ``test/l2``), figures as images,
    the config as text and as hyper-parameters (HPARAMS tab, with the final metrics as
    ``final/<split>/<metric>``), into TensorBoard event files in `logdir`.

    **Arguments:**

    - `logdir`: the folder of the event files (`fit` uses the run folder itself).
    - `resume_step`: when resuming, events after this step are purged, so the curves continue
      from the checkpoint instead of doubling back.
    """

    def __init__(self, logdir: str | os.PathLike, *, resume_step: int | None = None):
        from tensorboardX import SummaryWriter

        self.logdir = pathlib.Path(logdir)
        self.writer = SummaryWriter(logdir=str(self.logdir), purge_step=resume_step,
                                    flush_secs=10)

    def log_record(self, record: Mapping[str, Any]) -> None:
        step, split = int(record["step"]), str(record.get("split", "train"))
        for metric, value in record.items():
            if metric not in ("step", "split") and isinstance(value, int | float):
                self.writer.add_scalar(f"{split}/{metric}", float(value), step)
        if split != "train":  # evaluations are rare: show them at once
            self.writer.flush()

    def log_image(self, name: str, png: str | os.PathLike, step: int) -> None:
        from ..plot import read_png

        self.writer.add_image(name, read_png(png), step, dataformats="HWC")

    def log_config(self, config: Mapping[str, Any],
                   final: Mapping[str, Mapping[str, float]]) -> None:
        import yaml
        from tensorboardX.summary import hparams

        self.writer.add_text("config", "```yaml\n" + yaml.safe_dump(dict(config), sort_keys=False)
                             + "```")
        metrics = {f"final/{split}/{k}": float(v) for split, m in final.items()
                   for k, v in m.items()}
        # the hyper-parameter session goes into this run's own event file (add_hparams would
        # open a second run in a sub-folder)
        for summary in hparams(flatten_config(config), metrics):
            self.writer.file_writer.add_summary(summary)
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
