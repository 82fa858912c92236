"""Parity plots of an `mlip` model: predicted against reference energy per atom and force
components, with the MAE (and its unit) in each panel's title."""

from __future__ import annotations

import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._family import MLIPConfig, predict

__all__ = ["parity_data", "plot_parity"]

# Unit of every metric the family reports (printed by the CLI beside each value).
UNITS = {"energy_mae": "eV/atom", "energy_rmse": "eV/atom", "forces_mae": "eV/Å",
         "forces_rmse": "eV/Å", "stress_mae": "eV/Å³", "stress_rmse": "eV/Å³",
         "edge_overflow": "fraction"}


@eqx.filter_jit
def _predict_batch(config, model, batch):
    return jax.vmap(lambda s: predict(config, model, s))(batch)


def parity_data(config: MLIPConfig, model, batch: dict) -> dict[str, np.ndarray]:
    """Reference and predicted energy per atom (eV/atom) and force components (eV/Å) of the real
    atoms of a batch of padded structures."""
    b = {k: jnp.asarray(v) for k, v in batch.items()}
    e, f, _, _ = _predict_batch(config, model, b)
    mask = np.asarray(batch["mask"], bool)
    n = np.maximum(mask.sum(1), 1)
    return {"energy_ref": np.asarray(batch["energy"], np.float64) / n,
            "energy_pred": np.asarray(e, np.float64) / n,
            "forces_ref": np.asarray(batch["forces"], np.float64)[mask].ravel(),
            "forces_pred": np.asarray(f, np.float64)[mask].ravel()}


def plot_parity(config: MLIPConfig, model, batch: dict, path: str | os.PathLike) -> None:
    """Write a two-panel parity plot (energy per atom, force components) of `batch` to `path`
    (PNG): the family's `plot` hook, called by `fit` and `evaluate` on the first test
    structures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = parity_data(config, model, batch)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), dpi=110)
    panels = (("energy", "energy per atom", "eV/atom", 1e3, "meV/atom"),
              ("forces", "force component", "eV/Å", 1.0, "eV/Å"))
    for ax, (key, label, unit, mae_factor, mae_unit) in zip(axes, panels, strict=True):
        ref, pred = d[f"{key}_ref"], d[f"{key}_pred"]
        mae = float(np.mean(np.abs(pred - ref))) if ref.size else float("nan")
        ax.plot(ref, pred, "o", ms=3, alpha=0.6)
        lo, hi = (float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))) \
            if ref.size else (0.0, 1.0)
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8, label="y = x")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel(f"reference {label} ({unit})")
        ax.set_ylabel(f"predicted {label} ({unit})")
        ax.set_title(f"{label}: MAE {mae * mae_factor:.3g} {mae_unit} (n = {ref.size})")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
