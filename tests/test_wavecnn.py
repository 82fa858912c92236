"""The wavecnn family: config and data errors, exact structural identities of the simulator
(leapfrog extrapolation, rollout = repeated steps, compressed = dense with the same kernels),
parameter counts, and a short training run that beats the extrapolation baseline."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sciops._config import from_dict
from sciops._errors import ConfigError, DataError
from sciops.data import Dataset, read_hdf5
from sciops.models import family
from sciops.models.wavecnn import WaveCNNConfig, rollout
from sciops.pde import problem
from sciops.pde.wave import WaveConfig


@pytest.fixture(scope="module")
def wave_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("wave") / "wave16.h5"
    cfg = WaveConfig(n_samples=24, resolution=16, n_frames=10, frame_dt=0.03, frequency=2.5,
                     sponge_width=6, source_width=0.05)
    problem("wave").generate(cfg, path, progress=False)
    return read_hdf5(path, lazy=False)


# One simulator step in one compiled program (op by op, every convolution and normalisation of
# the step is dispatched and compiled separately).
_step = eqx.filter_jit(lambda model, frames, c: model.step(frames, c))


def _small(**kw):
    base = {"width": 8, "depth": 2, "kernel_size": 3, "rank": 2}
    base.update(kw)
    return WaveCNNConfig(**base)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_rank_must_be_a_positive_integer(bad):
    if isinstance(bad, int):
        with pytest.raises(ConfigError, match="model.rank: expected a positive integer"):
            WaveCNNConfig(conv="cp", rank=bad)
    else:
        # a float: the config's own check, or first the suite's runtime type check (jaxtyping
        # + beartype) of `rank: int`; from YAML, `from_dict` names the key (next test)
        with pytest.raises((ConfigError, TypeError), match="rank"):
            WaveCNNConfig(conv="cp", rank=bad)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"model\.rank: expected int, got 1\.5"):
        from_dict(WaveCNNConfig, {"conv": "cp", "rank": 1.5}, "model")
    with pytest.raises(ConfigError, match=r"model\.conv: expected one of .*'cp'"):
        from_dict(WaveCNNConfig, {"conv": "cpd"}, "model")
    with pytest.raises(ConfigError, match="model.pushforward"):
        WaveCNNConfig(pushforward=-1)


def test_too_few_frames_is_a_data_error(wave_data, getkey):
    fam = family("wavecnn")
    short = Dataset({"u": wave_data.load()["u"][:, :3], "c": wave_data.load()["c"]}, name="short")
    with pytest.raises(DataError, match=r"short: field 'u' has 3 frames .* model.history \+ "
                                        r"model.pushforward \+ 1 = 4"):
        fam.build(_small(history=3), short, key=getkey())
    model = fam.build(_small(history=3), wave_data, key=getkey())
    u, c = wave_data.load()["u"][0], wave_data.load()["c"][0]
    with pytest.raises(DataError, match="fewer than model.history = 3"):
        rollout(model, jnp.asarray(u[:2]), jnp.asarray(c), 4)


def test_zero_network_is_the_leapfrog_extrapolation(wave_data, getkey):
    model = family("wavecnn").build(_small(), wave_data, key=getkey())
    model = eqx.tree_at(lambda m: m.project.weight, model, jnp.zeros_like(model.project.weight))
    u, c = wave_data.load()["u"][0], wave_data.load()["c"][0]
    np.testing.assert_allclose(_step(model, jnp.asarray(u[3:5]), jnp.asarray(c)),
                               2 * u[4] - u[3], atol=1e-7)


def test_rollout_is_repeated_steps_and_teacher_forcing_is_one_step(wave_data, getkey):
    model = family("wavecnn").build(_small(history=3), wave_data, key=getkey())
    u, c = jnp.asarray(wave_data.load()["u"][1]), jnp.asarray(wave_data.load()["c"][1])
    out = rollout(model, u[:3], c, 5)
    window = u[:3]
    for t in range(5):
        nxt = _step(model, window, c)
        np.testing.assert_allclose(out[t], nxt, rtol=1e-5, atol=1e-6)
        window = jnp.concatenate([window[1:], nxt[None]])
    forced = rollout(model, u[:3], c, 5, truth=u[3:8])
    for t in range(5):
        np.testing.assert_allclose(forced[t], _step(model, u[t:t + 3], c), rtol=1e-5, atol=1e-6)


def test_compressed_simulator_equals_dense_one_with_its_kernels(wave_data, getkey):
    """Injection is transparent: the CP simulator equals the dense simulator whose block kernels
    are the CP kernels (same lifting, projection and normalisers)."""
    fam = family("wavecnn")
    key = getkey()
    cp = fam.build(_small(conv="cp", rank=3), wave_data, key=key)
    dense = fam.build(_small(conv="full"), wave_data, key=key)
    kernels = jax.vmap(lambda b: b.full_kernel())(cp.blocks)
    dense = eqx.tree_at(lambda m: (m.lift, m.project, m.blocks.weight, m.blocks.bias), dense,
                        (cp.lift, cp.project, kernels, cp.blocks.bias))
    u, c = jnp.asarray(wave_data.load()["u"][2]), jnp.asarray(wave_data.load()["c"][2])
    np.testing.assert_allclose(_step(cp, u[:2], c), _step(dense, u[:2], c), rtol=1e-5, atol=1e-6)


def test_conv_parameter_and_flop_counts(wave_data, getkey):
    fam = family("wavecnn")
    w, k, r, d = 8, 3, 2, 2
    cp = fam.build(_small(conv="cp"), wave_data, key=getkey())
    full = fam.build(_small(conv="full"), wave_data, key=getkey())
    assert cp.conv_params == d * (r * (w + 2 * k + w) + w)
    assert full.conv_params == d * (w * w * k * k + w)
    assert full.conv_flops((16, 16)) == d * (2 * 256 * w * w * k * k + 256 * w)
    assert full.n_params == full.conv_params + (3 * w + w) + (w + 1)  # lift 3->w, project w->1


def test_loss_with_one_window_equals_the_direct_error(wave_data, getkey):
    """Trajectories exactly history + 1 frames long have a single window: the loss is then the
    plain normalised one-step error, whatever the key."""
    fam = family("wavecnn")
    cfg = _small()
    model = fam.build(cfg, wave_data, key=getkey())
    b = wave_data.take(np.arange(4))
    batch = {"u": jnp.asarray(b["u"][:, 5:8]), "c": jnp.asarray(b["c"])}
    pred = eqx.filter_jit(lambda m, u, c: jax.vmap(m.step)(u, c))(model, batch["u"][:, :2],
                                                                  batch["c"])
    expected = jnp.mean(((pred - batch["u"][:, 2]) / model.a_scale) ** 2)
    loss = eqx.filter_jit(lambda model, batch, key: fam.loss(cfg, model, batch, key=key))
    for _ in range(2):
        value, aux = loss(model, batch, getkey())
        np.testing.assert_allclose(value, expected, rtol=1e-5)


# Each case is one training step's compile (~3 s of ~4.5 s) and 150 steps. The dense case is
# slow: the default run trains the compressed (CP) simulator, and the dense convolution's
# forward is checked exactly against it (test_compressed_simulator_equals_dense_one_...).
@pytest.mark.parametrize("conv", [pytest.param("full", marks=pytest.mark.slow), "cp"])
def test_short_training_beats_the_extrapolation_baseline(conv, wave_data, getkey):
    """150 Adam steps (with pushforward and noise switched on) cut the one-step error of the
    initial model, which is close to the leapfrog extrapolation, by more than half on held-out
    trajectories."""
    fam = family("wavecnn")
    cfg = _small(conv=conv, rank=4, pushforward=1, noise=0.01, rollout_steps=6)
    train, test = wave_data.subset(np.arange(20)), wave_data.subset(np.arange(20, 24))
    model = fam.build(cfg, train, key=getkey())
    opt = optax.adam(3e-3)
    state = opt.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def step(model, state, batch, key):
        grads, _ = eqx.filter_grad(lambda m: fam.loss(cfg, m, batch, key=key), has_aux=True)(model)
        updates, state = opt.update(grads, state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), state

    metrics = eqx.filter_jit(lambda m, b: fam.metrics(cfg, m, b))
    test_batch = {k: jnp.asarray(v) for k, v in test.load().items()}
    before = float(metrics(model, test_batch)["l2"].mean())
    data = {k: jnp.asarray(v) for k, v in train.load().items()}
    rng = np.random.default_rng(0)
    for _ in range(150):
        idx = rng.choice(20, 8, replace=False)
        model, state = step(model, state, {k: v[idx] for k, v in data.items()}, getkey())
    after = metrics(model, test_batch)
    assert float(after["l2"].mean()) < 0.5 * before, (before, after)
    assert np.all(np.isfinite(np.asarray(after["rollout_l2"])))
