"""The `mlip` family: config, build (fits per-species shifts and scales on the training split),
loss over padded batches of structures, and per-structure metrics."""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from ..._errors import ConfigError, DataError
from ...nn._tensor_product import (
    CPTensorProduct,
    E3nnTensorProduct,
    GauntS2TensorProduct,
    SHMatrixTensorProduct,
)
from ._neighbors import cell_heights, dense_neighbors, neighbor_list
from ._potential import N_ELEMENTS, EnergyScale, TDNPotential, energy_forces_stress

__all__ = ["MLIPConfig", "build", "check_structure", "loss", "metrics", "predict"]

_REQUIRED = ("positions", "species", "mask", "energy", "forces")


@dataclasses.dataclass(frozen=True)
class MLIPConfig:
    """The `model:` section of an mlip run.

    **Fields:**

    - `cutoff` [Å]: radial cutoff. Periodic cells must be at least this wide.
    - `lmax` [-]: the highest angular degree $L$ of the features.
    - `channels` [channels]: feature channels per degree.
    - `n_layers` [count]: interaction layers.
    - `n_basis` [count]: radial basis functions.
    - `radial_hidden`, `readout_hidden` [units]: hidden widths of the radial and readout MLPs.
    - `tensor_product` [-]: ``cp`` (TDN), ``e3nn`` (e3nn-jax full product), ``sh_matrix``
      (exact, edge harmonics contracted first), ``s2grid`` (Gaunt product) or ``exact`` (the
      fastest exact form measured for this product, today ``sh_matrix``). The paper's
      comparison's named alternatives, hence a Literal.
    - `cp_rank` [-]: CP rank (default the paper's $7L^2$).
    - `cp_target_error` [1]: instead of `cp_rank`, the smallest rank reaching this relative
      error.
    - `cp_cache_dir` [-]: the CP factor cache folder.
    - `max_neighbors` [count]: edge budget per atom slot (edges = atoms × this), fixed so every
      step compiles once; a training structure needing more is a `DataError`.
    - `min_distance` [Å]: structures with two atoms closer than this are rejected.
    - `energy_weight`, `forces_weight`, `stress_weight` [1]: loss weights (per-atom energy,
      force components, and the virial per atom $V\\sigma/N$, each in eV/atom or eV/Å
      divided by the energy scale). `stress_weight: null` (the default) means 1.0 when the
      training data carry a ``stress`` field and 0 when they do not; 0 switches stress
      training off.
    """

    cutoff: float = 4.5
    lmax: int = 2
    channels: int = 32
    n_layers: int = 2
    n_basis: int = 8
    radial_hidden: int = 32
    readout_hidden: int = 32
    tensor_product: Literal["cp", "e3nn", "sh_matrix", "s2grid", "exact"] = "cp"
    cp_rank: int | None = None
    cp_target_error: float | None = None
    cp_cache_dir: str | None = None
    max_neighbors: int = 64
    min_distance: float = 0.6
    energy_weight: float = 1.0
    forces_weight: float = 10.0
    stress_weight: float | None = None

    def __post_init__(self):
        for name in ("cutoff", "min_distance"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"model.{name}: must be positive, got {getattr(self, name)}")
        for name in ("lmax",):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("channels", "n_layers", "n_basis", "radial_hidden", "readout_hidden",
                     "max_neighbors"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name}: must be >= 1, got {getattr(self, name)}")
        if self.stress_weight is not None and not self.stress_weight >= 0:
            raise ConfigError(f"model.stress_weight: must be >= 0 or null, got "
                              f"{self.stress_weight}")
        if self.tensor_product != "cp" and (self.cp_rank or self.cp_target_error):
            raise ConfigError(f"model.cp_rank / model.cp_target_error: only used with "
                              f"tensor_product: cp, got tensor_product: {self.tensor_product}")


def stress_weight(config: MLIPConfig, has_stress: bool) -> float:
    """The stress loss weight in force: `config.stress_weight`, or 1.0 when it is null and the
    data carry stresses (0 when they do not)."""
    if config.stress_weight is None:
        return 1.0 if has_stress else 0.0
    return float(config.stress_weight)


def tensor_product_factory(config: MLIPConfig):
    """The tensor-product constructor the config names (injected into the potential)."""
    if config.tensor_product == "cp":
        return functools.partial(CPTensorProduct, rank=config.cp_rank,
                                 target_error=config.cp_target_error,
                                 cache_dir=config.cp_cache_dir)
    # "exact": the fastest exact form measured for feature x edge harmonics (the SH-matrix form;
    # benchmarks/tensor_product_table.py, docs/mlip.md), as sciops.nn.make_tensor_product.
    return {"e3nn": E3nnTensorProduct, "sh_matrix": SHMatrixTensorProduct,
            "s2grid": GauntS2TensorProduct, "exact": SHMatrixTensorProduct}[config.tensor_product]


