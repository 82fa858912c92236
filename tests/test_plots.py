"""Every figure sciops writes has a title, labelled axes, and a labelled colorbar where it shows a
field; truth and prediction share a colour scale. Checked on the matplotlib `Figure` objects.

All figures go through `sciops.plot` (the last test checks that nothing else in the package
calls matplotlib), so checking its functions checks every figure the package writes.
"""

import json
import pathlib
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from sciops.plot import (  # noqa: E402
    Column,
    metric_label,
    plot_curves,
    plot_fields,
    plot_loss_curve,
    plot_mesh_fields,
    plot_parity,
    pyplot,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]


def check_figure(fig) -> None:
    """The rules of `sciops.plot` on one figure (raises AssertionError naming the panel)."""
    colorbar_axes = {getattr(im.colorbar, "ax", None) for ax in fig.axes
                     for im in ax.images + ax.collections if im.colorbar is not None}
    assert fig._suptitle is not None or any(ax.get_title() for ax in fig.axes), "no title"
    for ax in fig.axes:
        if ax in colorbar_axes:
            assert ax.get_ylabel() or ax.get_xlabel(), "colorbar without a label"
            continue
        name = ax.get_title() or repr(ax)
        assert ax.get_xlabel() and ax.get_ylabel(), f"{name}: axes without labels"
        shows_field = ax.images or any(type(c).__name__ in ("TriMesh", "PolyCollection",
                                                            "QuadMesh") for c in ax.collections)
        if shows_field:
            mappables = ax.images + [c for c in ax.collections if c.colorbar is not None]
            assert mappables and all(m.colorbar is not None for m in mappables), \
                f"{name}: a field without a colorbar"
            assert re.search(r"\[.+\]", ax.get_xlabel()), f"{name}: no unit on the x axis"


def _fields(rng, n=2, s=8):
    truth = rng.normal(size=(n, s, s))
    pred = truth + 0.1 * rng.normal(size=(n, s, s))
    return truth, pred


def test_plot_fields_labels_colorbars_and_shared_scale(tmp_path):
    rng = np.random.default_rng(0)
    truth, pred = _fields(rng)
    fig = plot_fields([Column("coefficient a", rng.normal(size=(2, 8, 8))),
                       Column("truth u", truth, "m", scale="u"),
                       Column("prediction u", pred, "m", scale="u"),
                       Column("error u", pred - truth, "m", diverging=True)],
                      row_labels=["sample 3", "sample 7"], title="Darcy", path=tmp_path / "f.png")
    check_figure(fig)
    assert (tmp_path / "f.png").stat().st_size > 1000
    ims = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(ims) == 8
    # row 0: truth and prediction on one range covering both; the error symmetric about 0
    lo = min(truth[0].min(), pred[0].min())
    hi = max(truth[0].max(), pred[0].max())
    assert ims[1].get_clim() == ims[2].get_clim() == pytest.approx((lo, hi))
    elo, ehi = ims[3].get_clim()
    assert elo == pytest.approx(-ehi) and ehi == pytest.approx(np.abs(pred[0] - truth[0]).max())
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles[0] == "sample 3: coefficient a" and titles[6] == "sample 7: prediction u"
    cbar_labels = [im.colorbar.ax.get_ylabel() for im in ims]
    assert cbar_labels[:4] == ["coefficient a [1]", "truth u [m]", "prediction u [m]",
                               "error u [m]"]


def test_plot_mesh_fields(tmp_path):
    rng = np.random.default_rng(1)
    pts = rng.uniform(size=(30, 2)) * [2.0, 0.5]
    import matplotlib.tri as mtri

    tri = mtri.Triangulation(pts[:, 0], pts[:, 1]).triangles
    truth = rng.normal(size=(1, 30))
    fig = plot_mesh_fields(pts, tri, [Column("truth |u|", truth, "m/s", scale="u"),
                                      Column("prediction |u|", truth * 1.1, "m/s", scale="u"),
                                      Column("error |u|", truth * 0.1, "m/s", diverging=True)],
                           row_labels=["step 5"], title="cylinder flow", axis_unit="m")
    check_figure(fig)
    meshes = [c for ax in fig.axes for c in ax.collections if c.colorbar is not None]
    assert meshes[0].get_clim() == meshes[1].get_clim()
    assert fig.axes[0].get_xlabel() == "x [m]"


