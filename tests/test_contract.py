"""The one contract: every registered family goes through `Family` alone (build, finite loss,
per-sample metrics, checkpoint round trip, evaluation), every problem makes a readable data set,
and a sixth family (tests/_toy_family/, three files) trains with no edit to sciops.

In the default run each family is built on a tiny data set made by its problem, its jitted loss
must be finite, its metrics one value per sample and its checkpoint round trip bit-exact. The
slow-marked full version runs a 2-step `fit` of each, reads it back with `load_run` and scores
it again with `evaluate_run`: the same numbers must come back. The sixth family runs the full
version in the default run.
"""

import dataclasses
import hashlib
import json
import math
import pathlib

import equinox as eqx
import jax
import numpy as np
import pytest
from conftest import tree_allclose

from sciops import ConfigError, evaluate_run, fit, load_run
from sciops.data import read_hdf5, write_hdf5
from sciops.models import (
    Family,
    default_trainable,
    family,
    family_names,
    model_config,
    register_family,
)
from sciops.pde import Problem, problem, problem_names, register_problem
from sciops.train import (
    config_from_dict,
    config_to_dict,
    latest_checkpoint,
    load_checkpoint,
    prepare_data,
    save_checkpoint,
)

HERE = pathlib.Path(__file__).parent

# Tiny data and models, one per family: (data.generate, model section, n_test).
_GRID = {"problem": "darcy", "n_samples": 8, "resolution": 16}
_MESH = {"problem": "transport", "n_trajectories": 4, "n_steps": 6, "h": 0.1, "dt": 0.04,
         "xdmf": False}
CASES = {
    "fno": (_GRID, {"n_modes": [4, 4], "hidden_channels": 8, "n_layers": 2,
                    "lifting_channels": 8, "projection_channels": 8}, 2),
    "deeponet": ({"problem": "darcy_masked", "n_samples": 8, "resolution": 12,
                  "geometries": ["square", "disk"]},
                 {"input_key": "f", "mask_key": "mask", "task_key": "geometry",
                  "task_names": ["square", "disk"], "branch_width": 16, "branch_depth": 1,
                  "trunk_width": 16, "trunk_depth": 1, "latent": 8}, 4),
    "meshformer": (_MESH, {"state_fields": ["concentration"], "output_fields": [],
                           "width": 8, "heads": 2, "n_layers": 1, "n_global": 1,
                           "random_walk_pe": 2, "edge_multiple": 64,
                           "eval_rollout_steps": 2}, 2),
    "meshgraphnet": (_MESH, {"state_fields": ["concentration"], "output_fields": [],
                             "latent": 8, "message_passing_steps": 1, "mlp_depth": 1,
                             "edge_multiple": 64, "eval_rollout_steps": 2}, 2),
    "wavecnn": ({"problem": "wave", "n_samples": 6, "resolution": 16, "n_frames": 6,
                 "frame_dt": 0.03, "sponge_width": 4, "source_width": 0.05},
                {"width": 4, "depth": 1, "kernel_size": 3, "history": 2, "rollout_steps": 2},
                2),
    "mlip": ({"problem": "atoms", "n_samples": 6, "repeat": 1, "equilibration_steps": 4,
              "sample_every": 2, "temperatures": [300.0]},
             {"cutoff": 3.0, "lmax": 1, "channels": 4, "n_layers": 1, "n_basis": 4,
              "radial_hidden": 8, "readout_hidden": 8, "max_neighbors": 16}, 2),
}

# A small instance of every built-in problem (every field not named keeps its default).
PROBLEMS = {
    "darcy": {"n_samples": 2, "resolution": 8},
    "darcy_masked": {"n_samples": 2, "resolution": 8},
    "navier_stokes": {"n_samples": 2, "resolution": 16, "horizon": 0.02, "batch_size": 2},
    "fisher": {"n_samples": 3, "n_x": 8, "n_t": 3, "steps_per_output": 1, "refine": 1},
    "heat3d": {"n_samples": 2, "resolution": 9, "n_z": 3},
    "wave": {"n_samples": 2, "resolution": 16, "n_frames": 3, "sponge_width": 4},
    "transport": {"n_trajectories": 2, "n_steps": 2, "h": 0.15, "xdmf": False},
    # spinup_max: 2 frames of spin-up (by default the spin-up goes on until the lift has
    # saturated: 6.3 and 3.2 CPU-s of these two problems' 6.5 and 3.4, measured; 0.2 s each now)
    "cylinder_flow": {"n_trajectories": 1, "n_steps": 2, "spinup": 0.02, "spinup_max": 0.02,
                      "h_min": 0.04, "h_max": 0.1, "xdmf": False},
    "dfg_2d_2": {"n_trajectories": 1, "n_steps": 2, "spinup": 0.02, "spinup_max": 0.02,
                 "h_min": 0.04, "h_wake": 0.06, "h_max": 0.1, "xdmf": False},
    "pipe_flow": {"n_trajectories": 1, "n_steps": 2, "spinup": 0.05, "h_min": 0.12,
                  "h_max": 0.3, "length": 2.0, "obstacle_x": [0.6, 0.7],
                  "obstacle_radius": [0.15, 0.2], "workers": 1, "xdmf": False},
    "atoms": {"n_samples": 2, "repeat": 1, "equilibration_steps": 2, "sample_every": 1,
              "temperatures": [300.0]},
    "molecule": {"n_samples": 2, "equilibration_steps": 2, "sample_every": 1},
}