def check_structure(config: MLIPConfig, positions, species, cell, pbc, *, where: str,
                    known=None):
    """Host-side checks of one structure; returns its edges within the cutoff
    (`centers, neighbors, shifts` as `neighbor_list`).

    **Raises:** `DataError` naming `where` for an element the model was not trained on, two
    atoms closer than `min_distance`, or a periodic cell narrower than the cutoff.
    """
    positions = np.asarray(positions, np.float64)
    species = np.asarray(species)
    pbc = np.broadcast_to(np.asarray(pbc, bool), (3,))
    if known is not None:
        unknown = sorted(set(species.tolist()) - set(np.nonzero(np.asarray(known))[0].tolist()))
        if unknown:
            from ase.data import chemical_symbols

            names = ", ".join(f"{chemical_symbols[z]} (Z={z})" for z in unknown)
            trained = ", ".join(chemical_symbols[z] for z in np.nonzero(np.asarray(known))[0])
            raise DataError(f"{where}: element(s) {names} not in the training set ({trained})")
    if pbc.any():
        h = cell_heights(cell)
        if np.any(h[pbc] < config.cutoff):
            raise DataError(f"{where}: periodic cell too small for the cutoff: perpendicular "
                            f"widths {np.round(h, 3).tolist()} Å, model.cutoff = {config.cutoff} Å"
                            f" (use a supercell)")
    # One neighbour list serves both the distance check and the model's edges.
    i, j, s = neighbor_list(positions, max(config.cutoff, config.min_distance), cell, pbc)
    vec = positions[j] - positions[i] + s @ (np.zeros((3, 3)) if cell is None else cell)
    d = np.sqrt(np.einsum("ed,ed->e", vec, vec))
    if len(d) and d.min() < config.min_distance:
        k = int(np.argmin(d))
        raise DataError(f"{where}: atoms {i[k]} and {j[k]} are {d[k]:.3f} Å "
                        f"apart, closer than model.min_distance = {config.min_distance} Å")
    if config.min_distance > config.cutoff:
        keep = d < config.cutoff
        i, j, s = i[keep], j[keep], s[keep]
    return i, j, s


def build(config: MLIPConfig, train, *, key):
    """The potential, with shifts, scale and neighbour statistics fitted on `train`."""
    missing = [k for k in _REQUIRED if k not in train]
    if missing:
        raise DataError(f"{train.name}: an mlip data set needs fields {', '.join(_REQUIRED)}; "
                        f"missing {', '.join(missing)}")
    if config.stress_weight and "stress" not in train:
        raise DataError(f"{train.name}: model.stress_weight = {config.stress_weight} but the data "
                        f"set has no 'stress' field (set model.stress_weight: 0 or null)")
    d = train.load()
    n_struct, n_max = d["positions"].shape[:2]
    mask = d["mask"].astype(bool)
    z = np.where(mask, d["species"], 0).astype(np.int64)
    cells = d.get("cell", np.zeros((n_struct, 3, 3)))
    pbcs = d.get("pbc", np.zeros((n_struct, 3), bool))
    n_edges = []
    for s in range(n_struct):
        m = mask[s]
        n_edges.append(len(check_structure(config, d["positions"][s][m], z[s][m], cells[s],
                                           pbcs[s], where=f"{train.name}: structure {s}")[0]))
        if n_edges[-1] > n_max * config.max_neighbors:
            raise DataError(f"{train.name}: structure {s} has {n_edges[-1]} edges within the "
                            f"cutoff, more than the budget {n_max} atoms × model.max_neighbors "
                            f"= {n_max * config.max_neighbors}; raise model.max_neighbors")
    # Per-species shifts: least squares E_s ≈ Σ_Z n_{s,Z} μ_Z over the species present.
    counts = np.stack([np.bincount(z[s][mask[s]], minlength=N_ELEMENTS)
                       for s in range(n_struct)]).astype(np.float64)
    present = counts.sum(0) > 0
    present[0] = False
    mu = np.zeros(N_ELEMENTS)
    mu[present] = np.linalg.lstsq(counts[:, present], np.asarray(d["energy"], np.float64),
                                  rcond=None)[0]
    f = np.asarray(d["forces"], np.float64)[mask]
    scale = float(np.sqrt(np.mean(f**2))) if f.size and np.mean(f**2) > 0 else 1.0
    # numpy scalars, not Python floats: a weakly typed leaf would change type after the first
    # optimizer update (its Adam moments too) and make a jitted step compile again
    stats = EnergyScale(shifts=jnp.asarray(mu), scale=jnp.asarray(np.float64(scale)),
                        avg_neighbors=jnp.asarray(np.float64(max(np.sum(n_edges) / mask.sum(),
                                                                 1.0))),
                        known=jnp.asarray(present),
                        stress_trained=stress_weight(config, "stress" in train) > 0)
    return TDNPotential(config.cutoff, config.lmax, config.channels, config.n_layers,
                        config.n_basis, config.radial_hidden, config.readout_hidden,
                        tensor_product_factory(config), stats, key=key)


