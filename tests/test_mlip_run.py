"""`sciops.mlip` reads a trained run back: `Calculator.from_run` gives the energies and forces of
the run's own model, `md_from_run` (what `sciops md` runs) integrates it and writes its
trajectory, and a run of another family is refused in one line. The model layer
(`sciops.models.mlip`) no longer reads run folders (issue #21: no upward import left)."""

import pathlib

import ase.io
import numpy as np
import pytest
from ase.build import bulk

import sciops.mlip
import sciops.models.mlip
from sciops import ConfigError, DataError, fit, load_run
from sciops.data import write_hdf5
from sciops.train import config_from_dict

HERE = pathlib.Path(__file__).parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 1-step fit of a tiny potential on 6 copper structures (4-atom cells) from EMT MD (the
    readers' checks need a real run folder, not a trained model)."""
    tmp = tmp_path_factory.mktemp("mlip-run")
    raw = {"name": "cu", "seed": 0,
           "data": {"path": str(tmp / "cu.h5"), "n_test": 2,
                    "generate": {"problem": "atoms", "n_samples": 6, "repeat": 1,
                                 "equilibration_steps": 4, "sample_every": 2,
                                 "temperatures": [300.0]}},
           "model": {"family": "mlip", "cutoff": 3.0, "lmax": 1, "channels": 4, "n_layers": 1,
                     "n_basis": 4, "radial_hidden": 8, "readout_hidden": 8,
                     "max_neighbors": 16, "stress_weight": 0.0},
           "train": {"steps": 1, "batch_size": 2, "eval_batch_size": 2, "progress": False,
                     "plots": False, "trackers": [], "mesh": {"data": 1}}}
    return fit(config_from_dict(raw), out=tmp / "run").run_dir


def _cell():
    a = bulk("Cu", "fcc", a=3.61, cubic=True)
    a.rattle(0.05, seed=3)
    return a


def test_calculator_from_run_is_the_run_model(run_dir):
    run = load_run(run_dir)
    a, b = _cell(), _cell()
    a.calc = sciops.mlip.Calculator.from_run(run_dir)
    b.calc = sciops.models.mlip.Calculator(run.model, run.config.model)
    assert isinstance(a.calc, sciops.models.mlip.Calculator)
    assert a.get_potential_energy() == b.get_potential_energy()
    np.testing.assert_array_equal(a.get_forces(), b.get_forces())
    assert np.abs(a.get_forces()).max() > 0
    assert not hasattr(sciops.models.mlip.Calculator, "from_run")


def test_md_from_run_writes_its_trajectory(run_dir, tmp_path):
    structure = tmp_path / "cu.xyz"
    ase.io.write(structure, _cell().repeat(2), format="extxyz")  # 7.2 Å > cutoff + skin
    s = sciops.mlip.md_from_run(run_dir, structure, out=tmp_path / "traj.xyz", steps=6,
                                record_every=2, temperature_K=100.0)
    assert (s["atoms"], s["steps"], s["ps"]) == (32, 6, 0.006)
    frames = ase.io.read(tmp_path / "traj.xyz", index=":")
    assert [f.info["time_fs"] for f in frames] == [2.0, 4.0, 6.0]
    assert all(np.isfinite(f.positions).all() for f in frames)
    assert np.isfinite(s["max_drift_eV_per_atom"])


def test_a_run_of_another_family_is_refused(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    import _toy_family  # noqa: F401  (registers the toy family)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 2, 4, 4)).astype(np.float32)
    write_hdf5(tmp_path / "toy.h5", {"x": x, "y": np.tanh(x[:, :1])})
    raw = {"name": "toy", "data": {"path": str(tmp_path / "toy.h5"), "n_test": 2},
           "model": {"family": "toy", "width": 4},
           "train": {"steps": 1, "batch_size": 2, "eval_batch_size": 2, "progress": False,
                     "plots": False, "mesh": {"data": 1}}}
    run = fit(config_from_dict(raw), out=tmp_path / "run").run_dir
    structure = tmp_path / "cu.xyz"
    ase.io.write(structure, _cell().repeat(2), format="extxyz")
    with pytest.raises(ConfigError, match=r"run: a 'toy' run, not an mlip run"):
        sciops.mlip.Calculator.from_run(run)
    with pytest.raises(ConfigError, match=r"run: a 'toy' run, not an mlip run"):
        sciops.mlip.md_from_run(run, structure)
    with pytest.raises(DataError, match="not a run folder"):
        sciops.mlip.Calculator.from_run(tmp_path)