def test_curves_loss_curve_and_parity(tmp_path):
    fig = plot_curves({"model": ([1, 2, 3], [0.3, 0.2, 0.1])}, xlabel="step",
                      ylabel="RMSE [m/s]", title="rollout")
    check_figure(fig)
    metrics = tmp_path / "run" / "metrics.jsonl"
    metrics.parent.mkdir()
    metrics.write_text("\n".join(json.dumps(r) for r in [
        {"step": 1, "split": "train", "loss": 1.0}, {"step": 2, "split": "train", "loss": 0.5},
        {"step": 2, "split": "test", "l2": 0.1, "h1": 0.3, "l2/disk": 0.2}]))
    fig = plot_loss_curve(metrics, tmp_path / "loss.png")
    check_figure(fig)
    labels = fig.axes[1].get_legend_handles_labels()[1]
    assert labels == ["test: relative L2 error", "test: relative H1 error"]
    assert fig.axes[0].get_ylabel() == "training loss (normalised units)"
    ref = np.linspace(-1, 1, 50)
    fig = plot_parity(ref, ref + 0.1, quantity="force component", unit="eV/Å", title="forces")
    check_figure(fig)
    assert "MAE 0.1 eV/Å, RMSE 0.1 eV/Å" in fig.axes[0].get_title()
    assert fig.axes[0].get_xlabel() == "reference force component [eV/Å]"
    with pytest.raises(ValueError, match="50 values, predicted 49"):
        plot_parity(ref, ref[:-1], quantity="f", unit="1", title="t")
    # panels of one figure (the mlip family's energy and force parity)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2)
    assert plot_parity(ref, 2 * ref, quantity="energy per atom", unit="eV/atom", title="E",
                       ax=axes[0]) is fig
    plot_parity(ref, ref, quantity="force component", unit="eV/Å", title="F", ax=axes[1])
    check_figure(fig)
    assert "MAE 0.5102 eV/atom" in axes[0].get_title() and "MAE 0 eV/Å" in axes[1].get_title()
    plt.close(fig)


def test_every_family_plot_takes_the_driver_labels():
    """`fit` and `evaluate` call `plot(config, model, batch, path, fields=..., sample_ids=...)`
    on every family that has a plot (the mlip parity plot once lacked the two keywords)."""
    import inspect

    from sciops.models import family, family_names

    for name in family_names():
        try:
            fam = family(name)
        except Exception:  # noqa: BLE001 - a family whose extra is not installed
            continue
        if fam.plot is not None:
            params = inspect.signature(fam.plot).parameters
            assert {"fields", "sample_ids"} <= set(params), name


def test_check_figure_rejects_unlabelled_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.imshow(np.zeros((3, 3)))
    ax.set_title("t")
    with pytest.raises(AssertionError, match="without labels"):
        check_figure(fig)
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    with pytest.raises(AssertionError, match="without a colorbar"):
        check_figure(fig)
    plt.close(fig)


def test_metric_labels():
    assert metric_label("test h1") == "test: relative H1 error"
    assert metric_label("val l2/disk") == "val: relative L2 error (disk)"
    assert metric_label("test rollout_rmse") == "test: rollout rmse"