@pytest.fixture(autouse=True)
def toy_family(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    import _toy_family  # the sixth family registers itself

    return _toy_family.FAMILY


def test_every_family_has_a_case():
    assert set(family_names()) - {"toy"} == set(CASES)
    assert set(problem_names()) == set(PROBLEMS)


def _raw(name, tmp_path_factory):
    gen, model, n_test = CASES[name]
    folder = tmp_path_factory.getbasetemp() / "contract-data"
    folder.mkdir(exist_ok=True)
    tag = hashlib.sha1(json.dumps(gen, sort_keys=True).encode()).hexdigest()[:10]
    path = folder / f"{gen['problem']}-{tag}.h5"
    return {"name": name, "seed": 1,
            "data": {"path": str(path), "generate": gen, "n_test": n_test},
            "model": {"family": name, **model},
            "train": {"steps": 2, "batch_size": 2, "eval_batch_size": 2, "log_every": 1,
                      "checkpoint_every": 1, "progress": False, "mesh": {"data": 1},
                      "optimizer": {"lr": 1e-3, "warmup_steps": 0}}}


def _finite_leaves(tree):
    return all(bool(np.all(np.isfinite(np.asarray(x))))
               for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_family_record_quick(name, tmp_path, tmp_path_factory):
    """The fast check of every family in the default run: build on the tiny training split,
    a finite jitted loss, one metric value per sample, a bit-exact checkpoint round trip."""
    raw = _raw(name, tmp_path_factory)
    config = config_from_dict(raw)
    fam = family(name)
    assert isinstance(fam, Family) and fam.name == name
    assert config_from_dict(config_to_dict(config)) == config
    bundle = prepare_data(config.data, progress=False)
    model = fam.build(config.model, bundle.train, key=jax.random.key(0))
    data = fam.prepare(config.model, bundle.train) if fam.prepare is not None else bundle.train
    batch = data.take(np.arange(2))
    value, aux = eqx.filter_jit(lambda m, b: fam.loss(config.model, m, b,
                                                      key=jax.random.key(1)))(model, batch)
    assert np.shape(value) == () and math.isfinite(float(value))
    assert all(np.shape(v) == () for v in aux.values())
    shapes = eqx.filter_eval_shape(lambda m, b: fam.metrics(config.model, m, b), model, batch)
    assert shapes and all(v.shape == (2,) for v in shapes.values()), shapes
    spec = fam.trainable(model)
    assert any(jax.tree.leaves(spec))
    # nothing inside a frozen module (sciops.data.Normalizer, tables) is ever trainable
    assert not any(jax.tree.leaves(_frozen_part(spec, model)))
    save_checkpoint(tmp_path / "ckpt", 0, model, {"family": name})
    # the target: the model's structure, shapes and dtypes with every float NaN, so each one
    # must come from the checkpoint (a second `build` took a fifth of this test's time)
    like = jax.tree.map(lambda x: np.full(x.shape, np.nan, x.dtype)
                        if eqx.is_inexact_array(x) else x, model)
    back, header = load_checkpoint(latest_checkpoint(tmp_path / "ckpt"), like)
    assert header["family"] == name
    assert tree_allclose(eqx.filter(back, eqx.is_array), eqx.filter(model, eqx.is_array),
                         rtol=0, atol=0)


def _frozen_part(tree, model):
    """The leaves of `tree` (shaped like `model`) that lie inside frozen modules."""
    is_frozen = lambda x: bool(getattr(type(x), "__sciops_frozen__", False))  # noqa: E731
    found = []
    jax.tree.map(lambda sub, t: found.append(t) if is_frozen(sub) else None, model, tree,
                 is_leaf=is_frozen)
    return found


def _frozen_leaves(model):
    return [np.asarray(x) for x in jax.tree.leaves(_frozen_part(model, model))
            if eqx.is_array(x)]


# each option's harshest value first (weight decay on, no clipping, no schedule, no warmup)
_OPTIONS = (("schedule", ("constant", "cosine")), ("clip_norm", (None, 1.0)),
            ("weight_decay", (0.5, 0.0)), ("warmup_steps", (0, 2)))
OPTIMIZERS = [{k: v[i] for (k, v), i in zip(_OPTIONS, idx, strict=True)}
              for idx in np.ndindex(*(len(v) for _, v in _OPTIONS))]
# every value of every option beside every value of every other one, in 5 of the 16 (each
# compiles a step): the harshest optimizer, and each one with all options but one changed
PAIRWISE = [OPTIMIZERS[0]] + [
    {k: v[int(j != i)] for j, (k, v) in enumerate(_OPTIONS)} for i in range(len(_OPTIONS))]


@pytest.mark.parametrize("name", ["fno", "toy", pytest.param("toy-all", marks=pytest.mark.slow)])
def test_no_frozen_leaf_moves_under_any_optimizer(name, tmp_path, tmp_path_factory):
    """Normalisers are frozen by type: they never reach the optimizer, so weight decay, clipping
    and schedules cannot move them (the FNO's own normaliser used to drift under AdamW's
    weight decay: std 7.0 -> 6.99714 over 1,500 steps). The toy family runs every pair of
    option values by default (a step compile each), all 16 combinations when marked slow."""
    from sciops.train import OptimizerConfig, make_optimizer, make_step, trainable_filter
    from sciops.train._state import init_state

    if name.startswith("toy"):
        rng = np.random.default_rng(0)
        x = (3 + 7 * rng.normal(size=(8, 2, 4, 4))).astype(np.float32)
        write_hdf5(tmp_path / "toy.h5", {"x": x, "y": np.tanh(x[:, :1])})
        train = read_hdf5(tmp_path / "toy.h5", lazy=False)
        config = family("toy").config(width=4)
        optimizers = OPTIMIZERS if name == "toy-all" else PAIRWISE
        assert len({(a, str(o[a]), b, str(o[b])) for o in optimizers for a in o for b in o
                    if a < b}) == 6 * 4  # 6 pairs of options, 2 x 2 values each
        name = "toy"
    else:  # a slow compile per optimizer: the harshest ones
        config = config_from_dict(_raw(name, tmp_path_factory))
        train = prepare_data(config.data, progress=False).train
        config = config.model
        optimizers = [o for o in OPTIMIZERS if o["weight_decay"] and o["clip_norm"] is None
                      and o["schedule"] == "constant" and not o["warmup_steps"]]
    fam = family(name)
    model = fam.build(config, train, key=jax.random.key(0))
    before = _frozen_leaves(model)
    assert before, f"{name}: no frozen statistics found"
    batch = train.take(np.arange(2))
    for opt in optimizers:
        optimizer = make_optimizer(OptimizerConfig(lr=1.0, **opt), steps=4)
        state = init_state(model, trainable_filter(model, base=fam.trainable(model)), optimizer,
                           jax.random.key(1))
        step = make_step(fam, config, optimizer)
        for _ in range(2):
            state, out = step(state, batch)
        moved = jax.tree.leaves(eqx.filter(state.params, eqx.is_array))
        assert any(not np.array_equal(a, b) for a, b in zip(
            moved, jax.tree.leaves(eqx.filter(eqx.filter(model, fam.trainable(model)),
                                              eqx.is_array)), strict=True)), opt
        after = _frozen_leaves(state.model)
        assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True)), opt


