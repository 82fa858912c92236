"""What `sciops` prints while it works (issue #22 part 1): fit's run folder, device mesh and
data set before the first step; the new folder when runs/<name> is taken; an ETA timed from
the steps after compilation; speeds that are not rounded to 0; progress of evaluation; plain
lines (no carriage returns) when stderr is not a terminal."""

import io
import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import optax
import pytest
import yaml

from sciops._progress import EtaEstimator, Progress, format_duration
from sciops.cli import main
from sciops.cli._help import summary
from sciops.eval import evaluate_run
from sciops.pde import problem, problem_names
from sciops.train import Callback, config_from_dict, fit
from sciops.train._callbacks import MetricsLog, Monitor
from sciops.train._state import StepOutput, init_state

ROOT = pathlib.Path(__file__).parents[1]


class FakeClock:
    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


# -- the ETA ---------------------------------------------------------------------------------

def test_eta_counts_only_the_steps_after_compilation():
    clock = FakeClock(1000.0)
    eta = EtaEstimator(total=100, clock=clock)
    assert eta.remaining is None and eta.eta_text() == "ETA after compilation"
    clock.t += 300.0  # the first step compiles for 5 minutes
    eta.update()
    assert eta.compile_s == 300.0
    assert eta.remaining is None and eta.eta_text() == "ETA after the next step"
    for _ in range(9):  # then 9 steps of 2 s
        clock.t += 2.0
        eta.update()
    assert eta.rate == pytest.approx(0.5)
    assert eta.remaining == pytest.approx(90 * 2.0)  # 90 steps left at 2 s, not at 31.8 s
    assert eta.eta_text() == "ETA 3:00"
    # tqdm's estimate (elapsed / done * left) would have said 90 * 318 / 10 s = 47 min 42 s


def test_eta_of_a_resumed_run_and_of_loops_that_do_not_compile():
    clock = FakeClock()
    eta = EtaEstimator(total=60, initial=50, clock=clock)
    clock.t = 40.0  # the first step after the resume compiles again
    eta.update()
    for _ in range(4):
        clock.t += 0.25
        eta.update()
    assert eta.done == 55 and eta.remaining == pytest.approx(5 * 0.25)
    clock = FakeClock()
    eta = EtaEstimator(total=10, skip=0, clock=clock)  # e.g. a numpy solver's samples
    clock.t = 3.0
    eta.update(2)
    assert eta.remaining == pytest.approx(8 * 1.5)


def test_unit_plurals():
    from sciops._progress import _plural

    assert [_plural(u) for u in ("step", "batch", "trajectory", "day", "sample")] == \
        ["steps", "batches", "trajectories", "days", "samples"]


def test_format_duration():
    assert [format_duration(s) for s in (0, 59.4, 61, 3599, 3600, 7325)] == \
        ["0:00", "0:59", "1:01", "59:59", "1:00:00", "2:02:05"]


# -- progress lines and bars -----------------------------------------------------------------

def test_progress_in_a_log_is_lines_at_every_tenth_with_the_eta():
    clock, out = FakeClock(), io.StringIO()
    bar = Progress(20, "darcy", file=out, clock=clock, note="the first step compiles")
    clock.t = 30.0
    bar.update()                     # step 1: compilation
    bar.set_info(loss="0.5")
    for _ in range(19):
        clock.t += 1.0
        bar.update()
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == "darcy: 0/20 steps; the first step compiles"
    assert lines[1] == "darcy: 2/20 steps (10 %), 0:31 elapsed, ETA 0:18, loss=0.5"
    assert lines[-1] == "darcy: 20/20 steps (100 %), 0:49 elapsed, loss=0.5"
    assert len(lines) == 11  # the note and one line per tenth; close adds none


def test_progress_in_a_log_prints_at_least_every_interval():
    clock, out = FakeClock(), io.StringIO()
    bar = Progress(1000, "mgn", file=out, clock=clock, interval=60.0, skip=0)
    for _ in range(30):  # 30 steps of 10 s: 3 % of the run, a line every 60 s
        clock.t += 10.0
        bar.update()
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    assert lines[0] == "mgn: 6/1000 steps (1 %), 1:00 elapsed, ETA 2:45:40"  # 994 x 10 s
    bar.close()
    assert out.getvalue().splitlines()[-1].startswith("mgn: 30/1000 steps (3 %), 5:00 elapsed")


