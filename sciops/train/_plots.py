"""The loss curve of a run, drawn from its `metrics.jsonl`."""

from __future__ import annotations

import json
import os
import pathlib

__all__ = ["plot_loss_curve"]


def plot_loss_curve(metrics_path: str | os.PathLike, png: str | os.PathLike) -> None:
    """Training loss (and every evaluated metric) against step, from `metrics.jsonl`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(ln) for ln in pathlib.Path(metrics_path).read_text().splitlines()
               if ln.strip()]
    train = [(r["step"], r["loss"]) for r in records if r.get("split") == "train"]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    if train:
        s, v = zip(*train, strict=True)
        ax.plot(s, v, label="train loss")
    evals: dict[str, list] = {}
    for r in records:
        if r.get("split") not in (None, "train"):
            for k, v in r.items():
                if k not in ("step", "split") and isinstance(v, (int, float)) and "/" not in k:
                    evals.setdefault(f"{r['split']} {k}", []).append((r["step"], v))
    for label, pts in evals.items():
        s, v = zip(*pts, strict=True)
        ax.plot(s, v, "o--", label=label, ms=3)
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