@pytest.mark.parametrize("name", [
    # a full two-step fit of each built-in family takes 0.5-3 min on 2 busy cores
    pytest.param(n, marks=pytest.mark.slow) for n in sorted(CASES)])
def test_family_meets_the_contract(name, tmp_path, tmp_path_factory):
    _full_contract(_raw(name, tmp_path_factory), tmp_path)


def _full_contract(raw, tmp_path):
    config = config_from_dict(raw)
    fam = family(config.family)
    assert isinstance(fam, Family) and fam.name == config.family
    # the model section round-trips through the family's config dataclass
    assert config_from_dict(config_to_dict(config)) == config
    result = fit(config, out=tmp_path / "run")
    # build + finite loss (fit raises TrainingError otherwise) + finite parameters
    assert result.steps == 2 and _finite_leaves(result.model)
    # per-sample metrics over the whole test split, finite means
    test = result.metrics["test"]
    assert test and all(math.isfinite(v) for v in test.values()), test
    # checkpoint round trip: the run folder reads back to the same model, bit for bit
    run = load_run(tmp_path / "run")
    assert run.family is fam and run.step == 2
    assert tree_allclose(eqx.filter(run.model, eqx.is_array),
                         eqx.filter(result.model, eqx.is_array), rtol=0, atol=0)
    # evaluation through the public API gives the numbers fit reported
    again = evaluate_run(tmp_path / "run", plots=False)
    assert set(again["test"]) == set(test)
    for k, v in test.items():
        assert again["test"][k] == pytest.approx(v, rel=1e-5, abs=1e-7), k


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_problem_makes_a_readable_data_set(name, tmp_path):
    prob = problem(name)
    assert isinstance(prob, Problem) and prob.name == name
    assert all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
               for f in dataclasses.fields(prob.config)), "every problem parameter has a default"
    from sciops._config import from_dict

    config = from_dict(prob.config, PROBLEMS[name], name)
    path = tmp_path / f"{name}.h5"
    prob.generate(config, path, progress=False)
    ds = read_hdf5(path, lazy=False)
    assert len(ds) == PROBLEMS[name].get("n_samples", PROBLEMS[name].get("n_trajectories"))
    assert ds.attrs.get("problem") == name
    for k in ds.keys():
        a = ds.load()[k]
        if np.issubdtype(a.dtype, np.floating):
            assert np.all(np.isfinite(a)), f"{name}: field {k} has non-finite values"


