"""Multi-process training through the `sciops fit` entry point users call, orbax restore onto
another mesh, launcher detection, and a bounded, clear failure when the coordinator is absent."""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml
from _multiprocess import PORT_TAKEN, run_processes

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
              "checkpoint_every": 3, "progress": False, "plots": False,
              "optimizer": {"lr": 0.01}},
}


# A hang guard, not a speed limit: each `sciops fit` here takes ~10-30 s, several times that on
# a loaded 2-core machine.
HANG_S = 600
# Process 0 with devices 0-1 and process 1 with 2-3 run the same per-device programs as one
# process with 4 devices (mesh {data: 4}, the same batches); only the cross-process reduction
# (gloo instead of XLA's in-process all-reduce) may add float32 partial sums in another order,
# ~1 ulp (6e-8) per reduction, carried through 6 Adam steps. The tolerance is the one this test
# has always used, far below what a wrong layout gives (a batch split or averaged differently
# changes the metrics at 1e-3 or more).
CROSS_LAYOUT_RTOL = 1e-6


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("mp")
    raw = {**CONFIG, "data": {**CONFIG["data"], "path": str(d / "darcy16.h5")}}
    path = d / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def four_devices(config_path, tmp_path_factory):
    """The run on one process with 4 devices (mesh {data: 4}), checkpoints at steps 3 and 6:
    the reference of the two-process run and the run the resume test cuts short. Made by `fit`
    in this process, whose 4 virtual devices and XLA flags are those `sciops fit --cpu-devices
    4` sets up in a subprocess."""
    from sciops.train._config import config_from_dict

    raw = yaml.safe_load(config_path.read_text())
    raw["train"]["mesh"] = {"data": 4}
    out = tmp_path_factory.mktemp("four") / "run"
    return out, fit(config_from_dict(raw), out=out).metrics


def _fit_two_processes(config_path, out_root):
    """`sciops fit` as processes 0 and 1 of one run (a new out folder per attempt, see
    `run_processes`). Returns (out folder, [(stdout, stderr)])."""
    def start(port, attempt):
        return [subprocess.Popen(_sciops("fit", str(config_path), "--out",
                                         str(out_root / f"two-{attempt}"), "--distributed",
                                         "explicit", "--coordinator", f"127.0.0.1:{port}",
                                         "--num-processes", "2", "--process-id", str(i),
                                         "--cpu-devices", "2"),
                                 env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for i in range(2)]

    # a generous bound that only guards a hang (the run takes ~10-30 s)
    attempt, outs = run_processes(start, timeout=HANG_S)
    return out_root / f"two-{attempt}", outs


def _env():
    env = dict(os.environ)
    # each process sets its own device count; the other test flags (conftest) carry over
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                                if not f.startswith("--xla_force_host_platform_device_count"))
    return env


def _sciops(*args, **kw):
    return [sys.executable, "-m", "sciops", *args]


def test_two_processes_equal_one_process(config_path, four_devices, tmp_path):
    two_dir, outs = _fit_two_processes(config_path, tmp_path)
    one = json.loads((four_devices[0] / "final_metrics.json").read_text())
    two = json.loads((two_dir / "final_metrics.json").read_text())
    for k in one["test"]:
        assert two["test"][k] == pytest.approx(one["test"][k], rel=CROSS_LAYOUT_RTOL)
    # Only process 0 wrote the log: one line per event, no duplicates.
    lines = (two_dir / "metrics.jsonl").read_text().splitlines()
    steps = [(json.loads(ln)["step"], json.loads(ln)["split"]) for ln in lines]
    assert len(steps) == len(set(steps))
    assert "run folder" in outs[0][0] and "run folder" not in outs[1][0]


def test_resume_on_another_mesh(config_path, four_devices, tmp_path):
    from sciops.train._config import config_from_dict

    full_dir, full_metrics = four_devices
    # Keep the step-3 checkpoint only, as if the run had died after it; resume on 2 devices.
    shutil.copytree(full_dir, tmp_path / "cut")
    shutil.rmtree(tmp_path / "cut" / "checkpoints" / "step_00000006")
    raw = yaml.safe_load(config_path.read_text())
    raw["train"]["mesh"] = {"data": 2}
    resumed = fit(config_from_dict(raw), out=tmp_path / "cut", resume=True)
    for k, v in full_metrics["test"].items():
        assert resumed.metrics["test"][k] == pytest.approx(v, rel=1e-5)


def test_unreachable_coordinator_fails_fast_with_a_clear_error(config_path, tmp_path):
    # A port bound here but not listening: nobody else can take it during the test (a free
    # port could become another run's coordinator), and a connection to it is refused.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        proc = subprocess.run(_sciops("fit", str(config_path), "--out", str(tmp_path / "x"),
                                      "--distributed", "explicit", "--coordinator",
                                      f"127.0.0.1:{port}", "--num-processes", "2",
                                      "--process-id", "1", "--cpu-devices", "2", "--timeout", "3"),
                              env=_env(), capture_output=True, text=True, timeout=HANG_S)
    assert proc.returncode == 2
    # "fails fast": it gives up after its own 3 s (named in the message) rather than JAX's
    # default wait; the subprocess timeout above only guards a hang, not a speed.
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: distributed: no coordinator answered at 127.0.0.1:{port} "
                           "within 3 s"), last
    assert "Traceback" not in proc.stderr


def test_a_taken_coordinator_port_fails_with_the_message_the_retry_looks_for(config_path,
                                                                           tmp_path):
    """`run_processes` retries on PORT_TAKEN: the message JAX gives must contain it."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = subprocess.run(_sciops("fit", str(config_path), "--out", str(tmp_path / "x"),
                                      "--distributed", "explicit", "--coordinator",
                                      f"127.0.0.1:{port}", "--num-processes", "2",
                                      "--process-id", "0", "--cpu-devices", "2", "--timeout", "3"),
                              env=_env(), capture_output=True, text=True, timeout=HANG_S)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert PORT_TAKEN in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"error: distributed: could not join the run at 127.0.0.1:{port}")


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
