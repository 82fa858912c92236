"""The MeshGraphNets evaluation protocol for learned simulators, and the baselines a skeptic asks
for, as plain functions over arrays of shape `(time, nodes, channels)`.

- **one-step (teacher-forced)**: every frame t of the truth in, frame t+1 out; the RMSE is
  pooled over ALL such frames, $\\sqrt{\\frac{1}{(T-1)NC}\\sum_t\\sum_i|\\hat x^{t+1}_i -
  x^{t+1}_i|^2}$ (Pfaff et al. 2021 average their 1-step error over every frame of a
  trajectory, not the first frame alone).
- **rollout-h**: the model's own predictions fed back from the start frame; the RMSE pooled
  over the first `h` steps (1, 50) and over all of them (``rollout_all``).
- **persistence**: "nothing moves": $\\hat x^{t+1} = x^t$ one step ahead, $\\hat x^{s+k} = x^s$
  in a rollout from frame `s`.
- **linear extrapolation**: $\\hat x^{t+1} = 2x^t - x^{t-1}$ one step ahead (persistence at the
  first frame, which has no predecessor), $\\hat x^{s+k} = x^s + k(x^s - x^{s-1})$ in a
  rollout from frame `s` ≥ 1 (it reads one frame before the start: the reason rollouts start
  at frame 1 by default).

Nodes that do not evolve (inflow, walls, obstacle) take their true values in every method,
as they do in a model's rollout. Every error is also given relative to the inflow speed $U$:
velocity-like fields (as many channels as the mesh has dimensions) divided by $U$, pressure
(kinematic, m²/s²) by $U^2$.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["BASELINES", "HORIZONS", "baseline_one_step", "baseline_rollout", "inflow_speed",
           "relative_scale", "rmse_table", "step_mse"]

BASELINES = ("persistence", "linear_extrapolation")
"""The baselines scored beside every model."""

HORIZONS = (1, 50)
"""Rollout horizons pooled besides the whole rollout (``rollout_all``)."""

INFLOW = 4  # MeshGraphNets' NodeType.INFLOW


def _mask(evolving) -> np.ndarray:
    m = np.asarray(evolving, bool)
    return m[:, None] if m.ndim == 1 else m


def baseline_one_step(truth: np.ndarray, evolving: np.ndarray, kind: str) -> np.ndarray:
    """Teacher-forced predictions of frames 1..T-1 by a baseline.

    **Arguments:** `truth` `(T, nodes, channels)`; `evolving` `(nodes,)` or `(nodes, channels)`
    bool: where the method predicts (elsewhere it takes the truth); `kind` one of `BASELINES`.

    **Returns:** `(T - 1, nodes, channels)`, equal to the truth on non-evolving nodes.
    """
    truth = np.asarray(truth, np.float64)
    if kind == "persistence":
        pred = truth[:-1].copy()
    elif kind == "linear_extrapolation":
        pred = truth[:-1].copy()
        pred[1:] = 2 * truth[1:-1] - truth[:-2]
    else:
        raise ValueError(f"baseline: expected one of {BASELINES}, got {kind!r}")
    return np.where(_mask(evolving)[None], pred, truth[1:])


def baseline_rollout(truth: np.ndarray, evolving: np.ndarray, kind: str, start: int,
                     steps: int) -> np.ndarray:
    """A baseline's rollout of `steps` steps from frame `start`: frames start+1..start+steps.

    Non-evolving nodes follow the truth while it lasts and then hold its last frame (as a
    model's rollout with true boundaries does).
    """
    truth = np.asarray(truth, np.float64)
    k = np.arange(1, steps + 1)[:, None, None]
    x0 = truth[start]
    if kind == "persistence" or (kind == "linear_extrapolation" and start == 0):
        pred = np.broadcast_to(x0, (steps, *x0.shape))
    elif kind == "linear_extrapolation":
        pred = x0 + k * (x0 - truth[start - 1])
    else:
        raise ValueError(f"baseline: expected one of {BASELINES}, got {kind!r}")
    idx = np.minimum(start + k[:, 0, 0], len(truth) - 1)
    return np.where(_mask(evolving)[None], pred, truth[idx])


def step_mse(pred: np.ndarray, truth: np.ndarray, fields: Sequence[str],
             channels: Sequence[int]) -> dict[str, np.ndarray]:
    """Mean squared error per step and field over all nodes and the field's channels.

    **Arguments:** `pred`, `truth` `(steps, nodes, sum(channels))`.

    **Returns:** field → `(steps,)`.
    """
    out, c0 = {}, 0
    d = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)
    for f, c in zip(fields, channels, strict=True):
        out[f] = np.mean(d[..., c0:c0 + c] ** 2, axis=(-2, -1))
        c0 += c
    return out


def inflow_speed(truth: np.ndarray, node_type: np.ndarray, channels: int) -> float | None:
    """Mean speed over the INFLOW nodes (type 4) in frame 0 of the first `channels` channels
    (the velocity): for a parabolic profile on evenly spaced nodes, the mean inflow speed.
    `None` when the mesh has no inflow node or the inflow is at rest."""
    inflow = np.asarray(node_type) == INFLOW
    if not inflow.any():
        return None
    speed = float(np.mean(np.linalg.norm(np.asarray(truth)[0, inflow, :channels], axis=-1)))
    return speed if speed > 0 else None


def relative_scale(field: str, channels: int, dim: int, speed: float | None) -> float | None:
    """What an error of `field` is divided by: $U$ for a vector field with `dim` channels
    (velocity), $U^2$ for ``pressure``/``p`` (kinematic pressure), else `None`."""
    if speed is None:
        return None
    if channels == dim:
        return speed
    if field.lower() in ("pressure", "p"):
        return speed**2
    return None


def rmse_table(one_step_mse: np.ndarray | None, rollout_mse: np.ndarray | None,
               scale: float | None) -> dict[str, float | int]:
    """The protocol's numbers from per-step MSEs: ``one_step`` (teacher-forced, pooled over
    every frame), ``rollout1``, ``rollout50``, ``rollout_all``, ``steps`` (rollout length),
    and each divided by `scale` as ``<name>_rel``. Horizons longer than the rollout are
    left out."""
    out: dict[str, float | int] = {}
    if one_step_mse is not None and len(one_step_mse):
        out["one_step"] = float(np.sqrt(np.mean(one_step_mse)))
    if rollout_mse is not None and len(rollout_mse):
        for h in HORIZONS:
            if len(rollout_mse) >= h:
                out[f"rollout{h}"] = float(np.sqrt(np.mean(rollout_mse[:h])))
        out["rollout_all"] = float(np.sqrt(np.mean(rollout_mse)))
    if scale:
        for k in list(out):
            out[f"{k}_rel"] = out[k] / scale
    if rollout_mse is not None:
        out["steps"] = int(len(rollout_mse))
    return out
