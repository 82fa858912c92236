"""Rollout of a trained mesh simulator on users' trajectories (`sciops rollout`), scored by the
MeshGraphNets protocol beside the persistence and linear-extrapolation baselines.

For every trajectory of the input the model is scored twice (see `sciops.models.meshformer._metrics`):
teacher-forced one step ahead from EVERY frame of the truth, and autoregressively from frame
`start` (its own predictions fed back) for `steps` steps. After each step the nodes that do
not evolve (inflow, walls, obstacle: node types outside the run's `loss_node_types`) take the
boundary values: the truth at that step (``boundary="truth"``) or their values at the start
(``"hold"``). Past the end of the truth the rollout goes on with the last true boundary
values, and without metrics.

Written per trajectory into `out_dir` (only when the whole rollout succeeds: a failed one
leaves no folder behind): ``<name>_prediction.xdmf`` (+ ``.h5``: one mesh block with the
input's field names, node types and units, opened by ParaView), ``<name>_rollout.gif``
(truth / prediction / error of each field's magnitude over time), snapshots at the first,
middle and last step; for all trajectories ``metrics.json`` (per field: ``one_step``,
``rollout1``, ``rollout50``, ``rollout_all`` and each ``_rel`` to the inflow speed, for the
model, ``persistence`` and ``linear_extrapolation``), ``rmse_per_step.csv`` and
``rmse_vs_step.png``. ``plots=False`` leaves out the PNGs and the GIF.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import shutil
import tempfile
from typing import Any

import equinox as eqx
import jax
import numpy as np

from ..._errors import ConfigError, DataError
from ...data import MeshField, write_xdmf
from ._family import mesh_columns
from ._metrics import (
    BASELINES,
    baseline_one_step,
    baseline_rollout,
    inflow_speed,
    relative_scale,
    rmse_table,
    step_mse,
)

__all__ = ["format_rollout_table", "mesh_rollout", "rollout"]

METHODS = ("model", *BASELINES)


# Compiled once per process for each model structure and chunk shape (not once per `rollout`
# call): a module-level `filter_jit` keeps its cache across calls, so rolling several files or
# runs of the same model pays the compilation once.
@eqx.filter_jit
def _advance(model, sample, x, bvals):
    return model.rollout(sample, x, bvals)


@eqx.filter_jit
def _forced(model, sample, xs):
    return jax.vmap(lambda x: model.step(sample, x))(xs)


def _trajectories(data_path: pathlib.Path, fields=None, node_types=None
                  ) -> list[tuple[str, MeshField, dict[str, str]]]:
    """(name, trajectory, units) of every trajectory in `data_path` (any source
    `sciops.data.read_mesh_trajectories` reads, with its field mapping and node-type rule)."""
    from ...data import read_mesh_trajectories

    if not any(c in str(data_path) for c in "*?[") and not data_path.exists():
        raise DataError(f"{data_path}: data file not found")
    return read_mesh_trajectories(data_path, fields=fields, node_types=node_types,
                                  with_names=True)


def _check(name: str, mesh: MeshField, model, path) -> None:
    """DataError when the mesh does not fit the run (fields, channels, node types, dims)."""
    where = f"{path} ({name})"
    for fields, channels in ((model.state_fields, model.state_channels),
                             (model.output_fields, model.output_channels)):
        for f, c in zip(fields, channels, strict=False):
            if f not in mesh.fields:
                raise DataError(f"{where}: the run needs field {f!r}; the file has "
                                f"{', '.join(mesh.fields) or 'no fields'}")
            got = int(mesh.fields[f].shape[2])
            if got != c:
                raise DataError(f"{where}: field {f!r} has {got} channels, the run was trained "
                                f"with {c}")
    if mesh.node_type is None:
        raise DataError(f"{where}: no node_type field; the run needs node types")
    dim = int(np.asarray(model.pos_norm.mean).shape[-1])
    if mesh.points.shape[1] != dim:
        raise DataError(f"{where}: points are {mesh.points.shape[1]}-D, the run is {dim}-D")
    types = set(np.unique(np.asarray(mesh.node_type)).tolist())
    unknown = sorted(types - set(model.known_node_types))
    if unknown:
        raise DataError(f"{where}: node types {unknown} never occur in the run's training data "
                        f"(known: {list(model.known_node_types)})")
    if not types & set(model.evolving_types):
        raise DataError(f"{where}: no node has an evolving type {list(model.evolving_types)}")
    if mesh.n_times < 1:
        raise DataError(f"{where}: the trajectory has no time steps")


def _sample(family, model_config, mesh: MeshField) -> dict[str, np.ndarray]:
    """One trajectory in the padded data-set layout (no padding needed), graph fields added."""
    from ...data import Dataset

    n = mesh.n_nodes
    arrays: dict[str, Any] = {
        "points": np.asarray(mesh.points, np.float32)[None],
        "node_mask": np.ones((1, n), bool),
        "n_nodes": np.array([n], np.int32),
        "node_type": np.asarray(mesh.node_type, np.int32)[None],
    }
    for t, c in mesh.cells.items():
        arrays[f"cells_{t}"] = np.asarray(c, np.int32)[None]
        arrays[f"cells_{t}_mask"] = np.ones((1, len(c)), bool)
    ds = family.prepare(model_config, Dataset(arrays, {}, name="rollout"))
    return {k: v[0] for k, v in ds.take([0]).items()}


def _magnitude(a: np.ndarray, c0: int, c: int) -> np.ndarray:
    return np.linalg.norm(a[..., c0:c0 + c], axis=-1) if c > 1 else a[..., c0]


def _label(field: str, c: int) -> str:
    return f"|{field}|" if c > 1 else field


def _view(mesh: MeshField):
    """`(xy, triangles, values -> drawn values)` of a 2-D triangle mesh or of a tetrahedral
    mesh's mid-plane section (`drawable_mesh`), or None (nothing to draw)."""
    from ...data import drawable_mesh

    cells = next(iter(mesh.cells.values()), None)
    view = None if cells is None or len(mesh.cells) != 1 else drawable_mesh(mesh.points, cells)
    if view is None:
        return None
    xy, tri, w = view
    if w is None:
        return xy, tri, lambda a: a
    # node values (..., nodes) → section values (..., points of the section)
    return xy, tri, lambda a: np.moveaxis(w @ np.moveaxis(np.asarray(a), -1, 0), 0, -1)


