"""Multi-process training through the `sciops fit` entry point users call, orbax restore onto
another mesh, launcher detection, and a bounded, clear failure when the coordinator is absent."""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from sciops.train import fit
from sciops.train._distributed import detect_launcher

CONFIG = {
    "name": "mp",
    "seed": 1,
    "data": {"path": None, "generate": {"problem": "darcy", "n_samples": 40, "resolution": 16},
             "n_test": 8},
    "model": {"family": "fno", "n_modes": [4, 4], "hidden_channels": 8, "n_layers": 2,
              "lifting_channels": 8, "projection_channels": 8},
    "train": {"steps": 6, "batch_size": 8, "eval_batch_size": 8, "log_every": 2,
              "checkpoint_every": 3, "progress": False, "optimizer": {"lr": 0.01}},
}


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("mp")
    raw = {**CONFIG, "data": {**CONFIG["data"], "path": str(d / "darcy16.h5")}}
    path = d / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ)
    # each process sets its own device count; the other test flags (conftest) carry over
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                                if not f.startswith("--xla_force_host_platform_device_count"))
    return env


def _sciops(*args, **kw):
    return [sys.executable, "-m", "sciops", *args]


def test_two_processes_equal_one_process(config_path, tmp_path):
    single = subprocess.run(_sciops("fit", str(config_path), "--out", str(tmp_path / "one"),
                                    "--cpu-devices", "4"), env=_env(), capture_output=True,
                            text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    port = _free_port()
    procs = [subprocess.Popen(_sciops("fit", str(config_path), "--out", str(tmp_path / "two"),
                                      "--distributed", "explicit", "--coordinator",
                                      f"127.0.0.1:{port}", "--num-processes", "2",
                                      "--process-id", str(i), "--cpu-devices", "2"),
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    one = json.loads((tmp_path / "one" / "final_metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "final_metrics.json").read_text())
    for k in one["test"]:
        assert two["test"][k] == pytest.approx(one["test"][k], rel=1e-6)
    # Only process 0 wrote the log: one line per event, no duplicates.
    lines = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    steps = [(json.loads(ln)["step"], json.loads(ln)["split"]) for ln in lines]
    assert len(steps) == len(set(steps))
    assert "run folder" in outs[0][0] and "run folder" not in outs[1][0]


def test_resume_on_another_mesh(config_path, tmp_path):
    from sciops.train._config import config_from_dict

    raw = yaml.safe_load(config_path.read_text())
    raw["train"]["mesh"] = {"data": 4}
    full = fit(config_from_dict(raw), out=tmp_path / "full")
    # Keep the step-3 checkpoint only, as if the run had died after it; resume on 2 devices.
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut" / "checkpoints" / "step_00000006")
    raw["train"]["mesh"] = {"data": 2}
    resumed = fit(config_from_dict(raw), out=tmp_path / "cut", resume=True)
    for k, v in full.metrics["test"].items():
        assert resumed.metrics["test"][k] == pytest.approx(v, rel=1e-5)


def test_unreachable_coordinator_fails_fast_with_a_clear_error(config_path, tmp_path):
    t0 = time.monotonic()
    proc = subprocess.run(_sciops("fit", str(config_path), "--out", str(tmp_path / "x"),
                                  "--distributed", "explicit", "--coordinator",
                                  f"127.0.0.1:{_free_port()}", "--num-processes", "2",
                                  "--process-id", "1", "--cpu-devices", "2", "--timeout", "3"),
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: distributed: no coordinator answered at 127.0.0.1:")
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - t0 < 60


def test_explicit_mode_needs_its_arguments(config_path, tmp_path):
    proc = subprocess.run(_sciops("fit", str(config_path), "--distributed", "explicit",
                                  "--num-processes", "2"), env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "needs --coordinator, --process-id" in proc.stderr


@pytest.mark.parametrize("env, expected", [
    ({"SLURM_NTASKS": "8", "SLURM_JOB_ID": "1"}, "slurm"),
    ({"SLURM_NTASKS": "1"}, None),
    ({"OMPI_COMM_WORLD_SIZE": "4"}, "mpi"),
    ({"PMI_SIZE": "2"}, "mpi"),
    ({}, None),
])
def test_launcher_detection(env, expected):
    assert detect_launcher(env) == expected


def test_example_batch_scripts_call_the_tested_entry_point():
    root = pathlib.Path(__file__).parents[1] / "examples" / "hpc"
    scripts = sorted(root.glob("*.sbatch"))
    assert len(scripts) >= 3
    for s in scripts:
        text = s.read_text()
        assert "sciops fit" in text and "--distributed" in text, s
        cfg = text.split("sciops fit", 1)[1].split()[0]
        assert (root.parents[1] / cfg).is_file() or cfg.startswith("$"), (s, cfg)
    np.testing.assert_equal(len(scripts), len({s.name for s in scripts}))
