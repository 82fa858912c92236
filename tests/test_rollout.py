"""Mesh rollout: files written, metrics recomputed independently, boundary handling, modes,
horizons beyond the truth, and clear errors for meshes that do not fit the run."""

import csv
import json
import pathlib
import types

import jax
import numpy as np
import pytest

from sciops._errors import ConfigError, DataError
from sciops.data import MeshField, read_mesh_dataset, read_xdmf, write_xdmf
from sciops.eval import (
    baseline_one_step,
    baseline_rollout,
    inflow_speed,
    relative_scale,
    rmse_table,
    step_mse,
)
from sciops.eval import mesh_rollout as rollout
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
    # autoregressive from frame 1 (the default start) over the 8 remaining frames
    assert list(pred.fields) == ["concentration"] and pred.n_times == truth.n_times - 1
    c_t = np.asarray(truth.fields["concentration"])[1:]
    c_p = np.asarray(pred.fields["concentration"])
    np.testing.assert_array_equal(c_p[0], c_t[0])
    np.testing.assert_allclose(np.asarray(pred.times), np.asarray(truth.times)[1:], atol=1e-6)
    nt = np.asarray(truth.node_type)
    boundary = nt == NodeType.WALL_BOUNDARY
    np.testing.assert_array_equal(c_p[:, boundary], c_t[:, boundary])  # boundary = truth
    assert np.abs(c_p[1:, ~boundary] - c_t[1:, ~boundary]).max() > 0  # the model did predict
    # metrics recomputed from the written files
    mse = np.mean((c_p[1:] - c_t[1:]) ** 2, axis=(1, 2))
    m = json.loads((tmp_path / "metrics.json").read_text())["trajectories"]["traj_000"]
    mm = m["model"]["concentration"]
    np.testing.assert_allclose(mm["rollout1"], np.sqrt(mse[0]), rtol=1e-5)
    np.testing.assert_allclose(mm["rollout_all"], np.sqrt(mse.mean()), rtol=1e-5)
    assert "rollout50" not in mm and mm["steps"] == 7  # only 7 steps of truth after frame 1
    # persistence from frame 1, recomputed
    full = np.asarray(truth.fields["concentration"], np.float64)
    pers = np.where(boundary[None, :, None], full[2:], full[1])
    np.testing.assert_allclose(m["persistence"]["concentration"]["rollout_all"],
                               np.sqrt(np.mean((pers - full[2:]) ** 2)), rtol=1e-6)
    with open(tmp_path / "rmse_per_step.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 7
    np.testing.assert_allclose([float(r["concentration"]) for r in rows], np.sqrt(mse), rtol=1e-5)
    assert {"concentration_persistence", "concentration_linear_extrapolation"} <= set(rows[0])
    assert (tmp_path / "rmse_vs_step.png").stat().st_size > 1000
    assert len(list(tmp_path.glob("traj_000_snapshot_concentration_step*.png"))) == 3
    from PIL import Image

    with Image.open(tmp_path / "traj_000_rollout.gif") as gif:
        assert gif.n_frames == 8  # frames 1..8 of the rollout
    assert res["mean"]["model"]["concentration"]["rollout_all"] == mm["rollout_all"]
    for method in ("model", "persistence", "linear_extrapolation"):
        assert "concentration  rollout_all" in res["table"]
        assert method in res["table"].splitlines()[0]
    # one mesh block in the XDMF: the temporal collection only, no separate mesh grid
    text = (tmp_path / "traj_000_prediction.xdmf").read_text()
    assert text.count('GridType="Collection"') == 1 and text.count('GridType="Uniform"') == 8
    assert not list(tmp_path.parent.glob(f".{tmp_path.name}.*"))  # no work folder left


def test_teacher_forcing_hold_and_long_horizon(setup, tmp_path):
    root, path, run = setup
    ar = rollout(run, path, out_dir=tmp_path / "ar", progress=False, plots=False)
    tf = rollout(run, path, mode="teacher-forced", start=0, out_dir=tmp_path / "tf",
                 progress=False, plots=False)
    assert set(ar["trajectories"]) == {"traj_000", "traj_001"}
    # plots=False: predictions and metrics, no PNG or GIF (and none listed)
    written = sorted(p.name for p in (tmp_path / "ar").iterdir())
    assert written == ["metrics.json", "rmse_per_step.csv", "traj_000_prediction.h5",
                       "traj_000_prediction.xdmf", "traj_001_prediction.h5",
                       "traj_001_prediction.xdmf"]
    assert sorted(pathlib.Path(f).name for f in ar["files"]) == written
    for name in ar["trajectories"]:
        a = ar["trajectories"][name]["model"]["concentration"]
        t = tf["trajectories"][name]["model"]["concentration"]
        assert a["one_step"] == pytest.approx(t["one_step"], rel=1e-6)  # always all frames
        assert t["steps"] == 8 and a["steps"] == 7
    # the written teacher-forced prediction: frame 0, then one-step predictions of 1..8, whose
    # pooled RMSE is the one_step metric
    truth = read_mesh_dataset(path)
    c_t = np.asarray(truth.take([1])["concentration"][0], np.float64)
    c_p = np.asarray(read_xdmf(tmp_path / "tf" / "traj_001_prediction.xdmf")
                     .fields["concentration"], np.float64)
    np.testing.assert_allclose(tf["trajectories"]["traj_001"]["model"]["concentration"]
                               ["one_step"], np.sqrt(np.mean((c_p[1:] - c_t[1:]) ** 2)),
                               rtol=1e-5)
    hold = rollout(run, path, boundary="hold", steps=15, out_dir=tmp_path / "hold",
                   progress=False, plots=False)
    pred = read_xdmf(tmp_path / "hold" / "traj_001_prediction.xdmf")
    c = np.asarray(pred.fields["concentration"])
    assert c.shape[0] == 16  # beyond the 9 true frames
    boundary = np.asarray(pred.node_type) == NodeType.WALL_BOUNDARY
    np.testing.assert_array_equal(c[:, boundary], np.broadcast_to(c[0, boundary], c[:, boundary].shape))
    assert hold["trajectories"]["traj_001"]["model"]["concentration"]["steps"] == 7  # truth only
    with pytest.raises(ConfigError, match="--mode"):
        rollout(run, path, mode="forced", out_dir=tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match="--start"):
        rollout(run, path, start=-1, out_dir=tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


def test_baselines_analytic_through_rollout(setup, tmp_path):
    """On a field linear in time, c = 0.5 t (1 + x): persistence's one-step RMSE is
    0.5 dt sqrt(mean over nodes of e_i (1 + x_i)^2) (e_i = 1 on evolving nodes), its rollout
    error at step k is k times that; linear extrapolation is exact."""
    root, path, run = setup
    m = read_xdmf(root / "transport_xdmf" / "traj_000.xdmf")
    x = np.asarray(m.points, np.float64)[:, 0]
    times = np.arange(12) * 0.1
    c = (0.5 * times[:, None] * (1 + x[None]))[..., None]
    write_xdmf(tmp_path / "lin.xdmf", MeshField(np.asarray(m.points), dict(m.cells),
                                                {"concentration": c}, np.asarray(m.node_type),
                                                times))
    res = rollout(run, tmp_path / "lin.xdmf", out_dir=tmp_path / "o", progress=False,
                  plots=False, inflow=2.0)
    r = res["trajectories"]["lin"]
    ev = np.asarray(m.node_type) == NodeType.NORMAL
    a = 0.5 * 0.1 * np.sqrt(np.mean(ev * (1 + x) ** 2))
    p = r["persistence"]["concentration"]
    assert p["one_step"] == pytest.approx(a, rel=1e-6)
    assert p["rollout1"] == pytest.approx(a, rel=1e-6)
    k = np.arange(1, 11)  # 10 steps from frame 1
    assert p["rollout_all"] == pytest.approx(a * np.sqrt(np.mean(k**2)), rel=1e-6)
    assert p["steps"] == 10
    lin = r["linear_extrapolation"]["concentration"]
    assert lin["rollout_all"] == pytest.approx(0, abs=1e-12)
    # one-step: exact except the first frame, which has no predecessor (persistence there)
    assert lin["one_step"] == pytest.approx(a / np.sqrt(11), rel=1e-6)
    assert "one_step_rel" not in p  # a scalar that is not pressure has no relative error
    assert r["inflow_speed"] == 2.0


def test_baseline_functions():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(6, 4, 2))
    ev = np.array([True, True, False, True])
    p1 = baseline_one_step(truth, ev, "persistence")
    np.testing.assert_array_equal(p1[:, ev], truth[:-1, ev])
    np.testing.assert_array_equal(p1[:, ~ev], truth[1:, ~ev])
    l1 = baseline_one_step(truth, ev, "linear_extrapolation")
    np.testing.assert_allclose(l1[2, ev], 2 * truth[2, ev] - truth[1, ev])
    pr = baseline_rollout(truth, ev, "persistence", 2, 5)  # past the truth: last frame held
    np.testing.assert_array_equal(pr[:, ev], np.broadcast_to(truth[2, ev], (5, 3, 2)))
    np.testing.assert_array_equal(pr[-1, ~ev], truth[5, ~ev])
    lr = baseline_rollout(truth, ev, "linear_extrapolation", 2, 3)
    np.testing.assert_allclose(lr[2, ev], truth[2, ev] + 3 * (truth[2, ev] - truth[1, ev]))
    # per-channel masks (output fields predicted everywhere)
    where = np.stack([ev, np.ones(4, bool)], 1)
    np.testing.assert_array_equal(baseline_one_step(truth, where, "persistence")[:, 2, 1],
                                  truth[:-1, 2, 1])
    # a sine: persistence's one-step MSE is mean over t of (sin w(t+1) - sin wt)^2
    t = np.arange(40) * 0.1
    s = np.sin(3 * t)[:, None, None]
    mse = step_mse(baseline_one_step(s, np.ones(1, bool), "persistence"), s[1:], ["u"], [1])
    tab = rmse_table(mse["u"], mse["u"][:5], scale=0.5)
    assert tab["one_step"] == pytest.approx(np.sqrt(np.mean(np.diff(np.sin(3 * t)) ** 2)))
    assert tab["one_step_rel"] == pytest.approx(tab["one_step"] / 0.5)
    assert tab["steps"] == 5 and "rollout50" not in tab
    # inflow speed: the INFLOW nodes' mean speed at frame 0; scales for velocity and pressure
    v = np.zeros((2, 3, 2))
    v[0, :2, 0] = [1.0, 3.0]
    assert inflow_speed(v, np.array([4, 4, 0]), 2) == pytest.approx(2.0)
    assert inflow_speed(v, np.array([0, 0, 0]), 2) is None
    assert relative_scale("velocity", 2, 2, 2.0) == 2.0
    assert relative_scale("pressure", 1, 2, 2.0) == 4.0
    with pytest.raises(ValueError, match="baseline"):
        baseline_one_step(truth, ev, "mean")


def test_failed_rollout_leaves_no_folder(setup, tmp_path):
    """A rollout that blows up (NaN weights) raises one clear error and writes nothing."""
    import equinox as eqx

    root, path, run = setup
    bad = eqx.tree_at(lambda m: m.delta_norm.std, run.model,
                      np.full_like(np.asarray(run.model.delta_norm.std), np.nan))
    bad_run = types.SimpleNamespace(config=run.config, model=bad, family=run.family)
    with pytest.raises(DataError, match="NaN/Inf at step 1"):
        rollout(bad_run, path, out_dir=tmp_path / "out", progress=False, plots=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


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
    assert not (tmp_path / "o").exists()  # checked before anything is written


def test_rollout_on_a_users_vtu_series_with_mapping(setup, tmp_path):
    """A VTU series as another code writes it (field named `c`, no node types) rolls out with
    --field and --node-types exactly as the sciops file it was made from."""
    from sciops.data import write_vtu

    root, path, run = setup
    xdmf = root / "transport_xdmf" / "traj_000.xdmf"
    truth = read_xdmf(xdmf)
    series = tmp_path / "series"
    c = np.asarray(truth.fields["concentration"])
    for k in range(truth.n_times):
        write_vtu(series / f"c_{k}.vtu", MeshField(np.asarray(truth.points),
                                                   {t: np.asarray(v) for t, v in truth.cells.items()},
                                                   {"c": c[k:k + 1]}))
    ref = rollout(run, xdmf, out_dir=tmp_path / "ref", progress=False, plots=False)
    got = rollout(run, series, out_dir=tmp_path / "mine", progress=False, plots=False,
                  fields=["concentration=c"], node_types="boundary:walls=xmin+xmax+ymin+ymax")
    (r,), (g,) = ref["trajectories"].values(), got["trajectories"].values()
    for method in ("model", "persistence", "linear_extrapolation"):
        for key in ("one_step", "rollout_all"):
            assert g[method]["concentration"][key] == pytest.approx(
                r[method]["concentration"][key], rel=1e-5)
    with pytest.raises(DataError, match="needs field 'concentration'; the file has c"):
        rollout(run, series, out_dir=tmp_path / "o", progress=False,
                node_types="boundary:walls=xmin+xmax+ymin+ymax")
    assert not (tmp_path / "o").exists()


def test_rollout_cli_field_and_node_type_options(setup, tmp_path, capsys):
    from sciops.cli._main import main

    root, path, run = setup
    code = main(["rollout", str(tmp_path / "norun"), "--data", str(path), "--out",
                 str(tmp_path / "o"), "--node-types", "boundary:walls=left"])
    assert code == 2 and not (tmp_path / "o").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err


def test_rollout_cli_passes_its_switches_to_the_family(tmp_path, monkeypatch, capsys):
    """`--no-plots`, `--no-animation`, `--no-progress` reach the family's rollout hook."""
    import sciops.train
    from sciops.cli._main import main

    seen = {}

    def hook(run, data, **kw):
        seen.update(kw)
        return {"table": "t", "files": []}

    fake = types.SimpleNamespace(family=types.SimpleNamespace(name="f", rollout=hook))
    monkeypatch.setattr(sciops.train, "load_run", lambda path: fake)
    args = ["rollout", str(tmp_path), "--data", "d.h5", "--out", str(tmp_path / "o")]
    assert main(args) == 0
    assert seen["plots"] and seen["animation"] and seen["progress"]
    assert main([*args, "--no-plots", "--no-animation", "--no-progress"]) == 0
    assert not (seen["plots"] or seen["animation"] or seen["progress"])