def _where(mesh: MeshField) -> str:
    return ", mid-plane section" if mesh.points.shape[1] == 3 else ""


def _time(times, s, units) -> str:
    return f"t = {times[s]:.4g} {units.get('times', '')}".rstrip()


def _snapshots(out_dir, name, mesh, truth, pred, times, fields, channels, units, frames):
    """Truth / prediction / error PNGs of each field's magnitude at the given frames."""
    from ...plot import plot_mesh_fields

    view = _view(mesh)
    if view is None:
        return []
    xy, tri, drawn = view
    files, c0 = [], 0
    for f, c in zip(fields, channels, strict=True):
        for s in frames:
            path = out_dir / f"{name}_snapshot_{f}_step{s:04d}.png"
            plot_mesh_fields(xy, tri,
                             mesh_columns(drawn(_magnitude(truth[s], c0, c)[None]),
                                          drawn(_magnitude(pred[s], c0, c)[None]),
                                          _label(f, c), units.get(f) or "1"),
                             row_labels=[f"{name}, step {s}, {_time(times, s, units)}"
                                         f"{_where(mesh)}"],
                             title=f"Rollout of {name}: {_label(f, c)}",
                             axis_unit=units.get("points") or "1", path=path)
            files.append(path)
        c0 += c
    return files


