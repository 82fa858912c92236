"""The TDN potential: conservative forces and stress (finite differences in x64), E(3) and
permutation invariance, padding invariance, per-species shifts, product injection, training, and
the bad-input errors."""

import dataclasses
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sciops._errors import DataError
from sciops.data import Dataset
from sciops.models.mlip import FAMILIES, MLIPConfig
from sciops.models.mlip._family import check_structure, predict

FAM = FAMILIES["mlip"]
# One compiled prediction per (config, shapes, dtype): jax caches the program on the function
# `predict` and its static arguments, so the tests below that use `small_config(cache)` on
# 32-atom cells (invariance, padding, the CP product, parity) share one compile.
PREDICT = eqx.filter_jit(predict)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cp"))


def cu_dataset(n, seed=0, rattle=0.08, repeat=2, species=None):
    from ase.build import bulk
    from ase.calculators.emt import EMT

    rows = []
    for k in range(n):
        a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(repeat)
        a.rattle(rattle, seed=seed * 1000 + k)
        if species is not None:
            a.numbers = np.random.default_rng(seed + k).choice(species, len(a))
        a.calc = EMT()
        rows.append(dict(positions=a.positions, species=a.numbers.astype(np.int32),
                         mask=np.ones(len(a), bool), cell=np.asarray(a.cell), pbc=a.pbc,
                         energy=np.float64(a.get_potential_energy()), forces=a.get_forces(),
                         stress=a.get_stress(voigt=False)))
    return Dataset({k: np.stack([r[k] for r in rows]) for k in rows[0]}, name="cu-emt")


def small_config(cache, **kw):
    base = dict(cutoff=3.6, lmax=2, channels=8, n_layers=2, n_basis=6, radial_hidden=16,
                readout_hidden=16, max_neighbors=24, cp_cache_dir=cache)
    base.update(kw)
    return MLIPConfig(**base)


# A smaller potential for the tests that differentiate the loss or compare loss terms: one
# build (its compiled initialiser) shared by the training and stress tests.
SMALLER = dict(lmax=1, channels=8, n_layers=1)


def _sample(ds, i=0, dtype=None):
    return {k: jnp.asarray(v[i], dtype=dtype if np.issubdtype(v.dtype, np.floating) else None)
            for k, v in ds.take([i]).items()} if dtype else {
        k: jnp.asarray(v[0]) for k, v in ds.take([i]).items()}


def test_forces_and_stress_are_energy_derivatives(x64, cache):
    ds = cu_dataset(2, rattle=0.2)
    cfg = small_config(cache)
    model = FAM.build(cfg, ds, key=jax.random.key(0))
    s = _sample(ds, 0, jnp.float64)
    f = jax.jit(lambda m, b: predict(cfg, m, b))
    e, forces, stress, _ = f(model, s)
    assert forces.dtype == jnp.float64
    fmax = float(jnp.abs(forces).max())
    assert fmax > 1e-5  # a non-trivial field (an untrained model's forces are small)
    h = 1e-4
    for atom, comp in [(0, 0), (5, 1), (17, 2), (31, 0)]:
        def shifted(d, atom=atom, comp=comp):
            return {**s, "positions": s["positions"].at[atom, comp].add(d)}
        fd = (f(model, shifted(h))[0] - f(model, shifted(-h))[0]) / (2 * h)
        assert float(-fd) == pytest.approx(float(forces[atom, comp]), rel=1e-5, abs=1e-6 * fmax)
    vol = abs(np.linalg.det(np.asarray(s["cell"])))
    for a, b in [(0, 0), (1, 2), (2, 2)]:
        def strained(d, a=a, b=b):
            eps = np.zeros((3, 3))
            eps[a, b] += d / 2
            eps[b, a] += d / 2
            m = jnp.asarray(np.eye(3) + eps)
            return {**s, "positions": s["positions"] @ m, "cell": s["cell"] @ m}
        fd = (f(model, strained(h))[0] - f(model, strained(-h))[0]) / (2 * h) / vol
        assert float(fd) == pytest.approx(float(stress[a, b]), rel=1e-5,
                                          abs=1e-6 * float(jnp.abs(stress).max()))


def test_invariance_and_covariance(cache):
    import e3nn_jax as e3nn

    ds = cu_dataset(2)
    cfg = small_config(cache)
    model = FAM.build(cfg, ds, key=jax.random.key(1))
    s = _sample(ds, 1)
    f = functools.partial(PREDICT, cfg)
    e, forces, stress, _ = f(model, s)
    fscale = float(jnp.abs(forces).max())
    R = np.asarray(e3nn.rand_matrix(jax.random.key(3)))
    perm = np.random.default_rng(0).permutation(32)
    for g in (R, -R):  # a rotation and an improper rotation
        t = np.array([0.7, -1.3, 2.1])
        moved = {**s, "positions": (s["positions"] + t) @ g.T, "cell": s["cell"] @ g.T}
        moved = {k: (v[perm] if k in ("positions", "species", "mask", "forces") else v)
                 for k, v in moved.items()}
        e2, f2, s2, _ = f(model, moved)
        assert float(e2) == pytest.approx(float(e), rel=1e-6)
        np.testing.assert_allclose(np.asarray(f2), np.asarray(forces @ g.T)[perm],
                                   atol=1e-4 * fscale)
        np.testing.assert_allclose(np.asarray(s2), np.asarray(g @ stress @ g.T),
                                   atol=1e-4 * float(jnp.abs(stress).max()))