def test_progress_bar_on_a_terminal_shows_our_eta_not_tqdms():
    clock, out = FakeClock(), io.StringIO()
    bar = Progress(10, "darcy", file=out, tty=True, clock=clock)
    assert "ETA after compilation" in out.getvalue()
    clock.t = 100.0
    bar.update()
    for _ in range(4):
        clock.t += 1.0
        bar.update()
    assert bar.bar.postfix == "ETA 0:05"  # 5 steps left at 1 s each (tqdm: 5 x 20.8 s)
    for _ in range(5):
        clock.t += 1.0
        bar.update()
    bar.close()
    text = out.getvalue()
    assert "10/10" in text and "\r" in text
    assert "<" not in text  # tqdm's own remaining time is not drawn


# -- the training monitor's speed ------------------------------------------------------------

def test_monitor_speed_leaves_out_compilation_and_keeps_small_rates(tmp_path, monkeypatch):
    clock = FakeClock(0.0)
    monkeypatch.setattr("sciops.train._callbacks.time.perf_counter", clock)
    log = MetricsLog(tmp_path / "metrics.jsonl", None)
    state = init_state(jnp.zeros(2), True, optax.sgd(0.1), jax.random.key(0))
    monitor = Monitor(log, every=(3,), last=6, batch_size=2, divergence_factor=None,
                      loss_min=float("inf"), state=state, start=0)
    out = StepOutput(loss=jnp.asarray(1.0), aux={}, finite=jnp.asarray(True))
    clock.t = 120.0          # step 1: two minutes of compilation
    monitor.on_step(1, state, out)
    for step in (2, 3):      # then 2.5 s per step of 2 samples: 0.8 samples/s
        clock.t += 2.5
        monitor.on_step(step, state, out)
    assert monitor.postfix == {"loss": "1", "samples/s": "0.8"}
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert record["samples_per_s"] == pytest.approx(0.8)


# -- fit, evaluate and the CLI on a tiny Darcy run -------------------------------------------

