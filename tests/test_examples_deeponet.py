"""The DeepONet tutorial notebook is what its builder makes, and executes through the public
driver (load_config -> fit -> load_run), writing only under a temporary folder: at smoke sizes in
the default run (every cell; zero off the domain, finite errors beside the mean-field baselines,
the transfer runs' files), at its own small sizes as a `slow` test (multi-task training learns all
three tasks and beats the mean training field, as do the Darcy and the fine-tuned models)."""

import math
import pathlib
import re

import nbformat
import pytest
from _notebooks import at_smoke_size, execute, notebook

ROOT = pathlib.Path(__file__).resolve().parents[1]

# 20 samples per data set (16 train + 4 test: the batch of 16, and the test's 4 virtual devices),
# 3 optimizer steps per run, one transfer size, 4 cross test samples, narrow networks, no figures
# (the tutorial: 150 / 200 samples, 300 steps, transfer sizes 10, 20, 40 with 150 steps and 100
# test samples, width 64, figures)
SMOKE = """N_FISHER, FISHER_STEPS = 20, 3
N_DARCY, DARCY_RES, DARCY_STEPS = 20, 16, 3
TRANSFER_SIZES, TRANSFER_STEPS, N_CROSS_TEST = (8,), 3, 4
WIDTH = dict(branch_width=16, branch_depth=2, trunk_width=16, trunk_depth=2, latent=8)
PLOTS = False"""


def test_notebook_is_up_to_date():
    shipped = nbformat.read(ROOT / "examples" / "deeponet.ipynb", as_version=4)
    assert [c.source for c in notebook("deeponet").cells] == [c.source for c in shipped.cells]


def _rows(text, header):
    """The rows of the printed table whose header line starts with `header`: name -> floats."""
    out = {}
    for line in text[text.index(header):].splitlines()[1:]:
        row = re.fullmatch(r"(\S.*?)((?:\s+\d+\.\d+)+)", line.strip())
        if row is None:
            break
        out[row.group(1)] = [float(v) for v in row.group(2).split()]
    return out


def _run(nb):
    # runs where the tests run (configs/ must resolve), but writes only under its temporary folder
    before = sorted(p.name for p in ROOT.iterdir())
    text = execute(nb)
    assert sorted(p.name for p in ROOT.iterdir()) == before
    # predictions off the domain are exactly zero (mask_in_loss), read back by load_run
    assert "largest |prediction| outside the domain: 0.0" in text
    assert "DeepONet at step" in text
    fisher = _rows(text, "test rel. L2           all      fisher")
    darcy = _rows(text, "test rel. L2         all    square")
    transfer = {int(n): {k: float(v) for k, v in
                         re.findall(r"(scratch|fine-tune|mean field) (\d+\.\d+)", line)}
                for n, line in re.findall(r"(?m)^ *(\d+) cross samples, test rel. L2: (.*)$", text)}
    assert set(fisher) == {"DeepONet", "mean field"} and all(len(v) == 4 for v in fisher.values())
    assert set(darcy) == {"branch + loss", "loss only", "none", "mean field"}
    assert all(len(v) == 5 for v in darcy.values())
    assert all(set(t) == {"scratch", "fine-tune", "mean field"} for t in transfer.values())
    assert "trainable in the fine-tuned runs: ('trunk', 'branch.layers[-1]', 'bias')" in text
    values = [*(v for row in [*fisher.values(), *darcy.values()] for v in row),
              *(v for t in transfer.values() for v in t.values())]
    assert all(math.isfinite(v) and v > 0 for v in values), values
    return fisher, darcy, transfer


def test_notebook_executes_at_smoke_size():
    _, _, transfer = _run(at_smoke_size(notebook("deeponet"), SMOKE))
    assert set(transfer) == {8}


@pytest.mark.slow
def test_notebook_executes():
    fisher, darcy, transfer = _run(notebook("deeponet"))
    # multi-task training learns all three tasks (the untrained error is ~1) and beats the mean
    # training field on each; every Darcy variant beats it too
    assert all(v < 0.5 for v in fisher["DeepONet"]), fisher
    assert all(a < b for a, b in zip(fisher["DeepONet"], fisher["mean field"], strict=True)), fisher
    for name in ("branch + loss", "loss only", "none"):
        assert darcy[name][0] < darcy["mean field"][0], darcy
    assert set(transfer) == {10, 20, 40}
    for t in transfer.values():
        assert t["fine-tune"] < t["mean field"], transfer
    # with the fewest cross samples, fine-tuning the trained model beats training from scratch
    assert transfer[10]["fine-tune"] < transfer[10]["scratch"], transfer
