"""Rollout of a trained mesh simulator on XDMF / HDF5 trajectories (`sciops rollout`).

For every trajectory of the input file the model starts from the true state at step 0 and
advances `steps` steps, either autoregressively (its own predictions fed back) or
teacher-forced (the true state at t in, the state at t+1 out). After each step the nodes that
do not evolve (inflow, walls, obstacle: node types outside the run's `loss_node_types`) take
the boundary values: the truth at that step (``boundary="truth"``) or their initial values
(``"hold"``). Past the end of the truth the rollout goes on autoregressively with held
boundaries, and without metrics.

Written per trajectory: ``traj_XXX_prediction.xdmf`` (+ ``.h5``; the input's field names and
node types, openable in ParaView), ``rmse_per_step.csv``, ``metrics.json`` (RMSE per field
after 1 step, and pooled over steps 1..10, 1..50 and all: $\\sqrt{\\frac{1}{hN}\\sum_{t\\le h}
\\sum_i |\\hat x_i^t - x_i^t|^2 / C}$ as MeshGraphNets reports it, over all real nodes),
``rmse_vs_step.png`` and snapshots of truth / prediction / error on the mesh.
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
from typing import Any

import numpy as np

from .._errors import ConfigError, DataError
from ..data import MeshField, mesh_field, read_mesh_dataset, read_xdmf, write_xdmf
from ..models.meshformer._family import triptych

__all__ = ["rollout"]

_HORIZONS = (10, 50)


def _trajectories(data_path: pathlib.Path) -> list[tuple[str, MeshField]]:
    if not data_path.is_file():
        raise DataError(f"{data_path}: data file not found")
    suffix = data_path.suffix.lower()
    if suffix == ".xdmf":
        return [(data_path.stem, read_xdmf(data_path))]
    if suffix in (".h5", ".hdf5"):
        ds = read_mesh_dataset(data_path)
        return [(f"traj_{i:03d}", mesh_field(ds, i)) for i in range(len(ds))]
    raise DataError(f"{data_path}: expected an .xdmf time series or a sciops mesh .h5 data set")


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
    from ..data import Dataset

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


def _rmse_fields(pred: np.ndarray, truth: np.ndarray, fields, channels) -> dict[str, np.ndarray]:
    """Per-step mean squared error per field: pred, truth (steps, nodes, sum(channels))."""
    out, c0 = {}, 0
    for f, c in zip(fields, channels, strict=False):
        out[f] = np.mean((pred[..., c0:c0 + c] - truth[..., c0:c0 + c]) ** 2, axis=(-2, -1))
        c0 += c
    return out


def _summary(mse: np.ndarray) -> dict[str, float]:
    res = {"1step": float(np.sqrt(mse[0]))}
    for h in _HORIZONS:
        if len(mse) >= h:
            res[f"rollout{h}"] = float(np.sqrt(np.mean(mse[:h])))
    res["rollout_all"] = float(np.sqrt(np.mean(mse)))
    res["steps"] = int(len(mse))
    return res


def _snapshots(out_dir, name, mesh, truth, pred, fields, channels, steps_to_plot):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.tri import Triangulation

    cells = next(iter(mesh.cells.values()))
    tri = Triangulation(np.asarray(mesh.points)[:, 0], np.asarray(mesh.points)[:, 1],
                        np.asarray(cells)) if cells.shape[1] == 3 else None
    if tri is None:
        return []
    files = []
    c0 = 0
    for f, c in zip(fields, channels, strict=False):
        def mag(a, c0=c0, c=c):
            return np.linalg.norm(a[..., c0:c0 + c], axis=-1) if c > 1 else a[..., c0]
        for s in steps_to_plot:
            fig = triptych(tri, mag(truth[s]), mag(pred[s]), f"|{f}|" if c > 1 else f,
                           f"step {s}")
            path = out_dir / f"{name}_snapshot_{f}_step{s:04d}.png"
            fig.savefig(path, dpi=80)
            plt.close(fig)
            files.append(str(path))
        c0 += c
    return files


def rollout(run, data_path: str | os.PathLike, *, steps: int | None = None,
            mode: str = "autoregressive", boundary: str = "truth",
            out_dir: str | os.PathLike,
            progress: bool = True, chunk: int = 25) -> dict[str, Any]:
    """Roll a trained mesh simulator out on every trajectory of `data_path`.

    **Arguments:**

    - `run`: a loaded run (`.config`, `.model`, `.family`), e.g. `sciops.train.load_run(dir)`.
    - `data_path`: an XDMF time series or a sciops mesh HDF5 data set.
    - `steps`: steps to predict (default: to the end of the truth); more than the truth holds
      runs on without metrics (autoregressive mode only).
    - `mode`: ``"autoregressive"`` or ``"teacher-forced"``.
    - `boundary`: ``"truth"`` or ``"hold"`` for the non-evolving nodes.
    - `out_dir`: folder for the predictions, metrics and figures.
    - `progress`: show a progress bar; `chunk`: steps per compiled call.

    **Returns:** ``{"trajectories": {name: {field: {"1step", "rollout10", "rollout50",
    "rollout_all", "steps"}}}, "mean": {field: {...}}, "files": [...]}``.

    **Raises:** `ConfigError` for a bad mode/boundary/steps; `DataError` when the file is
    missing or its mesh, fields or node types do not fit the run.
    """
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    if mode not in ("autoregressive", "teacher-forced"):
        raise ConfigError(f"--mode: expected 'autoregressive' or 'teacher-forced', got {mode!r}")
    if boundary not in ("truth", "hold"):
        raise ConfigError(f"--boundary: expected 'truth' or 'hold', got {boundary!r}")
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps: must be >= 1, got {steps}")
    model, family = run.model, run.family
    model_config = run.config.model
    if family.rollout is None or family.prepare is None:
        raise DataError(f"rollout: family {family.name!r} is not a mesh simulator (its Family "
                        "record has no rollout and prepare)")
    data_path = pathlib.Path(data_path)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = tuple(model.state_fields) + tuple(model.output_fields)
    channels = tuple(model.state_channels) + tuple(model.output_channels)
    n_state = sum(model.state_channels)

    @eqx.filter_jit
    def advance(model, sample, x, bvals):
        return model.rollout(sample, x, bvals)

    @eqx.filter_jit
    def forced(model, sample, xs):
        return jax.vmap(lambda x: model.step(sample, x))(xs)

    results: dict[str, Any] = {}
    files: list[str] = []
    per_step_rows: list[dict[str, Any]] = []
    trajectories = _trajectories(data_path)
    bar = None
    for name, mesh in trajectories:
        _check(name, mesh, model, data_path)
        n_true = mesh.n_times
        n_steps = steps if steps is not None else n_true - 1
        if n_steps < 1:
            raise DataError(f"{data_path} ({name}): one time step only; pass --steps to "
                            "predict beyond it")
        if mode == "teacher-forced" and n_steps > n_true - 1:
            raise ConfigError(f"--steps: teacher forcing needs the truth at every step; "
                              f"{name} has {n_true - 1} steps, asked for {n_steps}")
        sample = {k: jnp.asarray(v) for k, v in _sample(family, model_config, mesh).items()}
        truth = np.concatenate([np.asarray(mesh.fields[f], np.float32) for f in fields], -1)
        x0 = jnp.asarray(truth[0, :, :n_state])
        if progress and bar is None:
            from tqdm.auto import tqdm
            bar = tqdm(total=sum(steps or (m.n_times - 1) for _, m in trajectories),
                       desc="rollout", unit="step")
        states, outs = [], []
        x = x0
        for start in range(0, n_steps, chunk):
            k = min(chunk, n_steps - start)
            idx = np.arange(start + 1, start + k + 1)
            if mode == "teacher-forced":
                s, o = forced(model, sample, jnp.asarray(truth[idx - 1, :, :n_state]))
                evolving = np.asarray(model.evolving(sample))[None, :, None]
                s = jnp.where(evolving, s, jnp.asarray(truth[idx, :, :n_state])
                              if boundary == "truth" else x0[None])
            else:
                avail = np.minimum(idx, n_true - 1)  # past the truth: hold its last values
                bvals = (truth[avail, :, :n_state] if boundary == "truth"
                         else np.broadcast_to(np.asarray(x0), (k, *x0.shape)))
                s, o = advance(model, sample, x, jnp.asarray(bvals))
                x = s[-1]
            states.append(np.asarray(s))
            outs.append(np.asarray(o))
            if bar is not None:
                bar.update(k)
        pred = np.concatenate([np.concatenate(states), np.concatenate(outs)], -1)
        pred = np.concatenate([truth[:1], pred])  # frame 0 is the initial truth
        if not np.all(np.isfinite(pred)):
            bad = int(np.argmax(~np.all(np.isfinite(pred), axis=(1, 2))))
            raise DataError(f"{name}: the rollout produced NaN/Inf at step {bad}")
        # predictions as XDMF, with the input's field names and node types
        dt = (float(mesh.times[1] - mesh.times[0]) if mesh.times is not None and n_true > 1
              else 1.0)
        t0 = float(mesh.times[0]) if mesh.times is not None else 0.0
        c0, pfields = 0, {}
        for f, c in zip(fields, channels, strict=False):
            pfields[f] = pred[..., c0:c0 + c]
            c0 += c
        pmesh = MeshField(np.asarray(mesh.points), {k: np.asarray(v) for k, v in mesh.cells.items()},
                          pfields, np.asarray(mesh.node_type),
                          t0 + dt * np.arange(n_steps + 1))
        files.append(str(write_xdmf(out_dir / f"{name}_prediction.xdmf", pmesh)))
        # metrics over the steps that have a truth
        m = min(n_steps, n_true - 1)
        mse = _rmse_fields(pred[1:m + 1], truth[1:m + 1], fields, channels)
        results[name] = {f: _summary(mse[f]) for f in fields}
        for s in range(m):
            per_step_rows.append({"trajectory": name, "step": s + 1,
                                  **{f: float(np.sqrt(mse[f][s])) for f in fields}})
        plot_steps = sorted({1, max(1, m // 2), m})
        files += _snapshots(out_dir, name, mesh, truth, pred, fields, channels, plot_steps)
    if bar is not None:
        bar.close()
    mean = {f: {k: float(np.mean([r[f][k] for r in results.values() if k in r[f]]))
                for k in next(iter(results.values()))[f]} for f in fields}
    summary = {"mode": mode, "boundary": boundary, "data": str(data_path),
               "trajectories": results, "mean": mean}
    (out_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    with open(out_dir / "rmse_per_step.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["trajectory", "step", *fields])
        w.writeheader()
        w.writerows(per_step_rows)
    files += [str(out_dir / "metrics.json"), str(out_dir / "rmse_per_step.csv")]
    files.append(_plot_error(out_dir, per_step_rows, fields))
    summary["files"] = files
    return summary


def _plot_error(out_dir: pathlib.Path, rows, fields) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fields), figsize=(4.5 * len(fields), 3.5),
                             constrained_layout=True, squeeze=False)
    for ax, f in zip(axes[0], fields, strict=False):
        for name in sorted({r["trajectory"] for r in rows}):
            rs = [r for r in rows if r["trajectory"] == name]
            ax.semilogy([r["step"] for r in rs], [max(r[f], 1e-12) for r in rs], label=name)
        ax.set_xlabel("step")
        ax.set_ylabel(f"RMSE {f}")
        ax.grid(True, which="both", alpha=0.3)
    if len({r["trajectory"] for r in rows}) <= 8:
        axes[0][0].legend(fontsize=7)
    path = out_dir / "rmse_vs_step.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)
