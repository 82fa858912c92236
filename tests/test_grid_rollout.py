"""Grid rollouts: exact errors of a known simulator (the leapfrog extrapolation) on trajectories
polynomial in time, the boundary ring, the baselines reported beside the model, the files
written, and bad input."""

import csv
import json
import pathlib
import types

import equinox as eqx
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sciops._errors import ConfigError, DataError
from sciops.data import Dataset, write_hdf5
from sciops.eval import grid_rollout as rollout
from sciops.models import family
from sciops.models.wavecnn import WaveCNNConfig

S, T = 12, 9


def _shape():
    x = np.linspace(0, 1, S)
    return (1.0 + np.outer(np.cos(2 * x), np.sin(3 * x + 0.5))).astype(np.float32)


def _run(tmp_path, power):
    """A run whose model is exactly u^{n+1} = 2u^n - u^{n-1} (zero network output), and a file
    of trajectories u_t = t^power f(x)."""
    f = _shape()
    t = np.arange(T, dtype=np.float32)
    u = (t[:, None, None] ** power * f)[None].repeat(2, axis=0)
    c = np.full((2, 1, S, S), 1.5, np.float32)
    path = write_hdf5(tmp_path / f"poly{power}.h5", {"u": u, "c": c})
    fam = family("wavecnn")
    cfg = WaveCNNConfig(width=4, depth=1, kernel_size=3)
    model = fam.build(cfg, Dataset({"u": u + np.random.default_rng(0).normal(size=u.shape),
                                    "c": c}), key=jax.random.key(0))
    model = eqx.tree_at(lambda m: m.project.weight, model, jnp.zeros_like(model.project.weight))
    return types.SimpleNamespace(model=model, config=cfg, family=fam), path, f


def test_linear_in_time_is_rolled_out_exactly(tmp_path):
    run, path, _ = _run(tmp_path, 1)
    out = rollout(run, path, out_dir=tmp_path / "lin", boundary="model", progress=False,
                  plots=False)
    assert out["steps"] == T - 2
    assert max(out["rel_l2"]) < 1e-6


@pytest.mark.parametrize("mode", ["autoregressive", "teacher_forced"])
def test_baselines_exact_errors(tmp_path, mode):
    """u_t = t f, rolled from frames (0, f). Persistence predicts the last frame: teacher-forced
    (t - 1) f, error 1/t; autoregressive f, error (t - 1)/t (pooled over steps 2..t:
    sqrt(sum (s-1)^2 / sum s^2)). Linear extrapolation is exact, as the model is."""
    run, path, _ = _run(tmp_path, 1)
    out = rollout(run, path, mode=mode, boundary="model", out_dir=tmp_path / mode,
                  progress=False, plots=False)
    t = np.arange(2, T, dtype=np.float64)
    err = 1 / t if mode == "teacher_forced" else (t - 1) / t
    err2 = np.ones_like(t) if mode == "teacher_forced" else (t - 1) ** 2  # in units of |f|^2
    pooled = np.sqrt(err2.sum() / np.sum(t**2))
    persistence = out["baselines"]["persistence"]
    np.testing.assert_allclose(persistence["rel_l2"], err, rtol=1e-5)
    assert persistence["rel_l2_final"] == pytest.approx(err[-1], rel=1e-5)
    assert persistence["rel_l2_total"] == pytest.approx(pooled, rel=1e-5)
    assert max(out["baselines"]["linear_extrapolation"]["rel_l2"]) < 1e-6
    with open(tmp_path / mode / "errors.csv") as fh:
        rows = list(csv.DictReader(fh))
    np.testing.assert_allclose([float(r["persistence_rel_l2"]) for r in rows], err, rtol=1e-5)


def test_baselines_follow_the_boundary_option(tmp_path):
    """u_t = t^2 f with the true boundary ring: linear extrapolation is what the model computes
    (its network output is zero), so their errors agree step by step; a history-1 model gets
    persistence only."""
    run, path, _ = _run(tmp_path, 2)
    out = rollout(run, path, boundary="truth", out_dir=tmp_path / "a", progress=False,
                  plots=False)
    np.testing.assert_allclose(out["baselines"]["linear_extrapolation"]["rel_l2"],
                               out["rel_l2"], rtol=1e-5)
    cfg = WaveCNNConfig(width=4, depth=1, kernel_size=3, history=1)
    one = run.family.build(cfg, Dataset({"u": np.random.default_rng(0).normal(size=(2, T, S, S)),
                                         "c": np.ones((2, 1, S, S))}), key=jax.random.key(0))
    out = rollout(types.SimpleNamespace(model=one, config=cfg, family=run.family), path,
                  steps=2, out_dir=tmp_path / "b", progress=False, plots=False)
    assert sorted(out["baselines"]) == ["persistence"]


