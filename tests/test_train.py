"""The training driver: determinism, sharding, resume after SIGKILL, NaN guard, transfer, errors.

Uses the tiny `toy` family (tests/_toy_family/) on data made here, so that these tests check
the driver and nothing else; the FNO end-to-end run is in test_cli.py.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import numpy as np
import pytest
import yaml
from conftest import tree_allclose

from sciops import ConfigError, DataError, TrainingError
from sciops.data import write_hdf5
from sciops.train import config_from_dict, fit, load_config, load_run, trainable_filter

HERE = pathlib.Path(__file__).parent


@pytest.fixture(autouse=True)
def toy_family(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    import _toy_family  # registers the family "toy" (sciops.models.register_family)

    return _toy_family.FAMILY


def _data(path, n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2, 8, 8)).astype(np.float32)
    w = np.array([[0.7, -0.3], [0.2, 0.5], [1.0, 0.1]], np.float32)
    y = np.tanh(np.einsum("oc,nchw->nohw", w, x)) + 0.5
    write_hdf5(path, {"x": x, "y": y.astype(np.float32)}, {"problem": "toy"})
    return path


def _raw(tmp_path, **train):
    return {
        "name": "toy",
        "seed": 3,
        "data": {"path": str(_data(tmp_path / "toy.h5")), "n_test": 16},
        "model": {"family": "toy", "width": 8},
        # no figures (seconds of matplotlib per fit) except where a test looks at them
        "train": {"steps": 24, "batch_size": 8, "eval_batch_size": 8, "log_every": 4,
                  "progress": False, "plots": False, "mesh": {"data": 1},
                  "optimizer": {"lr": 3e-2, "warmup_steps": 4}, **train},
    }


STRAIGHT = dict(eval_every=8, checkpoint_every=8)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One uninterrupted 24-step run (`_raw(..., **STRAIGHT)`) and its folder, shared by the tests
    that read a finished run (the reference of the SIGKILL resume, the second run of the same
    seed, the source of the transfers); no test writes into it."""
    tmp = tmp_path_factory.mktemp("straight")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(HERE))
        import _toy_family  # noqa: F401  (registers "toy")

        return fit(config_from_dict(_raw(tmp, **STRAIGHT, plots=True)), out=tmp / "run")


def test_fit_learns_and_writes_run_folder(straight):
    res, run = straight, straight.run_dir
    records = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["split"] == "train"]
    assert losses[-1] < 0.6 * losses[0]
    assert res.metrics["test"]["l2"] < 0.6 * losses[0]
    assert [r["step"] for r in records if r["split"] == "test"] == [8, 16, 24]
    assert (run / "config.yaml").is_file() and (run / "loss_curve.png").stat().st_size > 1000
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000016",
                                                                       "step_00000024"]
    # The run reads back to the same model.
    back = load_run(run)
    assert back.step == 24 and tree_allclose(eqx.filter(back.model, eqx.is_array),
                                             eqx.filter(res.model, eqx.is_array), rtol=0, atol=0)


def test_same_seed_same_metrics_and_frozen_leaves_stay(tmp_path, straight):
    a = straight
    b = fit(config_from_dict(_raw(tmp_path, **STRAIGHT)), out=tmp_path / "b")
    assert a.metrics == b.metrics
    # `train.plots=false` (b) draws nothing and changes no number
    assert (a.run_dir / "loss_curve.png").is_file() and not list(b.run_dir.glob("*.png"))
    # The frozen normaliser is untouched by AdamW's weight decay.
    x = np.asarray(a.model.norm.mean)
    from sciops.data import read_hdf5

    assert float(x) == pytest.approx(float(read_hdf5(tmp_path / "toy.h5").load()["x"][:48].mean()),
                                     rel=1e-6)


def test_sharded_step_equals_single_device(tmp_path):
    single = fit(config_from_dict(_raw(tmp_path, mesh={"data": 1}, steps=1)), out=tmp_path / "1")
    sharded = fit(config_from_dict(_raw(tmp_path, mesh={"data": 4}, steps=1)), out=tmp_path / "4")
    assert len(jax.devices()) == 4
    assert tree_allclose(eqx.filter(single.model, eqx.is_array),
                         eqx.filter(sharded.model, eqx.is_array), rtol=1e-6, atol=1e-6)
    assert single.metrics["test"]["l2"] == pytest.approx(sharded.metrics["test"]["l2"], rel=1e-6)


_KILLER = """
import os, signal, sys, pathlib
sys.path.insert(0, {tests!r})
import _toy_family
import sciops.train._fit as fitmod
from sciops.train import config_from_dict
import yaml

real = fitmod.save_checkpoint
def save(directory, step, state, header, keep=2):
    if step == 16:
        # die while writing the second checkpoint: a partial temporary folder stays behind
        d = pathlib.Path(directory) / ".tmp-step_00000016-x"
        d.mkdir(parents=True)
        (d / "state.eqx").write_bytes(b"partial")
        os.kill(os.getpid(), signal.SIGKILL)
    return real(directory, step, state, header, keep)
fitmod.save_checkpoint = save
cfg = config_from_dict(yaml.safe_load(open({cfg!r})))
fitmod.fit(cfg, out={out!r})
"""


