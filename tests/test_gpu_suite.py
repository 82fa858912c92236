"""The GPU suite's smoke mode (what CI runs so that benchmarks/gpu_suite.py cannot rot)."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_gpu_suite_smoke_writes_every_row(tmp_path):
    out = tmp_path / "suite.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), "--smoke",
                           "--no-peers", "--repeats", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["mode"] == "smoke" and res["errors"] == {}
    rows = res["rows"]
    assert set(rows) == {"fno_256", "mgn_300k", "attention_300k", "potential_10k"}
    assert rows["fno_256"]["resolution"] == 32 and rows["fno_256"]["sciops"]["seconds"] > 0
    mgn = rows["mgn_300k"]
    assert mgn["nodes"] == 300 and mgn["sciops"]["train_step_s"] > 0
    assert mgn["physicsnemo"] == {"status": "peers off (--no-peers)"}
    assert rows["attention_300k"]["sciops"]["seconds"] > 0
    # 2x2x2 conventional fcc cells of 4 atoms (a = 3.61 A); within 4.5 A of each atom: the
    # shells at a/sqrt(2), a and a*sqrt(3/2) hold 12 + 6 + 24 = 42 neighbours
    pot = rows["potential_10k"]
    assert pot["atoms"] == 32 and pot["edges"] == 32 * 42
    assert pot["sciops"]["energy_forces_s"] > 0