def _animate(path, mesh, truth, pred, times, fields, channels, units, max_frames=60, fps=10):
    """A GIF of truth / prediction / error for every field's magnitude, `max_frames` frames
    evenly spaced over the rollout."""
    from ...plot import animate_mesh_fields

    view = _view(mesh)
    if view is None:
        return None
    xy, tri, drawn = view
    columns, c0 = [], 0
    for f, c in zip(fields, channels, strict=True):
        columns += mesh_columns(drawn(_magnitude(truth, c0, c)), drawn(_magnitude(pred, c0, c)),
                                _label(f, c), units.get(f) or "1")
        c0 += c
    animate_mesh_fields(xy, tri, columns,
                        frame_labels=[_time(times, k, units) for k in range(len(pred))],
                        title="Rollout: truth, prediction and error", path=path,
                        axis_unit=units.get("points") or "1", max_frames=max_frames, fps=fps)
    return path


def _stack(fields, mesh: MeshField) -> np.ndarray:
    return np.concatenate([np.asarray(mesh.fields[f], np.float64) for f in fields], -1)


def _summarise(results: dict[str, Any], fields) -> dict[str, Any]:
    """Mean over trajectories of every number, per method and field."""
    mean: dict[str, Any] = {}
    for method in METHODS:
        mean[method] = {}
        for f in fields:
            keys = {k for r in results.values() for k in r[method][f]}
            mean[method][f] = {k: float(np.mean([r[method][f][k] for r in results.values()
                                                  if k in r[method][f]])) for k in sorted(keys)}
            if "steps" in mean[method][f]:
                mean[method][f]["steps"] = int(mean[method][f]["steps"])
    return mean


def format_rollout_table(summary: dict[str, Any]) -> str:
    """The mean metrics of a `rollout` summary as a plain-text table: one row per field and
    number, the model beside persistence and linear extrapolation, and the model's ratio to
    persistence."""
    mean = summary["mean"]
    rows = [("field", "metric", *METHODS, "model/persistence")]
    for f, table in mean["model"].items():
        for k in ("one_step", "rollout1", "rollout50", "rollout_all"):
            for key in (k, f"{k}_rel"):
                if key not in table:
                    continue
                vals = [mean[m][f].get(key, float("nan")) for m in METHODS]
                p = vals[1]
                rows.append((f, key, *(f"{v:.4g}" for v in vals),
                             f"{vals[0] / p:.3f}" if p else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))) for r in rows]
    steps = next(iter(mean["model"].values())).get("steps")
    lines.insert(1, "-" * len(lines[0]))
    lines.append(f"({len(summary['trajectories'])} trajectories; one_step: teacher-forced, "
                 f"pooled over every frame; rollouts from frame {summary['start']}"
                 + (f", {steps} steps" if steps else "") + "; _rel: relative to the inflow "
                 "speed U (pressure to U^2))")
    return "\n".join(lines)