def test_padding_and_edge_budget_do_not_change_results(cache):
    ds = cu_dataset(1)
    cfg = small_config(cache)
    model = FAM.build(cfg, ds, key=jax.random.key(2))
    s = _sample(ds, 0)
    e, forces, _, _ = PREDICT(cfg, model, s)
    pad = {k: (jnp.concatenate([v, jnp.zeros((5, *v.shape[1:]), v.dtype)])
               if k in ("positions", "species", "mask", "forces") else v) for k, v in s.items()}
    cfg2 = dataclasses.replace(cfg, max_neighbors=40)
    e2, f2, _, _ = PREDICT(cfg2, model, pad)
    assert float(e2) == pytest.approx(float(e), rel=1e-6)
    np.testing.assert_allclose(np.asarray(f2[:32]), np.asarray(forces), atol=1e-5)
    assert float(jnp.abs(f2[32:]).max()) == 0.0


def test_per_species_shifts_are_least_squares(cache):
    ds = cu_dataset(6, species=[28, 29], rattle=0.02)
    d = ds.load()
    mu = {28: -3.25, 29: -1.5}
    d["energy"] = np.array([sum(mu[z] for z in row) for row in d["species"]])
    model = FAM.build(small_config(cache), Dataset(d, name="fake"), key=jax.random.key(0))
    shifts = np.asarray(model.energy_scale.shifts)
    assert shifts[28] == pytest.approx(mu[28], abs=1e-4)
    assert shifts[29] == pytest.approx(mu[29], abs=1e-4)
    assert np.asarray(model.energy_scale.known).nonzero()[0].tolist() == [28, 29]


def test_cp_and_exact_products_swap_by_injection(cache):
    ds = cu_dataset(1)
    s = _sample(ds, 0)
    out = {}
    for tp in ("cp", "sh_matrix", "e3nn"):
        cfg = small_config(cache, tensor_product=tp)
        model = FAM.build(cfg, ds, key=jax.random.key(5))
        out[tp] = PREDICT(cfg, model, s)
    np.testing.assert_allclose(np.asarray(out["e3nn"][1]), np.asarray(out["sh_matrix"][1]),
                               atol=1e-5)
    # CP at the paper's rank (28 for L = 2, relative error ~2e-5) tracks the exact product.
    np.testing.assert_allclose(np.asarray(out["cp"][1]), np.asarray(out["sh_matrix"][1]),
                               atol=1e-3 * float(jnp.abs(out["sh_matrix"][1]).max()))


def test_edge_operator_equals_the_product_it_replaces(cache):
    """The per-edge matrix form (used by the potential for CP and SH-matrix products) gives the
    same messages as applying the product edge by edge; products without one return None."""
    from sciops.models.mlip._potential import edge_operator
    from sciops.nn._tensor_product import (
        CPTensorProduct,
        E3nnTensorProduct,
        SHMatrixTensorProduct,
    )

    irreps = "0e+1o+2e"
    k1, k2 = jax.random.split(jax.random.key(7))
    x = jax.random.normal(k1, (6, 5, 9))
    sh = jax.random.normal(k2, (6, 9))
    for tp in (CPTensorProduct(irreps, irreps, irreps, 28, cache_dir=cache),
               SHMatrixTensorProduct(irreps, irreps, irreps)):
        want = np.asarray(jax.vmap(tp)(x, sh))
        got = np.asarray(jnp.einsum("eci,eik->eck", x, edge_operator(tp, sh)))
        np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())
    assert edge_operator(E3nnTensorProduct(irreps, irreps, irreps), sh) is None


def test_training_reduces_force_error(cache):
    ds = cu_dataset(2, seed=3)
    cfg = small_config(cache, **SMALLER)
    model = FAM.build(cfg, ds, key=jax.random.key(0))
    batch = {k: jnp.asarray(v) for k, v in ds.load().items()}
    opt = optax.adam(1e-2)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        (_, logs), g = jax.value_and_grad(
            lambda p: FAM.loss(cfg, eqx.combine(p, static), batch), has_aux=True)(params)
        u, state = opt.update(g, state)
        return optax.apply_updates(params, u), state, logs

    # The loss logs the errors of the parameters it is given: the 31st call logs those after 30
    # updates (one compiled program; a separate metrics compile cost as much as the updates).
    # Measured: forces RMSE 0.25x the initial one after 30 updates.
    history = []
    for _ in range(31):
        params, state, logs = step(params, state)
        history.append(logs)
    first, final = float(history[0]["forces_rmse"]), float(history[-1]["forces_rmse"])
    assert final < 0.5 * first, (first, final)
    assert float(history[-1]["edge_overflow"]) == 0.0


