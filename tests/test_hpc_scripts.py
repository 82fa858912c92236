"""The batch scripts in examples/hpc run as written: the launcher script itself trains in two
local processes, forwarding its arguments; every script passes its arguments on and reads the
data set its config names; files are written with the user's umask (0644 under umask 022)."""

import json
import os
import pathlib
import re
import stat
import subprocess
import sys

import numpy as np
import pytest
import yaml
from _multiprocess import run_processes

from sciops.data import write_hdf5

ROOT = pathlib.Path(__file__).resolve().parents[1]
HPC = ROOT / "examples" / "hpc"
SCRIPTS = sorted(HPC.glob("*.sbatch")) + sorted(HPC.glob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_forwards_its_arguments_and_reads_its_configs_data(script):
    text = script.read_text()
    code = "\n".join(x for x in text.splitlines() if not x.lstrip().startswith("#"))
    fit = code[code.index("sciops fit"):]
    command = re.split(r"\n(?!\s)", fit, maxsplit=1)[0]  # up to the end of the continued line
    assert '"$@"' in command, f"{script.name}: sciops fit does not get the script's arguments"
    config = ROOT / command.split()[2].strip("\"'").replace("${CONFIG:-", "").rstrip("}")
    data_path = yaml.safe_load(config.read_text())["data"]["path"]
    # no second copy of the data set under another name (the old sbatch generated
    # data/cache/darcy_64_n1100.h5 while configs/darcy.yaml reads data/cache/darcy_64.h5)
    for named in re.findall(r"data/cache/[\w.-]+", code):
        assert named == data_path, (script.name, named, data_path)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_data_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_hdf5(tmp_path / "d.h5", {"x": np.zeros((2, 3), np.float32)}, {"problem": "t"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "d.h5").stat().st_mode) == mode


def test_any_launcher_two_processes(tmp_path):
    """`examples/hpc/any_launcher.sh` as the docs show it, twice on this machine (2 processes x 2
    CPU devices); the data set does not exist yet, and the extra arguments reach `sciops fit`."""
    config = {
        "name": "launcher", "seed": 1,
        "data": {"path": str(tmp_path / "data" / "darcy16.h5"),
                 "generate": {"problem": "darcy", "n_samples": 24, "resolution": 16},
                 "n_test": 8},
        "model": {"family": "fno", "n_modes": [4, 4], "hidden_channels": 4, "n_layers": 1,
                  "lifting_channels": 8, "projection_channels": 8},
        "train": {"steps": 6, "batch_size": 8, "eval_batch_size": 8, "log_every": 2,
                  "plots": False},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "bin").mkdir()
    shim = tmp_path / "bin" / "sciops"  # the `sciops` of this interpreter and checkout
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -m sciops \"$@\"\n")
    shim.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}",
               CONFIG=str(tmp_path / "cfg.yaml"), RUN_DIR=str(tmp_path / "run"),
               NPROC="2", TIMEOUT="120",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                                if not f.startswith("--xla_force_host_platform_device_count"))

    def start(port, attempt):
        env["COORD"] = f"127.0.0.1:{port}"
        return [subprocess.Popen(["bash", str(HPC / "any_launcher.sh"), "--cpu-devices", "2",
                                  "train.steps=4"], env={**env, "PID": str(i)}, cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 umask=0o022) for i in range(2)]

    run_processes(start, timeout=400)
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().split("\n")
               if x]
    assert max(r["step"] for r in records) == 4  # train.steps=4 reached `sciops fit`
    for path in (tmp_path / "data" / "darcy16.h5", tmp_path / "run" / "metrics.jsonl",
                 tmp_path / "run" / "config.yaml"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