def rollout(run, data_path: str | os.PathLike, *, steps: int | None = None, start: int = 1,
            mode: str = "autoregressive", boundary: str = "truth",
            out_dir: str | os.PathLike, inflow: float | None = None,
            animation: bool = True, progress: bool = True, chunk: int = 25,
            fields: Any = None, node_types: Any = None, plots: bool = True) -> dict[str, Any]:
    """Roll a trained mesh simulator out on every trajectory of `data_path` and score it.

    **Arguments:**

    - `run`: a loaded run (`.config`, `.model`, `.family`), e.g. `sciops.train.load_run(dir)`.
    - `data_path`: any source `sciops.data.read_mesh_trajectories` reads: an XDMF time
      series, a PVD collection, VTU files (a folder or a glob), a MeshGraphNets folder or a
      sciops mesh HDF5 data set.
    - `steps`: autoregressive steps (default: to the end of the truth); more than the truth
      holds runs on without metrics.
    - `start`: the frame the autoregressive rollouts (model and baselines) start from; 1 by
      default, so that linear extrapolation has the frame before it (0 on a 2-frame file).
    - `mode`: which prediction is written and animated: ``"autoregressive"`` (frames
      `start`..`start + steps`) or ``"teacher-forced"`` (frame 0, then every one-step
      prediction). Both are always scored.
    - `boundary`: ``"truth"`` or ``"hold"`` for the non-evolving nodes of the model's rollout.
    - `out_dir`: folder for the predictions, metrics and figures.
    - `inflow`: the inflow speed $U$ for the relative errors (default: the mean speed of the
      INFLOW nodes at frame 0).
    - `animation`: write the GIF; `progress`: a progress bar; `chunk`: steps per compiled call.
    - `plots`: write the snapshot PNGs, ``rmse_vs_step.png`` and the GIF (False: only the
      predictions and metrics, e.g. for scoring many files in a batch job; drawing costs
      seconds per trajectory).
    - `fields`: field mapping onto the run's field names (``{"velocity": "U"}`` or the CLI's
      ``["velocity=U"]``, see `sciops.data.parse_field_map`); `node_types`: where the node
      types come from (`sciops.data.parse_node_types`; default the file's ``node_type``).

    **Returns:** ``{"trajectories": {name: {"inflow_speed", "model" | "persistence" |
    "linear_extrapolation": {field: {"one_step", "rollout1", "rollout50", "rollout_all",
    "steps", ..._rel}}}}, "mean": {method: {field: {...}}}, "files": [...], "table": str}``.

    **Raises:** `ConfigError` for a bad mode/boundary/steps/start; `DataError` when the file is
    missing or its mesh, fields or node types do not fit the run, or the rollout blows up.
    """
    import jax.numpy as jnp

    if mode not in ("autoregressive", "teacher-forced"):
        raise ConfigError(f"--mode: expected 'autoregressive' or 'teacher-forced', got {mode!r}")
    if boundary not in ("truth", "hold"):
        raise ConfigError(f"--boundary: expected 'truth' or 'hold', got {boundary!r}")
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps: must be >= 1, got {steps}")
    if start < 0:
        raise ConfigError(f"--start: must be >= 0, got {start}")
    if inflow is not None and not inflow > 0:
        raise ConfigError(f"--inflow-speed: must be > 0, got {inflow}")
    field_map = fields  # `fields` names the run's fields below
    model, family = run.model, run.family
    model_config = run.config.model
    if family.rollout is None or family.prepare is None:
        raise DataError(f"rollout: family {family.name!r} is not a mesh simulator (its Family "
                        "record has no rollout and prepare)")
    data_path = pathlib.Path(data_path)
    out_dir = pathlib.Path(out_dir)
    fields = tuple(model.state_fields) + tuple(model.output_fields)
    channels = tuple(model.state_channels) + tuple(model.output_channels)
    n_state = sum(model.state_channels)

    # every input is checked before anything is computed or written
    trajectories = _trajectories(data_path, field_map, node_types)
    plans = []
    for name, mesh, units in trajectories:
        _check(name, mesh, model, data_path)
        n_true = mesh.n_times
        if n_true < 2:
            raise DataError(f"{data_path} ({name}): {n_true} time step(s); the protocol needs "
                            "at least 2")
        s0 = min(start, n_true - 2)
        n_steps = steps if steps is not None else n_true - 1 - s0
        plans.append((name, mesh, units, s0, n_steps))

    bar = None
    if progress:
        from ..._progress import progress as _progress
        bar = _progress(total=sum(p[1].n_times - 1 + p[4] for p in plans), desc="rollout",
                        unit="step")
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    try:
        results, rows, files = {}, [], []
        for name, mesh, units, s0, n_steps in plans:
            res, per_step, written = _one(model, family, model_config, name, mesh, units, s0,
                                          n_steps, mode, boundary, inflow, fields, channels,
                                          n_state, chunk, bar, work, animation and plots,
                                          plots, jnp)
            results[name] = res
            rows += per_step
            files += written
        mean = _summarise(results, fields)
        summary = {"mode": mode, "boundary": boundary, "start": start, "data": str(data_path),
                   "trajectories": results, "mean": mean}
        (work / "metrics.json").write_text(json.dumps(summary, indent=2))
        with open(work / "rmse_per_step.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["trajectory", "step"])
            w.writeheader()
            w.writerows(rows)
        files += [work / "metrics.json", work / "rmse_per_step.csv"]
        if rows and plots:
            files.append(_plot_error(work, rows, fields, units))
        # success: move everything into out_dir (created now, or an existing folder)
        out_dir.mkdir(parents=True, exist_ok=True)
        final = []
        for f in sorted(work.iterdir()):
            os.replace(f, out_dir / f.name)
        for f in files:
            final.append(str(out_dir / pathlib.Path(f).name))
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(work, ignore_errors=True)
    summary["files"] = final
    summary["table"] = format_rollout_table(summary)
    return summary


def _one(model, family, model_config, name, mesh, units, s0, n_steps, mode, boundary, inflow,
         fields, channels, n_state, chunk, bar, work, animation, plots, jnp):
    """Score and write one trajectory: returns (metrics, per-step rows, files)."""
    n_true = mesh.n_times
    sample = {k: jnp.asarray(v) for k, v in _sample(family, model_config, mesh).items()}
    truth = _stack(fields, mesh)
    evolving_nodes = np.asarray(model.evolving(sample))
    # where each method predicts: state channels on evolving nodes, output fields everywhere
    where = np.concatenate([np.broadcast_to(evolving_nodes[:, None], (mesh.n_nodes, n_state)),
                            np.ones((mesh.n_nodes, truth.shape[2] - n_state), bool)], 1)
    t32 = truth.astype(np.float32)
    # teacher-forced: every frame in, the next out
    tf = []
    for a in range(0, n_true - 1, chunk):
        b = min(a + chunk, n_true - 1)
        s, o = _forced(model, sample, jnp.asarray(t32[a:b, :, :n_state]))
        tf.append(np.concatenate([np.asarray(s), np.asarray(o)], -1))
        if bar is not None:
            bar.update(b - a)
    tf = np.where(where[None], np.concatenate(tf), truth[1:])
    # autoregressive from frame s0
    x0 = jnp.asarray(t32[s0, :, :n_state])
    x, ar = x0, []
    for a in range(0, n_steps, chunk):
        k = min(chunk, n_steps - a)
        idx = np.minimum(np.arange(s0 + a + 1, s0 + a + k + 1), n_true - 1)
        bvals = (t32[idx, :, :n_state] if boundary == "truth"
                 else np.broadcast_to(t32[s0, :, :n_state], (k, *x0.shape)))
        s, o = _advance(model, sample, x, jnp.asarray(bvals))
        x = s[-1]
        ar.append(np.concatenate([np.asarray(s), np.asarray(o)], -1))
        if bar is not None:
            bar.update(k)
    ar = np.concatenate(ar).astype(np.float64)
    for label, arr in (("teacher-forced", tf), ("autoregressive", ar)):
        if not np.all(np.isfinite(arr)):
            bad = int(np.argmax(~np.all(np.isfinite(arr), axis=(1, 2)))) + 1
            raise DataError(f"{name}: the {label} prediction is NaN/Inf at step {bad}")
    m = min(n_steps, n_true - 1 - s0)  # steps with a truth
    target = truth[s0 + 1:s0 + m + 1]
    preds = {"model": (tf, ar[:m])}
    for kind in BASELINES:
        preds[kind] = (baseline_one_step(truth, where, kind),
                       baseline_rollout(truth, where, kind, s0, m))
    speed = inflow if inflow is not None else inflow_speed(truth, np.asarray(mesh.node_type),
                                                           model.state_channels[0])
    dim = mesh.points.shape[1]
    res: dict[str, Any] = {"inflow_speed": speed, "start": s0}
    per_step = {}
    for method, (one, roll) in preds.items():
        mse1 = step_mse(one, truth[1:], fields, channels)
        mser = step_mse(roll, target, fields, channels)
        per_step[method] = mser
        res[method] = {f: rmse_table(mse1[f], mser[f], relative_scale(f, c, dim, speed))
                       for f, c in zip(fields, channels, strict=True)}
    rows = []
    for s in range(m):
        row: dict[str, Any] = {"trajectory": name, "step": s + 1}
        for f in fields:
            row[f] = float(np.sqrt(per_step["model"][f][s]))
            for kind in BASELINES:
                row[f"{f}_{kind}"] = float(np.sqrt(per_step[kind][f][s]))
        rows.append(row)
    # the written prediction, with the input's field names, node types and units
    times = (np.asarray(mesh.times, np.float64) if mesh.times is not None
             else np.arange(n_true, dtype=np.float64))
    dt = float(times[1] - times[0])
    if mode == "autoregressive":
        pred = np.concatenate([truth[s0:s0 + 1], ar])
        ptimes = times[s0] + dt * np.arange(n_steps + 1)
        shown = truth[np.minimum(np.arange(s0, s0 + n_steps + 1), n_true - 1)]
    else:
        pred = np.concatenate([truth[:1], tf])
        ptimes, shown = times, truth
    c0, pfields = 0, {}
    for f, c in zip(fields, channels, strict=True):
        pfields[f] = pred[..., c0:c0 + c].astype(np.float32)
        c0 += c
    pmesh = MeshField(np.asarray(mesh.points), {k: np.asarray(v) for k, v in mesh.cells.items()},
                      pfields, np.asarray(mesh.node_type), ptimes)
    files: list[Any] = [write_xdmf(work / f"{name}_prediction.xdmf", pmesh, units=units)]
    files.append(work / f"{name}_prediction.h5")
    frames = sorted({1, max(1, (len(pred) - 1) // 2), len(pred) - 1})
    if plots:
        files += _snapshots(work, name, mesh, shown, pred, ptimes, fields, channels, units,
                            frames)
    if animation:
        gif = _animate(work / f"{name}_rollout.gif", mesh, shown, pred, ptimes, fields,
                       channels, units)
        if gif is not None:
            files.append(gif)
    return res, rows, files


def _plot_error(out_dir: pathlib.Path, rows, fields, units=None) -> pathlib.Path:
    """RMSE against rollout step per field: the model (one line per trajectory) and the
    baselines' means."""
    from ...plot import plot_curve_panels

    names = sorted({r["trajectory"] for r in rows})
    steps = sorted({r["step"] for r in rows})
    panels = []
    for f in fields:
        series, styles = {}, {}
        for name in names:
            rs = [r for r in rows if r["trajectory"] == name]
            label = f"model, {name}" if len(names) <= 8 else f"_model {name}"
            series[label] = ([r["step"] for r in rs], [max(r[f], 1e-12) for r in rs])
        for kind, style in zip(BASELINES, ("k--", "k:"), strict=True):
            mean = [np.mean([r[f"{f}_{kind}"] for r in rows if r["step"] == s]) for s in steps]
            series[f"{kind} (mean)"] = (steps, np.maximum(mean, 1e-12))
            styles[f"{kind} (mean)"] = style
        panels.append(dict(series=series, styles=styles, logy=True, xlabel="rollout step",
                           ylabel=f"RMSE of {f} [{(units or {}).get(f) or '1'}]",
                           title=f"{f}: rollout error"))
    path = out_dir / "rmse_vs_step.png"
    plot_curve_panels(panels, title=f"Rollout error of {len(names)} trajectories against the "
                      "baselines", path=path)
    return path


mesh_rollout = rollout
"""`rollout` under its public name in `sciops.eval`."""
