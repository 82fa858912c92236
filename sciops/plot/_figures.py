"""Every figure sciops writes: fields on grids and meshes, curves, parity plots.

The rules every figure here keeps (and `tests/test_plots.py` checks on the `Figure` objects):
a title; labelled axes with units; a colorbar with the field's name and unit on every panel
that shows a field; truth and prediction on one shared colour scale; errors on a symmetric
diverging scale of their own; samples named by their index in the data set.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["Column", "animate_fields", "animate_mesh_fields", "describe_field", "field_label", "grid_extent", "metric_label", "plot_curve_panels", "plot_curves", "plot_fields", "plot_loss_curve",
           "plot_mesh_fields", "plot_parity", "pyplot", "save"]

# metric keys of the families → what a reader should see on an axis
_METRIC_NAMES = {
    "l2": "relative L2 error", "h1": "relative H1 error", "loss": "loss",
    "rmse": "RMSE", "mae": "MAE", "energy_mae": "energy MAE", "force_mae": "force MAE",
}


def pyplot():
    """`matplotlib.pyplot`; the non-interactive Agg backend (figures are written to files)
    unless a backend was chosen already: by `MPLBACKEND` (a Jupyter kernel sets its inline
    backend there, so figures show in notebooks) or by importing pyplot first."""
    import sys

    import matplotlib

    if "MPLBACKEND" not in os.environ and "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def field_label(name: str, unit: str | None) -> str:
    """`"name [unit]"`; dimensionless fields (unit `"1"`, `""` or `None`) get `"name [1]"`."""
    return f"{name} [{unit or '1'}]"


def describe_field(fields: Mapping[str, Mapping[str, Any]] | None, key: str) -> tuple[str, str]:
    """`(name, unit)` of the data field `key` from a data file's per-field attributes.

    The name is the field's ``description`` attribute with the key, e.g.
    ``"y: solution u (pressure) cell averages"``, or the key alone; the unit is its ``units``
    attribute, or ``"1"``.
    """
    attrs = (fields or {}).get(key, {}) or {}
    desc = str(attrs.get("description", "")).strip()
    return (f"{key}: {desc}" if desc else key), str(attrs.get("units") or "1")


def grid_extent(fields: Mapping[str, Mapping[str, Any]] | None, key: str
                ) -> tuple[tuple[float, float, float, float], str]:
    """`((x0, x1, y0, y1), length unit)` of a 2-D grid field from its attributes.

    Reads the ``bounds`` attribute (one `(lower, upper)` pair per spatial axis, in the field's
    axis order `y, x`) and ``length_units``; defaults: the unit square, unit ``"1"``.
    """
    attrs = (fields or {}).get(key, {}) or {}
    bounds = attrs.get("bounds")
    if isinstance(bounds, str):
        bounds = json.loads(bounds)
    if bounds is not None and len(bounds) >= 2:
        (y0, y1), (x0, x1) = bounds[-2], bounds[-1]
        extent = (float(x0), float(x1), float(y0), float(y1))
    else:
        extent = (0.0, 1.0, 0.0, 1.0)
    return extent, str(attrs.get("length_units") or "1")


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a field figure: the same field for every row.

    **Fields:**

    - `name`: the column's title, e.g. ``"truth u"``.
    - `data`: array `(rows, H, W)` for `plot_fields`, `(rows, nodes)` for `plot_mesh_fields`.
    - `unit`: the field's unit (`"1"` if dimensionless).
    - `scale`: columns with the same `scale` key share one colour range per row (truth and
      prediction); `None` gives the column its own range.
    - `diverging`: a symmetric range about zero on a diverging map (errors, signed fields).
    """

    name: str
    data: Any
    unit: str = "1"
    scale: str | None = None
    diverging: bool = False


def _ranges(columns: Sequence[Column], n_rows: int) -> list[list[tuple[float, float]]]:
    """Per row and column the (vmin, vmax): shared within a `scale` group, symmetric if diverging."""
    out = []
    for r in range(n_rows):
        groups: dict[str, list[float]] = {}
        for c in columns:
            if c.scale is not None:
                d = np.asarray(c.data[r], dtype=float)
                groups.setdefault(c.scale, []).extend([np.nanmin(d), np.nanmax(d)])
        row = []
        for c in columns:
            d = np.asarray(c.data[r], dtype=float)
            lo, hi = (min(groups[c.scale]), max(groups[c.scale])) if c.scale is not None else (
                float(np.nanmin(d)), float(np.nanmax(d)))
            if c.diverging:
                m = max(abs(lo), abs(hi)) or 1.0
                lo, hi = -m, m
            row.append((lo, hi))
        out.append(row)
    return out