def test_bad_input(cache):
    from ase.build import bulk

    cfg = small_config(cache)
    known = np.zeros(119, bool)
    known[29] = True
    a = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    args = (a.positions, a.numbers, np.asarray(a.cell), a.pbc)
    assert len(check_structure(cfg, *args, where="ok", known=known)[0]) > 0
    z = a.numbers.copy()
    z[3] = 28
    with pytest.raises(DataError, match=r"frame 7: element\(s\) Ni \(Z=28\) not in the training"):
        check_structure(cfg, a.positions, z, np.asarray(a.cell), a.pbc, where="frame 7",
                        known=known)
    close = a.positions.copy()
    close[1] = close[0] + [0.3, 0, 0]
    with pytest.raises(DataError, match="atoms 0 and 1 are 0.300 Å apart"):
        check_structure(cfg, close, a.numbers, np.asarray(a.cell), a.pbc, where="x")
    small = bulk("Cu", "fcc", a=3.61, cubic=True)
    with pytest.raises(DataError, match="cell too small for the cutoff"):
        check_structure(dataclasses.replace(cfg, cutoff=4.0), small.positions, small.numbers, np.asarray(small.cell), small.pbc,
                        where="x")
    ds = cu_dataset(1)
    with pytest.raises(DataError, match="missing forces"):
        FAM.build(cfg, ds.select(["positions", "species", "mask", "energy"]),
                  key=jax.random.key(0))


def test_stress_is_trained_by_default_when_the_data_carry_it(cache):
    """`stress_weight: null` fits the virial per atom when the data have stresses (the loss
    moves by exactly that term), and leaves it out when they do not; an explicit weight without
    stresses in the data is a DataError."""
    from sciops.models.mlip._family import stress_weight

    ds = cu_dataset(2, seed=4)
    d = ds.load()
    auto = small_config(cache, **SMALLER)
    off = dataclasses.replace(auto, stress_weight=0.0)
    model = FAM.build(auto, ds, key=jax.random.key(0))
    assert model.energy_scale.stress_trained
    assert (stress_weight(auto, True), stress_weight(auto, False)) == (1.0, 0.0)
    assert stress_weight(off, True) == 0.0

    @eqx.filter_jit
    def both(model, batch):
        (l_auto, logs), (l_off, _) = FAM.loss(auto, model, batch), FAM.loss(off, model, batch)
        s = jax.vmap(lambda b: predict(auto, model, b))(batch)[2]
        return l_auto, l_off, logs, s

    l_auto, l_off, logs, s = both(model, {k: jnp.asarray(v) for k, v in d.items()})
    vol = np.abs(np.linalg.det(d["cell"]))
    ds_ = np.asarray(s) - d["stress"]
    want = np.mean((ds_ * (vol / 32)[:, None, None]) ** 2) / float(model.energy_scale.scale) ** 2
    assert want > 0 and float(l_auto - l_off) == pytest.approx(want, rel=1e-4)
    assert float(logs["stress_rmse"]) == pytest.approx(np.sqrt(np.mean(ds_**2)), rel=1e-4)
    no_stress = ds.select(["positions", "species", "mask", "cell", "pbc", "energy", "forces"])
    assert not FAM.build(auto, no_stress, key=jax.random.key(0)).energy_scale.stress_trained
    with pytest.raises(DataError, match="stress_weight = 2.0 but the data set has no 'stress'"):
        FAM.build(small_config(cache, stress_weight=2.0), no_stress, key=jax.random.key(0))


def test_parity_plot_and_units(cache, tmp_path):
    from sciops.models.mlip._plots import parity_data

    ds = cu_dataset(2, seed=5)
    cfg = small_config(cache)  # the shared build and per-structure prediction (PREDICT)
    model = FAM.build(cfg, ds, key=jax.random.key(0))
    batch = ds.load()
    d = parity_data(cfg, model, batch)
    # the plotted values are the family's own predictions, per atom and per component
    e, f, _, _ = PREDICT(cfg, model, _sample(ds, 1))
    assert d["energy_pred"][1] == pytest.approx(float(e) / 32, rel=1e-6)
    np.testing.assert_allclose(d["forces_pred"][96:], np.asarray(f).ravel(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(d["forces_ref"], batch["forces"].ravel())
    np.testing.assert_allclose(d["energy_ref"], batch["energy"] / 32)
    FAM.plot(cfg, model, batch, tmp_path / "parity.png")
    assert (tmp_path / "parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert FAM.units["forces_mae"] == "eV/Å" and FAM.units["energy_mae"] == "eV/atom"
    assert {"energy_mae", "forces_mae", "forces_rmse", "stress_mae", "edge_overflow"} <= set(
        FAM.units)


def test_cli_prints_units_beside_metrics():
    from sciops.cli._main import _metric

    assert _metric("forces_mae", 0.01234, FAM.units) == "forces_mae = 0.01234 eV/Å"
    assert _metric("energy_mae", 2e-3, FAM.units) == "energy_mae = 0.002 eV/atom"
    assert _metric("loss", 1.5, FAM.units) == "loss = 1.5"