def test_no_other_module_draws_figures():
    """Figures are made only in sciops/plot (so the checks above cover all of them)."""
    offenders = []
    for path in (ROOT / "sciops").rglob("*.py"):
        if path.parent.name == "plot":
            continue
        text = path.read_text()
        if re.search(r"import matplotlib|\.savefig\(|plt\.subplots|\.imshow\(|\.tripcolor\(", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == [], f"figures drawn outside sciops.plot: {offenders}"


@pytest.fixture
def checked_figures(monkeypatch):
    """Every figure `sciops.plot` saves during the test, after `check_figure` passed on it."""
    import sciops.plot._figures as figures

    seen = []
    original = figures.save

    def save(fig, path, dpi=110):
        check_figure(fig)
        seen.append(fig)
        return original(fig, path, dpi)

    monkeypatch.setattr(figures, "save", save)
    return seen


def test_family_figures_fno(tmp_path, checked_figures):
    import jax

    from sciops.data import read_hdf5
    from sciops.models import family
    from sciops.models.fno import FNOConfig
    from sciops.pde import problem
    from sciops.pde.darcy import DarcyConfig

    problem("darcy").generate(DarcyConfig(n_samples=4, resolution=16), tmp_path / "d.h5",
                              progress=False)
    ds = read_hdf5(tmp_path / "d.h5", lazy=False)
    fam = family("fno")
    cfg = FNOConfig(n_modes=(4, 4), hidden_channels=4, lifting_channels=4, projection_channels=4)
    model = fam.build(cfg, ds, key=jax.random.key(0))
    fam.plot(cfg, model, ds.take(np.arange(2)), tmp_path / "fno.png", fields=ds.field_attrs,
             sample_ids=[5, 9])
    fig = checked_figures[-1]
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles[0].startswith("sample 5 (rel. L2") and "x: coefficient a" in titles[0]
    assert "truth y: solution u" in titles[1]


@pytest.mark.slow
def test_family_figures_wavecnn(tmp_path, checked_figures):
    import jax

    from sciops.data import read_hdf5
    from sciops.models import family
    from sciops.models.wavecnn import WaveCNNConfig
    from sciops.pde import problem
    from sciops.pde.wave import WaveConfig

    problem("wave").generate(WaveConfig(n_samples=2, resolution=16, n_frames=8, frame_dt=0.03,
                                        sponge_width=4), tmp_path / "w.h5", progress=False)
    ws = read_hdf5(tmp_path / "w.h5", lazy=False)
    fam = family("wavecnn")
    cfg = WaveCNNConfig(width=4, depth=1, kernel_size=3, rollout_steps=4)
    model = fam.build(cfg, ws, key=jax.random.key(0))
    fam.plot(cfg, model, ws.take(np.arange(2)), tmp_path / "wave.png", fields=ws.field_attrs)
    assert len(checked_figures) == 1 and (tmp_path / "wave.png").stat().st_size > 1000


@pytest.mark.slow
def test_family_figures_deeponet(tmp_path, checked_figures):
    import jax

    from sciops.data import Dataset
    from sciops.models import family
    from sciops.models.deeponet import DeepONetConfig
    from sciops.pde.darcy_masked import DarcyMaskedConfig, generate_arrays

    ds = Dataset(generate_arrays(DarcyMaskedConfig(n_samples=5, resolution=16)),
                 {"bounds": [[0, 1], [0, 1]], "geometries": ["square", "disk", "triangle",
                                                             "l_shape", "cross"]})
    fam = family("deeponet")
    cfg = DeepONetConfig(input_key="f", mask_key="mask", task_key="geometry",
                         task_names=("square", "disk", "triangle", "l_shape", "cross"),
                         branch_width=8, branch_depth=1, trunk_width=8, trunk_depth=1, latent=4)
    model = fam.build(cfg, ds, key=jax.random.key(0))
    fam.plot(cfg, model, ds.take(np.arange(3)), tmp_path / "don.png", sample_ids=[0, 1, 2])
    assert len(checked_figures) == 1


def test_a_chosen_backend_is_kept():
    """A notebook's inline backend (MPLBACKEND, as ipykernel sets it) survives the first plot,
    so figures show in Jupyter; without a choice, figures go to files only (Agg)."""
    import os
    import subprocess
    import sys

    code = ("import sciops.plot as p, matplotlib; p.plot_curves({'a': ([0, 1], [1, 2])}, "
            "xlabel='x', ylabel='y', title='t'); print(matplotlib.get_backend())")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**env, "MPLBACKEND": "module://matplotlib_inline.backend_inline"},
                            timeout=120)
    default = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=120)
    assert chosen.stdout.split()[-1] == "module://matplotlib_inline.backend_inline", chosen.stderr
    assert default.stdout.split()[-1].lower() == "agg", default.stderr