@dataclasses.dataclass(frozen=True)
class _FixedGrid:
    """A grid of panels laid out in inches, once: the field figures hold up to a few dozen
    axes (panels and colour bars), and matplotlib's constrained layout solved for them took
    half of the time of writing the PNG (the end of every grid run's `fit`). The margins leave
    room for the axis labels on the left and bottom, the titles on top, and each panel's colour
    bar with its label on the right."""

    panel: tuple[float, float] = (3.2, 2.8)   # inches per panel (width, height)
    left: float = 0.55
    right: float = 0.75
    bottom: float = 0.45
    top: float = 0.75
    gap: tuple[float, float] = (0.95, 0.6)    # between panels: colour bar, labels, title

    def size(self, n_rows: int, n_cols: int) -> tuple[float, float]:
        return self.panel[0] * n_cols, self.panel[1] * n_rows + 0.6

    def spacing(self, n_rows: int, n_cols: int) -> dict[str, float]:
        w, h = self.size(n_rows, n_cols)
        axes_w = (w - self.left - self.right - (n_cols - 1) * self.gap[0]) / n_cols
        axes_h = (h - self.bottom - self.top - (n_rows - 1) * self.gap[1]) / n_rows
        return {"left": self.left / w, "right": 1 - self.right / w, "bottom": self.bottom / h,
                "top": 1 - self.top / h, "wspace": self.gap[0] / axes_w,
                "hspace": self.gap[1] / axes_h}


_FIELD_GRID = _FixedGrid()


def plot_fields(columns: Sequence[Column], *, row_labels: Sequence[str], title: str,
                extent: Sequence[float] | None = None, axis_unit: str = "1",
                axis_names: tuple[str, str] = ("x", "y"), path: str | os.PathLike | None = None):
    """A grid of 2-D fields: one row per sample (or time), one column per field.

    **Arguments:**

    - `columns`: the fields (`Column`), each with data of shape `(rows, H, W)` (row index `y`).
    - `row_labels`: one label per row, e.g. ``"sample 17"`` or ``"step 10"``.
    - `title`: the figure's title.
    - `extent`: `(x0, x1, y0, y1)` of the domain (default: the unit square).
    - `axis_unit`, `axis_names`: the coordinates' unit and names for the axis labels.
    - `path`: if given, the PNG is written there (and the figure closed).

    **Returns:** the matplotlib `Figure`.
    """
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    n_rows, n_cols = len(row_labels), len(columns)
    extent = tuple(extent) if extent is not None else (0.0, 1.0, 0.0, 1.0)
    ranges = _ranges(columns, n_rows)
    fig = plt.figure(figsize=_FIELD_GRID.size(n_rows, n_cols))
    grid = fig.add_gridspec(n_rows, n_cols, **_FIELD_GRID.spacing(n_rows, n_cols))
    for r in range(n_rows):
        for j, c in enumerate(columns):
            ax = fig.add_subplot(grid[r, j])
            lo, hi = ranges[r][j]
            im = ax.imshow(np.asarray(c.data[r]), origin="lower", extent=extent, vmin=lo, vmax=hi,
                           cmap="RdBu_r" if c.diverging else "viridis", aspect="equal")
            ax.set_title(f"{row_labels[r]}: {c.name}", fontsize=8)
            ax.set_xlabel(field_label(axis_names[0], axis_unit), fontsize=7)
            ax.set_ylabel(field_label(axis_names[1], axis_unit), fontsize=7)
            # every panel has the same extent: tick values along the bottom row and the left
            # column only (drawing tick labels is most of the time spent on this figure)
            ax.tick_params(labelsize=6, labelbottom=r == n_rows - 1, labelleft=j == 0)
            ax.locator_params(nbins=4)
            cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            cb.set_label(field_label(c.name, c.unit), fontsize=7)
            cb.ax.tick_params(labelsize=6)
            cb.locator = MaxNLocator(5)
            cb.update_ticks()
    fig.suptitle(title, fontsize=10)
    return save(fig, path) if path is not None else fig


