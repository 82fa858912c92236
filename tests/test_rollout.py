"""Mesh rollout: files written, metrics recomputed independently, boundary handling, modes,
horizons beyond the truth, and clear errors for meshes that do not fit the run."""

import csv
import json
import types

import jax
import numpy as np
import pytest

from sciops._errors import ConfigError, DataError
from sciops.data import MeshField, read_mesh_dataset, read_xdmf, write_xdmf
from sciops.eval._mesh_rollout import rollout
from sciops.models.meshformer import FAMILIES, MeshGraphNetConfig
from sciops.pde.flow import NodeType, TransportConfig, generate_transport

CFG = MeshGraphNetConfig(state_fields=("concentration",), output_fields=(), latent=16,
                         message_passing_steps=2, mlp_depth=1, edge_multiple=64)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ro")
    path = root / "transport.h5"
    generate_transport(TransportConfig(n_trajectories=2, n_steps=9, h=0.1, dt=0.04), path,
                       progress=False)
    fam = FAMILIES["meshgraphnet"]
    model = fam.build(CFG, read_mesh_dataset(path), key=jax.random.key(0))
    run = types.SimpleNamespace(config=types.SimpleNamespace(model=CFG), model=model, family=fam)
    return root, path, run


def test_rollout_files_and_metrics(setup, tmp_path):
    root, path, run = setup
    xdmf = root / "transport_xdmf" / "traj_000.xdmf"
    res = rollout(run, xdmf, out_dir=tmp_path, progress=False)
    truth = read_xdmf(xdmf)
    pred = read_xdmf(tmp_path / "traj_000_prediction.xdmf")
    assert list(pred.fields) == ["concentration"] and pred.n_times == truth.n_times
    c_t, c_p = np.asarray(truth.fields["concentration"]), np.asarray(pred.fields["concentration"])
    np.testing.assert_array_equal(c_p[0], c_t[0])
    nt = np.asarray(truth.node_type)
    boundary = nt == NodeType.WALL_BOUNDARY
    np.testing.assert_array_equal(c_p[:, boundary], c_t[:, boundary])  # boundary = truth
    assert np.abs(c_p[1:, ~boundary] - c_t[1:, ~boundary]).max() > 0  # the model did predict
    # metrics recomputed from the written files
    mse = np.mean((c_p[1:] - c_t[1:]) ** 2, axis=(1, 2))
    m = json.loads((tmp_path / "metrics.json").read_text())["trajectories"]["traj_000"]["concentration"]
    np.testing.assert_allclose(m["1step"], np.sqrt(mse[0]), rtol=1e-5)
    np.testing.assert_allclose(m["rollout_all"], np.sqrt(mse.mean()), rtol=1e-5)
    assert "rollout10" not in m and m["steps"] == 8  # only 8 steps of truth
    with open(tmp_path / "rmse_per_step.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8
    np.testing.assert_allclose([float(r["concentration"]) for r in rows], np.sqrt(mse), rtol=1e-5)
    assert (tmp_path / "rmse_vs_step.png").stat().st_size > 1000
    assert len(list(tmp_path.glob("traj_000_snapshot_concentration_step*.png"))) == 3
    assert res["mean"]["concentration"]["rollout_all"] == m["rollout_all"]


def test_teacher_forcing_hold_and_long_horizon(setup, tmp_path):
    root, path, run = setup
    ar = rollout(run, path, out_dir=tmp_path / "ar", progress=False)
    tf = rollout(run, path, mode="teacher-forced", out_dir=tmp_path / "tf", progress=False)
    assert set(ar["trajectories"]) == {"traj_000", "traj_001"}
    for name in ar["trajectories"]:
        a, t = ar["trajectories"][name]["concentration"], tf["trajectories"][name]["concentration"]
        assert a["1step"] == pytest.approx(t["1step"], rel=1e-6)  # identical first step
        assert t["rollout_all"] != a["rollout_all"]
    hold = rollout(run, path, boundary="hold", steps=15, out_dir=tmp_path / "hold", progress=False)
    pred = read_xdmf(tmp_path / "hold" / "traj_001_prediction.xdmf")
    c = np.asarray(pred.fields["concentration"])
    assert c.shape[0] == 16  # beyond the 9 true frames
    boundary = np.asarray(pred.node_type) == NodeType.WALL_BOUNDARY
    np.testing.assert_array_equal(c[:, boundary], np.broadcast_to(c[0, boundary], c[:, boundary].shape))
    assert hold["trajectories"]["traj_001"]["concentration"]["steps"] == 8  # metrics: truth only
    with pytest.raises(ConfigError, match="teacher forcing"):
        rollout(run, path, mode="teacher-forced", steps=20, out_dir=tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match="--mode"):
        rollout(run, path, mode="forced", out_dir=tmp_path / "x", progress=False)


def test_meshes_that_do_not_fit_the_run(setup, tmp_path):
    root, path, run = setup
    m = read_xdmf(root / "transport_xdmf" / "traj_000.xdmf")
    cells = {k: np.asarray(v) for k, v in m.cells.items()}
    base = (np.asarray(m.points), cells)
    write_xdmf(tmp_path / "nofield.xdmf", MeshField(*base, {"velocity": np.asarray(m.fields["concentration"])},
                                                    np.asarray(m.node_type)))
    with pytest.raises(DataError, match="needs field 'concentration'"):
        rollout(run, tmp_path / "nofield.xdmf", out_dir=tmp_path / "o", progress=False)
    two = np.repeat(np.asarray(m.fields["concentration"]), 2, axis=-1)
    write_xdmf(tmp_path / "chan.xdmf", MeshField(*base, {"concentration": two}, np.asarray(m.node_type)))
    with pytest.raises(DataError, match="2 channels"):
        rollout(run, tmp_path / "chan.xdmf", out_dir=tmp_path / "o", progress=False)
    nt = np.asarray(m.node_type).copy()
    nt[0] = NodeType.INFLOW
    write_xdmf(tmp_path / "types.xdmf", MeshField(*base, dict(m.fields), nt))
    with pytest.raises(DataError, match=r"node types \[4\] never occur"):
        rollout(run, tmp_path / "types.xdmf", out_dir=tmp_path / "o", progress=False)
    with pytest.raises(DataError, match="not found"):
        rollout(run, tmp_path / "missing.xdmf", out_dir=tmp_path / "o", progress=False)
