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


def plot_parity(config: MLIPConfig, model, batch: dict, path: str | os.PathLike, *,
                fields=None, sample_ids=None) -> None:
    """Write a two-panel parity plot (energy per atom, force components) of `batch` to `path`
    (PNG), through `sciops.plot.plot_parity` (MAE and RMSE with their units in each panel's
    title): the family's `plot` hook, called by `fit` and `evaluate` on the first test
    structures. `fields` and `sample_ids` (the driver's labels) are not used: the panels pool
    every atom of the batch."""
    from ...plot import plot_parity as parity
    from ...plot import pyplot, save

    d = parity_data(config, model, batch)
    fig, axes = pyplot().subplots(1, 2, figsize=(9.6, 4.6), constrained_layout=True)
    n = len(np.asarray(batch["energy"]))
    parity(d["energy_ref"], d["energy_pred"], quantity="energy per atom", unit="eV/atom",
           title=f"Energy per atom, {n} test structures", ax=axes[0])
    parity(d["forces_ref"], d["forces_pred"], quantity="force component", unit="eV/Å",
           title=f"Forces, {n} test structures", ax=axes[1])
    save(fig, path)
