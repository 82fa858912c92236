"""Per-channel normalisers, fitted by streaming over a data set (the training split only)."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._errors import DataError
from ._dataset import Dataset

__all__ = ["Normalizer", "fit_normalizer"]


class Normalizer(eqx.Module):
    """$x \\mapsto (x - \\mu) / \\sigma$ per channel, and back.

    `mean` and `std` have the shape of one example with every non-channel axis of size one
    (e.g. `(channels, 1, 1)` for a 2-D grid field), so the same normaliser applies at any
    resolution and to a batch with a leading axis. Both are frozen: `encode` and `decode` stop
    gradients through them, so a model that holds a normaliser never trains it and its
    checkpoint carries it.

    **Arguments:**

    - `mean`, `std`: the statistics; `std` must be positive.
    """

    mean: Float[Array, "..."]
    std: Float[Array, "..."]

    # Tells the training driver (sciops.train) never to hand these leaves to the optimizer.
    __sciops_frozen__ = True

    def __init__(self, mean: ArrayLike, std: ArrayLike):
        self.mean = jnp.asarray(mean, dtype=jnp.result_type(float))
        self.std = jnp.asarray(std, dtype=jnp.result_type(float))

    def __check_init__(self):
        if self.mean.shape != self.std.shape:
            raise DataError(f"Normalizer: mean shape {self.mean.shape} differs from std shape "
                            f"{self.std.shape}")
        if not isinstance(self.std, jax.core.Tracer) and bool(np.any(np.asarray(self.std) <= 0)):
            raise DataError("Normalizer: std must be positive")

    def encode(self, x: Float[Array | np.ndarray, "..."]) -> Float[Array, "..."]:
        """$(x - \\mu)/\\sigma$."""
        mean, std = jax.lax.stop_gradient((self.mean, self.std))
        return ((x - mean) / std).astype(jnp.result_type(x, jnp.float32))

    def decode(self, z: Float[Array | np.ndarray, "..."]) -> Float[Array, "..."]:
        """$z\\,\\sigma + \\mu$."""
        mean, std = jax.lax.stop_gradient((self.mean, self.std))
        return (z * std + mean).astype(jnp.result_type(z, jnp.float32))


class _Moments:
    """Running per-channel count, mean and sum of squared deviations (float64), merged with
    the pairwise update of Chan, Golub & LeVeque (1979), "Updating formulae and a pairwise
    algorithm for computing sample variances", which stays accurate when the mean is large
    compared with the spread."""

    def __init__(self):
        self.n = self.mean = self.m2 = None

    def update(self, x: np.ndarray, axes: tuple[int, ...], weight: np.ndarray | None) -> None:
        x = x.astype(np.float64)
        if weight is None:
            n_b = np.full(np.sum(x, axis=axes, keepdims=True).shape,
                          np.prod([x.shape[a] for a in axes]), np.float64)
            mean_b = x.mean(axis=axes, keepdims=True)
            m2_b = ((x - mean_b) ** 2).sum(axis=axes, keepdims=True)
        else:
            w = np.broadcast_to(weight, x.shape).astype(np.float64)
            n_b = w.sum(axis=axes, keepdims=True)
            mean_b = (w * x).sum(axis=axes, keepdims=True) / np.maximum(n_b, 1)
            m2_b = (w * (x - mean_b) ** 2).sum(axis=axes, keepdims=True)
        if self.n is None:
            self.n, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n = self.n + n_b
        delta = mean_b - self.mean
        safe = np.maximum(n, 1)
        self.mean = self.mean + delta * n_b / safe
        self.m2 = self.m2 + m2_b + delta**2 * self.n * n_b / safe
        self.n = n


def fit_normalizer(data: Dataset | ArrayLike, key: str | None = None, *,
                   channel_axis: int | Sequence[int] | None = 0, mask_key: str | None = None,
                   batch_size: int = 256, eps: float = 1e-6) -> Normalizer:
    """Fit a per-channel `Normalizer` by streaming over the samples.

    Statistics are accumulated in float64 batch by batch (never loading the whole data set)
    and merged with the parallel update of Chan et al., so the result equals the two-pass
    mean and population standard deviation.

    **Arguments:**

    - `data`: a `Dataset` (pass the training split only) or an array with a leading sample
      axis.
    - `key`: the field to fit when `data` is a `Dataset`.
    - `channel_axis`: the axis (or axes) of one example that keep separate statistics: `0` for
      channel-first grid fields `(channels, *spatial)`, `-1` for `(nodes, channels)` or
      `(atoms, 3)`, `None` for one statistic over everything (e.g. total energies).
    - `mask_key`: a boolean field whose samples have the example shape without the channel
      axes; only `True` entries count (masked domains, padded atoms).
    - `batch_size`: samples read at a time.
    - `eps`: floor for the standard deviation (constant channels get `std = eps` and encode
      to zero).

    **Returns:** a `Normalizer` whose `mean`/`std` have the example's shape with non-channel
    axes of size one.

    **Raises:** `DataError` naming the field when it is missing, empty or the axes do not fit.
    """
    if isinstance(data, Dataset):
        if key is None:
            raise DataError(f"{data.name}: fit_normalizer needs the field name `key`")
        dataset = data
        example_shape = dataset.shape(key)
        name = f"{data.name}: field {key!r}"
    else:
        if mask_key is not None:
            raise DataError("fit_normalizer: mask_key needs a Dataset")
        array = np.asarray(data)
        if array.ndim == 0:
            raise DataError(f"fit_normalizer: need a leading sample axis, got shape {array.shape}")
        dataset = Dataset({"x": array}, name="array")
        key, example_shape, name = "x", array.shape[1:], "array"
    if len(dataset) == 0:
        raise DataError(f"{name}: no samples to fit a normaliser on")
    ndim = len(example_shape)
    axes_in = () if channel_axis is None else (
        (channel_axis,) if isinstance(channel_axis, int) else tuple(channel_axis))
    if any(not isinstance(a, int) or not -ndim <= a < ndim for a in axes_in):
        raise DataError(f"{name}: channel_axis {channel_axis} does not fit examples of shape "
                        f"{example_shape}")
    channel = tuple(sorted({a % ndim for a in axes_in}))
    reduce = (0,) + tuple(1 + a for a in range(ndim) if a not in channel)
    keys = [key] + ([mask_key] if mask_key else [])
    mask_shape = tuple(s for a, s in enumerate(example_shape) if a not in channel)
    if mask_key and dataset.shape(mask_key) != mask_shape:
        raise DataError(f"{dataset.name}: mask {mask_key!r} has sample shape "
                        f"{dataset.shape(mask_key)}; expected {mask_shape} (the shape of "
                        f"{key!r}, {example_shape}, without channel axes {channel})")
    moments = _Moments()
    for batch in dataset.select(keys).batches(batch_size, drop_last=False):
        weight = None
        if mask_key:
            weight = np.expand_dims(batch[mask_key].astype(bool), tuple(1 + a for a in channel))
        moments.update(batch[key], reduce, weight)
    if np.any(moments.n == 0):
        raise DataError(f"{name}: the mask {mask_key!r} selects no entries of some channel")
    std = np.sqrt(moments.m2 / moments.n)
    std = np.maximum(std, eps)
    return Normalizer(moments.mean[0], std[0])