@pytest.mark.parametrize("boundary", ["truth", "model"])
def test_quadratic_in_time_exact_errors(tmp_path, boundary):
    """u_t = t^2 f. Teacher-forced: the extrapolation misses the second difference 2f, so the
    relative error at time t is 2/t^2. Autoregressive from (0, f): the prediction is t f, error
    (t^2 - t)/t^2; with the true boundary ring only the interior nodes carry it."""
    run, path, f = _run(tmp_path, 2)
    t = np.arange(2, T, dtype=np.float64)
    forced = rollout(run, path, mode="teacher_forced", boundary="model",
                     out_dir=tmp_path / "tf", progress=False, plots=False)
    np.testing.assert_allclose(forced["rel_l2"], 2 / t**2, rtol=1e-5)
    free = rollout(run, path, boundary=boundary, out_dir=tmp_path / boundary, progress=False,
                   plots=False)
    inner = np.linalg.norm(f[1:-1, 1:-1]) / np.linalg.norm(f)
    expected = (t**2 - t) / t**2 * (inner if boundary == "truth" else 1.0)
    np.testing.assert_allclose(free["rel_l2"], expected, rtol=1e-5)
    assert free["rel_l2_final"] == pytest.approx(expected[-1], rel=1e-5)
    if boundary == "truth":
        # Held at the last input frame (t = 1, values f) the ring is off by (t^2 - 1) f there.
        hold = rollout(run, path, boundary="hold", mode="teacher-forced",
                       out_dir=tmp_path / "hold", progress=False, plots=False)
        ring = np.sqrt(np.linalg.norm(f) ** 2 - np.linalg.norm(f[1:-1, 1:-1]) ** 2)
        err = np.sqrt((2 * inner * np.linalg.norm(f)) ** 2 + ((t**2 - 1) * ring) ** 2)
        np.testing.assert_allclose(hold["rel_l2"], err / (t**2 * np.linalg.norm(f)), rtol=1e-5)


def test_no_animation_writes_no_gif(tmp_path):
    run, path, _ = _run(tmp_path, 2)
    out = rollout(run, path, steps=3, out_dir=tmp_path / "out", progress=False, animation=False)
    assert "animation" not in out["files"] and pathlib.Path(out["files"]["snapshots"]).is_file()
    assert not (tmp_path / "out" / "rollout.gif").exists()
    # the family hook (what `sciops rollout --no-animation` calls) passes the switch on
    run.family.rollout(run, path, steps=3, out_dir=tmp_path / "hook", progress=False,
                       animation=False)
    assert not (tmp_path / "hook" / "rollout.gif").exists()
    assert (tmp_path / "hook" / "snapshots.png").is_file()
    # ... and `--no-plots`: the frames and errors only
    out = run.family.rollout(run, path, steps=3, out_dir=tmp_path / "bare", progress=False,
                             plots=False)
    assert sorted(out["files"]) == ["csv", "frames", "json"]
    assert sorted(p.name for p in (tmp_path / "bare").iterdir()) == [
        "errors.csv", "errors.json", "rollout.h5"]


def test_files_written(tmp_path):
    run, path, _ = _run(tmp_path, 2)
    out = rollout(run, path, steps=5, out_dir=tmp_path / "out", progress=False)
    files = out["files"]
    with open(files["csv"]) as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["step", "rel_l2", "rmse", "rel_l2_cumulative", "persistence_rel_l2",
                       "linear_extrapolation_rel_l2"] and len(rows) == 6
    assert json.loads(pathlib.Path(files["json"]).read_text())["rel_l2"] == pytest.approx(out["rel_l2"])
    with h5py.File(files["frames"]) as h5:
        assert h5["pred"].shape == (2, 5, S, S) and h5["rel_l2"].shape == (2, 5)
        np.testing.assert_allclose(h5["truth"][0, 0], 4 * _shape(), rtol=1e-6)
    from PIL import Image

    with Image.open(files["animation"]) as gif:
        assert gif.n_frames == 5
    with Image.open(files["snapshots"]) as png:
        assert png.size[0] > 300


def test_bad_input(tmp_path):
    run, path, _ = _run(tmp_path, 1)
    with pytest.raises(ConfigError, match=r"steps: expected an integer in \[1, 7\]"):
        rollout(run, path, steps=8, out_dir=tmp_path, progress=False)
    with pytest.raises(ConfigError, match="mode"):
        rollout(run, path, mode="forced", out_dir=tmp_path, progress=False)
    short = write_hdf5(tmp_path / "short.h5", {"u": np.zeros((1, 2, S, S), np.float32),
                                               "c": np.ones((1, 1, S, S), np.float32)})
    with pytest.raises(DataError, match="has 2 frames, fewer than model.history"):
        rollout(run, short, out_dir=tmp_path, progress=False)
    not_grid = types.SimpleNamespace(model=object(), config=None, family=run.family)
    with pytest.raises(ConfigError, match="not a grid simulator"):
        rollout(not_grid, path, out_dir=tmp_path, progress=False)
