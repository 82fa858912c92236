"""One mesh partitioned over the devices of two processes (issue #23 part 4): `sciops fit` as
processes 0 and 1 with 2 CPU devices each and the mesh axis `space` across all 4 devices
trains MeshGraphNet to the metrics of a one-device run.

The two-process run (three `sciops fit` processes, ~50 worker-seconds) is marked slow. The
default run covers its parts: the partitioned loss and gradients on 2 and 4 devices equal one
device's, and a run resumes onto a mesh split over 4 devices (tests/test_mesh_partition.py,
one process with 4 virtual devices); two processes train as one
(tests/test_distributed.py::test_two_processes_equal_one_process, `data` across processes);
and the one piece only this layout takes -- processes that share batch rows (`space` across
processes) each read the whole batch and place their own devices' blocks -- is checked in
process below (`rows_split_over_processes`, `process_slice`, `global_batch`)."""

import json
import subprocess
import types

import jax
import numpy as np
import pytest
import yaml
from test_distributed import HANG_S, _env, _fit_two_processes, _sciops

from sciops import ConfigError
from sciops.pde.flow import TransportConfig, generate_transport
from sciops.train import make_mesh
from sciops.train._distributed import global_batch, process_slice, rows_split_over_processes
from sciops.train._mesh import field_shardings

# float32 sums in another order (per-partition sums, gloo reductions across processes): the
# in-process comparison measures 5e-7 on gradients; two Adam steps keep the metrics within this
RTOL = 1e-5


@pytest.fixture(scope="module")
def config_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("mpp")
    generate_transport(TransportConfig(n_trajectories=4, n_steps=6, h=0.08, dt=0.04,
                                       xdmf=False), d / "transport.h5", progress=False)
    raw = {"name": "mpp", "seed": 0,
           "data": {"path": str(d / "transport.h5"), "n_test": 1},
           "model": {"family": "meshgraphnet", "state_fields": ["concentration"], "latent": 8,
                     "message_passing_steps": 2, "mlp_depth": 1, "edge_multiple": 64,
                     "eval_rollout_steps": 2},
           "train": {"steps": 2, "batch_size": 1, "eval_batch_size": 1, "log_every": 1,
                     "eval_every": 100, "checkpoint_every": 2, "progress": False,
                     "mesh": {"data": 1, "space": 4},
                     "optimizer": {"lr": 1.0e-3, "schedule": "constant"}}}
    path = d / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
def test_mesh_partitioned_over_two_processes_equals_one_device(config_path, tmp_path):
    single = subprocess.run(_sciops("fit", str(config_path), "--out", str(tmp_path / "one"),
                                    "--cpu-devices", "1", "train.mesh.space=1"), env=_env(),
                            capture_output=True, text=True, timeout=HANG_S)
    assert single.returncode == 0, single.stderr[-2000:]
    two_dir, _ = _fit_two_processes(config_path, tmp_path)
    one = json.loads((tmp_path / "one" / "final_metrics.json").read_text())
    two = json.loads((two_dir / "final_metrics.json").read_text())
    assert one["test"] and one["test"].keys() == two["test"].keys()
    for k in one["test"]:
        assert two["test"][k] == pytest.approx(one["test"][k], rel=RTOL)
    losses = [json.loads(x)["loss"] for x in (two_dir / "metrics.jsonl").read_text().splitlines()
              if json.loads(x).get("split") == "train"]
    ones = [json.loads(x)["loss"] for x in (tmp_path / "one" / "metrics.jsonl").read_text()
            .splitlines() if json.loads(x).get("split") == "train"]
    assert losses == pytest.approx(ones, rel=RTOL) and len(losses) == 2


def _fake_mesh(owners):
    """A stand-in for a 2-process mesh: `owners[i][j]` is the process of device (data i,
    space j)."""
    devices = np.array([[types.SimpleNamespace(process_index=p) for p in row] for row in owners])
    return types.SimpleNamespace(shape={"data": len(owners), "space": len(owners[0])},
                                 devices=devices)


def test_processes_that_share_batch_rows_read_the_whole_batch(monkeypatch):
    """Which layouts let a process read only its rows: `data` split evenly over the processes
    with each data row on one process; not a mesh partitioned (`space`) across processes."""
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    assert not rows_split_over_processes(_fake_mesh([[0, 0, 1, 1]]))  # this file's layout
    assert rows_split_over_processes(_fake_mesh([[0, 0], [1, 1]]))  # data x space, per process
    assert not rows_split_over_processes(_fake_mesh([[0, 1], [0, 1]]))  # space across processes
    assert rows_split_over_processes(_fake_mesh([[0], [0], [1], [1]]))  # test_distributed's
    assert not rows_split_over_processes(_fake_mesh([[0], [1], [0]]))  # 3 rows, 2 processes
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    assert process_slice(6) == slice(3, 6)
    with pytest.raises(ConfigError, match="train.batch_size: 3 is not divisible by the 2"):
        process_slice(3)


def test_whole_batch_is_placed_block_by_block():
    """`global_batch` on a {data: 2, space: 2} mesh: every device holds its block of the batch
    rows and, for a field split over `space` along its node axis, of the nodes."""
    mesh = make_mesh({"data": 2, "space": 2})
    rng = np.random.default_rng(0)
    batch = {"nodes": rng.normal(size=(4, 3, 8, 1)).astype(np.float32),
             "n_nodes": np.arange(4, dtype=np.int32)}
    shardings = field_shardings(mesh, {k: v.shape for k, v in batch.items()}, {"nodes": 1})
    got = global_batch(batch, shardings)
    for k, v in batch.items():
        assert got[k].sharding == shardings[k]
        np.testing.assert_array_equal(np.asarray(got[k]), v)
        for shard in got[k].addressable_shards:
            np.testing.assert_array_equal(np.asarray(shard.data), v[shard.index])
    blocks = {tuple((s.start, s.stop) for s in sh.index[:3:2]) for sh in got["nodes"].addressable_shards}
    assert blocks == {((0, 2), (0, 4)), ((0, 2), (4, 8)), ((2, 4), (0, 4)), ((2, 4), (4, 8))}
