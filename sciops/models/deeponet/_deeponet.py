"""The DeepONet: branch and trunk networks, output bias, several output fields, masks.

$$G(v)(y)_c = \\sum_{k=1}^{p} b_{ck}(v)\\, t_{ck}(y) + \\beta_c$$

(Lu et al., "Learning nonlinear operators via DeepONet", Nat. Mach. Intell. 2021). The branch
sees the input function $v$ at fixed sensors, optionally the geometry mask as an extra channel,
and the coefficient vector of a parameterised term (the multi-task DeepONet of Kumar, Goswami
et al. 2024: the polynomial coefficients of a source term, or any other basis); the trunk sees a
query point $y$. Each output channel $c$ has its own $p$ branch and trunk features (the
"split-branch, split-trunk" form for vector outputs).

Two evaluation forms share the parameters: the Cartesian-product form (``points=None``)
evaluates on the training grid, and since the trunk does not depend on the sample, ``jax.vmap``
over samples computes it once per batch; the pointwise form takes the query points of one
sample. On a grid the output is multiplied by the mask, so predictions are exactly zero off the
domain.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..._errors import DataError
from ...data import Normalizer
from ...nn import MLP, to_compute
from ...nn._cnn import ConvEncoder

__all__ = ["DeepONet", "grid_points"]


def grid_points(bounds, shape) -> np.ndarray:
    """The nodes of the grid with `shape` over `bounds` (ends included), ``(prod(shape), d)``,
    in C order of the grid axes."""
    axes = [np.linspace(lo, hi, n) for (lo, hi), n in zip(bounds, shape, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(shape))


class DeepONet(eqx.Module):
    """A (multi-task, masked) DeepONet acting on one example.

    **Arguments:**

    - `field_shape`: shape ``(channels, *spatial)`` of the input function at its sensors, or
      `None` when the branch sees only a vector.
    - `n_coeffs`: length of the coefficient vector (0 for none).
    - `grid_shape`: the output grid of the Cartesian form (``()`` for pointwise-only data).
    - `bounds`: ``[(lo, hi), ...]`` per query coordinate; the trunk sees them mapped to
      $[-1, 1]$.
    - `n_out`: number of output fields.
    - `latent`: $p$, features per output field.
    - `branch`: ``"mlp"`` (flattened sensors ⊕ coefficients) or ``"cnn"`` (`ConvEncoder` over the
      field, coefficients joined before its head).
    - `branch_width`, `branch_depth`, `trunk_width`, `trunk_depth`: MLP sizes.
    - `cnn_channels`: channels of the CNN branch's strided convolutions.
    - `mask_in_branch`: append the mask as an input channel.
    - `mask_output`: multiply grid outputs by the mask (exact zeros off the domain).
    - `activation`: the nonlinearity (also applied to the trunk's output, as Lu et al.).
    - `normalizers`: ``(field, coeffs, output)`` `Normalizer`s fitted on the training split
      (`None` for identity on the first two; output per channel).
    - `key`: PRNG key.
    """

    branch: MLP | ConvEncoder
    trunk: MLP
    bias: Float[Array, " channels"]
    field_norm: Normalizer | None
    coeff_norm: Normalizer | None
    out_norm: Normalizer
    field_shape: tuple[int, ...] | None = eqx.field(static=True)
    n_coeffs: int = eqx.field(static=True)
    grid_shape: tuple[int, ...] = eqx.field(static=True)
    bounds: tuple[tuple[float, float], ...] = eqx.field(static=True)
    n_out: int = eqx.field(static=True)
    latent: int = eqx.field(static=True)
    mask_in_branch: bool = eqx.field(static=True)
    mask_output: bool = eqx.field(static=True)
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(self, field_shape, n_coeffs: int, grid_shape, bounds, n_out: int, latent: int,
                 branch: str = "mlp", branch_width: int = 128, branch_depth: int = 3,
                 trunk_width: int = 128, trunk_depth: int = 3,
                 cnn_channels=(16, 32, 64), mask_in_branch: bool = False,
                 mask_output: bool = True, activation: Callable[[Array], Array] = jax.nn.gelu,
                 normalizers: tuple = (None, None, None), *, key: PRNGKeyArray):
        kb, kt = jax.random.split(key)
        self.field_shape = None if field_shape is None else tuple(field_shape)
        self.n_coeffs = int(n_coeffs)
        self.grid_shape = tuple(grid_shape)
        self.bounds = tuple((float(lo), float(hi)) for lo, hi in bounds)
        self.n_out, self.latent = int(n_out), int(latent)
        self.mask_in_branch, self.mask_output = bool(mask_in_branch), bool(mask_output)
        self.activation = activation
        out = n_out * latent
        channels = 0 if field_shape is None else field_shape[0] + int(mask_in_branch)
        if branch == "cnn":
            if field_shape is None:
                raise DataError("model.branch: 'cnn' needs an input field (model.input_key)")
            self.branch = ConvEncoder(channels, field_shape[1:], out, tuple(cnn_channels),
                                      extra_size=self.n_coeffs, width=branch_width,
                                      depth=max(branch_depth - 1, 0), activation=activation,
                                      key=kb)
        else:
            sensors = 0 if field_shape is None else channels * int(np.prod(field_shape[1:]))
            self.branch = MLP(sensors + self.n_coeffs, out, branch_width, branch_depth,
                              activation, key=kb)
        self.trunk = MLP(len(self.bounds), out, trunk_width, trunk_depth, activation, key=kt)
        self.bias = jnp.zeros(n_out)
        field_norm, coeff_norm, out_norm = normalizers
        self.field_norm, self.coeff_norm = field_norm, coeff_norm
        self.out_norm = out_norm if out_norm is not None else Normalizer(np.zeros(n_out),
                                                                          np.ones(n_out))

    # -- the two halves -------------------------------------------------------------------------

    def branch_features(self, field=None, coeffs=None, mask=None) -> Float[Array, "channels p"]:
        """$b(v)$, shape ``(n_out, latent)``."""
        parts = []
        if self.field_shape is not None:
            _check("field", field, self.field_shape)
            x = field if self.field_norm is None else self.field_norm.encode(field)
            x = to_compute(x)  # a training step's compute dtype (sciops.nn.MemoryPolicy)
            if self.mask_in_branch:
                _check("mask", mask, (1, *self.field_shape[1:]))
                x = jnp.concatenate([x * mask.astype(x.dtype), mask.astype(x.dtype)])
            parts.append(x)
        c = None
        if self.n_coeffs:
            _check("coeffs", coeffs, (self.n_coeffs,))
            c = to_compute(coeffs if self.coeff_norm is None else self.coeff_norm.encode(coeffs))
        if isinstance(self.branch, ConvEncoder):
            b = self.branch(parts[0], c)
        else:
            flat = [p.reshape(-1) for p in parts] + ([c] if c is not None else [])
            b = self.branch(jnp.concatenate(flat), remat_layers=True)
        return b.reshape(self.n_out, self.latent)

    def trunk_features(self, points: Float[Array, "points dim"]) -> Float[Array, "channels p points"]:
        """$t(y)$ for each point, shape ``(n_out, latent, n_points)``."""
        lo = jnp.asarray([b[0] for b in self.bounds])
        hi = jnp.asarray([b[1] for b in self.bounds])
        y = to_compute(2 * (points - lo) / (hi - lo) - 1)
        # the trunk's hidden layers are the blocks rematerialised under train.remat
        t = self.activation(jax.vmap(lambda p: self.trunk(p, remat_layers=True))(y))
        return t.reshape(-1, self.n_out, self.latent).transpose(1, 2, 0)

    def _decode(self, z):
        # Per-channel statistics, reshaped to broadcast over grid or point axes alike.
        mean, std = jax.lax.stop_gradient((self.out_norm.mean, self.out_norm.std))
        shape = (self.n_out,) + (1,) * (z.ndim - 1)
        return z * std.reshape(shape) + mean.reshape(shape)

    def _combine(self, b, t):
        # 1/sqrt(p) keeps the initial output O(1) whatever the latent size.
        return jnp.einsum("ck,ckn->cn", b, t) / np.sqrt(self.latent) + self.bias[:, None]

    def __call__(self, field: Float[Array, "channels *spatial"] | None = None,
                 coeffs: Float[Array, " coeffs"] | None = None,
                 mask: Float[Array, "1 *spatial"] | None = None,
                 points: Float[Array, "points dim"] | None = None) -> Float[Array, "channels ..."]:
        """Predict one example.

        **Arguments:**

        - `field`: the input function at its sensors, `field_shape`.
        - `coeffs`: the coefficient vector, ``(n_coeffs,)``.
        - `mask`: the geometry mask ``(1, *grid_shape)`` (0/1).
        - `points`: query points ``(n, d)`` for the pointwise form; `None` for the grid.

        **Returns:** ``(n_out, *grid_shape)`` on the grid (times the mask when `mask_output`),
        or ``(n_out, n)`` at `points` (not masked: the mask lives on the grid).
        """
        b = self.branch_features(field, coeffs, mask)
        if points is not None:
            return self._decode(self._combine(b, self.trunk_features(points)))
        grid = jnp.asarray(grid_points(self.bounds, self.grid_shape), dtype=b.dtype)
        z = self._combine(b, self.trunk_features(grid)).reshape(self.n_out, *self.grid_shape)
        u = self._decode(z)
        if self.mask_output and mask is not None:
            _check("mask", mask, (1, *self.grid_shape))
            u = u * mask
        return u


def _check(name, array, shape):
    if array is None:
        raise DataError(f"DeepONet: input {name!r} is required (expected shape {shape})")
    if tuple(array.shape) != tuple(shape):
        raise DataError(f"DeepONet: input {name!r} has shape {tuple(array.shape)}, expected "
                        f"{tuple(shape)}")
