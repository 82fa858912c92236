"""The loss curve of a run, drawn from its `metrics.jsonl` (by `sciops.plot`)."""

from __future__ import annotations

import os

__all__ = ["plot_loss_curve"]


def plot_loss_curve(metrics_path: str | os.PathLike, png: str | os.PathLike) -> None:
    """Training loss and every evaluated metric against the step, from `metrics.jsonl`: see
    `sciops.plot.plot_loss_curve`."""
    from ..plot import plot_loss_curve as _plot

    _plot(metrics_path, png)
