"""Multi-grid domain decomposition (the "MG" of MG-TFNO, Kossaifi et al., TMLR 2024).

A field $(C, H, W)$ is cut into $p \\times p$ patches of $h \\times w = H/p \\times W/p$ points, each
extended by $\\delta$ = `round(padding * h)` points on every side. Every patch also receives $L$
coarser views of its surroundings: level $\\ell$ is the window $2^\\ell$ times larger (in both
directions) centred on the patch, average-pooled by $2^\\ell$ to the patch's size, so that a
network acting on one patch sees local detail and global context. The input of the patch
network therefore has $C(L + 1)$ channels on an $(h + 2\\delta) \\times (w + 2\\delta)$ grid.

Patches are independent samples: for training, one random patch per field (or all of them) goes
through the network, so the patch axis is the batch axis sharded over the `data` mesh axis, and
the memory of a step scales with the patch size rather than the field size. For evaluation all
patches are predicted and stitched back: each prediction is weighted by a window that is 1 on
the patch core and ramps linearly over the $2\\delta$-wide overlap with its neighbour, where the
two ramps sum to one (a partition of unity), and the weighted sum is divided by the total weight.
Hard crop-and-stitch (`blend=False`) keeps only the patch cores, which leaves seams in the
gradient (neuraloperator's MG patching crops; its H1 error roughly doubles, see PITFALLS).

Points outside the domain are filled by reflection (``"reflect"``) or repetition (``"edge"``)
for non-periodic problems such as Darcy; wrap-around (``"periodic"``) is only right on a torus
(Navier–Stokes), where it is also what makes the stitched overlaps wrap across the boundary.
"""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..._errors import ConfigError
from ...nn._grid import grid_coordinates

__all__ = ["MGPatching", "MGOperator"]

_PAD_MODE = {"reflect": "reflect", "edge": "edge", "periodic": "wrap"}


