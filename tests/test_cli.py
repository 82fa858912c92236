"""The `sciops` command as users call it: a small end-to-end Darcy run, evaluate, generate,
and every bad-input case exiting with status 2 and one clear line (no traceback)."""

import json
import pathlib
import subprocess
import sys

import pytest
import yaml

from sciops.cli import main
from sciops.data import read_hdf5, write_hdf5

ROOT = pathlib.Path(__file__).parents[1]
SHARED = ROOT / "data" / "neuralop-darcy"


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    raw = {
        "name": "small",
        "seed": 0,
        "data": {"path": str(d / "darcy.h5"),
                 "generate": {"problem": "darcy", "n_samples": 48, "resolution": 16},
                 "n_test": 8},
        "model": {"family": "fno", "n_modes": [6, 6], "hidden_channels": 8, "n_layers": 2,
                  "lifting_channels": 16, "projection_channels": 16},
        "train": {"steps": 20, "batch_size": 8, "eval_batch_size": 8, "log_every": 5,
                  "progress": False, "mesh": {"data": 1}, "optimizer": {"lr": 5e-3}},
    }
    cfg = d / "small.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    return d, cfg, raw


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sciops", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


def test_fit_then_evaluate(small, capsys):
    d, cfg, _ = small
    assert main(["fit", str(cfg), "--out", str(d / "run"), "train.steps=30"]) == 0
    printed = capsys.readouterr().out
    assert "run folder:" in printed and "test: " in printed
    run = d / "run"
    for name in ("config.yaml", "metrics.jsonl", "loss_curve.png", "prediction_test.png",
                 "final_metrics.json"):
        assert (run / name).is_file(), name
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 30
    records = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["split"] == "train"]
    assert losses[-1] < losses[0]
    # (the figure of the test split is fit's, checked above: evaluate draws only the new one)
    assert main(["evaluate", str(run), "--json", "--no-plots"]) == 0
    result = json.loads(capsys.readouterr().out)
    final = json.loads((run / "final_metrics.json").read_text())
    assert result["test"]["l2"] == pytest.approx(final["test"]["l2"], rel=1e-6)
    # evaluate on another file, e.g. a finer resolution (zero-shot super-resolution)
    assert main(["generate", "darcy", "--n-samples", "4", "--resolution", "32",
                 "--out", str(d / "fine.h5"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(d / "fine.h5"), "--json"]) == 0
    fine = json.loads(capsys.readouterr().out)["fine"]
    assert 0 < fine["l2"] < 1 and (run / "prediction_fine.png").is_file()
    # a corrupt evaluation file: one clear line naming it, exit 2 (here, where the run exists)
    (d / "corrupt.h5").write_bytes(b"not an hdf5 file at all")
    proc = _run("evaluate", str(run), "--data", str(d / "corrupt.h5"))
    # (--data files are read as the run's data.path is: with its data.format, here "auto")
    assert proc.returncode == 2 and "corrupt.h5: cannot tell the format" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_generate_writes_schema(tmp_path, capsys):
    out = tmp_path / "d.h5"
    assert main(["generate", "darcy", "--n-samples", "3", "--resolution", "16", "--out",
                 str(out), "--no-progress"]) == 0
    ds = read_hdf5(out)
    assert len(ds) == 3 and ds.shape("x") == (1, 16, 16) and ds.attrs["problem"] == "darcy"
    assert ds.attrs["sciops_schema"] == 1 and ds.attrs["config"]["resolution"] == 16


def _bad_configs(d, raw):
    cases = {}

    def case(name, mutate, expect):
        r = json.loads(json.dumps(raw))
        mutate(r)
        path = d / f"{name}.yaml"
        path.write_text(yaml.safe_dump(r))
        cases[name] = (path, expect)

    case("unknown_key", lambda r: r["model"].update(hidden_chanels=8),
         "model.hidden_chanels: unknown key (did you mean 'hidden_channels'?)")
    case("wrong_type", lambda r: r["model"].update(n_modes="abc"),
         "model.n_modes: expected list of int, got 'abc'")
    case("missing_file", lambda r: r["data"].update(path=str(d / "nope.h5"), generate=None),
         "nope.h5: data file not found")
    case("nyquist", lambda r: r["model"].update(n_modes=[40, 40]),
         "model.n_modes[0] = 40 is above the Nyquist limit")
    case("shape_mismatch", lambda r: r["data"].update(path=str(d / "mismatch.h5"), generate=None),
         "mismatch.h5")
    return cases


def test_bad_input_exits_2_with_one_line(small, capsys):
    d, cfg, raw = small
    import numpy as np

    write_hdf5(d / "mismatch.h5", {"x": np.zeros((16, 1, 16, 16), np.float32),
                                   "y": np.zeros((16, 1, 8, 8), np.float32)})
    (d / "syntax.yaml").write_text("name: x\nmodel:\n  family: fno\n  n_modes: [1, 2\n")
    cases = _bad_configs(d, raw)
    # In this process (`main` is what the console script calls) ...
    for name, (path, expect) in cases.items():
        assert main(["fit", str(path), "--out", str(d / f"out_{name}")]) == 2, name
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, err[-3000:])
        assert expect in lines[0], (name, lines[0])
    for argv, expect in ((["fit", str(cfg), "train.stpes=3"],
                          "train.stpes: unknown key (did you mean 'steps'?)"),
                         (["evaluate", str(d / "run_missing")], "not a run folder"),
                         (["generate", "darcyy"], "did you mean 'darcy'?")):
        assert main(argv) == 2, argv
        assert expect in capsys.readouterr().err, argv
    # ... and as a process: exit status 2 and nothing on stderr but the one line (no
    # traceback, no warning printed by an import); --debug shows the traceback instead
    proc = _run("fit", str(d / "syntax.yaml"), "--out", str(d / "out_syntax"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: {d / 'syntax.yaml'}: YAML syntax error at line 5"), proc.stderr[-3000:]
    proc = _run("--debug", "fit", str(cases["unknown_key"][0]))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared neuraloperator data are not present")
def test_neuralop_darcy_config_validates():
    from sciops.train import load_config

    cfg = load_config(ROOT / "configs" / "darcy_neuralop.yaml")
    assert set(cfg.data.test) == {"test_16", "test_32"}
    # paths in configs are relative to the repository root, where `sciops fit` is run
    assert len(read_hdf5(ROOT / cfg.data.path)) == 1000
    for path in cfg.data.test.values():
        assert len(read_hdf5(ROOT / path)) == 50
