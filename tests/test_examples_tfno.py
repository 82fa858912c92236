"""The TFNO tutorial notebook is what its builder makes, and executes end to end through the public
driver (load_config -> fit -> load_run / evaluate_run), writing only under a temporary folder: at
smoke sizes in the default run (every cell; the two contraction paths agree, stitching the
identity gives the field back, the runs' files and figures exist), at its own small sizes as a
`slow` test (the loss falls, the TFNOs beat the trivial baselines)."""

import pathlib

import nbformat
import pytest
from _notebooks import at_smoke_size, execute, notebook, number

ROOT = pathlib.Path(__file__).resolve().parents[1]

# 16 + 4 fields at 16^2, width 4, 4x4 modes, 1 Fourier layer, 2 steps, no figures, only the
# MG-TFNO trained (the config's own model: fit, load_run, evaluate_run on the finer grid), one
# rank per format in the identities and the compression plot (the tutorial: 200 + 20 at 32^2,
# width 16, 12x12 modes, 4 layers, 300 steps, dense/Tucker/CP besides the MG-TFNO, figures, two
# and 12 ranks). Compiling the training step, evaluation and checkpointing of each run is most of
# the smoke run's time; the whole-field runs' loop is the same `train` call with other
# overrides. The config's batch of 16 needs 16 training fields; the test's 4 virtual devices
# need a multiple of 4 test fields.
SMOKE = """RESOLUTION = 16
N_TRAIN, N_TEST = 16, 4
STEPS = 2
WIDTH, MODES, LAYERS = 4, 4, 1
MODELS = ()
PLOTS = False"""
SMOKE_EDITS = {"ranks = np.geomspace(0.005, 0.5, 12)": "ranks = np.geomspace(0.005, 0.5, 1)",
               "for rank in (0.1, 0.01):": "for rank in (0.1,):"}


def test_notebook_is_up_to_date():
    committed = nbformat.read(ROOT / "examples" / "tfno.ipynb", as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in notebook("tfno").cells]


def _run(nb, tmp_path):
    # runs where the tests run (configs/ must resolve), but writes only under its temporary folder
    before = sorted(p.name for p in ROOT.iterdir())
    text = execute(nb)
    assert sorted(p.name for p in ROOT.iterdir()) == before
    nbformat.write(nb, tmp_path / "tfno_executed.ipynb")
    # the two contraction paths agree, and stitching the identity gives the field back
    stitch = [float(line.split()[-1]) for line in text.splitlines()
              if line.startswith("stitch(identity) error:")]
    assert len(stitch) == 1 and stitch[0] < 1e-5
    diffs = [float(line.split()[-1]) for line in text.splitlines()
             if line.startswith(("CP ", "Tucker ", "TT "))]
    assert len(diffs) in (3, 6) and max(diffs) < 1e-4
    # the run folder as `sciops fit` writes it, read back by load_run
    files = next(line for line in text.splitlines() if line.startswith("files:"))
    for name in ("config.yaml", "metrics.jsonl", "final_metrics.json", "checkpoints"):
        assert f"'{name}'" in files, (name, files)
    assert "FieldOperator with MGOperator at step" in text
    errors = {name: number(rf"(?m)^{name} +[\d,]+ +(\S+) %", text)
              for name in ("dense", "tucker 0.05", "cp 0.05") if f"\n{name} " in text}
    mean = number(r"(?m)^mean training field +(\S+) %", text)
    persistence = number(r"(?m)^persistence w\(0\) +(\S+) %", text)
    mg = number(r"MG-TFNO \(2x2 patches, 1 level\): [\d,]+ spectral params, test rel. L2 (\S+) %",
                text)
    fine = number(r"MG-TFNO trained at \d+\^2: test rel. L2 \S+ % at \d+\^2, (\S+) % at", text)
    fine_persistence = number(r"at \d+\^2 \(persistence (\S+) %", text)
    losses = (number(r"training loss: (\S+) at the first", text),
              number(r"training loss: \S+ at the first logged step, (\S+) at the last", text))
    # the mean training field of a zero-mean vorticity is close to predicting 0 (rel. L2 ~ 1);
    # w(1) is nearer w(0), on both grids
    assert 80 < mean < 120 and 0 < persistence < 0.8 * mean and 0 < fine_persistence < 0.8 * mean
    return text, files, errors, mean, persistence, mg, fine, losses


def test_notebook_executes_at_smoke_size(tmp_path):
    text, files, errors, _, _, mg, fine, losses = _run(
        at_smoke_size(notebook("tfno"), SMOKE, SMOKE_EDITS), tmp_path)
    assert errors == {} and "png" not in files
    assert sum(line.startswith(("CP ", "Tucker ", "TT ")) for line in text.splitlines()) == 3
    assert all(0 < e < 1e3 for e in (mg, fine, *losses))


@pytest.mark.slow
def test_notebook_executes(tmp_path):
    text, files, errors, mean, persistence, mg, fine, losses = _run(notebook("tfno"), tmp_path)
    assert set(errors) == {"dense", "tucker 0.05", "cp 0.05"}
    assert sum(line.startswith(("CP ", "Tucker ", "TT ")) for line in text.splitlines()) == 6
    # the runs drew their figures, and the notebook shows them (loss curve, test predictions,
    # the predictions on the finer grid)
    assert "'loss_curve.png'" in files and "'prediction_test.png'" in files
    assert "figure: prediction_navier_stokes_fine.png" in text
    assert losses[1] < 0.5 * losses[0], losses
    # every model beats both trivial baselines, the MG-TFNO on the twice finer grid (zero-shot)
    # too (measured: see docs/tutorials/tfno.ipynb)
    assert max(*errors.values(), mg) < min(mean, persistence), (errors, mg, mean, persistence)
    assert fine < min(mean, persistence), (fine, mean, persistence)
