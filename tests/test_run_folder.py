"""The run folder and its inputs under readers, second writers, corrupt files and bad data
(issue #21 part 5). Each test failed before its fix.

Uses the tiny `toy` family (tests/_toy_family/) so that these tests check the driver only.
"""

import dataclasses
import json
import os
import pathlib
import shutil

import equinox as eqx
import h5py
import jax.numpy as jnp
import numpy as np
import pytest
import yaml
from conftest import tree_allclose

from sciops import ConfigError, DataError, TrainingError
from sciops.cli import main
from sciops.data import Dataset, read_hdf5, write_hdf5
from sciops.eval import evaluate_run
from sciops.models import family
from sciops.train import (
    RunLock,
    config_from_dict,
    evaluate_dataset,
    fit,
    latest_checkpoint,
    list_checkpoints,
    load_config,
    load_run,
)

HERE = pathlib.Path(__file__).parent


@pytest.fixture(autouse=True)
def toy_family(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    import _toy_family  # registers the family "toy"

    return _toy_family.FAMILY


def _data(path, n=64, seed=0, channels=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, channels, 8, 8)).astype(np.float32)
    y = np.tanh(x[:, :1] - 0.3 * x[:, 1:2]) + 0.5
    write_hdf5(path, {"x": x, "y": y.astype(np.float32)}, {"problem": "toy"})
    return path


def _raw(tmp_path, data=None, **train):
    return {
        "name": "toy", "seed": 3,
        "data": {"path": str(data or _data(tmp_path / "toy.h5")), "n_test": 16},
        "model": {"family": "toy", "width": 8},
        "train": {"steps": 24, "batch_size": 8, "eval_batch_size": 8, "log_every": 4,
                  "progress": False, "plots": False, "mesh": {"data": 1},
                  "optimizer": {"lr": 3e-2, "warmup_steps": 4}, **train},
    }


# -- one writer ------------------------------------------------------------------------------

