"""Multi-grid patching: exact stitching, the context levels, errors before compilation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciops._errors import ConfigError
from sciops.models.fno._fno import FNO
from sciops.models.fno._mg import MGOperator, MGPatching


def _field(key, c=2, n=32):
    return jax.random.normal(key, (c, n, n))


@pytest.mark.parametrize("boundary", ["reflect", "edge", "periodic"])
@pytest.mark.parametrize("n_patches, levels, padding", [(1, 0, 0.0), (2, 1, 0.25), (4, 2, 0.25),
                                                        (4, 0, 0.5)])
def test_identity_model_stitches_back_exactly(boundary, n_patches, levels, padding, getkey):
    x = _field(getkey())
    patching = MGPatching(n_patches, levels, padding, boundary)
    patches = patching.patchify(x)
    h, w, delta = patching.geometry((32, 32))
    assert patches.shape == (n_patches**2, 2 * (levels + 1), h + 2 * delta, w + 2 * delta)
    # "identity" patch model: its own level-0 channels (the padded patch)
    stitched = patching.stitch(patches[:, :2], (32, 32))
    np.testing.assert_allclose(np.asarray(stitched), np.asarray(x), rtol=1e-6, atol=1e-6)
    # patch -> crop(patch) reproduces the cores bit for bit
    crops = jax.vmap(lambda p: patching.crop(p, (32, 32)))(patches[:, :2])
    np.testing.assert_array_equal(np.asarray(crops), np.asarray(patching.cores(x)))
    hard = MGPatching(n_patches, levels, padding, boundary, blend=False)
    np.testing.assert_array_equal(np.asarray(hard.stitch(patches[:, :2], (32, 32))),
                                  np.asarray(x))


def test_blended_overlaps_average_neighbours(getkey):
    # Patches that disagree in the overlap are blended with complementary linear ramps:
    # patch k predicts the constant k, so the stitched value goes smoothly from 0 to 1
    # across the seam between patches (0, 0) and (0, 1).
    patching = MGPatching(2, 0, 0.25, "reflect")
    h, w, delta = patching.geometry((16, 16))
    preds = jnp.arange(4.0)[:, None, None, None] * jnp.ones((4, 1, h + 2 * delta, w + 2 * delta))
    out = np.asarray(patching.stitch(preds, (16, 16)))[0]
    row = out[0]
    seam = slice(w - delta, w + delta)
    np.testing.assert_allclose(row[: w - delta], 0.0, atol=1e-7)
    np.testing.assert_allclose(row[w + delta:], 1.0, atol=1e-7)
    np.testing.assert_allclose(row[seam], (np.arange(2 * delta) + 0.5) / (2 * delta), atol=1e-6)


@pytest.mark.parametrize("boundary, mode", [("reflect", "reflect"), ("periodic", "wrap"),
                                            ("edge", "edge")])
def test_context_levels_are_pooled_surroundings(boundary, mode, getkey):
    x = np.asarray(_field(getkey(), c=1, n=16))
    patching = MGPatching(2, 2, 0.25, boundary)
    patches = np.asarray(patching.patchify(jnp.asarray(x)))
    h, _, delta = patching.geometry((16, 16))   # h = 8, delta = 2
    n = h + 2 * delta
    big = np.pad(x, [(0, 0), (40, 40), (40, 40)], mode=mode)
    for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        for level in range(3):
            s = 2**level
            cy, cx = 40 + i * h + h / 2, 40 + j * h + h / 2   # patch centre in `big`
            y0, x0 = int(cy - n * s / 2), int(cx - n * s / 2)
            win = big[0, y0:y0 + n * s, x0:x0 + n * s]
            ref = win.reshape(n, s, n, s).mean(axis=(1, 3))
            np.testing.assert_allclose(patches[k, level], ref, rtol=1e-5, atol=1e-6)


def test_single_patch_operator_equals_network(getkey):
    net = FNO(2, 1, (8, 8), hidden_channels=8, n_layers=2, lifting_channels=8,
              projection_channels=8, key=getkey())
    x = _field(getkey())
    op = MGOperator(net, MGPatching(1, 0, 0.0, "periodic"))
    np.testing.assert_allclose(np.asarray(op(x)), np.asarray(net(x)), rtol=1e-6, atol=1e-6)


def test_patch_forward_is_the_stitched_core(getkey):
    patching = MGPatching(2, 1, 0.0, "periodic")
    net = FNO(patching.in_channels(2), 1, (8, 8), hidden_channels=8, n_layers=2,
              lifting_channels=8, projection_channels=8, key=getkey())
    op = MGOperator(net, patching)
    x = _field(getkey())
    full = op(x)
    cores = patching.cores(full)
    for k in range(4):   # with no overlap, stitching is the cores: each equals its own forward
        np.testing.assert_allclose(np.asarray(op.patch_forward(x, k)), np.asarray(cores[k]),
                                   rtol=1e-5, atol=1e-5)
    traced = eqx.filter_jit(lambda o, x, k: o.patch_forward(x, k))(op, x, jnp.int32(3))
    np.testing.assert_allclose(np.asarray(traced), np.asarray(cores[3]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, spatial, pattern", [
    ({"n_patches": 3}, (32, 32), r"model\.mg_patches: 3 patches per side do not divide the "
                                 r"32x32 grid; allowed values for this grid: 1, 2, 4, 8, 16, 32"),
    ({"n_patches": 4, "levels": 1}, (36, 36), r"model\.mg_patches: context levels need an even"),
    ({"n_patches": 2}, (8, 8, 8), r"model\.mg_patches: multi-grid patching needs 2-D fields"),
])
def test_bad_grid_names_key(kwargs, spatial, pattern):
    with pytest.raises(ConfigError, match=pattern):
        MGPatching(**kwargs).geometry(spatial)


@pytest.mark.parametrize("kwargs, key", [({"n_patches": 0}, "mg_patches"),
                                         ({"n_patches": 2, "levels": -1}, "mg_levels"),
                                         ({"n_patches": 2, "padding": 0.7}, "mg_padding"),
                                         ({"n_patches": 2, "boundary": "circular"}, "mg_boundary")])
def test_bad_settings_name_key(kwargs, key):
    with pytest.raises(ConfigError, match=rf"^model\.{key}:"):
        MGPatching(**kwargs)
