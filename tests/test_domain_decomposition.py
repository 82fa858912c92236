"""Domain decomposition over the `space` mesh axis: the slab-FFT spectral convolution and
halo-exchanging convolutions equal the single-device result, and the compiled programs never
gather a whole field on one device."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from sciops import ConfigError
from sciops.nn._dist_fft import sharded_spectral_conv, space_axis_size
from sciops.nn._spectral import DenseSpectralWeight, spectral_conv

_SIZES = re.compile(r"=\s*\(?(\w+)\[([\d,]*)\]")


def _mesh(data, space):
    return jax.make_mesh((data, space), ("data", "space"), axis_types=(AxisType.Auto,) * 2)


def _collectives(hlo: str, op: str) -> list[int]:
    """Element counts of the results of every `op` instruction in a compiled HLO text."""
    sizes = []
    for line in hlo.splitlines():
        if f" {op}(" in line or f" {op}-start(" in line:
            m = _SIZES.search(line)
            dims = [int(d) for d in m.group(2).split(",") if d] if m else []
            sizes.append(int(np.prod(dims)) if dims else 1)
    return sizes


def _conv_batch(w, x, layer=1, sharded=True):
    fn = sharded_spectral_conv if sharded else spectral_conv
    kw = {"spmd_axis_name": "data"} if sharded else {}
    return jax.vmap(lambda a: fn(a, w, layer), **kw)(x)


def _conv_and_grad(w, x, sharded):
    """The batch's convolution and the gradient of its sum of squares (one forward pass)."""
    out, vjp = jax.vjp(lambda w: _conv_batch(w, x, sharded=sharded), w)
    return out, vjp(2 * out)[0]


@pytest.mark.parametrize("data, space", [(1, 4), (2, 2)])
def test_sharded_spectral_conv_equals_single_device(getkey, data, space):
    w = DenseSpectralWeight(2, 4, 8, (8, 6), key=getkey())
    x = jax.random.normal(getkey(), (2 * data, 4, 32, 24))
    # both compiled once (op by op, the reference compiled each of its operations)
    fn = jax.jit(_conv_and_grad, static_argnums=2)
    ref, ref_grad = fn(w, x, False)
    mesh = _mesh(data, space)
    xs = jax.device_put(x, NamedSharding(mesh, P("data", None, "space")))
    with jax.set_mesh(mesh):
        out, grad = fn(w, xs, True)
    assert out.sharding.is_equivalent_to(xs.sharding, out.ndim)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(grad), jax.tree.leaves(ref_grad), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(b))))


def test_sharded_fft_never_gathers_a_field(getkey):
    c, h, wd = 8, 64, 64
    w = DenseSpectralWeight(1, c, c, (8, 8), key=getkey())
    x = jax.random.normal(getkey(), (2, c, h, wd))
    mesh = _mesh(1, 4)
    xs = jax.device_put(x, NamedSharding(mesh, P("data", None, "space")))
    with jax.set_mesh(mesh):
        hlo = jax.jit(lambda w, x: jax.grad(lambda w: jnp.sum(_conv_batch(w, x, 0) ** 2))(w)
                      ).lower(w, xs).compile().as_text()
    field = c * h * wd  # one example's field: no collective may produce this much per device
    gathers = _collectives(hlo, "all-gather")
    assert gathers and max(gathers) < field // 8, gathers
    assert _collectives(hlo, "all-to-all"), "the slab FFT must use all-to-all"
    # A plain `jnp.fft` of the same sharded field, by contrast, gathers whole fields.
    def plain_fft(x):
        return jnp.fft.irfftn(jnp.fft.rfftn(x, axes=(2, 3)), s=(h, wd), axes=(2, 3))

    with jax.set_mesh(mesh):
        naive_hlo = jax.jit(plain_fft).lower(xs).compile().as_text()
    assert max(_collectives(naive_hlo, "all-gather") + [0]) >= field


def test_convolution_on_space_sharded_field_exchanges_halos_only(getkey):
    k = jax.random.normal(getkey(), (8, 4, 3, 3))
    x = jax.random.normal(getkey(), (2, 4, 64, 64))
    mesh = _mesh(1, 4)
    xs = jax.device_put(x, NamedSharding(mesh, P("data", None, "space")))

    def conv(x, k):
        return jax.lax.conv_general_dilated(x, k, (1, 1), "SAME",
                                            dimension_numbers=("NCHW", "OIHW", "NCHW"))

    with jax.set_mesh(mesh):
        compiled = jax.jit(conv).lower(xs, k).compile()
        out = jax.jit(conv)(xs, k)
    hlo = compiled.as_text()
    np.testing.assert_allclose(out, conv(x, k), rtol=1e-5, atol=1e-5)
    assert not _collectives(hlo, "all-gather")
    halos = _collectives(hlo, "collective-permute")
    # one row of 2 x 4 x 64 values to each neighbour: the halo of a 3-wide kernel
    assert halos and all(n == 2 * 4 * 1 * 64 for n in halos), halos


def test_space_axis_errors_and_context(getkey):
    assert space_axis_size() == 1
    w = DenseSpectralWeight(1, 3, 4, (4, 4), key=getkey())
    mesh = _mesh(1, 4)
    with jax.set_mesh(mesh):
        assert space_axis_size() == 4
        with pytest.raises(ConfigError, match=r"input channels \(3\) is not divisible by the 4"):
            jax.eval_shape(lambda x: sharded_spectral_conv(x, w, 0), jnp.zeros((3, 16, 16)))


def test_fno_training_on_a_space_sharded_mesh_equals_one_device(tmp_path):
    """The whole driver with `train.mesh: {data: 2, space: 2}`: fields split into row slabs,
    same losses, metrics and parameters as on one device."""
    import equinox as eqx

    from sciops.train import config_from_dict, fit

    raw = {
        "name": "dd", "seed": 0,
        "data": {"path": str(tmp_path / "d.h5"),
                 "generate": {"problem": "darcy", "n_samples": 16, "resolution": 16},
                 "n_test": 8},
        # one Fourier layer: every layer runs the same slab-FFT code, so one checks the wiring
        # (two layers and 4 steps cost ~40 % more CPU for the same comparison)
        "model": {"family": "fno", "n_modes": [6, 6], "hidden_channels": 8, "n_layers": 1,
                  "lifting_channels": 8, "projection_channels": 8},
        # no figures (matplotlib and an op-by-op prediction, much of a 2-step run's time):
        # they are not what this compares
        "train": {"steps": 2, "batch_size": 4, "eval_batch_size": 4, "log_every": 1,
                  "progress": False, "plots": False, "mesh": {"data": 1}},
    }
    one = fit(config_from_dict(raw), out=tmp_path / "one")
    raw["train"]["mesh"] = {"data": 2, "space": 2}
    dd = fit(config_from_dict(raw), out=tmp_path / "dd")
    for k, v in one.metrics["test"].items():
        assert dd.metrics["test"][k] == pytest.approx(v, rel=1e-5)
    for a, b in zip(jax.tree.leaves(eqx.filter(one.model, eqx.is_array)),
                    jax.tree.leaves(eqx.filter(dd.model, eqx.is_array)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