def test_second_writer_is_refused_with_one_line(tmp_path, capsys):
    cfg = config_from_dict(_raw(tmp_path, steps=2))
    with RunLock(tmp_path / "run"):
        with pytest.raises(ConfigError, match=r"another fit is writing this run folder \(pid "
                           rf"{os.getpid()}\)"):
            fit(cfg, out=tmp_path / "run")
        (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(_raw(tmp_path, steps=2)))
        assert main(["fit", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "another fit is writing" in err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    fit(cfg, out=tmp_path / "run")  # the lock went with its holder


def test_out_and_name_are_checked(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="--out: .*file is a file, not a run folder"):
        fit(config_from_dict(_raw(tmp_path, steps=2)), out=tmp_path / "file")
    with pytest.raises(ConfigError, match=r"name: '\.\./\.\./x' is not a plain folder name"):
        config_from_dict({**_raw(tmp_path), "name": "../../x"})
    fit(config_from_dict(_raw(tmp_path, steps=2)), out=tmp_path / "run")
    # a rerun without --resume neither overwrites nor silently moves to run-1
    with pytest.raises(ConfigError, match="already holds a run; pass --resume"):
        fit(config_from_dict(_raw(tmp_path, steps=2)), out=tmp_path / "run")
    with pytest.raises(ConfigError, match="--resume: .* holds no run"):
        fit(config_from_dict(_raw(tmp_path, steps=2)), out=tmp_path / "new", resume=True)


def test_generate_out_folder_fails_before_the_solve(tmp_path, capsys):
    assert main(["generate", "darcy", "--out", str(tmp_path), "--n_samples", "100000"]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_resume_of_finished_run_changes_nothing(tmp_path):
    cfg = config_from_dict(_raw(tmp_path))
    first = fit(cfg, out=tmp_path / "run")
    log = (tmp_path / "run" / "metrics.jsonl").read_text()
    again = fit(cfg, out=tmp_path / "run", resume=True)
    assert again.metrics == first.metrics and again.steps == 24
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == log


# -- readers ---------------------------------------------------------------------------------

def test_readers_never_delete_a_write_in_progress(tmp_path):
    fit(config_from_dict(_raw(tmp_path, steps=8)), out=tmp_path / "run")
    tmp = tmp_path / "run" / "checkpoints" / ".tmp-step_00000016"
    (tmp / "state").mkdir(parents=True)
    (tmp / "state" / "partial").write_bytes(b"being written")
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step_00000008"]
    assert latest_checkpoint(tmp_path / "run" / "checkpoints").name == "step_00000008"
    assert load_run(tmp_path / "run").step == 8
    assert evaluate_run(tmp_path / "run", plots=False)["test"]["l2"] > 0
    assert (tmp / "state" / "partial").read_bytes() == b"being written"


# -- corrupt checkpoints ---------------------------------------------------------------------

def _largest_file(ckpt):
    return max((p for p in (ckpt / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    """The config and result of one finished 24-step run with checkpoints at 8, 16 and 24; each
    test that damages it copies its folder first."""
    tmp = tmp_path_factory.mktemp("checkpointed")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(HERE))
        import _toy_family  # noqa: F401  (registers "toy")

        cfg = config_from_dict(_raw(tmp, checkpoint_every=8, keep_checkpoints=3))
        return cfg, fit(cfg, out=tmp / "run")


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_checkpoint_one_line_and_resume_falls_back(tmp_path, capsys, damage,
                                                           checkpointed):
    cfg, straight = checkpointed
    shutil.copytree(straight.run_dir, tmp_path / "run")
    last = latest_checkpoint(tmp_path / "run" / "checkpoints")
    target = _largest_file(last)
    data = bytearray(target.read_bytes())
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    else:  # same size, one flipped bit: only the checksum sees it
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"step_00000024: corrupt checkpoint \(state/.* "
                       "(does not match its SHA-256|is missing)"):
        load_run(tmp_path / "run")
    assert main(["evaluate", str(tmp_path / "run"), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "corrupt checkpoint" in err
    resumed = fit(cfg, out=tmp_path / "run", resume=True)
    assert "resuming from an older checkpoint" in capsys.readouterr().err
    assert resumed.metrics == straight.metrics
    assert tree_allclose(eqx.filter(resumed.model, eqx.is_array),
                         eqx.filter(straight.model, eqx.is_array), rtol=0, atol=0)
    assert (tmp_path / "run" / "checkpoints" / "corrupt-step_00000024").is_dir()
    assert load_run(tmp_path / "run").step == 24
    # the rewritten step goes bad again (found by benchmarks/fault_injection.py): set aside too
    target = _largest_file(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    target.write_bytes(target.read_bytes()[:-1])
    again = fit(cfg, out=tmp_path / "run", resume=True)
    assert again.metrics == straight.metrics
    assert (tmp_path / "run" / "checkpoints" / "corrupt-step_00000024-1").is_dir()


# -- bad data --------------------------------------------------------------------------------

@pytest.mark.parametrize("index, split, at", [(60, "test", 12), (3, "train", 3)])
def test_nan_in_data_names_file_split_and_sample(tmp_path, index, split, at):
    path = _data(tmp_path / "toy.h5")
    arrays = read_hdf5(path, lazy=False).load()
    arrays["x"][index, 1, 2, 3] = np.nan
    write_hdf5(tmp_path / "bad.h5", arrays)
    cfg = config_from_dict(_raw(tmp_path, data=tmp_path / "bad.h5"))
    with pytest.raises(DataError, match=rf"bad.h5: split '{split}', sample {at} \(sample "
                       rf"{index} of the file\): field 'x' holds NaN"):
        fit(cfg, out=tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_metrics_never_average_over_fewer_samples():
    fam = family("toy")
    fake = dataclasses.replace(fam, name="fake", metrics=lambda c, m, b: {
        "l2": b["v"], "l2/a": jnp.where(b["task"] == 0, b["v"], jnp.nan)})
    ok = Dataset({"v": np.array([1.0, 2.0, 3.0, 6.0], np.float32), "task": np.array([0, 1, 0, 1])})
    assert evaluate_dataset(fake, None, None, ok, 2) == {"l2": 3.0, "l2/a": 2.0}
    bad = Dataset({"v": np.array([1.0, 2.0, np.nan, 6.0], np.float32),
                   "task": np.array([0, 1, 0, 1])}, name="set")
    with pytest.raises(TrainingError, match=r"set: metric 'l2' is nan for sample 2"):
        evaluate_dataset(fake, None, None, bad, 2)


@pytest.mark.parametrize("text", ["1e-3", "1E-3", "+1e-3", ".001e0"])
def test_yaml_12_floats(tmp_path, text):
    raw = _raw(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw).replace("lr: 0.03", f"lr: {text}"))
    assert load_config(path).train.optimizer.lr == pytest.approx(1e-3)
    assert load_config(tmp_path / "c.yaml", [f"train.optimizer.lr={text}"]
                       ).train.optimizer.lr == pytest.approx(1e-3)
    with pytest.raises(ConfigError, match=r"train\.optimizer\.lr: expected float, got '1e-3x'"):
        load_config(path, ["train.optimizer.lr=1e-3x"])


def test_evaluate_data_is_validated_and_paths_resolve_against_the_run(tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.chdir(tmp_path)
    _data(tmp_path / "toy.h5")
    raw = _raw(tmp_path, steps=4)
    raw["data"]["path"] = "toy.h5"  # relative to the fit's working directory
    fit(config_from_dict(raw), out="run")
    run = tmp_path / "run"
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    assert evaluate_run(run, plots=False)["test"]["l2"] > 0
    assert not (other / "toy.h5").exists() and not (other / "data").exists()
    # another family's file, and a file of other shapes
    write_hdf5(other / "mesh.h5", {"a": np.zeros((4, 3), np.float32)})
    with pytest.raises(DataError, match=r"--data .*mesh.h5: does not fit this 'toy' run: .*"
                       "needs field 'x'"):
        evaluate_run(run, data=[str(other / "mesh.h5")], plots=False)
    _data(other / "three.h5", channels=3)
    with pytest.raises(DataError, match="three.h5: its fields give a model of other shapes"):
        evaluate_run(run, data=[str(other / "three.h5")], plots=False)
    assert main(["evaluate", str(run), "--data", str(other / "three.h5")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    # moved away: a missing data file is an error, never a regeneration
    (tmp_path / "toy.h5").rename(tmp_path / "moved.h5")
    with pytest.raises(DataError, match="toy.h5: data file not found"):
        evaluate_run(run, plots=False)
    assert not (tmp_path / "toy.h5").exists()


# -- divergence ------------------------------------------------------------------------------

def test_exploding_loss_stops_and_names_the_newest_good_checkpoint(tmp_path):
    import jax

    from sciops.train import StepOutput, TrainState
    from sciops.train._callbacks import MetricsLog, Monitor

    states = [TrainState(None, None, None, jnp.int32(s), jax.random.key(0)) for s in range(6)]
    log = MetricsLog(tmp_path / "m.jsonl", None)
    monitor = Monitor(log, [1], 10, 1, 1e6, float("inf"), states[0], 0)
    for s, loss in enumerate([3.0, 1.0, 2.0, 5e5], 1):
        monitor.on_step(s, states[s], StepOutput(jnp.float32(loss), {}, jnp.bool_(True)))
    assert monitor.good is states[4] and monitor.loss_min == 1.0
    with pytest.raises(TrainingError, match=r"loss exploded to 1e\+12 at step 5 \(more than "
                       r"train.divergence_factor = 1e\+06 times its running minimum 1\)"):
        monitor.on_step(5, states[5], StepOutput(jnp.float32(1e12), {}, jnp.bool_(True)))
    assert monitor.good is states[4]
    # in a fit: a learning rate that makes the loss grow, a tight factor
    cfg = config_from_dict(_raw(tmp_path, steps=200, log_every=1, checkpoint_every=3,
                                divergence_factor=1.5,
                                optimizer={"lr": 30.0, "clip_norm": None, "warmup_steps": 0,
                                           "schedule": "constant", "weight_decay": 0.0}))
    with pytest.raises(TrainingError, match=r"at step (\d+).*the last good checkpoint is "
                       r".*step_(\d+)") as err:
        fit(cfg, out=tmp_path / "run")
    msg = str(err.value)
    newest = latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert msg.endswith(str(newest))
    bad_step = int(msg.split(" at step ")[1].split()[0])
    assert int(newest.name.split("_")[1]) == bad_step - 1


# -- distributed and HDF5 --------------------------------------------------------------------

def test_coordinator_binds_loopback_unless_asked(monkeypatch):
    import socket

    import jax

    from sciops.train._distributed import initialize

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    seen = {}
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: seen.update(kw))
    monkeypatch.setattr(jax.config, "update", lambda *a: None)
    initialize("explicit", coordinator=f"127.0.0.1:{port}", num_processes=2, process_id=0)
    assert seen["coordinator_bind_address"] == f"127.0.0.1:{port}"
    initialize("explicit", coordinator=f"127.0.0.1:{port}", num_processes=2, process_id=0,
               coordinator_bind=f"0.0.0.0:{port}")
    assert seen["coordinator_bind_address"] == f"0.0.0.0:{port}"


def test_hdf5_external_links_and_storage_are_refused(tmp_path):
    secret = tmp_path / "secret.h5"
    write_hdf5(secret, {"x": np.ones((4, 2), np.float32)})
    with h5py.File(tmp_path / "link.h5", "w") as f:
        f["x"] = np.zeros((4, 2), np.float32)
        f["y"] = h5py.ExternalLink(str(secret), "/x")
    with pytest.raises(DataError, match=r"link.h5: field 'y' is an external link to .*secret.h5"):
        read_hdf5(tmp_path / "link.h5")
    raw = tmp_path / "raw.bin"
    np.arange(8, dtype=np.float32).tofile(raw)
    with h5py.File(tmp_path / "ext.h5", "w") as f:
        f.create_dataset("x", shape=(4, 2), dtype=np.float32, external=[(str(raw), 0, 32)])
    with pytest.raises(DataError, match=r"ext.h5: field 'x' uses external raw storage"):
        read_hdf5(tmp_path / "ext.h5")


def test_run_records_its_working_directory(tmp_path):
    fit(config_from_dict(_raw(tmp_path, steps=2)), out=tmp_path / "run")
    assert json.loads((tmp_path / "run" / "run.json").read_text())["cwd"] == os.getcwd()


def test_resume_before_the_first_checkpoint_starts_over(tmp_path, capsys):
    cfg = config_from_dict(_raw(tmp_path, steps=8))
    straight = fit(cfg, out=tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # the same run, then
    shutil.rmtree(tmp_path / "b" / "checkpoints")  # as if killed before its first checkpoint
    again = fit(cfg, out=tmp_path / "b", resume=True)
    assert "no intact checkpoint" in capsys.readouterr().err
    assert again.metrics == straight.metrics
