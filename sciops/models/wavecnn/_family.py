"""The `wavecnn` family: config, build (normalisers from the training split), window-sampling
loss with pushforward and noise, per-trajectory metrics, comparison plot.

**Batches are whole trajectories** (``u`` `(batch, time, y, x)`, ``c`` `(batch, 1, y, x)`, as the
`wave` generator writes them). The loss draws, with its key, one window per trajectory at a
uniformly random start: `history` input frames, `pushforward` unrolled steps and one target. So
the data set is not duplicated into windows on disk, and every epoch sees fresh windows.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from ... import _random
from ..._errors import ConfigError, DataError
from ...nn import CPConv, DepthwiseSeparableConv, FullConv, SeparableSumConv, Tucker2Conv
from .._family import Family, register_family
from .._grid_rollout import grid_rollout
from ._model import WaveCNN, rollout

__all__ = ["WaveCNNConfig", "CONVS", "build", "loss", "metrics", "plot", "FAMILIES"]

# The one place where a config's `conv` name becomes a layer class.
CONVS = {
    "full": FullConv,
    "cp": CPConv,
    "separable": SeparableSumConv,
    "tucker": Tucker2Conv,
    "depthwise": DepthwiseSeparableConv,
}
"""The convolution variants by name (`model.conv`): full, CP, separable, Tucker-2, depthwise."""


@dataclasses.dataclass(frozen=True)
class WaveCNNConfig:
    """The `model:` section of a `wavecnn` run.

    **Fields:**

    - `conv` [-]: the hidden convolutions: `full`, `cp` (CP rank `rank`), `separable` (each
      kernel a sum of `rank` outer products of 1-D filters), `tucker` (Tucker-2, ranks
      `rank`), `depthwise` (depthwise-separable, depth multiplier `rank`).
    - `rank` [count]: the rank (or depth multiplier) of `conv`; ignored for `full`.
    - `width` [channels]: channels of the hidden convolutions.
    - `depth` [count]: residual blocks.
    - `kernel_size` [cells]: square kernel side.
    - `history` [frames]: input frames $k$.
    - `pushforward` [steps]: steps unrolled without gradient before the trained step
      (Brandstetter et al., ICLR 2022).
    - `noise` [1]: std of Gaussian noise added to the input frames, relative to the scale of
      the per-step second difference $s_a$ (Sanchez-Gonzalez et al., ICML 2020, scale their
      noise to the per-step change too). The leapfrog skeleton $2u^n - u^{n-1}$ is only
      neutrally stable, so a learned mode with gain above one grows geometrically in a
      rollout; noise of about one $s_a$ (not 0.1) teaches the network to damp such modes
      (docs/wavecnn.md, "Rollout stability").
    - `rollout_steps` [steps]: horizon of the `rollout_l2` metric (capped by the trajectory
      length).
    """

    conv: Literal["full", "cp", "separable", "tucker", "depthwise"] = "full"
    rank: int = 8
    width: int = 32
    depth: int = 4
    kernel_size: int = 5
    history: int = 2
    pushforward: int = 0
    noise: float = 0.0
    rollout_steps: int = 50

    def __post_init__(self):
        for key in ("rank", "width", "depth", "kernel_size", "history", "rollout_steps"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"model.{key}: expected a positive integer, got {v!r}")
        if self.conv not in CONVS:
            raise ConfigError(f"model.conv: expected one of {', '.join(CONVS)}, got {self.conv!r}")
        if isinstance(self.pushforward, bool) or not isinstance(self.pushforward, int) \
                or self.pushforward < 0:
            raise ConfigError(f"model.pushforward: expected an integer >= 0, got "
                              f"{self.pushforward!r}")
        if not self.noise >= 0:
            raise ConfigError(f"model.noise: expected a number >= 0, got {self.noise!r}")

    def make_conv(self, key):
        """The hidden convolution (`width` → `width`) of this config."""
        ks = (self.kernel_size, self.kernel_size)
        if self.conv == "full":
            return FullConv(self.width, self.width, ks, key=key)
        return CONVS[self.conv](self.width, self.width, ks, self.rank, key=key)


def _check_frames(config: WaveCNNConfig, n_frames: int, name: str) -> None:
    need = config.history + config.pushforward + 1
    if n_frames < need:
        raise DataError(f"{name}: field 'u' has {n_frames} frames per trajectory, fewer than "
                        f"model.history + model.pushforward + 1 = {need}")


def build(config: WaveCNNConfig, train, *, key) -> WaveCNN:
    """The model, with normalisers fitted on (up to 64 trajectories of) the training split."""
    shape = train.shape("u")
    if len(shape) != 3:
        raise DataError(f"{train.name}: field 'u' must be (samples, time, y, x), got sample "
                        f"shape {shape}")
    if train.shape("c") != (1, *shape[1:]):
        raise DataError(f"{train.name}: field 'c' must be (samples, 1, {shape[1]}, {shape[2]}), "
                        f"got sample shape {train.shape('c')}")
    _check_frames(config, shape[0], train.name)
    sample = train.take(np.arange(min(len(train), 64)))
    u = np.asarray(sample["u"], np.float64)
    c = np.asarray(sample["c"], np.float64)
    if config.history >= 2:
        acc = u[:, 2:] - 2 * u[:, 1:-1] + u[:, :-2]
    else:
        acc = u[:, 1:] - u[:, :-1]
    scales = (u.std(), acc.std(), c.mean(), c.std())
    if not all(np.isfinite(s) and s > 0 for s in (scales[0], scales[1])):
        raise DataError(f"{train.name}: field 'u' is constant or not finite; cannot normalise")
    scales = scales[:3] + (max(scales[3], 1e-6 * abs(scales[2]) + 1e-12),)
    return WaveCNN(config.history, config.width, config.depth, config.make_conv,
                   tuple(float(s) for s in scales), key=key)


def _windows(config: WaveCNNConfig, u, key):
    """One random window `(history + pushforward + 1, y, x)` per trajectory."""
    length = config.history + config.pushforward + 1
    starts = jax.random.randint(key, (u.shape[0],), 0, u.shape[1] - length + 1)
    return jax.vmap(lambda traj, s: jax.lax.dynamic_slice_in_dim(traj, s, length, axis=0))(
        u, starts)


def loss(config: WaveCNNConfig, model: WaveCNN, batch, *, key):
    """Mean squared one-step error in units of the second-difference scale $s_a$.

    With `pushforward` $p$, the model first rolls $p$ steps from the true window without
    gradient, then the trained step starts from its own predictions (so it learns to correct
    the distribution shift of a rollout). Noise is added to the input frames.
    """
    _check_frames(config, batch["u"].shape[1], "batch")
    k_win, k_noise = jax.random.split(key)
    win = _windows(config, batch["u"], k_win)
    k, p = config.history, config.pushforward
    inputs = win[:, :k]
    if config.noise > 0:
        # Relative to the per-step change (the second-difference scale), not to the field: a
        # perturbation of a few percent of |u| would swamp the step the model has to predict.
        scale = jax.lax.stop_gradient(model.a_scale)
        inputs = inputs + config.noise * scale * _random.normal(k_noise, inputs.shape)
    if p:
        rolled = jax.vmap(lambda f, c: rollout(model, f, c, p))(inputs, batch["c"])
        inputs = jax.lax.stop_gradient(jnp.concatenate([inputs, rolled], axis=1)[:, -k:])
    pred = jax.vmap(model.step)(inputs, batch["c"])
    target = win[:, -1]
    a_scale = jax.lax.stop_gradient(model.a_scale)
    nmse = jnp.mean(((pred - target) / a_scale) ** 2)
    rel = jnp.mean(jnp.sqrt(jnp.sum((pred - target) ** 2, axis=(1, 2))
                            / (jnp.sum(target**2, axis=(1, 2)) + 1e-30)))
    return nmse, {"nmse": nmse, "l2": rel}


def _rel(err, true):
    return jnp.sqrt(jnp.sum(err**2) / (jnp.sum(true**2) + 1e-30))


def metrics(config: WaveCNNConfig, model: WaveCNN, batch):
    """Per-trajectory errors.

    - `l2`: one-step (teacher-forced) relative L2 over all windows of the trajectory,
      $\\sqrt{\\sum_t \\|\\hat u_t - u_t\\|^2 / \\sum_t \\|u_t\\|^2}$;
    - `rollout_l2`: the same for the autoregressive rollout from the first `history` frames over
      `rollout_steps` steps (fewer if the trajectory is shorter);
    - `rollout_l2_last`: relative L2 of the last rollout frame.
    """
    u, c = batch["u"], batch["c"]
    _check_frames(config, u.shape[1], "batch")
    k = config.history
    steps = min(config.rollout_steps, u.shape[1] - k)

    def one(traj, c):
        truth = traj[k:k + steps]
        forced = rollout(model, traj[:k], c, steps, truth=truth)
        free = rollout(model, traj[:k], c, steps)
        return {"l2": _rel(forced - truth, truth),
                "rollout_l2": _rel(free - truth, truth),
                "rollout_l2_last": _rel(free[-1] - truth[-1], truth[-1])}

    return jax.vmap(one)(u, c)


def plot(config: WaveCNNConfig, model: WaveCNN, batch, path, *, fields=None,
         sample_ids=None) -> None:
    """Wave speed, truth, rollout and error at four times of the rollout, for trajectory 0.

    `fields`: the data file's per-field attributes (names, units); `sample_ids`: the
    trajectories' indices in the data set.
    """
    from ...plot import Column, describe_field, plot_fields

    u, c = np.asarray(batch["u"])[:1], np.asarray(batch["c"])[:1]
    k = config.history
    steps = min(config.rollout_steps, u.shape[1] - k)
    pred = np.asarray(jax.vmap(lambda f, cc: rollout(model, f, cc, steps))(
        jnp.asarray(u[:, :k]), jnp.asarray(c)))
    times = sorted({0, steps // 3, 2 * steps // 3, steps - 1})
    truth = u[0, k:k + steps][times]
    roll = pred[0][times]
    u_name, u_unit = describe_field(fields, "u")
    c_name, c_unit = describe_field(fields, "c")
    sid = 0 if sample_ids is None else int(sample_ids[0])
    plot_fields([Column(c_name, np.broadcast_to(c[0, 0], truth.shape), c_unit),
                 Column(f"truth {u_name}", truth, u_unit, scale="u"),
                 Column(f"rollout {u_name}", roll, u_unit, scale="u"),
                 Column("error (rollout − truth)", roll - truth, u_unit, diverging=True)],
                row_labels=[f"trajectory {sid}, step {t + 1}" for t in times],
                title=f"Wave CNN rollout of {steps} steps from {k} true frames", path=path)


def rollout_run(run, data_path, *, steps: int | None = None, start: int = 1,
                mode: str = "autoregressive", boundary: str = "truth", out_dir,
                inflow: float | None = None, animation: bool = True,
                progress: bool = True, plots: bool = True) -> dict:
    """`Family.rollout` of `wavecnn`: `sciops.models.grid_rollout` on the run's trajectories.
    A grid rollout starts after the model's first `history` frames: `start` and
    `inflow` are mesh-simulator options and have no effect here; `animation=False` skips the
    GIF, `plots=False` every figure."""
    return grid_rollout(run, data_path, steps=steps, mode=mode, boundary=boundary,
                        out_dir=out_dir, progress=progress, animation=animation,
                        plots=plots)


FAMILIES = {"wavecnn": register_family(Family(
    "wavecnn", WaveCNNConfig, build, loss, metrics, plot, rollout=rollout_run,
    units={"l2": "1", "rollout_l2": "1", "rollout_l2_last": "1"}))}
"""The `wavecnn` family record, by name, as `sciops.models.family` finds it."""
