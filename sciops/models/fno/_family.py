"""The `fno` family: config, build (with normalisers), losses, metrics and the comparison plot.

Losses are relative norms of the physical-unit error, per sample, averaged over the batch:

- relative L2: $\\|\\hat u - u\\|_2 / \\|u\\|_2$ over all channels and grid points;
- relative H1: $\\big(\\|\\hat u - u\\|_2^2 + \\|\\nabla_h(\\hat u - u)\\|_2^2\\big)^{1/2} /
  \\big(\\|u\\|_2^2 + \\|\\nabla_h u\\|_2^2\\big)^{1/2}$, with $\\nabla_h$ second-order central finite
  differences on the unit square (spacing $1/s$; first-order one-sided at the boundary, as
  `numpy.gradient`). neuraloperator's `H1Loss` uses the same central differences but wraps
  around periodically at the boundary; on Darcy, whose solution vanishes on the boundary, the
  two differ only in the boundary rows.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..._errors import ConfigError, DataError
from ..._types import Batch
from ...data import Normalizer, fit_normalizer
from . import _tfno
from ._fno import FNO
from ._mg import MGOperator

__all__ = ["FNOConfig", "FieldOperator", "Normalizer", "build", "loss", "metrics", "plot",
           "relative_h1", "relative_l2"]


@dataclasses.dataclass(frozen=True)
class FNOConfig:
    """The `model:` section of an `fno` run (field names are `FNO`'s constructor arguments).

    **Fields:**

    - `n_modes` [modes]: Fourier modes kept per spatial axis (full-spectrum count;
      neuraloperator's convention), at most the grid size on each axis.
    - `hidden_channels` [channels]: width of the Fourier layers.
    - `n_layers` [count]: Fourier layers.
    - `lifting_channels`, `projection_channels` [channels]: hidden widths of the lifting and
      projection MLPs.
    - `positional_embedding` [-]: append cell-centre coordinates to the input.
    - `padding` [1]: domain padding as a fraction of each axis (for non-periodic problems
      such as Darcy).
    - `loss` [-]: training loss, relative ``"l2"`` or relative ``"h1"``.
    - `in_key`, `out_key` [-]: the data fields mapped from and to. A field stored without a
      channel axis (`(n, *spatial)`, e.g. neuraloperator's Darcy files) is read as one
      channel.

    MG-TFNO keys (Kossaifi et al. 2024; docs/tfno.md):

    - `factorization` [-]: the spectral weights' format, ``"dense"``, ``"cp"``, ``"tucker"``
      or ``"tt"``.
    - `rank` [1]: the factorization's rank: an int, or a float in (0, 1] = fraction of the
      dense parameter count.
    - `joint` [-]: one factorized tensor for all layers (true) or one per layer.
    - `implementation` [-]: contract with the factors (``"factorized"``) or rebuild the
      weight first (``"reconstructed"``).
    - `skip` [-]: the Fourier layer's skip, ``"linear"``, ``"soft-gating"`` or
      ``"identity"``.
    - `channel_mlp_expansion` [1]: hidden width of a per-layer channel MLP as a fraction of
      `hidden_channels` (0: none).
    - `channel_mlp_skip` [-]: the channel MLP's skip (as `skip`).
    - `norm` [-]: ``"none"``, ``"instance"`` or ``"group"`` (4 groups).
    - `mg_patches` [count]: patches per side (1: none).
    - `mg_levels` [count]: coarser context levels.
    - `mg_padding` [1]: patch overlap as a fraction of the patch size.
    - `mg_boundary` [-]: filling outside the domain (``"reflect"``, ``"edge"``,
      ``"periodic"`` only for periodic data).
    - `mg_train` [-]: per training sample use ``"one"`` random patch or ``"all"`` patches.
    """

    n_modes: tuple[int, ...] = (16, 16)
    hidden_channels: int = 32
    n_layers: int = 4
    lifting_channels: int = 64
    projection_channels: int = 64
    positional_embedding: bool = True
    padding: float = 0.0
    loss: Literal["l2", "h1"] = "l2"
    in_key: str = "x"
    out_key: str = "y"
    factorization: Literal["dense", "cp", "tucker", "tt"] = "dense"
    rank: int | float = 0.1
    joint: bool = True
    implementation: Literal["factorized", "reconstructed"] = "factorized"
    skip: Literal["linear", "soft-gating", "identity"] = "linear"
    channel_mlp_expansion: float = 0.0
    channel_mlp_skip: Literal["linear", "soft-gating", "identity"] = "soft-gating"
    norm: Literal["none", "instance", "group"] = "none"
    mg_patches: int = 1
    mg_levels: int = 0
    mg_padding: float = 0.0
    mg_boundary: Literal["reflect", "edge", "periodic"] = "reflect"
    mg_train: Literal["one", "all"] = "one"

    def __post_init__(self):
        if not self.n_modes or min(self.n_modes) < 1:
            raise ConfigError(f"model.n_modes: expected positive integers, got {list(self.n_modes)}")
        for name in ("hidden_channels", "n_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name}: expected a positive integer, got "
                                  f"{getattr(self, name)}")
        for name in ("lifting_channels", "projection_channels"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model.{name}: expected an integer >= 0, got "
                                  f"{getattr(self, name)}")
        if not 0.0 <= self.padding <= 1.0:
            raise ConfigError(f"model.padding: expected a fraction in [0, 1], got {self.padding}")
        _tfno.check_config(self)


class FieldOperator(eqx.Module):
    """A network wrapped with input and output normalisers: physical field in, physical out."""

    net: FNO | MGOperator
    in_norm: Normalizer
    out_norm: Normalizer

    def __call__(self, x: Float[Array, "in_channels *spatial"]
                 ) -> Float[Array, "out_channels *spatial"]:
        return self.out_norm.decode(self.net(self.in_norm.encode(x)))

    def batch(self, x: Float[Array, "batch in_channels *spatial"]
              ) -> Float[Array, "batch out_channels *spatial"]:
        """`__call__` on a batch, with the network applied to the whole batch at once."""
        return jax.vmap(self.out_norm.decode)(self.net.batch(jax.vmap(self.in_norm.encode)(x)))


def as_fields(values, n_space: int, what: str) -> Float[Array, "batch channels *spatial"]:
    """A batch of fields `(batch, channels, *spatial)` as float32, adding a channel axis to
    `(batch, *spatial)` data and casting integer data (neuraloperator's uint8 coefficients)."""
    values = jnp.asarray(values)
    if values.ndim == n_space + 1:
        values = values[:, None]
    elif values.ndim != n_space + 2:
        raise DataError(f"data.{what}: expected a batch of shape (batch, channels, "
                        f"{n_space} spatial axes) or (batch, {n_space} spatial axes), got "
                        f"{tuple(values.shape)}")
    return values.astype(jnp.float32)


def _sample_shape(train, key: str, n_space: int) -> tuple[int, ...]:
    """`(channels, *spatial)` of field `key` of a Dataset, or a DataError naming it."""
    if key not in train:
        raise DataError(f"data: no field {key!r} in {train.name}; fields: "
                        f"{', '.join(train.keys())} (set model.in_key / model.out_key)")
    shape = tuple(train.shape(key))
    if len(shape) == n_space:
        return (1, *shape)
    if len(shape) == n_space + 1:
        return shape
    raise DataError(f"data.{key}: model.n_modes has {n_space} axes, so each sample must be "
                    f"(channels, {n_space} spatial axes) or ({n_space} spatial axes); "
                    f"{train.name} has shape {shape}")


def _fit_normalizer(train, key: str, n_space: int) -> Normalizer:
    """The shared, frozen `sciops.data.Normalizer` of field `key`, per channel, with statistics
    of shape `(channels, 1, ..., 1)` (one channel for a field stored without a channel axis)."""
    has_channels = len(train.shape(key)) == n_space + 1
    norm = fit_normalizer(train, key, channel_axis=0 if has_channels else None)
    shape = (-1,) + (1,) * n_space
    return Normalizer(norm.mean.reshape(shape), norm.std.reshape(shape))


def build(config: FNOConfig, train, *, key: PRNGKeyArray) -> FieldOperator:
    """The FNO for `config`, with normalisers fitted on `train` (a `sciops.data.Dataset`)."""
    n_space = len(config.n_modes)
    x_shape = _sample_shape(train, config.in_key, n_space)
    y_shape = _sample_shape(train, config.out_key, n_space)
    if x_shape[1:] != y_shape[1:]:
        raise DataError(f"data: {config.in_key!r} has grid {x_shape[1:]} but {config.out_key!r} "
                        f"has grid {y_shape[1:]}; the FNO maps between fields on one grid")
    _tfno.check_grid(config, x_shape[1:])
    if len(train) == 0:
        raise DataError(f"data: the training split of {train.name} is empty")
    # the MG-TFNO pieces draw from a folded key, so a plain FNO's init is unchanged
    k_weight, k_blocks = jax.random.split(jax.random.fold_in(key, 3))
    patching = _tfno.patching(config)
    # patches get global position features (MGPatching.position_channels) when the
    # embedding is on, in place of the full-field FNO's raw coordinates
    n_in = x_shape[0] if patching is None else patching.in_channels(x_shape[0])
    net = FNO(n_in, y_shape[0], config.n_modes, config.hidden_channels, config.n_layers,
              config.lifting_channels, config.projection_channels, config.positional_embedding,
              config.padding, spectral_weight=_tfno.spectral_weight(config, key=k_weight),
              blocks=_tfno.blocks(config, key=k_blocks), key=key)
    if patching is not None:
        net = MGOperator(net, patching)
    sub = train.select([config.in_key, config.out_key])
    return FieldOperator(net, _fit_normalizer(sub, config.in_key, n_space),
                         _fit_normalizer(sub, config.out_key, n_space))


def relative_l2(pred: Float[Array, "batch channels *spatial"],
                true: Float[Array, "batch channels *spatial"]) -> Float[Array, "batch"]:
    """Per-sample $\\|\\hat u - u\\|_2 / \\|u\\|_2$ over channels and grid points."""
    axes = tuple(range(1, true.ndim))
    return jnp.sqrt(jnp.sum((pred - true) ** 2, axes) / jnp.sum(true**2, axes))


def _grad_sq(v: Float[Array, "batch channels *spatial"]) -> Float[Array, "batch"]:
    """$\\sum |\\nabla_h v|^2$ per sample, central differences on the unit cube."""
    total = 0.0
    for axis in range(2, v.ndim):
        h = 1.0 / v.shape[axis]
        total = total + jnp.sum(jnp.gradient(v, h, axis=axis) ** 2, tuple(range(1, v.ndim)))
    return total


def relative_h1(pred: Float[Array, "batch channels *spatial"],
                true: Float[Array, "batch channels *spatial"]) -> Float[Array, "batch"]:
    """Per-sample relative H1 error (see the module docstring)."""
    axes = tuple(range(1, true.ndim))
    err = pred - true
    num = jnp.sum(err**2, axes) + _grad_sq(err)
    den = jnp.sum(true**2, axes) + _grad_sq(true)
    return jnp.sqrt(num / den)


def _predict(config: FNOConfig, model: FieldOperator, batch: Batch):
    n_space = len(config.n_modes)
    x = as_fields(batch[config.in_key], n_space, config.in_key)
    y = as_fields(batch[config.out_key], n_space, config.out_key)
    return model.batch(x), y


# the figure's prediction as one program (op by op it was ~40 % of drawing the figure); the
# config is static
_predict_compiled = eqx.filter_jit(_predict)


def loss(config: FNOConfig, model: FieldOperator, batch: Batch, *, key: PRNGKeyArray | None = None
         ) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:
    """Mean relative L2 or H1 error of the batch (physical units), and both as metrics."""
    if key is not None and _tfno.uses_patches(model):
        # multi-grid training: patches are the samples (the FNO itself is deterministic)
        n_space = len(config.n_modes)
        pred, y = _tfno.patch_pairs(config, model,
                                    as_fields(batch[config.in_key], n_space, config.in_key),
                                    as_fields(batch[config.out_key], n_space, config.out_key),
                                    key)
    else:
        pred, y = _predict(config, model, batch)
    l2 = jnp.mean(relative_l2(pred, y))
    h1 = jnp.mean(relative_h1(pred, y))
    return (h1 if config.loss == "h1" else l2), {"l2": l2, "h1": h1}


def metrics(config: FNOConfig, model: FieldOperator, batch: Batch) -> dict[str, Float[Array, "batch"]]:
    """Per-sample relative L2 (`l2`) and relative H1 (`h1`) errors in physical units."""
    pred, y = _predict(config, model, batch)
    return {"l2": relative_l2(pred, y), "h1": relative_h1(pred, y)}


def plot(config: FNOConfig, model: FieldOperator, batch: Batch, path, n: int = 4, *,
         fields=None, sample_ids=None) -> None:
    """Write a PNG of input / truth / prediction / error for the first `n` samples.

    `fields`: the data file's per-field attributes (``description``, ``units``, grid
    ``bounds``), for the panels' names and units; `sample_ids`: the samples' indices in the
    data set, for the row labels.
    """
    from ...plot import Column, describe_field, grid_extent, plot_fields

    n = min(n, len(next(iter(batch.values()))))
    sub = {k: np.asarray(v)[:n] for k, v in batch.items()}
    pred, y = _predict_compiled(config, model, sub)
    x = np.asarray(as_fields(sub[config.in_key], len(config.n_modes), config.in_key))
    pred, y = np.asarray(pred), np.asarray(y)
    l2 = np.asarray(relative_l2(jnp.asarray(pred), jnp.asarray(y)))
    x_name, x_unit = describe_field(fields, config.in_key)
    y_name, y_unit = describe_field(fields, config.out_key)
    ids = list(range(n)) if sample_ids is None else [int(i) for i in sample_ids[:n]]
    extent, axis_unit = grid_extent(fields, config.in_key)
    plot_fields([Column(x_name, x[:, 0], x_unit),
                 Column(f"truth {y_name}", y[:, 0], y_unit, scale="y"),
                 Column(f"prediction {y_name}", pred[:, 0], y_unit, scale="y"),
                 Column("error (prediction − truth)", pred[:, 0] - y[:, 0], y_unit,
                        diverging=True)],
                row_labels=[f"sample {i} (rel. L2 {100 * e:.2f} %)" for i, e in zip(ids, l2, strict=True)],
                title=f"FNO: {y_name} from {x_name}, first channel", extent=extent,
                axis_unit=axis_unit, path=path)