def predict(config: MLIPConfig, model: TDNPotential, sample: dict):
    """Energy, forces, stress and edge count of one padded structure (a batch row)."""
    pos = sample["positions"]
    mask = sample["mask"].astype(bool)
    cell = sample["cell"] if "cell" in sample else jnp.zeros((3, 3), pos.dtype)
    pbc = sample["pbc"].astype(bool) if "pbc" in sample else jnp.zeros(3, bool)
    species = jnp.where(mask, sample["species"], 0).astype(jnp.int32)
    graph, count = dense_neighbors(pos, mask, cell, pbc, config.cutoff,
                                   pos.shape[0] * config.max_neighbors)
    e, f, s = energy_forces_stress(model, pos, species, mask, cell, graph)
    return e, f, s, count


def _errors(config, model, batch):
    out = jax.vmap(lambda b: predict(config, model, b))(batch)
    e, f, s, count = out
    mask = batch["mask"].astype(bool)
    n = jnp.maximum(jnp.sum(mask, axis=1), 1)
    de = (e - batch["energy"]) / n
    df = jnp.where(mask[..., None], f - batch["forces"], 0.0)
    ds = s - batch["stress"] if "stress" in batch else None
    overflow = count > batch["positions"].shape[1] * config.max_neighbors
    return de, df, ds, n, overflow


def loss(config: MLIPConfig, model: TDNPotential, batch: dict, *, key=None):
    """Weighted MSE of per-atom energy, force components and (when trained) the virial per atom,
    each divided by the squared energy scale so that the loss is O(1) for any system."""
    de, df, ds, n, overflow = _errors(config, model, batch)
    scale2 = jax.lax.stop_gradient(model.energy_scale.scale) ** 2
    n_comp = jnp.maximum(3 * jnp.sum(n), 1)
    l_e = jnp.mean(de**2) / scale2
    l_f = jnp.sum(df**2) / n_comp / scale2
    total = config.energy_weight * l_e + config.forces_weight * l_f
    logs = {"energy_rmse": jnp.sqrt(jnp.mean(de**2)),
            "forces_rmse": jnp.sqrt(jnp.sum(df**2) / n_comp)}
    w_s = stress_weight(config, ds is not None)
    if w_s > 0:
        if ds is None:
            raise DataError("model.stress_weight > 0 but the data set has no 'stress' field")
        logs["stress_rmse"] = jnp.sqrt(jnp.mean(ds**2))
        # the virial per atom V σ / N (eV/atom): the stress error on the per-atom energy's scale
        vol = jnp.abs(jnp.linalg.det(batch["cell"])) if "cell" in batch else jnp.zeros(n.shape)
        dv = ds * (vol / n)[:, None, None]
        total = total + w_s * jnp.mean(dv**2) / scale2
    logs["edge_overflow"] = jnp.mean(overflow.astype(jnp.float32))
    return total, logs


def metrics(config: MLIPConfig, model: TDNPotential, batch: dict):
    """Per-structure errors: energy MAE per atom (eV/atom), force MAE and RMSE over components
    (eV/Å), stress MAE (eV/Å³, when the data have it), and whether the edge budget overflowed."""
    de, df, ds, n, overflow = _errors(config, model, batch)
    out = {"energy_mae": jnp.abs(de),
           "forces_mae": jnp.sum(jnp.abs(df), axis=(1, 2)) / (3 * n),
           "forces_rmse": jnp.sqrt(jnp.sum(df**2, axis=(1, 2)) / (3 * n)),
           "edge_overflow": overflow.astype(jnp.float32)}
    if ds is not None:
        out["stress_mae"] = jnp.mean(jnp.abs(ds), axis=(1, 2))
    return out