def _raw(d: pathlib.Path, **train):
    return {
        "name": "tiny",
        "data": {"path": str(d / "darcy.h5"),
                 "generate": {"problem": "darcy", "n_samples": 24, "resolution": 16},
                 "n_test": 8},
        "model": {"family": "fno", "n_modes": [4, 4], "hidden_channels": 8, "n_layers": 2,
                  "lifting_channels": 8, "projection_channels": 8},
        "train": {"steps": 4, "batch_size": 8, "eval_batch_size": 8, "log_every": 2,
                  "mesh": {"data": 1}, "trackers": [], **train},
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("messages")
    seen = {}

    class FirstStep(Callback):
        def on_step(self, step, state, out):
            if step == 1:
                seen["out"] = sys.stdout.getvalue() if isinstance(sys.stdout, io.StringIO) \
                    else None

    old = sys.stdout
    sys.stdout = io.StringIO()  # what fit printed by the end of its first step
    try:
        fit(config_from_dict(_raw(d, progress=False, plots=False)), out=d / "run",
            callbacks=[FirstStep()])
    finally:
        sys.stdout = old
    return d, seen["out"]


def test_fit_names_folder_mesh_and_data_before_the_first_step(tiny_run):
    d, printed = tiny_run
    lines = printed.splitlines()
    assert lines[0] == f"run folder: {d / 'run'}"
    assert lines[1] == "device mesh: data=1 over 1 cpu device (1 process); batch 8 = 8 per " \
                       "data shard"
    assert lines[2] == f"data: {d / 'darcy.h5'}: 16 train, 8 test samples; fields " \
                       "x (1, 16, 16) [1], y (1, 16, 16) [1]"


def test_evaluate_reports_progress_per_test_set(tiny_run, capsys):
    d, _ = tiny_run
    capsys.readouterr()
    evaluate_run(d / "run", plots=False, progress=True)
    assert "evaluate test: 8/8 samples (100 %)" in capsys.readouterr().err
    evaluate_run(d / "run", plots=False)  # the Python default: quiet
    assert capsys.readouterr().err == ""
    assert main(["evaluate", str(d / "run"), "--no-plots", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("test: ")


def test_an_out_that_holds_a_run_stays_an_error(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("name: tiny\n")
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(_raw(tmp_path, steps=2)))
    assert main(["fit", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "already holds a run" in captured.err
    assert captured.out == ""


def test_fit_log_announces_a_new_folder_and_is_line_based_and_in_order(tmp_path):
    """A second run of a name, as in a SLURM output file: stdout and stderr into one file."""
    (tmp_path / "runs" / "tiny").mkdir(parents=True)
    (tmp_path / "runs" / "tiny" / "config.yaml").write_text("name: tiny\n")  # a run
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(_raw(tmp_path, steps=10, log_every=5)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "sciops", "fit", "cfg.yaml"], cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=300, env=env)
    log = proc.stdout
    assert proc.returncode == 0, log
    assert log.startswith("runs/tiny already holds a run: this run goes to runs/tiny-1 "
                          "(--resume continues runs/tiny; --out DIR or name=NAME choose the "
                          "folder)\nrun folder: runs/tiny-1\ndevice mesh: "), log
    assert (tmp_path / "runs" / "tiny-1" / "config.yaml").is_file()
    assert (tmp_path / "runs" / "tiny" / "config.yaml").read_text() == "name: tiny\n"
    assert "\r" not in log
    order = [log.index(s) for s in ("device mesh: ", "data: ",
                                    "tiny: 0/10 steps; the first step compiles",
                                    "tiny: 1/10 steps (10 %)", "tiny: 10/10 steps (100 %)",
                                    "tiny eval test: 8/8 samples",
                                    "tiny: drawing the figures", "test: h1 = ",
                                    "next:\n  sciops evaluate runs/tiny-1")]
    assert order == sorted(order), log
    assert "samples/s=" in log and "ETA " in log


# -- help ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", problem_names())
def test_problem_summaries_are_whole_sentences(name):
    text = summary(problem(name).config)
    assert 20 < len(text) <= 110 and not text.endswith((":", ",", ";")), text


def test_help_piped_into_head_ends_quietly(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(f"{sys.executable} -m sciops generate darcy --help | head -1",
                          shell=True, capture_output=True, text=True, timeout=120, env=env)
    assert proc.stdout.startswith("usage: sciops generate darcy")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


# -- metrics with units ----------------------------------------------------------------------

def test_metrics_print_with_units_from_the_family_and_the_data(tmp_path):
    from types import SimpleNamespace

    import numpy as np

    from sciops.cli._main import _metric, _run_units
    from sciops.data import write_hdf5

    # relative errors (unit 1) also as a percentage; the family's units (mlip) as given
    fno = _run_units(tmp_path, "fno")
    assert _metric("l2", 0.01743, fno) == "l2 = 0.01743 (1.743 %)"
    assert _metric("forces_mae", 0.0312, _run_units(tmp_path, "mlip")) == \
        "forces_mae = 0.0312 eV/Å"
    # a mesh simulator's errors in the units of its data file's fields
    write_hdf5(tmp_path / "train_sample.h5",
               {"velocity": np.zeros((1, 3, 5, 2)), "pressure": np.zeros((1, 3, 5, 1))},
               field_attrs={"velocity": {"units": "m/s"}, "pressure": {"units": "Pa"}})
    units = _run_units(tmp_path, "meshgraphnet", SimpleNamespace(state_fields=("velocity",)))
    assert _metric("rmse_1step_velocity", 0.0123, units) == "rmse_1step_velocity = 0.0123 m/s"
    assert _metric("rmse_1step_pressure", 0.5, units) == "rmse_1step_pressure = 0.5 Pa"
    assert _metric("rmse_rollout20", 0.0456, units) == "rmse_rollout20 = 0.0456 m/s"
    assert _metric("something_else", 2.0, units) == "something_else = 2"
    # an RMSE of a dimensionless field is not a fraction: no percentage
    write_hdf5(tmp_path / "train_sample.h5", {"concentration": np.zeros((1, 3, 5, 1))},
               field_attrs={"concentration": {"units": "1"}})
    units = _run_units(tmp_path, "meshgraphnet", SimpleNamespace(state_fields=("concentration",)))
    assert _metric("rmse_1step_concentration", 0.009175, units) == \
        "rmse_1step_concentration = 0.009175 (dimensionless)"
    assert _metric("rmse_rollout4", 0.02447, units) == "rmse_rollout4 = 0.02447 (dimensionless)"


def test_fit_keeps_the_data_units_in_the_run_folder(tiny_run):
    from sciops.data import read_hdf5

    d, _ = tiny_run
    sample = read_hdf5(d / "run" / "train_sample.h5")
    assert sample.field_attrs["x"].get("units") == "1"
    sample.close()
