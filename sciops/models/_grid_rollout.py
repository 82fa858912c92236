"""Rollouts of grid simulators (`sciops rollout RUN --data FILE`): frames, per-step errors, a
snapshot grid and an animation.

A *grid simulator* is a model with

- `history: int`: how many past frames one step reads;
- `state_field: str`: the data field holding the frames, `(samples, time, *spatial)`;
- `cond_fields: tuple[str, ...]`: data fields passed unchanged to every step (e.g. the wave
  speed ``c`` `(samples, 1, *spatial)`);
- `step(frames (history, *spatial), *conds) -> (*spatial)`: the next frame.

`sciops.models.wavecnn.WaveCNN` is one. The rollout starts from the first `history` frames of
each trajectory; `autoregressive` feeds predictions back, `teacher_forced` starts every step
from true frames (the one-step error at each time). With `boundary="truth"` the outermost ring
of grid nodes of each predicted frame is replaced by the true values before it is fed back (the
boundary condition is known data, as in MeshGraphNets' handling of boundary nodes); with
`boundary="hold"` it keeps the values of the last input frame; with `boundary="model"` the
prediction is kept as is. `mode` accepts `teacher-forced` for `teacher_forced` (the CLI's
spelling).

Every rollout is scored beside the trivial simulators a skeptic would ask for, run through the
same protocol (window, mode, boundary ring): *persistence* (the next frame equals the last one,
"predict no change") and, for models that read at least two frames, *linear extrapolation*
$u^{n+1} = 2u^n - u^{n-1}$ (for the wave equation, the leapfrog step without its Laplacian
term).
"""

from __future__ import annotations

import csv
import json
import pathlib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ConfigError, DataError
from ..data import read_hdf5, write_hdf5

__all__ = ["GRID_BASELINES", "GridBaseline", "grid_rollout", "rollout", "simulate_frames"]

GRID_BASELINES = ("persistence", "linear_extrapolation")
"""The baselines every grid rollout reports beside the model (`linear_extrapolation` only for
models with `history` >= 2)."""


def _ring(shape: tuple[int, ...]) -> np.ndarray:
    """1 on the outermost nodes of a grid, 0 inside."""
    mask = np.ones(shape, np.float32)
    mask[tuple(slice(1, -1) for _ in shape)] = 0
    return mask


def simulate_frames(model, frames, conds, truth, *, mode: str = "autoregressive",
                    boundary: str = "truth"):
    """Roll one trajectory: `frames` `(history, *spatial)`, `truth` `(steps, *spatial)` (used for
    teacher forcing and the boundary ring). **Returns:** the predicted `(steps, *spatial)`."""
    ring = jnp.asarray(_ring(truth.shape[1:]), truth.dtype) if boundary != "model" else None
    held = frames[-1]

    def body(window, true_next):
        nxt = model.step(window, *conds)
        if ring is not None:
            nxt = ring * (true_next if boundary == "truth" else held) + (1 - ring) * nxt
        fed = true_next if mode == "teacher_forced" else nxt
        return jnp.concatenate([window[1:], fed[None]], axis=0), nxt

    _, out = jax.lax.scan(body, frames, truth)
    return out


class GridBaseline(eqx.Module):
    """A trivial grid simulator with a model's `step(frames, *conds)`: `kind` is
    ``"persistence"`` (the last frame) or ``"linear_extrapolation"`` (twice the last frame minus
    the one before); run it with `simulate_frames` like a trained model."""

    kind: str = eqx.field(static=True)

    def step(self, frames, *conds):
        if self.kind == "persistence":
            return frames[-1]
        return 2 * frames[-1] - frames[-2]


def _errors(pred: np.ndarray, truth: np.ndarray):
    """Per trajectory and step: relative L2, RMSE, and the relative L2 pooled over steps 1..t."""
    axes = tuple(range(2, pred.ndim))
    err2 = np.sum((pred - truth) ** 2, axis=axes)
    true2 = np.sum(truth**2, axis=axes)
    rel = np.sqrt(err2 / np.maximum(true2, 1e-30))
    rmse = np.sqrt(err2 / np.prod(truth.shape[2:]))
    cumulative = np.sqrt(np.cumsum(err2, axis=1) / np.maximum(np.cumsum(true2, axis=1), 1e-30))
    return rel, rmse, cumulative


