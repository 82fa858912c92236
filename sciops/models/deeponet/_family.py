"""The `deeponet` family: config, build (normalisers), masked losses, per-task metrics, plot.

**Relative L2, two conventions.** With the domain mask $m_i$ of sample $i$ (all ones without
a mask) and error $e_i = m_i(\\hat u_i - u_i)$:

- per-sample mean: $\\frac1B\\sum_i \\|e_i\\|/\\|m_i u_i\\|$ (the MT-DeepONet paper's metric);
- global: $\\big(\\sum_i \\|e_i\\|^2 / \\sum_i \\|m_i u_i\\|^2\\big)^{1/2}$.

`model.loss` picks the training loss. `metrics` returns per-sample arrays (the driver averages
each over a test set): ``l2`` (per-sample relative L2), ``sq_err`` $=\\|e_i\\|^2/n$ and ``sq_ref``
$=\\|m_i u_i\\|^2/n$ with $n$ the grid size (so the global error of a test set is
$\\sqrt{\\overline{\\text{sq\\_err}}/\\overline{\\text{sq\\_ref}}}$), and with `task_key`
``l2/<task>`` per task, holding the sample's error for samples of that task and NaN for the
others (the driver averages the finite entries only); the names are `model.task_names`.

**Masks.** ``mask_in_branch`` feeds the mask as an input channel; ``mask_in_loss`` multiplies the
prediction by the mask (exact zeros off the domain) so that the loss sees only the domain.
Metrics always measure the error on the domain, so the ablation (both / loss only / none) is
compared on equal terms.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from ..._errors import ConfigError, DataError
from ...data import Dataset, Normalizer, fit_normalizer
from ._deeponet import DeepONet

__all__ = ["DeepONetConfig", "build", "loss", "metrics", "plot", "predict", "relative_l2"]

_ACTIVATIONS = {"gelu": jax.nn.gelu, "tanh": jnp.tanh, "silu": jax.nn.silu}


@dataclasses.dataclass(frozen=True)
class DeepONetConfig:
    """The `model:` section of a `deeponet` run.

    **Fields:**

    - `input_key` [-]: the input function (``(channels, *sensors)`` per sample), or null.
    - `coeff_key` [-]: the coefficient vector of the parameterised term, or null.
    - `target_key` [-]: the output field, ``(channels, *grid)`` (or ``(channels, n)`` with
      `points_key`).
    - `mask_key` [-]: the geometry mask ``(1, *grid)``, or null.
    - `task_key` [-]: integer task (or geometry) id per sample, for per-task metrics; or null.
    - `points_key` [-]: per-sample query points ``(n, d)`` (pointwise form); null for the
      grid.
    - `mask_in_branch`, `mask_in_loss` [-]: see the module docstring.
    - `branch` [-]: ``mlp`` or ``cnn``.
    - `branch_width`, `trunk_width` [units]: hidden widths of the branch and trunk MLPs.
    - `branch_depth`, `trunk_depth` [count]: hidden layers of the branch and trunk MLPs.
    - `cnn_channels` [channels]: channels of the CNN branch's convolutions, one per layer.
    - `latent` [count]: $p$, the number of basis functions (branch and trunk outputs).
    - `activation` [-]: the hidden layers' activation function.
    - `loss` [-]: ``per_sample`` or ``global`` relative L2.
    - `task_names` [-]: labels of the task ids 0, 1, ... (required with `task_key`; the names
      of the per-task metrics ``l2/<name>``). They are config, not model state, so a transfer
      run on a new geometry can name its own tasks.
    """

    input_key: str | None = "u0"
    coeff_key: str | None = None
    target_key: str = "u"
    mask_key: str | None = None
    task_key: str | None = None
    points_key: str | None = None
    mask_in_branch: bool = True
    mask_in_loss: bool = True
    branch: Literal["mlp", "cnn"] = "mlp"
    branch_width: int = 128
    branch_depth: int = 3
    cnn_channels: tuple[int, ...] = (16, 32, 64)
    trunk_width: int = 128
    trunk_depth: int = 3
    latent: int = 64
    activation: Literal["gelu", "tanh", "silu"] = "gelu"
    loss: Literal["per_sample", "global"] = "per_sample"
    task_names: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ("branch_width", "branch_depth", "trunk_width", "trunk_depth", "latent"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name}: expected a positive integer, got "
                                  f"{getattr(self, name)}")
        if self.input_key is None and self.coeff_key is None:
            raise ConfigError("model.input_key, model.coeff_key: the branch needs at least one")
        if self.task_key is not None and not self.task_names:
            raise ConfigError("model.task_names: required with model.task_key (one name per "
                              "task id, e.g. [fisher, nws, zeldovich])")
        if self.points_key is not None and self.mask_key is not None:
            raise ConfigError("model.mask_key: masks live on the grid; not supported with "
                              "model.points_key")


def _spatial(shape):
    return tuple(shape[1:])


def _check_batch_shapes(config: DeepONetConfig, model: DeepONet, batch) -> None:
    """DataError naming the batch key when a field does not fit the model (shapes are static)."""
    def check(key, expected):
        got = tuple(batch[key].shape[1:])
        if got != tuple(expected):
            raise DataError(f"{key}: per-sample shape {got} does not fit the model (expected "
                            f"{tuple(expected)})")
    for key in (config.input_key, config.coeff_key, config.target_key, config.mask_key):
        if key is not None and key not in batch:
            raise DataError(f"batch has no field {key!r}; fields: {', '.join(batch)}")
    if config.input_key is not None:
        check(config.input_key, model.field_shape)
    if config.coeff_key is not None:
        check(config.coeff_key, (model.n_coeffs,))
    if config.mask_key is not None:
        check(config.mask_key, (1, *model.grid_shape))


def build(config: DeepONetConfig, train: Dataset, *, key) -> DeepONet:
    """The model for `config`, with normalisers fitted on the training split `train`."""
    target = train.shape(config.target_key)
    if len(target) < 2:
        raise DataError(f"{train.name}: field {config.target_key!r} has per-sample shape "
                        f"{target}; expected (channels, *grid)")
    n_out = target[0]
    field_shape = train.shape(config.input_key) if config.input_key else None
    if field_shape is not None and len(field_shape) < 2:
        raise DataError(f"{train.name}: field {config.input_key!r} has per-sample shape "
                        f"{field_shape}; expected (channels, *sensors)")
    n_coeffs = 0
    if config.coeff_key:
        cshape = train.shape(config.coeff_key)
        if len(cshape) != 1:
            raise DataError(f"{train.name}: field {config.coeff_key!r} has per-sample shape "
                            f"{cshape}; expected a vector (n_coeffs,)")
        n_coeffs = cshape[0]
    if config.points_key:
        pshape = train.shape(config.points_key)
        if len(pshape) != 2 or pshape[0] != target[1]:
            raise DataError(f"{train.name}: field {config.points_key!r} has per-sample shape "
                            f"{pshape}; expected ({target[1]}, dim) to match "
                            f"{config.target_key!r} {target}")
        grid_shape, dim = (), pshape[1]
    else:
        grid_shape, dim = _spatial(target), len(target) - 1
    if config.mask_key:
        mshape = train.shape(config.mask_key)
        if mshape != (1, *grid_shape):
            raise DataError(f"{train.name}: mask {config.mask_key!r} has per-sample shape "
                            f"{mshape}; expected {(1, *grid_shape)} (the grid of "
                            f"{config.target_key!r}, {target})")
        if config.mask_in_branch and field_shape is not None and \
                _spatial(field_shape) != grid_shape:
            raise DataError(f"{train.name}: mask {config.mask_key!r} {mshape} cannot be a branch "
                            f"channel of {config.input_key!r} {field_shape}")
    bounds = train.attrs.get("bounds")
    if bounds is None:
        bounds = [[0.0, 1.0]] * dim
    if len(bounds) != dim:
        raise DataError(f"{train.name}: attribute 'bounds' has {len(bounds)} axes, but the "
                        f"query points have {dim} coordinates")
    field_norm = fit_normalizer(train, config.input_key) if config.input_key else None
    coeff_norm = None
    if config.coeff_key:
        c = np.asarray(train.select([config.coeff_key]).load()[config.coeff_key], np.float64)
        std = c.std(0)
        # Constant coefficients (a basis term no task uses) pass through unscaled.
        coeff_norm = Normalizer(c.mean(0), np.where(std > 1e-6, std, 1.0))
    if config.task_key:
        ids = np.asarray(train.select([config.task_key]).load()[config.task_key]).reshape(-1)
        if ids.min() < 0 or ids.max() >= len(config.task_names):
            raise DataError(f"{train.name}: field {config.task_key!r} holds task ids "
                            f"{ids.min()}..{ids.max()}, but model.task_names names "
                            f"{len(config.task_names)} task(s): {list(config.task_names)}")
    out = fit_normalizer(train, config.target_key)
    out_norm = Normalizer(out.mean.reshape(n_out), out.std.reshape(n_out))
    return DeepONet(field_shape, n_coeffs, grid_shape, bounds, n_out, config.latent,
                    branch=config.branch, branch_width=config.branch_width,
                    branch_depth=config.branch_depth, trunk_width=config.trunk_width,
                    trunk_depth=config.trunk_depth, cnn_channels=config.cnn_channels,
                    mask_in_branch=bool(config.mask_key) and config.mask_in_branch,
                    mask_output=bool(config.mask_key) and config.mask_in_loss,
                    activation=_ACTIVATIONS[config.activation],
                    normalizers=(field_norm, coeff_norm, out_norm), key=key)


def predict(config: DeepONetConfig, model: DeepONet, batch) -> jax.Array:
    """Predictions for a batch, ``(batch, n_out, *grid)`` (or ``(batch, n_out, n)``)."""
    _check_batch_shapes(config, model, batch)
    get = lambda k: None if k is None else jnp.asarray(batch[k])  # noqa: E731
    field, coeffs, mask = get(config.input_key), get(config.coeff_key), get(config.mask_key)
    points = get(config.points_key)
    if mask is not None:
        mask = mask.astype(jnp.result_type(float))
    # Only sample-dependent inputs are mapped: the trunk on a shared grid is computed once.
    return jax.vmap(lambda f, c, m, p: model(f, c, m, p),
                    in_axes=(None if field is None else 0, None if coeffs is None else 0,
                             None if mask is None else 0, None if points is None else 0)
                    )(field, coeffs, mask, points)


def relative_l2(pred, target, mask=None):
    """Per-sample squared error and squared reference norms on the domain, each ``(batch,)``."""
    if mask is not None:
        pred, target = pred * mask, target * mask
    axes = tuple(range(1, pred.ndim))
    return jnp.sum((pred - target) ** 2, axes), jnp.sum(target**2, axes)


def loss(config: DeepONetConfig, model: DeepONet, batch, *, key=None):
    """The training loss (relative L2 in `config.loss` form) and its named scalars."""
    pred = predict(config, model, batch)
    target = jnp.asarray(batch[config.target_key])
    mask = None
    if config.mask_key is not None and config.mask_in_loss:
        mask = jnp.asarray(batch[config.mask_key]).astype(pred.dtype)
    err, ref = relative_l2(pred, target, mask)
    per_sample = jnp.sqrt(err / jnp.maximum(ref, 1e-30))
    glob = jnp.sqrt(jnp.sum(err) / jnp.maximum(jnp.sum(ref), 1e-30))
    value = per_sample.mean() if config.loss == "per_sample" else glob
    return value, {"l2": per_sample.mean(), "l2_global": glob}


def metrics(config: DeepONetConfig, model: DeepONet, batch) -> dict[str, jax.Array]:
    """Per-sample metrics (see the module docstring for the keys and the per-task convention)."""
    pred = predict(config, model, batch)
    target = jnp.asarray(batch[config.target_key])
    mask = None
    if config.mask_key is not None:
        mask = jnp.asarray(batch[config.mask_key]).astype(pred.dtype)
    err, ref = relative_l2(pred, target, mask)
    # Divide by the full grid size (not the mask's): then means over samples keep the ratio.
    n = np.prod(target.shape[1:])
    l2 = jnp.sqrt(err / jnp.maximum(ref, 1e-30))
    out = {"l2": l2, "sq_err": err / n, "sq_ref": ref / n}
    if config.task_key is not None:
        task = jnp.asarray(batch[config.task_key]).reshape(-1)
        for k, name in enumerate(config.task_names):
            out[f"l2/{name}"] = jnp.where(task == k, l2, jnp.nan)
    return out


def plot(config: DeepONetConfig, model: DeepONet, batch, path, *, fields=None,
         sample_ids=None) -> None:
    """Truth / prediction / error for the first three samples (2-D slices) as a PNG.

    3-D outputs are shown at their middle slice along the leading axis, 1-D outputs as a
    one-row image. `fields`: the data file's per-field attributes (names, units);
    `sample_ids`: the samples' indices in the data set.
    """
    from ...plot import Column, describe_field, plot_fields

    pred = np.asarray(predict(config, model, batch))
    target = np.asarray(batch[config.target_key])
    n = min(3, target.shape[0])

    def slice2d(a):
        a = np.asarray(a)[0]  # first channel
        while a.ndim > 2:  # middle slice of leading axes (e.g. z of a 3-D plate)
            a = a[a.shape[0] // 2]
        return a if a.ndim == 2 else a[None]

    truth = np.stack([slice2d(target[i]) for i in range(n)])
    guess = np.stack([slice2d(pred[i]) for i in range(n)])
    name, unit = describe_field(fields, config.target_key)
    ids = list(range(n)) if sample_ids is None else [int(i) for i in sample_ids[:n]]
    plot_fields([Column(f"truth {name}", truth, unit, scale="y"),
                 Column(f"prediction {name}", guess, unit, scale="y"),
                 Column("error (prediction − truth)", guess - truth, unit, diverging=True)],
                row_labels=[f"sample {i}" for i in ids],
                title=f"DeepONet: {name} (first channel; middle slice of 3-D outputs)",
                path=path)
