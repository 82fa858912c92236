"""Direct value tests of public names that were only exercised through larger code paths:
the radial basis and its envelope, the optimizer's learning-rate schedule, the config round
trip, the problem registry, `MappedArray` and the incremental `HDF5Writer`."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sciops._errors import ConfigError, DataError
from sciops.data import MappedArray, open_hdf5_writer, read_hdf5
from sciops.nn import BesselBasis, polynomial_envelope
from sciops.pde import Problem, problem, problem_names
from sciops.train import config_from_dict, config_to_dict, make_optimizer
from sciops.train._config import OptimizerConfig

# -- radial basis ------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [5, 6])
def test_polynomial_envelope_is_one_at_zero_and_c2_zero_at_the_cutoff(p):
    u = lambda d: polynomial_envelope(d, p)  # noqa: E731
    d1, d2 = jax.grad(u), jax.grad(jax.grad(u))
    assert float(u(jnp.float32(0.0))) == 1.0
    # the polynomial and its first two derivatives vanish at d = 1 (DimeNet eq. 8)
    one = jnp.float32(1.0) - 1e-7
    assert abs(float(u(one))) < 1e-5
    assert abs(float(d1(one))) < 1e-4 and abs(float(d2(one))) < 1e-2 * p**3
    np.testing.assert_array_equal(np.asarray(u(jnp.array([1.0, 1.5, 3.0]))), 0.0)
    # an interior value against the formula at d = 1/2
    d = 0.5
    exact = 1 - (p + 1) * (p + 2) / 2 * d**p + p * (p + 2) * d ** (p + 1) \
        - p * (p + 1) / 2 * d ** (p + 2)
    assert float(u(jnp.float32(d))) == pytest.approx(exact, rel=1e-6)


def test_bessel_basis_values_and_cutoff():
    basis = BesselBasis(cutoff=5.0, n_basis=4)
    r = jnp.float32(1.3)
    n = np.arange(1, 5)
    exact = np.sqrt(2 / 5.0) * np.sin(n * np.pi * 1.3 / 5.0) / 1.3 \
        * float(polynomial_envelope(jnp.float32(1.3 / 5.0)))
    np.testing.assert_allclose(np.asarray(basis(r)), exact, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(basis(jnp.float32(5.2))), 0.0)
    # the envelope divided out, r e_1(r) is sqrt(2/rc) sin(pi r/rc), finite as r -> 0
    rs = jnp.linspace(1e-3, 0.3, 2001)
    vals = jax.vmap(basis)(rs) * rs[:, None] / polynomial_envelope(rs / 5.0)[:, None]
    np.testing.assert_allclose(np.asarray(vals[:, 0]), np.sqrt(0.4) * np.sin(np.pi * rs / 5.0),
                               rtol=1e-4)
    for bad in ({"cutoff": 0.0}, {"cutoff": 1.0, "n_basis": 0}):
        with pytest.raises(ValueError, match="BesselBasis"):
            BesselBasis(**bad)


# -- optimizer schedule ------------------------------------------------------------------------


def _learning_rates(config, steps):
    """The step sizes the optimizer takes: with a constant gradient of 1 on one parameter and no
    weight decay or clipping, Adam's normalised step is exactly 1 (up to eps), so each update
    is minus the learning rate of that step."""
    opt = make_optimizer(dataclasses.replace(config, weight_decay=0.0, clip_norm=None), steps)
    params = jnp.zeros(())
    state = opt.init(params)
    rates = []
    for _ in range(steps):
        updates, state = opt.update(jnp.ones(()), state, params)
        rates.append(-float(updates))
    return np.array(rates)


def test_make_optimizer_warmup_then_cosine():
    config = OptimizerConfig(lr=0.1, warmup_steps=4, schedule="cosine", final_lr_fraction=0.1)
    rates = _learning_rates(config, 12)
    # optax's warmup_cosine_decay_schedule: 0 -> lr linearly over 4 steps, then a cosine from
    # lr to final_lr_fraction * lr reached at step 12 (decay_steps counts the warmup)
    expected = [0.1 * k / 4 for k in range(4)] + [
        0.01 + 0.5 * (0.1 - 0.01) * (1 + np.cos(np.pi * k / 8)) for k in range(8)]
    np.testing.assert_allclose(rates, expected, rtol=1e-4, atol=1e-9)  # float32 bias correction


def test_make_optimizer_constant_and_clipping():
    rates = _learning_rates(OptimizerConfig(lr=0.02, schedule="constant"), 3)
    np.testing.assert_allclose(rates, 0.02, rtol=1e-4)
    rates = _learning_rates(OptimizerConfig(lr=0.02, schedule="constant", warmup_steps=2), 4)
    np.testing.assert_allclose(rates, [0.0, 0.01, 0.02, 0.02], rtol=1e-4, atol=1e-12)
    # clipping by global norm acts before Adam: a huge gradient is scaled to the clip norm
    opt = make_optimizer(OptimizerConfig(lr=1.0, clip_norm=0.5, weight_decay=0.0,
                                         schedule="constant"), 1)
    assert isinstance(opt, optax.GradientTransformation)
    clip = optax.clip_by_global_norm(0.5)
    g, _ = clip.update(jnp.array([300.0, 400.0]), clip.init(None))
    np.testing.assert_allclose(np.asarray(g), [0.3, 0.4], rtol=1e-6)


# -- configs -----------------------------------------------------------------------------------


def test_config_to_dict_round_trips():
    raw = {"name": "rt", "seed": 3,
           "data": {"path": "x.h5", "n_test": 4},
           "model": {"family": "fno", "n_modes": [4, 4], "hidden_channels": 8, "n_layers": 2},
           "train": {"steps": 7, "batch_size": 2, "optimizer": {"lr": 0.003,
                                                                "warmup_steps": 1}}}
    config = config_from_dict(raw)
    as_dict = config_to_dict(config)
    assert as_dict["model"]["family"] == "fno" and as_dict["train"]["optimizer"]["lr"] == 0.003
    assert as_dict["model"]["n_modes"] in ([4, 4], (4, 4))
    again = config_from_dict(as_dict)
    assert again == config
    assert config_to_dict(again) == as_dict


# -- the problem registry ----------------------------------------------------------------------


def test_problem_registry():
    names = problem_names()
    assert names == sorted(names)
    assert {"darcy", "navier_stokes", "fisher", "darcy_masked", "heat3d", "wave"} <= set(names)
    for name in ("darcy", "fisher", "wave"):
        p = problem(name)
        assert isinstance(p, Problem) and p.name == name
        defaults = p.config()  # every field has a default
        assert dataclasses.is_dataclass(defaults)
    with pytest.raises(ConfigError, match=r"unknown problem 'darcyy'.*darcy"):
        problem("darcyy")


# -- lazy arrays and incremental writing --------------------------------------------------------


def test_mapped_array_applies_its_function_per_read():
    base = np.arange(24, dtype=np.int16).reshape(4, 2, 3)
    calls = []

    def fn(block):
        calls.append(block.shape)
        return block[:, None].astype(np.float64) * 0.5

    m = MappedArray(base, fn, (1, 2, 3), np.float32)
    assert m.shape == (4, 1, 2, 3) and m.ndim == 4 and len(m) == 4 and m.dtype == np.float32
    assert calls == []  # nothing read at construction
    block = m[1:3]
    assert block.dtype == np.float32 and calls == [(2, 2, 3)]
    np.testing.assert_array_equal(block, base[1:3, None] * 0.5)
    np.testing.assert_array_equal(np.asarray(m), base[:, None] * 0.5)
    nested = MappedArray(m, lambda b: b + 1, (1, 2, 3), np.float64)
    np.testing.assert_array_equal(nested[[0, 3]], base[[0, 3], None] * 0.5 + 1)


def test_hdf5_writer_appends_blocks_atomically(tmp_path):
    path = tmp_path / "grow.h5"
    rng = np.random.default_rng(0)
    blocks = [{"u": rng.standard_normal((n, 3)).astype(np.float32),
               "k": np.full(n, i, np.int32)} for i, n in enumerate((2, 5, 1))]
    with open_hdf5_writer(path, attrs={"problem": "test", "meta": {"a": [1, 2]}},
                          field_attrs={"u": {"units": "m"}}) as writer:
        for block in blocks:
            writer.append(block)
        assert not path.exists()  # renamed into place only when the block ends
        with pytest.raises(DataError, match="field 'u'.*expected"):
            writer.append({"u": np.zeros((1, 4), np.float32), "k": np.zeros(1, np.int32)})
        with pytest.raises(DataError, match="differ from the fields already written"):
            writer.append({"u": np.zeros((1, 3), np.float32)})
    ds = read_hdf5(path, lazy=False)
    data = ds.load()
    np.testing.assert_array_equal(data["u"], np.concatenate([b["u"] for b in blocks]))
    np.testing.assert_array_equal(data["k"], [0, 0, 1, 1, 1, 1, 1, 2])
    assert ds.attrs["problem"] == "test" and ds.attrs["meta"] == {"a": [1, 2]}
    # an exception inside the block leaves no file and no temporary behind
    with pytest.raises(RuntimeError):
        with open_hdf5_writer(tmp_path / "never.h5") as writer:
            writer.append({"u": np.zeros((1, 3), np.float32)})
            raise RuntimeError("generator failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grow.h5"]