@eqx.filter_jit
def _roll(model, u, conds, k: int, steps: int, mode: str, boundary: str):
    """A batch of trajectories (compiled once per model structure, batch shape and options,
    not once per `rollout` call)."""
    return jax.vmap(lambda traj, *cs: simulate_frames(
        model, traj[:k], cs, traj[k:k + steps], mode=mode, boundary=boundary))(u, *conds)


def rollout(run, data_path, *, steps: int | None = None,
            mode: str = "autoregressive", boundary: str = "truth", out_dir, progress: bool = True,
            samples: int | None = None, batch_size: int = 8, animation: bool = True,
            plots: bool = True) -> dict:
    """Roll a trained grid simulator over the trajectories of an HDF5 data set and write:

    - `rollout.h5`: ``pred`` and ``truth`` `(samples, steps, *spatial)`, ``rel_l2`` `(samples,
      steps)` (sciops HDF5 schema);
    - `errors.csv` and `errors.json`: per step, the relative L2 error
      $\\|\\hat u_t - u_t\\| / \\|u_t\\|$ and RMSE, averaged over trajectories, and the
      cumulative relative L2 over steps $1..t$;
    - `snapshots.png`: truth / prediction / error for the first trajectory at 5 times;
    - `rollout.gif`: an animation of the first trajectory (pillow writer).

    The same errors of the baselines (`GRID_BASELINES`, see the module docstring), rolled with
    the same `mode` and `boundary`, go into the summary and the CSV (columns
    ``<baseline>_rel_l2``), so that the model's error is never read alone.

    **Arguments:**

    - `run`: a loaded run with `.model` (a grid simulator, see the module docstring), `.config`
      and `.family`.
    - `data_path`: the HDF5 file; `samples`: roll only the first `samples` trajectories.
    - `steps`: steps to roll (default: every frame after the first `history`).
    - `mode`, `boundary`: see the module docstring; `out_dir`: where the files go.
    - `animation`: write `rollout.gif` (False: skip it; drawing the frames costs more than a
      small rollout itself).
    - `plots`: write `snapshots.png` and the GIF (False: only the frames and errors).

    **Returns:** a summary dict: `steps`, `mode`, `boundary`, `rel_l2` (per step), `rmse` (per
    step), `rel_l2_final`, `rel_l2_total` (the relative L2 pooled over all steps, averaged over
    trajectories), `baselines` (``{name: {"rel_l2", "rel_l2_final", "rel_l2_total"}}``),
    `files`.
    """
    model = run.model
    for attr in ("history", "state_field", "cond_fields", "step"):
        if not hasattr(model, attr):
            raise ConfigError(f"rollout: model family {run.family.name!r} is not "
                              f"a grid simulator (no {attr!r}); rollout needs frames in time")
    mode = "teacher_forced" if mode == "teacher-forced" else mode
    if mode not in ("autoregressive", "teacher_forced"):
        raise ConfigError(f"mode: expected 'autoregressive' or 'teacher_forced', got {mode!r}")
    if boundary not in ("truth", "hold", "model"):
        raise ConfigError(f"boundary: expected 'truth', 'hold' or 'model', got {boundary!r}")
    k = model.history
    ds = read_hdf5(data_path, keys=[model.state_field, *model.cond_fields])
    n = len(ds) if samples is None else min(samples, len(ds))
    n_frames = ds.shape(model.state_field)[0]
    available = n_frames - k
    if available < 1:
        raise DataError(f"{data_path}: field {model.state_field!r} has {n_frames} frames, fewer "
                        f"than model.history + 1 = {k + 1}")
    steps = available if steps is None else steps
    if not isinstance(steps, int) or steps < 1 or steps > available:
        raise ConfigError(f"steps: expected an integer in [1, {available}] ({n_frames} frames, "
                          f"history {k}), got {steps!r}")

    baselines = [b for b in GRID_BASELINES if k >= 2 or b == "persistence"]
    preds, truths, base = [], [], {b: [] for b in baselines}
    starts = range(0, n, batch_size)
    if progress:
        from .._progress import progress as _progress
        starts = _progress(starts, desc="rollout", unit="batch")
    for i in starts:
        b = ds.take(np.arange(i, min(i + batch_size, n)))
        u = jnp.asarray(b[model.state_field])
        conds = tuple(jnp.asarray(b[c]) for c in model.cond_fields)
        preds.append(np.asarray(_roll(model, u, conds, k, steps, mode, boundary)))
        for name in baselines:
            base[name].append(np.asarray(_roll(GridBaseline(name), u, conds, k, steps, mode,
                                               boundary)))
        truths.append(np.asarray(u[:, k:k + steps]))
    pred = np.concatenate(preds)
    truth = np.concatenate(truths).astype(pred.dtype)
    axes = tuple(range(2, pred.ndim))
    rel, rmse, cumulative = _errors(pred, truth)
    scores = {}
    for name, parts in base.items():
        b_rel, _, b_cum = _errors(np.concatenate(parts).astype(pred.dtype), truth)
        scores[name] = {"rel_l2": b_rel.mean(0).tolist(),
                        "rel_l2_final": float(b_rel[:, -1].mean()),
                        "rel_l2_total": float(b_cum[:, -1].mean())}

    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"frames": str(out / "rollout.h5"), "csv": str(out / "errors.csv"),
             "json": str(out / "errors.json"), "snapshots": str(out / "snapshots.png"),
             "animation": str(out / "rollout.gif")}
    write_hdf5(files["frames"], {"pred": pred, "truth": truth, "rel_l2": rel},
               attrs={"source": str(data_path), "mode": mode, "boundary": boundary,
                      "history": k, "steps": steps},
               field_attrs={"pred": {"layout": "samples time " + " ".join("yx"[-len(axes):])},
                            "truth": {"layout": "samples time " + " ".join("yx"[-len(axes):])}})
    per_step = {"step": list(range(1, steps + 1)),
                "rel_l2": rel.mean(0).tolist(), "rmse": rmse.mean(0).tolist(),
                "rel_l2_cumulative": cumulative.mean(0).tolist(),
                **{f"{name}_rel_l2": v["rel_l2"] for name, v in scores.items()}}
    with open(files["csv"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(per_step))
        w.writerows(zip(*per_step.values(), strict=False))
    summary = {"steps": steps, "samples": n, "mode": mode, "boundary": boundary,
               "rel_l2": per_step["rel_l2"], "rmse": per_step["rmse"],
               "rel_l2_final": float(rel[:, -1].mean()),
               "rel_l2_total": float(cumulative[:, -1].mean()), "baselines": scores,
               "files": files}
    pathlib.Path(files["json"]).write_text(json.dumps(summary, indent=1))
    if truth.ndim == 4 and plots:  # 2-D fields: pictures
        name = model.state_field
        unit = str(ds.field_attrs.get(name, {}).get("units") or "1")
        _snapshots(truth[0], pred[0], files["snapshots"], name, unit)
        if animation:
            _animation(truth[0], pred[0], files["animation"], name, unit)
        else:
            del files["animation"]
    else:
        del files["snapshots"], files["animation"]
    return summary


def _columns(truth, pred, name: str, unit: str):
    from ..plot import Column

    return [Column(f"truth {name}", truth, unit, scale="u"),
            Column(f"prediction {name}", pred, unit, scale="u"),
            Column("error (prediction − truth)", pred - truth, unit, diverging=True)]


def _snapshots(truth, pred, path, name: str = "u", unit: str = "1") -> None:
    """Truth, prediction and error at five times of the rollout of trajectory 0."""
    from ..plot import plot_fields

    steps = truth.shape[0]
    times = sorted(set(np.linspace(0, steps - 1, 5).round().astype(int).tolist()))
    plot_fields(_columns(truth[times], pred[times], name, unit),
                row_labels=[f"step {t + 1}" for t in times],
                title=f"Rollout of trajectory 0: {name}", path=path)


def _animation(truth, pred, path, name: str = "u", unit: str = "1", max_frames: int = 60) -> None:
    """An animated GIF of truth, prediction and error over the rollout of trajectory 0."""
    from ..plot import animate_fields

    animate_fields(_columns(truth, pred, name, unit),
                   frame_labels=[f"step {t + 1}" for t in range(truth.shape[0])],
                   title=f"Rollout of trajectory 0: {name}", path=path, max_frames=max_frames)


grid_rollout = rollout
"""`rollout` under its public name in `sciops.eval`."""
