"""The wave simulator: a residual CNN, with any (compressed) convolution injected, that maps the
last `history` frames and the wave-speed field to the next frame."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..._errors import DataError
from ...nn import AbstractConv, FullConv, remat_block, to_compute

__all__ = ["WaveCNN", "rollout"]


class WaveCNN(eqx.Module):
    """$u^{n+1} = 2u^n - u^{n-1} + s_a (c/\\bar c)^2\\,
    \\mathcal{N}_\\theta(u^{n-k+1..n}/s_u,\\ (c-\\bar c)/s_c)$.

    The network predicts the normalised second difference (for `history` = 1, the first
    difference $u^{n+1} - u^n$): the leapfrog extrapolation $2u^n - u^{n-1}$ is exact for the
    linear part of the dynamics that is constant over a step, so the network learns only the
    correction, in units of its training-set scale $s_a$, times $(c/\\bar c)^2$ because the
    leading term of the exact update is $\\Delta t^2 c^2 \\Delta u$ (so the network need not
    learn a product of its inputs). Architecture: a 1×1 lifting to `width`
    channels, `depth` residual blocks $h \\leftarrow h + K_j(\\sigma(h))$ whose convolutions
    $K_j$ are injected (`FullConv`, `CPConv`, ... built by `conv(key)`), $\\sigma$, a 1×1
    projection. The blocks are stacked (`eqx.filter_vmap` over keys) and applied with
    `jax.lax.scan`, so compile time does not grow with depth. Zero padding at the edges.

    Normalisers ($s_u$, $s_a$, $\\bar c$, $s_c$) are fitted on the training split and kept as
    frozen leaves (`stop_gradient` at use), so the model maps physical frames to physical frames.

    Reference: C. Boukraichi et al., "A priori compression of convolutional neural networks for
    wave simulators", 2023.

    **Arguments:**

    - `history`: frames in the input ($k$); `width`, `depth`: channels and residual blocks.
    - `conv`: `key -> AbstractConv` mapping `width` to `width` channels (the injected form).
    - `scales`: `(u_scale, a_scale, c_mean, c_std)`; `activation`; `key`.
    """

    lift: FullConv
    blocks: AbstractConv
    project: FullConv
    u_scale: Float[Array, " "]
    a_scale: Float[Array, " "]
    c_mean: Float[Array, " "]
    c_std: Float[Array, " "]
    history: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)
    state_field: str = eqx.field(static=True, default="u")
    cond_fields: tuple[str, ...] = eqx.field(static=True, default=("c",))

    def __init__(self, history: int, width: int, depth: int,
                 conv: Callable[[PRNGKeyArray], AbstractConv],
                 scales: tuple[float, float, float, float],
                 activation: Callable[[Array], Array] = jax.nn.gelu, *, key: PRNGKeyArray):
        k_lift, k_blocks, k_proj = jax.random.split(key, 3)
        self.history, self.depth, self.activation = history, depth, activation
        self.lift = FullConv(history + 1, width, (1, 1), key=k_lift)
        self.blocks = eqx.filter_vmap(conv)(jax.random.split(k_blocks, depth))
        # A small last layer: the network starts close to the leapfrog extrapolation.
        proj = FullConv(width, 1, (1, 1), key=k_proj)
        self.project = eqx.tree_at(lambda m: m.weight, proj, 0.1 * proj.weight)
        self.u_scale, self.a_scale, self.c_mean, self.c_std = (
            jnp.asarray(s, jnp.float32) for s in scales)

    @property
    def conv_params(self) -> int:
        """Parameters of the (possibly compressed) hidden convolutions, all blocks together."""
        return self.blocks.n_params

    @property
    def n_params(self) -> int:
        """All trainable parameters (the normalisers are not trained)."""
        return (self.lift.n_params + self.blocks.n_params + self.project.n_params)

    def conv_flops(self, spatial_shape: tuple[int, ...]) -> int:
        """FLOPs of the hidden convolutions for one step on one example."""
        one = jax.tree_util.tree_map(lambda a: a[0] if eqx.is_array(a) else a, self.blocks)
        return self.depth * one.flops(spatial_shape)

    def step(self, frames: Float[Array, " history *spatial"],
             c: Float[Array, " 1 *spatial"]) -> Float[Array, " *spatial"]:
        """The next frame from the last `history` frames (oldest first) and the wave speed."""
        if frames.shape[0] != self.history:
            raise DataError(f"u: the model needs the last model.history = {self.history} frames, "
                            f"got {frames.shape[0]} (frames shape {frames.shape})")
        u_scale, a_scale, c_mean, c_std = jax.lax.stop_gradient(
            (self.u_scale, self.a_scale, self.c_mean, self.c_std))
        x = jnp.concatenate([frames / u_scale, (c - c_mean) / c_std], axis=0)
        h = self.lift(to_compute(x))  # a training step's compute dtype (sciops.nn.MemoryPolicy)
        dynamic, static = eqx.partition(self.blocks, eqx.is_array)

        def residual(params, h):
            return h + eqx.combine(params, static)(self.activation(h))

        def block(h, params):
            return remat_block(residual)(params, h), None

        h, _ = jax.lax.scan(block, h, dynamic)
        # The leading term of the exact update is dt^2 c^2 Lap u: scaling the output by
        # (c / c_mean)^2 leaves the network a product-free job (a deviation from a plain CNN).
        delta = self.project(self.activation(h))[0] * a_scale * (c[0] / c_mean) ** 2
        if self.history >= 2:
            return 2 * frames[-1] - frames[-2] + delta
        return frames[-1] + delta

    def __call__(self, frames: Float[Array, " history *spatial"],
                 c: Float[Array, " 1 *spatial"]) -> Float[Array, " 1 *spatial"]:
        return self.step(frames, c)[None]


def rollout(model: WaveCNN, frames: Float[Array, " time *spatial"], c: Float[Array, " 1 *spatial"],
            steps: int, truth: Float[Array, " steps *spatial"] | None = None
            ) -> Float[Array, " steps *spatial"]:
    """Autoregressive rollout of `steps` frames from the last `model.history` of `frames`.

    With `truth` (the true next `steps` frames) the rollout is teacher-forced instead: each step
    starts from true frames, so its error is the one-step error at every time.
    """
    k = model.history
    if frames.shape[0] < k:
        raise DataError(f"u: {frames.shape[0]} frame(s) given, fewer than model.history = {k}")
    window = frames[-k:]
    forced = truth is not None
    xs = truth if forced else jnp.zeros((steps,) + frames.shape[1:], frames.dtype)

    def body(window, true_next):
        nxt = model.step(window, c)
        carry_next = true_next if forced else nxt
        return jnp.concatenate([window[1:], carry_next[None]], axis=0), nxt

    _, out = jax.lax.scan(body, window, xs)
    return out