def _freeze_layout(fig) -> None:
    """Lay the figure out once (constrained layout) and keep those positions for every later
    draw: an animation's frames change only data and titles, and re-solving the layout for
    each frame is most of the cost of writing a GIF."""
    fig.canvas.draw()
    fig.set_layout_engine("none")


def animate_fields(columns: Sequence[Column], *, frame_labels: Sequence[str], title: str,
                   path: str | os.PathLike, extent: Sequence[float] | None = None,
                   axis_unit: str = "1", max_frames: int = 60, fps: int = 10):
    """An animated GIF of 2-D fields over time, side by side (e.g. truth, prediction, error).

    Each `Column`'s data is `(frames, H, W)`; its colour range is fixed over all frames (shared
    within a `scale` group, symmetric if `diverging`), so the colours mean the same in every
    frame. `frame_labels` name the frames (e.g. ``"step 3"``); at most `max_frames` are drawn.
    **Returns:** the `Figure` (closed).
    """
    plt = pyplot()
    from matplotlib.animation import FuncAnimation, PillowWriter

    whole = [dataclasses.replace(c, data=np.asarray(c.data)[None]) for c in columns]
    first = [dataclasses.replace(c, data=np.asarray(c.data)[:1]) for c in columns]
    fig = plot_fields(first, row_labels=[frame_labels[0]], title=title, extent=extent,
                      axis_unit=axis_unit)
    _freeze_layout(fig)
    ranges = _ranges(whole, 1)[0]
    images = [ax.images[0] for ax in fig.axes if ax.images]
    for im, (lo, hi) in zip(images, ranges, strict=True):
        im.set_clim(lo, hi)
    n = len(frame_labels)
    every = max(1, n // max_frames)

    def update(t):
        for im, ax, c in zip(images, [im.axes for im in images], columns, strict=True):
            im.set_data(np.asarray(c.data[t]))
            ax.set_title(f"{frame_labels[t]}: {c.name}", fontsize=8)
        return images

    anim = FuncAnimation(fig, update, frames=range(0, n, every), blit=False)
    anim.save(path, writer=PillowWriter(fps=fps), dpi=60)
    plt.close(fig)
    return fig


def plot_mesh_fields(points, triangles, columns: Sequence[Column], *, row_labels: Sequence[str],
                     title: str, axis_unit: str = "1", path: str | os.PathLike | None = None):
    """Nodal fields on one triangle mesh: one row per sample or time, one column per field.

    **Arguments:**

    - `points`: node coordinates `(nodes, 2)`; `triangles`: `(cells, 3)` node indices.
    - `columns`: the fields (`Column`), each with data of shape `(rows, nodes)`.
    - `row_labels`, `title`, `axis_unit`, `path`: as in `plot_fields`.

    **Returns:** the matplotlib `Figure`.
    """
    plt = pyplot()
    from matplotlib.tri import Triangulation

    points = np.asarray(points)
    tri = Triangulation(points[:, 0], points[:, 1], np.asarray(triangles))
    n_rows, n_cols = len(row_labels), len(columns)
    ranges = _ranges(columns, n_rows)
    span = np.ptp(points, axis=0)
    aspect = float(span[1] / span[0]) if span[0] > 0 else 1.0
    # one panel a row, as wide as the page; tall enough for the mesh at that width
    layout = dataclasses.replace(_FIELD_GRID, panel=(8.0, max(1.2, 6.5 * aspect + 0.6)))
    n_panels = n_rows * n_cols
    fig = plt.figure(figsize=layout.size(n_panels, 1))
    grid = fig.add_gridspec(n_panels, 1, **layout.spacing(n_panels, 1))
    for r in range(n_rows):
        for j, c in enumerate(columns):
            ax = fig.add_subplot(grid[r * n_cols + j, 0])
            lo, hi = ranges[r][j]
            im = ax.tripcolor(tri, np.asarray(c.data[r], dtype=float), shading="gouraud",
                              vmin=lo, vmax=hi, cmap="RdBu_r" if c.diverging else "viridis")
            ax.set_aspect("equal")
            ax.set_title(f"{row_labels[r]}: {c.name}", fontsize=8)
            ax.set_xlabel(field_label("x", axis_unit), fontsize=7)
            ax.set_ylabel(field_label("y", axis_unit), fontsize=7)
            # the same mesh in every panel: x tick values under the last one only
            ax.tick_params(labelsize=6, labelbottom=r * n_cols + j == n_panels - 1)
            cb = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
            cb.set_label(field_label(c.name, c.unit), fontsize=7)
            cb.ax.tick_params(labelsize=6)
    fig.suptitle(title, fontsize=10)
    return save(fig, path) if path is not None else fig


def animate_mesh_fields(points, triangles, columns: Sequence[Column], *,
                        frame_labels: Sequence[str], title: str, path: str | os.PathLike,
                        axis_unit: str = "1", max_frames: int = 60, fps: int = 10):
    """An animated GIF of nodal fields over time on one triangle mesh, one panel per column.

    Each `Column`'s data is `(frames, nodes)`; colour ranges are fixed over all frames (shared
    within a `scale` group, symmetric if `diverging`). At most `max_frames` evenly spaced frames
    are drawn. **Returns:** the `Figure` (closed).
    """
    plt = pyplot()
    from matplotlib.animation import FuncAnimation, PillowWriter

    whole = [dataclasses.replace(c, data=np.asarray(c.data)[None]) for c in columns]
    first = [dataclasses.replace(c, data=np.asarray(c.data)[:1]) for c in columns]
    fig = plot_mesh_fields(points, triangles, first, row_labels=[frame_labels[0]], title=title,
                           axis_unit=axis_unit)
    _freeze_layout(fig)
    meshes = [c for ax in fig.axes for c in ax.collections if c.colorbar is not None]
    for m, (lo, hi) in zip(meshes, _ranges(whole, 1)[0], strict=True):
        m.set_clim(lo, hi)
    n = len(frame_labels)
    frames = np.unique(np.linspace(0, n - 1, min(max_frames, n)).astype(int))

    def update(t):
        for m, c in zip(meshes, columns, strict=True):
            m.set_array(np.asarray(c.data[t], dtype=float))
            m.axes.set_title(f"{frame_labels[t]}: {c.name}", fontsize=8)
        return meshes

    anim = FuncAnimation(fig, update, frames=frames, blit=False)
    anim.save(path, writer=PillowWriter(fps=fps), dpi=70)
    plt.close(fig)
    return fig


def plot_curves(series: Mapping[str, tuple[Any, Any]], *, xlabel: str, ylabel: str, title: str,
                logy: bool = False, styles: Mapping[str, str] | None = None, ax=None,
                path: str | os.PathLike | None = None):
    """Lines `label → (x, y)` on one axes with labelled axes, a legend and a title.

    `ax`: draw into this axes instead of a new figure (then nothing is saved).
    **Returns:** the `Figure`.
    """
    plt = pyplot()
    fig = ax.figure if ax is not None else plt.figure(figsize=(6, 4), constrained_layout=True)
    ax = ax if ax is not None else fig.add_subplot()
    for label, (x, y) in series.items():
        ax.plot(np.asarray(x), np.asarray(y), (styles or {}).get(label, "-"), label=label, ms=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    return save(fig, path) if path is not None else fig


def plot_curve_panels(panels: Sequence[Mapping[str, Any]], *, title: str,
                      path: str | os.PathLike | None = None):
    """Several `plot_curves` side by side: each panel a mapping of `plot_curves`'s keyword
    arguments (`series`, `xlabel`, `ylabel`, `title`, optional `logy`, `styles`).
    **Returns:** the `Figure`."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6),
                             constrained_layout=True, squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        plot_curves(ax=ax, **panel)
    fig.suptitle(title, fontsize=10)
    return save(fig, path) if path is not None else fig


def metric_label(key: str) -> str:
    """`"test h1"`-style keys → `"test: relative H1 error"`."""
    parts = key.split(" ", 1)
    split, name = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    base, _, sub = name.partition("/")
    text = _METRIC_NAMES.get(base, base.replace("_", " "))
    text = f"{text} ({sub})" if sub else text
    return f"{split}: {text}" if split else text


def plot_loss_curve(metrics_path: str | os.PathLike, path: str | os.PathLike | None = None,
                    *, loss_name: str = "training loss"):
    """The run's training loss and its evaluated metrics against the optimizer step.

    Reads `metrics.jsonl` (records with `step`, `split` and numbers). Two panels: the training
    loss (the family's loss, on normalised data), and every evaluation metric with its split and
    meaning spelled out (`"test: relative H1 error"`).

    **Returns:** the `Figure`.
    """
    plt = pyplot()
    records = [json.loads(ln) for ln in pathlib.Path(metrics_path).read_text().splitlines()
               if ln.strip()]
    train = [(r["step"], r["loss"]) for r in records if r.get("split") == "train" and "loss" in r]
    evals: dict[str, list] = {}
    for r in records:
        if r.get("split") not in (None, "train"):
            for k, v in r.items():
                if k not in ("step", "split") and isinstance(v, (int, float)) and "/" not in k:
                    evals.setdefault(metric_label(f"{r['split']} {k}"), []).append((r["step"], v))
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    plot_curves({loss_name: tuple(zip(*train, strict=True)) if train else ([], [])},
                xlabel="optimizer step", ylabel=f"{loss_name} (normalised units)",
                title="Training loss", logy=bool(train), ax=ax0)
    plot_curves({k: tuple(zip(*v, strict=True)) for k, v in evals.items()},
                xlabel="optimizer step", ylabel="metric value (relative errors as fractions)",
                title="Evaluation metrics" if evals else "Evaluation metrics (none recorded)",
                logy=bool(evals), styles={k: "o--" for k in evals}, ax=ax1)
    fig.suptitle(f"Run {pathlib.Path(metrics_path).parent.name}", fontsize=10)
    return save(fig, path) if path is not None else fig


def plot_parity(reference, predicted, *, quantity: str, unit: str, title: str,
                path: str | os.PathLike | None = None, max_points: int = 20000, ax=None):
    """Predicted against reference values (a parity plot), with the line y = x, MAE and RMSE.

    **Arguments:**

    - `reference`, `predicted`: arrays of the same shape (flattened), in `unit`.
    - `quantity`: what is plotted, e.g. ``"force component"`` or ``"energy per atom"``.
    - `unit`: its unit, e.g. ``"eV/Å"``.
    - `title`, `path`: as in `plot_fields`; at most `max_points` points are drawn (an evenly
      spaced subset), the errors use every value.
    - `ax`: draw into this axes (a panel of a larger figure) instead of a new figure.

    **Returns:** the `Figure`.
    """
    plt = pyplot()
    ref = np.asarray(reference, dtype=float).ravel()
    pred = np.asarray(predicted, dtype=float).ravel()
    if ref.shape != pred.shape:
        raise ValueError(f"plot_parity: reference has {ref.size} values, predicted {pred.size}")
    err = pred - ref
    mae, rmse = float(np.mean(np.abs(err))), float(np.sqrt(np.mean(err**2)))
    every = max(1, ref.size // max_points)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.8, 4.6), constrained_layout=True)
    else:
        fig = ax.figure
    ax.scatter(ref[::every], pred[::every], s=4, alpha=0.5, label=f"{ref.size} values")
    lo, hi = ((float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max())))
              if ref.size else (0.0, 1.0))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.set_xlabel(f"reference {field_label(quantity, unit)}")
    ax.set_ylabel(f"predicted {field_label(quantity, unit)}")
    ax.set_title(f"{title}\nMAE {mae:.4g} {unit}, RMSE {rmse:.4g} {unit}", fontsize=10)
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path) if path is not None else fig


def save(fig, path: str | os.PathLike, dpi: int = 110):
    """Write `fig` as a PNG to `path` and close it; returns the figure (for tests)."""
    plt = pyplot()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return fig


def read_png(path: str | os.PathLike) -> np.ndarray:
    """A PNG file (such as a figure `save` wrote) as an ``(height, width, channels)`` uint8
    array, for trackers that store images (TensorBoard)."""
    import matplotlib.image

    image = matplotlib.image.imread(path)
    if image.dtype != np.uint8:  # PNGs read as floats in [0, 1]
        image = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    return image
