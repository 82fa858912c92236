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
    a, b = eqx.filter_jit(lambda op, net, x: (op(x), net(x)))(op, net, x)  # one compile
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


def test_patch_forward_is_the_stitched_core(getkey):
    patching = MGPatching(2, 1, 0.0, "periodic")
    net = FNO(patching.in_channels(2), 1, (8, 8), hidden_channels=8, n_layers=2,
              lifting_channels=8, projection_channels=8, key=getkey())
    op = MGOperator(net, patching)
    x = _field(getkey())
    mg = MGPatching(4, 2, 0.25, "periodic", coordinates=True)

    # One compiled program instead of op-by-op dispatch: a python-int patch index (static
    # slices) for two patches, a traced index (as inside training) for all four.
    @eqx.filter_jit
    def run(op, x):
        cores = patching.cores(op(x))
        static = [op.patch_forward(x, k) for k in (0, 3)]
        traced = jax.vmap(lambda k: op.patch_forward(x, k))(jnp.arange(4, dtype=jnp.int32))
        every = mg.patchify(x)
        one = jax.vmap(lambda k: mg.patchify(x, k))(jnp.array([0, 5, 15], jnp.int32))
        return cores, static, traced, every, one

    cores, static, traced, every, one = run(op, x)
    for k in range(4):   # with no overlap, stitching is the cores: each equals its own forward
        if k in (0, 3):
            np.testing.assert_allclose(np.asarray(static[k // 3]), np.asarray(cores[k]),
                                       rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(traced[k]), np.asarray(cores[k]),
                                   rtol=1e-5, atol=1e-5)
    # one patch built alone (traced index) is the same patch as in the stack of all
    for i, k in enumerate((0, 5, 15)):
        np.testing.assert_allclose(np.asarray(one[i]), np.asarray(every[k]),
                                   rtol=1e-6, atol=1e-6)


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


def _torus_features(patching, n):
    """Level-0 position channels of every padded patch of an n x n field, and the true global
    cell-centre coordinates (y, x) of the same points (unwrapped, i.e. possibly outside [0, 1])."""
    c = 1
    x = jnp.zeros((c, n, n))
    patches = np.asarray(patching.patchify(x))
    h, w, delta = patching.geometry((n, n))
    pos = patches[:, c:c + patching.position_channels]
    coords = []
    for i in range(patching.n_patches):
        for j in range(patching.n_patches):
            ys = (i * h - delta + np.arange(h + 2 * delta) + 0.5) / n
            xs = (j * w - delta + np.arange(w + 2 * delta) + 0.5) / n
            coords.append(np.meshgrid(ys, xs, indexing="ij"))
    return pos, np.asarray(coords)


@pytest.mark.parametrize("n_patches, levels", [(2, 1), (4, 2)])
def test_periodic_patches_can_express_functions_of_global_position(n_patches, levels):
    # On a torus the position channels are cos/sin(2 pi y), cos/sin(2 pi x) of the global
    # position, so sin(2 pi x) and cos(2 pi (x + y)) (the Navier-Stokes forcing's shape) are
    # exact linear / bilinear functions of them in every padded patch, margins across the wrap
    # included. With the earlier raw coordinates (wrapped like the field) the best affine fit of
    # sin(2 pi x) over one half-domain patch is off by up to 0.71, and the patched
    # Navier-Stokes model stalled at 41 % error after 300 steps (8 % unpatched, 15 % with
    # these features).
    patching = MGPatching(n_patches, levels, 0.125 if n_patches == 2 else 0.25, "periodic",
                          coordinates=True)
    assert patching.position_channels == 4
    pos, coords = _torus_features(patching, 32)
    cy, sy, cx, sx = np.moveaxis(pos, 1, 0)
    yy, xx = np.moveaxis(coords, 1, 0)
    np.testing.assert_allclose(sx, np.sin(2 * np.pi * xx), atol=1e-5)
    np.testing.assert_allclose(cy, np.cos(2 * np.pi * yy), atol=1e-5)
    np.testing.assert_allclose(cx * cy - sx * sy, np.cos(2 * np.pi * (xx + yy)), atol=1e-5)
    # neighbouring pixels differ by at most 2 pi / 32 per axis: no jump across the wrap
    assert np.abs(np.diff(pos, axis=-1)).max() < 2 * np.pi / 32 + 1e-5
    assert np.abs(np.diff(pos, axis=-2)).max() < 2 * np.pi / 32 + 1e-5


@pytest.mark.parametrize("boundary", ["reflect", "edge"])
def test_coordinates_are_continued_linearly_outside_the_domain(boundary):
    # reflect/edge fill the field outside the domain, but a point there keeps its true position
    patching = MGPatching(2, 2, 0.25, boundary, coordinates=True)
    assert patching.position_channels == 2
    n = 16
    x = jax.random.normal(jax.random.key(3), (1, n, n))
    patches = np.asarray(patching.patchify(x))
    h, w, delta = patching.geometry((n, n))
    m = h + 2 * delta
    for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        for level in range(3):
            s = 2**level
            # level l: pooled window of s*m points centred on the patch; the mean of cell
            # centres over a block of s cells is the centre of the block
            y0 = i * h + h / 2 - s * m / 2
            x0 = j * w + w / 2 - s * m / 2
            ys = (y0 + s * (np.arange(m) + 0.5)) / n
            xs = (x0 + s * (np.arange(m) + 0.5)) / n
            base = level * 3
            np.testing.assert_allclose(patches[k, base + 1], np.broadcast_to(ys[:, None], (m, m)),
                                       atol=1e-5)
            np.testing.assert_allclose(patches[k, base + 2], np.broadcast_to(xs[None], (m, m)),
                                       atol=1e-5)
    # the field channels are unchanged by the position channels
    plain = np.asarray(MGPatching(2, 2, 0.25, boundary).patchify(x))
    np.testing.assert_allclose(patches[:, [0, 3, 6]], plain, rtol=1e-6, atol=1e-6)


def test_channel_counts():
    # the field's channels plus the position features (4 on a torus, 2 otherwise), per level
    assert MGPatching(2, 1, 0.125, "periodic", coordinates=True).in_channels(1) == (1 + 4) * 2
    assert MGPatching(2, 2, 0.125, "reflect", coordinates=True).in_channels(3) == (3 + 2) * 3
    assert MGPatching(2, 2, 0.125, "periodic").in_channels(3) == 3 * 3


def test_patch_training_loss_compares_the_same_patch(getkey):
    # The family's MG training loss (mg_train: one) must compare the prediction of patch k of
    # field b with patch k of the target (padded, physical units), k drawn from the key.
    from sciops._config import from_dict
    from sciops.data import Dataset
    from sciops.models import family
    from sciops.models.fno._family import relative_l2

    fno = family("fno")
    cfg = from_dict(fno.config, dict(n_modes=[8, 8], hidden_channels=8, n_layers=1,
                                     lifting_channels=8, projection_channels=8,
                                     factorization="tucker", rank=0.5, mg_patches=2, mg_levels=1,
                                     mg_padding=0.25, mg_boundary="periodic"), "model")
    x = np.asarray(jax.random.normal(getkey(), (3, 1, 16, 16)))
    y = np.asarray(jnp.sin(jnp.asarray(x)) + 1.0)
    model = fno.build(cfg, Dataset({"x": x, "y": y}), key=getkey())
    key = getkey()

    @eqx.filter_jit  # one compile for the loss and the hand-written reference together
    def both(model, x, y, key):
        loss, _ = fno.loss(cfg, model, {"x": x, "y": y}, key=key)
        index = jax.random.randint(key, (3,), 0, 4)
        op = model.net
        errs = []
        for b in range(3):
            patch = op.patching.patchify(model.in_norm.encode(x[b]))[index[b]]
            pred = model.out_norm.decode(op.net(patch))
            true = op.patching.patchify(y[b])[index[b]][:1]
            errs.append(relative_l2(pred[None], true[None])[0])
        return loss, jnp.stack(errs)

    loss, errs = both(model, jnp.asarray(x), jnp.asarray(y), key)
    np.testing.assert_allclose(float(loss), float(np.mean(errs)), rtol=1e-5)