def test_resume_after_sigkill_mid_write_matches_uninterrupted(tmp_path, straight):
    raw = _raw(tmp_path, **STRAIGHT)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(raw))
    out = tmp_path / "killed"
    script = _KILLER.format(tests=str(HERE), cfg=str(tmp_path / "cfg.yaml"), out=str(out))
    # the conftest's XLA flags (4 devices, test code generation), so that the killed run and
    # the in-process runs below round identically
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == [".tmp-step_00000016-x", "step_00000008"]
    resumed = fit(load_config(tmp_path / "cfg.yaml"), out=out, resume=True)
    assert resumed.metrics == straight.metrics  # the same config, uninterrupted
    def records(path):  # every logged value but the wall-clock throughput
        return [{k: v for k, v in json.loads(ln).items() if k != "samples_per_s"}
                for ln in path.read_text().splitlines()]

    resumed_log = records(out / "metrics.jsonl")
    assert resumed_log == records(straight.run_dir / "metrics.jsonl")
    assert [r["step"] for r in resumed_log if r["split"] == "test"] == [8, 16, 24]
    assert not any(p.name.startswith(".tmp") for p in (out / "checkpoints").iterdir())


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    cfg = config_from_dict(_raw(tmp_path, checkpoint_every=4, log_every=1, steps=200,
                                optimizer={"lr": 1e12, "clip_norm": None, "warmup_steps": 0,
                                           "schedule": "constant"}))
    with pytest.raises(TrainingError, match=r"at step \d+") as err:
        fit(cfg, out=tmp_path / "nan")
    step = int(str(err.value).split("at step ")[1].split()[0])
    kept = sorted((tmp_path / "nan" / "checkpoints").iterdir())
    assert kept, "the last good state must be checkpointed"
    last = int(kept[-1].name.split("_")[1])
    assert last == step - 1
    run = load_run(tmp_path / "nan")
    assert all(np.all(np.isfinite(np.asarray(x))) for x in
               jax.tree.leaves(eqx.filter(run.model, eqx.is_array)))


def test_transfer_trains_only_chosen_parts(tmp_path, straight):
    source = straight
    raw = _raw(tmp_path, steps=8)
    raw["transfer"] = {"from_run": str(straight.run_dir), "trainable": ["second"]}
    tuned = fit(config_from_dict(raw), out=tmp_path / "tuned")
    assert tree_allclose(source.model.first, tuned.model.first, rtol=0, atol=0)
    assert not np.allclose(source.model.second.weight, tuned.model.second.weight)
    spec = trainable_filter(source.model, ["second.bias"])
    assert jax.tree.leaves(spec) == [False, False, False, False, False, True]


@pytest.mark.parametrize("change, message", [
    ({"transfer": {"from_run": "SRC", "trainable": ["thrid"]}}, r"'thrid' names no part"),
    ({"model": {"family": "toy", "width": 16}}, r"architecture of .* does not match"),
])
def test_transfer_errors(tmp_path, straight, change, message):
    raw = _raw(tmp_path, steps=2)
    raw["transfer"] = {"from_run": str(straight.run_dir), "trainable": ["second"]}
    for k, v in change.items():
        if k == "transfer":
            v = {**v, "from_run": str(straight.run_dir)}
        raw[k] = v
    with pytest.raises(ConfigError, match=message):
        fit(config_from_dict(raw), out=tmp_path / "t")


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["train"].update(stpes=3), r"train\.stpes: unknown key \(did you mean 'steps'\?\)"),
    (lambda r: r["train"].update(steps="many"), r"train\.steps: expected int, got 'many'"),
    (lambda r: r["model"].update(family="tyo"), r"model\.family: unknown family 'tyo' \(did you mean 'toy'\?\)"),
    (lambda r: r["model"].update(widht=3), r"model\.widht: unknown key \(did you mean 'width'\?\)"),
    (lambda r: r["train"].update(batch_size=6, mesh={"data": 4}), r"train\.batch_size: 6 is not divisible"),
    (lambda r: r["train"].update(mesh={"data": 8}), r"train\.mesh: \{.data.: 8\} needs 8 devices, only 4"),
    (lambda r: r["train"].update(mesh={"data": -1, "space": 3}), r"train\.mesh: .* does not divide the 4"),
    (lambda r: r.update(sede=1), r"sede: unknown key \(did you mean 'seed'\?\)"),
])
def test_config_errors_name_the_key(tmp_path, edit, message):
    raw = _raw(tmp_path)
    edit(raw)
    with pytest.raises(ConfigError, match=message):
        fit(config_from_dict(raw), out=tmp_path / "x")


def test_data_errors_name_the_file(tmp_path):
    raw = _raw(tmp_path)
    raw["data"]["path"] = str(tmp_path / "missing.h5")
    with pytest.raises(DataError, match="missing.h5: data file not found"):
        fit(config_from_dict(raw), out=tmp_path / "x")
    (tmp_path / "corrupt.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    raw["data"]["path"] = str(tmp_path / "corrupt.h5")
    with pytest.raises(DataError, match="corrupt.h5: not a readable HDF5 file"):
        fit(config_from_dict(raw), out=tmp_path / "x")
    raw = _raw(tmp_path)
    raw["data"]["n_test"] = 100
    with pytest.raises(DataError, match=r"toy.h5: 64 samples leave none for training after n_val=0 and n_test=100"):
        fit(config_from_dict(raw), out=tmp_path / "x")


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""\
        name: x
        train:
          steps: [1, 2
        model: {family: toy}
        """))
    with pytest.raises(ConfigError, match=r"bad.yaml: YAML syntax error at line \d+"):
        load_config(path)


def test_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_raw(tmp_path)))
    cfg = load_config(path, ["train.steps=7", "train.optimizer.lr=0.5", "seed=11"])
    assert (cfg.train.steps, cfg.train.optimizer.lr, cfg.seed) == (7, 0.5, 11)
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_config(path, ["train.steps"])
