"""Domain-decomposed spectral convolution: a slab-decomposed FFT with explicit all-to-alls.

When a field's first spatial axis is sharded over the device-mesh axis ``space`` (each device
holding a slab of rows), `jnp.fft` on the global array would make XLA gather the whole field
on every device. `sharded_spectral_conv` instead runs inside `jax.shard_map`:

1. real FFT along the local (unsharded) axes and truncation to the retained modes;
2. `lax.all_to_all`: split the channels, gather the sharded axis — each device now holds
   every row of $C/p$ channels, but only the retained columns;
3. FFT along the (now local) first axis and truncation to its retained modes;
4. `lax.all_gather` of these retained modes over channels (a few kB: modes, not the field),
   so the injected spectral weight contracts them unchanged (dense or factorized);
5. each device keeps its $C_{out}/p$ output channels, inverse FFT along the first axis;
6. `lax.all_to_all` back to row slabs, inverse real FFT along the local axes.

Communication per layer is two all-to-alls of $C\\cdot H\\cdot k$ values (the truncated
columns, not the full width) and one all-gather of $C\\cdot m_1 k$ modes; nothing the size of
the whole field ever sits on one device. The result equals the single-device `spectral_conv`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Float, Int

from .._errors import ConfigError
from ._spectral import AbstractSpectralWeight, check_modes, gather_modes, scatter_modes

__all__ = ["batch_vmap", "sharded_spectral_conv", "space_axis_size"]


def batch_vmap(fn, in_axes=0, out_axes=0):
    """`jax.vmap` over the examples of a batch, telling JAX that the batch axis is sharded
    over the mesh axis ``data`` when a mesh context has one.

    Without ``spmd_axis_name``, vmap of a `shard_map` (the domain-decomposed FFT) treats the
    batch axis as replicated and gathers the batch onto every device.
    """
    mesh = jax.sharding.get_abstract_mesh()
    name = ("data" if mesh is not None and not mesh.empty and "data" in mesh.axis_names
            else None)
    return jax.vmap(fn, in_axes=in_axes, out_axes=out_axes, spmd_axis_name=name)


def space_axis_size(axis_name: str = "space") -> int:
    """The size of mesh axis `axis_name` in the current mesh context (1 if none)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh is None or mesh.empty or axis_name not in mesh.axis_names:
        return 1
    return int(mesh.shape[axis_name])


def _rest_fft(x, n_modes_rest):
    """rfftn over axes 2.. and truncation to the retained modes (axes 0, 1 untouched)."""
    c, h = x.shape[:2]
    rest = x.shape[2:]
    x_ft = jnp.fft.rfftn(x, axes=tuple(range(2, x.ndim)))
    merged = x_ft.reshape(c * h, *x_ft.shape[2:])
    kept = gather_modes(merged, n_modes_rest)
    return kept.reshape(c, h, *kept.shape[1:]), rest


def _rest_ifft(y, n_modes_rest, rest):
    c, h = y.shape[:2]
    freq = (*rest[:-1], rest[-1] // 2 + 1)
    full = scatter_modes(y.reshape(c * h, *y.shape[2:]), n_modes_rest, freq)
    full = full.reshape(c, h, *full.shape[1:])
    return jnp.fft.irfftn(full, s=rest, axes=tuple(range(2, y.ndim)))


def sharded_spectral_conv(x: Float[Array, "channels *spatial"], weight: AbstractSpectralWeight,
                          layer: int | Int[Array, ""], n_modes: Sequence[int] | None = None,
                          axis_name: str = "space") -> Float[Array, "out_channels *spatial"]:
    """`spectral_conv` on a field whose first spatial axis is sharded over `axis_name`.

    Call it under a mesh context (`jax.set_mesh`) whose axis `axis_name` has size $p$; the
    field's first spatial size and the input and output channel counts must be divisible by
    $p$. At least two spatial axes are needed (the slab decomposition keeps one local).

    **Arguments:** as `spectral_conv`, plus `axis_name`.

    **Returns:** shape `(out_channels, *spatial)`, sharded like `x`.
    """
    n_modes = tuple(weight.n_modes if n_modes is None else n_modes)
    c_in, *spatial = x.shape
    check_modes(n_modes, spatial)
    p = space_axis_size(axis_name)
    if len(spatial) < 2:
        raise ConfigError("train.mesh.space: domain decomposition needs at least 2 spatial axes")
    for what, size in (("the first spatial axis", spatial[0]), ("model input channels", c_in),
                       ("model output channels", weight.out_channels)):
        if size % p:
            raise ConfigError(f"train.mesh.space: {what} ({size}) is not divisible by the "
                              f"{p} devices of the mesh axis 'space'")
    m1, rest_modes = n_modes[0], n_modes[1:]
    h = spatial[0]
    c_out = weight.out_channels

    def local(xl):
        # xl: (C, H/p, *rest) — this device's slab of rows.
        cols, rest = _rest_fft(xl, rest_modes)                            # (C, H/p, *k)
        cols = lax.all_to_all(cols, axis_name, split_axis=0, concat_axis=1, tiled=True)
        cols = jnp.fft.fft(cols, axis=1)                                  # (C/p, H, *k)
        modes = _gather_first(cols, m1)                                   # (C/p, m1, *k)
        modes = lax.all_gather(modes, axis_name, axis=0, tiled=True)      # (C, m1, *k)
        out = weight.contract(modes, layer)                               # (O, m1, *k)
        share = c_out // p
        out = lax.dynamic_slice_in_dim(out, lax.axis_index(axis_name) * share, share, axis=0)
        out = jnp.fft.ifft(_scatter_first(out, m1, h), axis=1)            # (O/p, H, *k)
        out = lax.all_to_all(out, axis_name, split_axis=1, concat_axis=0, tiled=True)
        return _rest_ifft(out, rest_modes, rest).astype(xl.dtype)          # (O, H/p, *rest)

    spec = P(None, axis_name, *([None] * (len(spatial) - 1)))
    return jax.shard_map(local, in_specs=spec, out_specs=spec, check_vma=False)(x)


def _gather_first(x, m):
    """Retained modes (both signs) of axis 1: the first ⌈m/2⌉ and the last ⌊m/2⌋ entries."""
    pos, neg = m - m // 2, m // 2
    size = x.shape[1]
    parts = [lax.slice_in_dim(x, 0, pos, axis=1)]
    if neg:
        parts.append(lax.slice_in_dim(x, size - neg, size, axis=1))
    return jnp.concatenate(parts, axis=1) if neg else parts[0]


def _scatter_first(y, m, size):
    """Inverse of `_gather_first`: zeros in the dropped frequencies of axis 1."""
    pos = m - m // 2
    zshape = list(y.shape)
    zshape[1] = size - m
    return jnp.concatenate([y[:, :pos], jnp.zeros(zshape, y.dtype), y[:, pos:]], axis=1)
