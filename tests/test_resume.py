"""Resuming picks the LAST complete checkpoint when several are on disk (a resume from an older
one, or from none, must fail here), through the public `save_checkpoint` /
`latest_checkpoint` / `load_checkpoint` and through `fit(..., resume=True)`; `evaluate_run`
reads the last one back.

The fit uses the tiny `toy` family (tests/_toy_family/): which checkpoint a resume starts from
is the driver's choice, the same for every family (the FNO end-to-end run is in test_cli.py),
and the toy model compiles in a fraction of an FNO's time."""

import json
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from sciops import evaluate_run
from sciops.data import write_hdf5
from sciops.train import (
    config_from_dict,
    fit,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

HERE = pathlib.Path(__file__).parent


@pytest.fixture
def toy_family(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    import _toy_family  # registers the family "toy" (sciops.models.register_family)

    return _toy_family.FAMILY


def _state(step):
    return {"w": jnp.full((3,), float(step)), "b": jnp.arange(2.0) * step}


def test_latest_checkpoint_is_the_highest_complete_step(tmp_path):
    ckpts = tmp_path / "checkpoints"
    for step in (2, 10, 30):  # 30 sorts before 2 as a string, 10 as a number before 30
        save_checkpoint(ckpts, step, _state(step), {"note": f"s{step}"}, keep=5)
    # Not checkpoints: an interrupted write (temporary name) and a folder without its header.
    (ckpts / ".tmp-step_00000040" / "state").mkdir(parents=True)
    (ckpts / "step_00000050" / "state").mkdir(parents=True)
    latest = latest_checkpoint(ckpts)
    assert latest == ckpts / "step_00000030"
    state, header = load_checkpoint(latest, _state(0))
    assert header["step"] == 30 and header["note"] == "s30"
    np.testing.assert_array_equal(state["w"], [30.0, 30.0, 30.0])
    np.testing.assert_array_equal(state["b"], [0.0, 30.0])
    # an older one still loads its own values
    state, header = load_checkpoint(ckpts / "step_00000010", _state(0))
    assert header["step"] == 10 and float(state["w"][0]) == 10.0
    # readers never delete (issue #21: the folder may be a running fit's write in progress);
    # the next writer cleans the leftover up
    assert (ckpts / ".tmp-step_00000040").exists()
    save_checkpoint(ckpts, 60, _state(60), {}, keep=5)
    assert not (ckpts / ".tmp-step_00000040").exists()
    assert latest_checkpoint(tmp_path / "nothing-here") is None


def test_keep_removes_the_oldest_checkpoints(tmp_path):
    ckpts = tmp_path / "checkpoints"
    for step in (1, 2, 3, 4):
        save_checkpoint(ckpts, step, _state(step), {}, keep=2)
    assert sorted(p.name for p in ckpts.iterdir()) == ["step_00000003", "step_00000004"]
    assert latest_checkpoint(ckpts).name == "step_00000004"


def _toy_data(path, n=24):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2, 8, 8)).astype(np.float32)
    y = np.tanh(x[:, :1] - 0.3 * x[:, 1:2]) + 0.5
    write_hdf5(path, {"x": x, "y": y.astype(np.float32)}, {"problem": "toy"})
    return path


CONFIG = {
    "name": "resume",
    "seed": 2,
    "data": {"path": None, "n_test": 8},
    "model": {"family": "toy", "width": 8},
    "train": {"steps": 6, "batch_size": 8, "eval_batch_size": 8, "log_every": 1,
              "checkpoint_every": 2, "keep_checkpoints": 3, "progress": False,
              "plots": False, "mesh": {"data": 1}, "optimizer": {"lr": 0.01, "warmup_steps": 0}},
}


def _records(path):  # every logged value but the wall-clock throughput
    return [{k: v for k, v in json.loads(ln).items() if k != "samples_per_s"}
            for ln in path.read_text().splitlines() if ln.strip()]


def test_fit_resumes_from_the_last_of_several_checkpoints(tmp_path, toy_family):
    """Checkpoints at steps 2, 4 and 6 on disk; resuming with 9 steps must start at 6.

    A resume from step 2 or 4 would re-run the steps after it under the 9-step cosine schedule
    (the learning rate of step s depends on the total), so the logged training losses of steps
    up to 6 would change; from step 6 they are the first run's, unchanged."""
    raw = {**CONFIG, "data": {**CONFIG["data"], "path": str(_toy_data(tmp_path / "toy.h5"))}}
    run = tmp_path / "run"
    first = fit(config_from_dict(raw), out=run)
    assert first.steps == 6
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["step_00000002", "step_00000004", "step_00000006"]
    before = _records(run / "metrics.jsonl")
    assert [r["step"] for r in before if r["split"] == "train"] == [1, 2, 3, 4, 5, 6]

    raw["train"] = {**raw["train"], "steps": 9}
    resumed = fit(config_from_dict(raw), out=run, resume=True)
    assert resumed.steps == 9
    after = _records(run / "metrics.jsonl")
    assert [r for r in after if r["step"] <= 6] == [r for r in before if r["step"] <= 6]
    assert [r["step"] for r in after if r["split"] == "train"] == list(range(1, 10))
    # the steps after 6 trained on: the last checkpoint is 9's, with the test metrics logged
    assert latest_checkpoint(run / "checkpoints").name == "step_00000009"
    assert resumed.metrics["test"] != first.metrics["test"]
    test_9 = [r for r in after if r["split"] == "test" and r["step"] == 9]
    assert len(test_9) == 1
    for k, v in resumed.metrics["test"].items():
        assert test_9[0][k] == pytest.approx(v, rel=1e-6), k
    # evaluate_run re-reads the run's last checkpoint (step 9) and its test set: the same numbers
    evaluated = evaluate_run(run, plots=False)
    assert list(evaluated) == ["test"]
    for k, v in resumed.metrics["test"].items():
        assert evaluated["test"][k] == pytest.approx(v, rel=1e-5), k