def test_sixth_family_trains_without_editing_sciops(tmp_path, toy_family):
    """tests/_toy_family/ (model, functions, registration) is all it takes."""
    assert family("toy") is toy_family
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 2, 4, 4)).astype(np.float32)
    y = np.tanh(x[:, :1] - 0.5 * x[:, 1:]) + 1.0
    write_hdf5(tmp_path / "toy.h5", {"x": x, "y": y.astype(np.float32)})
    raw = {"name": "toy", "data": {"path": str(tmp_path / "toy.h5"), "n_test": 4},
           "model": {"family": "toy", "width": 4},
           "train": {"steps": 2, "batch_size": 2, "eval_batch_size": 2, "log_every": 1,
                     "checkpoint_every": 1, "progress": False, "mesh": {"data": 1}}}
    _full_contract(raw, tmp_path)
    # the frozen normaliser is not trainable; both linear layers are
    spec = default_trainable(load_run(tmp_path / "run").model)
    assert not any(jax.tree.leaves(spec.norm)) and all(jax.tree.leaves(spec.first))


def test_model_config_from_a_mapping():
    """`model_config` builds a family's config as a config file's model section is built."""
    cfg = model_config("fno", {"n_modes": [4, 4], "hidden_channels": 8})
    assert cfg == family("fno").config(n_modes=(4, 4), hidden_channels=8)
    with pytest.raises(ConfigError, match=r"^model.n_mode: unknown key \(did you mean 'n_modes'\?\)"):
        model_config("fno", {"n_mode": [4, 4]})
    with pytest.raises(ConfigError, match=r"^net.hidden_channels: expected int, got 'x'$"):
        model_config("fno", {"hidden_channels": "x"}, path="net")
    with pytest.raises(ConfigError, match=r"unknown family 'fnoo' \(did you mean 'fno'\?\)"):
        model_config("fnoo")


def test_registration_errors():
    fam = family("toy")
    with pytest.raises(ConfigError, match="'toy' is already registered"):
        register_family(dataclasses.replace(fam))
    with pytest.raises(ConfigError, match="config must be a dataclass"):
        Family("bad", dict, fam.build, fam.loss, fam.metrics)
    with pytest.raises(ConfigError, match=r"unknown family 'tyo' \(did you mean 'toy'\?\)"):
        family("tyo")
    with pytest.raises(ConfigError, match="'darcy' is already registered"):
        register_problem(dataclasses.replace(problem("darcy")))
    with pytest.raises(ConfigError, match="unknown problem 'dracy'"):
        problem("dracy")


def test_import_sciops_data_stays_in_its_layer():
    """`import sciops.data` loads neither the training driver, optax nor evaluation (the
    version comes from a leaf module; the top-level package imports lazily)."""
    import subprocess
    import sys

    code = ("import sys, sciops.data; print(sorted({m.split('.')[1] for m in sys.modules "
            "if m.startswith('sciops.')} | ({'optax'} if 'optax' in sys.modules else set())))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert eval(out) == ["_errors", "_malloc", "_version", "data"], out


def test_fit_and_its_callees_are_short():
    """Issue #21: `fit` and every function of the driver it calls fit on one screen."""
    import ast

    import sciops.train as train

    folder = pathlib.Path(train.__file__).parent
    long = []
    for name in ("_fit", "_callbacks", "_state", "_evaluation", "_checkpoint", "_run",
                 "_run_folder", "_data", "_optimizer"):
        tree = ast.parse((folder / f"{name}.py").read_text())
        long += [f"{name}.{n.name}: {n.end_lineno - n.lineno + 1} lines" for n in ast.walk(tree)
                 if isinstance(n, ast.FunctionDef) and n.end_lineno - n.lineno + 1 > 60]
    assert not long, long