class MGPatching(eqx.Module):
    """Patch geometry, multi-grid context and stitching for 2-D channel-first fields.

    **Arguments:**

    - `n_patches`: patches per side $p$ ($p^2$ patches in all); must divide the grid.
    - `levels`: number $L$ of coarser context levels.
    - `padding`: overlap $\\delta$ as a fraction of the patch size, in $[0, 1/2]$.
    - `boundary`: how points outside the domain are filled: ``"reflect"``, ``"edge"`` or
      ``"periodic"``.
    - `blend`: stitch with the overlap-blending window (True) or hard-crop the cores (False).
    - `name`: the config key named in errors.
    """

    n_patches: int = eqx.field(static=True)
    levels: int = eqx.field(static=True)
    padding: float = eqx.field(static=True)
    boundary: Literal["reflect", "edge", "periodic"] = eqx.field(static=True)
    blend: bool = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __init__(self, n_patches: int, levels: int = 0, padding: float = 0.0,
                 boundary: Literal["reflect", "edge", "periodic"] = "reflect",
                 blend: bool = True, name: str = "model.mg_patches"):
        if n_patches < 1:
            raise ConfigError(f"{name}: expected a positive integer, got {n_patches}")
        if levels < 0:
            raise ConfigError(f"{name.replace('mg_patches', 'mg_levels')}: expected an integer "
                              f">= 0, got {levels}")
        if not 0.0 <= padding <= 0.5:
            raise ConfigError(f"{name.replace('mg_patches', 'mg_padding')}: expected a fraction "
                              f"in [0, 0.5] of the patch size, got {padding}")
        if boundary not in _PAD_MODE:
            raise ConfigError(f"{name.replace('mg_patches', 'mg_boundary')}: expected one of "
                              f"{', '.join(map(repr, _PAD_MODE))}, got {boundary!r}")
        self.n_patches, self.levels, self.padding = int(n_patches), int(levels), float(padding)
        self.boundary, self.blend, self.name = boundary, bool(blend), name

    def in_channels(self, channels: int) -> int:
        """Channels of a patch: the field's plus one copy per context level."""
        return channels * (self.levels + 1)

    def geometry(self, spatial: tuple[int, ...]) -> tuple[int, int, int]:
        """`(h, w, delta)` for a grid of shape `spatial`, or a ConfigError naming the key.

        Checked in Python on static shapes, so a bad grid fails before any compilation.
        """
        p = self.n_patches
        if len(spatial) != 2:
            raise ConfigError(f"{self.name}: multi-grid patching needs 2-D fields, got a grid "
                              f"of shape {tuple(spatial)}")
        if any(s % p for s in spatial):
            ok = [d for d in range(1, min(spatial) + 1) if all(s % d == 0 for s in spatial)]
            raise ConfigError(f"{self.name}: {p} patches per side do not divide the "
                              f"{spatial[0]}x{spatial[1]} grid; allowed values for this grid: "
                              f"{', '.join(map(str, ok))}")
        h, w = spatial[0] // p, spatial[1] // p
        if self.levels and (h % 2 or w % 2):
            raise ConfigError(f"{self.name}: context levels need an even patch size, got "
                              f"{h}x{w} patches of the {spatial[0]}x{spatial[1]} grid")
        delta = int(round(self.padding * min(h, w)))
        return h, w, delta

    def _padded(self, x, margin: int):
        return jnp.pad(x, [(0, 0), (margin, margin), (margin, margin)],
                       mode=_PAD_MODE[self.boundary])

    def patchify(self, x: Float[Array, "channels y x"]
                 ) -> Float[Array, "patches patch_channels py px"]:
        """All $p^2$ patches (row-major) with their context channels.

        **Returns:** shape `(p*p, channels*(levels+1), h + 2*delta, w + 2*delta)`; the first
        `channels` channels are the patch itself (level 0).
        """
        c, ny, nx = x.shape
        h, w, delta = self.geometry((ny, nx))
        ph, pw = h + 2 * delta, w + 2 * delta
        scales = [2**lv for lv in range(self.levels + 1)]
        # Level l's window extends (s-1)h/2 + s*delta beyond the patch on each side.
        reach = [((s - 1) * h // 2 + s * delta, (s - 1) * w // 2 + s * delta) for s in scales]
        margin = max(max(r) for r in reach)
        xp = self._padded(x, margin)
        out = []
        for i in range(self.n_patches):
            for j in range(self.n_patches):
                views = []
                for s, (ry, rx) in zip(scales, reach, strict=False):
                    y0, x0 = margin + i * h - ry, margin + j * w - rx
                    win = jax.lax.slice(xp, (0, y0, x0), (c, y0 + ph * s, x0 + pw * s))
                    views.append(win.reshape(c, ph, s, pw, s).mean(axis=(2, 4)) if s > 1 else win)
                out.append(jnp.concatenate(views, axis=0))
        return jnp.stack(out)

    def cores(self, y: Float[Array, "channels y x"]) -> Float[Array, "patches channels h w"]:
        """The $p^2$ patch cores of a field (no padding), row-major: training targets."""
        c, ny, nx = y.shape
        h, w, _ = self.geometry((ny, nx))
        p = self.n_patches
        return y.reshape(c, p, h, p, w).transpose(1, 3, 0, 2, 4).reshape(p * p, c, h, w)

    def crop(self, patch: Float[Array, "channels py px"], spatial: tuple[int, int]
             ) -> Float[Array, "channels h w"]:
        """The core of one padded patch (the padding cropped)."""
        h, w, delta = self.geometry(spatial)
        return patch[:, delta:delta + h, delta:delta + w]

    def _ramp(self, n: int, delta: int):
        if delta == 0 or not self.blend:
            core = jnp.zeros(n).at[delta:n - delta].set(1.0)
            return core
        t = jnp.arange(n) + 0.5
        # linear over the 2*delta overlap at each end: complementary ramps of neighbours sum to 1
        return jnp.clip(jnp.minimum(t, n - t) / (2 * delta), 0.0, 1.0)

    def stitch(self, patches: Float[Array, "patches channels py px"], spatial: tuple[int, int]
               ) -> Float[Array, "channels y x"]:
        """Put predicted padded patches back on the `spatial` grid (weighted overlap average)."""
        ny, nx = spatial
        h, w, delta = self.geometry(spatial)
        p = self.n_patches
        c = patches.shape[1]
        window = self._ramp(h + 2 * delta, delta)[:, None] * self._ramp(w + 2 * delta, delta)[None]
        window = window.astype(patches.dtype)
        acc = jnp.zeros((c, ny + 2 * delta, nx + 2 * delta), patches.dtype)
        wsum = jnp.zeros((ny + 2 * delta, nx + 2 * delta), patches.dtype)
        for k in range(p * p):
            i, j = divmod(k, p)
            sl = (slice(i * h, i * h + h + 2 * delta), slice(j * w, j * w + w + 2 * delta))
            acc = acc.at[(slice(None), *sl)].add(patches[k] * window)
            wsum = wsum.at[sl].add(window)
        if self.boundary == "periodic" and delta:
            acc, wsum = _fold(acc, delta, 1), _fold(wsum, delta, 0)
        else:
            acc = acc[:, delta:delta + ny, delta:delta + nx]
            wsum = wsum[delta:delta + ny, delta:delta + nx]
        return acc / wsum


def _fold(a, delta: int, first: int):
    """Wrap the `delta`-wide margins of an extended periodic canvas onto the opposite sides."""
    for axis in (first, first + 1):
        n = a.shape[axis] - 2 * delta
        lo = jax.lax.slice_in_dim(a, 0, delta, axis=axis)
        core = jax.lax.slice_in_dim(a, delta, delta + n, axis=axis)
        hi = jax.lax.slice_in_dim(a, delta + n, n + 2 * delta, axis=axis)
        idx_lo = [slice(None)] * a.ndim
        idx_lo[axis] = slice(n - delta, n)
        idx_hi = [slice(None)] * a.ndim
        idx_hi[axis] = slice(0, delta)
        a = core.at[tuple(idx_lo)].add(lo).at[tuple(idx_hi)].add(hi)
    return a


class MGOperator(eqx.Module):
    """A patch network applied over the multi-grid patches of a field.

    $\\mathcal G(a) = \\mathrm{stitch}\\big(\\{\\mathcal N(\\mathrm{patch}_k(a))\\}_k\\big)$: the network
    $\\mathcal N$ (e.g. an FNO with `patching.in_channels(C)` inputs) sees one padded patch with
    its context levels and predicts the padded patch of the output.

    **Arguments:**

    - `net`: the patch network, `(C'(L+1), h+2δ, w+2δ) -> (C_out, h+2δ, w+2δ)` with
      $C' = C + 2$ if `coordinates` else $C$.
    - `patching`: the `MGPatching` geometry.
    - `coordinates`: append the *global* cell-centre coordinates of the whole field as two
      channels before patching. A patch network only sees patch-local positions otherwise, and
      cannot learn a position-dependent operator (Navier–Stokes with Li et al.'s forcing
      $f(x + y)$: without them the patched model's error stayed ~5x the unpatched one).
    """

    net: eqx.Module
    patching: MGPatching
    coordinates: bool = eqx.field(static=True, default=False)

    def patches(self, x: Float[Array, "channels y x"]
                ) -> Float[Array, "patches patch_channels py px"]:
        """The network inputs: all patches with context levels (and global coordinates)."""
        if self.coordinates:
            x = jnp.concatenate([x, grid_coordinates(x.shape[1:], x.dtype)], axis=0)
        return self.patching.patchify(x)

    def __call__(self, x: Float[Array, "channels y x"]) -> Float[Array, "out_channels y x"]:
        return self.patching.stitch(jax.vmap(self.net)(self.patches(x)), x.shape[1:])

    def patch_forward(self, x: Float[Array, "channels y x"], index: Int[Array, ""] | int,
                      crop: bool = True) -> Float[Array, "out_channels h w"]:
        """The prediction of patch `index` alone (row-major): its core, or with `crop=False`
        the whole padded patch (what patch training supervises, since stitching blends the
        padded margins into the overlaps)."""
        patch = jnp.take(self.patches(x), index, axis=0)
        out = self.net(patch)
        return self.patching.crop(out, x.shape[1:]) if crop else out
