"""The benchmark summary: one source (benchmarks/summary.json) for `sciops bench --summary` and
the table at the top of docs/benchmarks.md."""

import json
import pathlib
import re

import pytest

from sciops._errors import ConfigError
from sciops.cli import main
from sciops.cli._bench_summary import COLUMNS, load_summary, markdown_table

ROOT = pathlib.Path(__file__).resolve().parents[1]
SUMMARY = ROOT / "benchmarks" / "summary.json"


def _docs_table() -> str:
    lines = (ROOT / "docs" / "benchmarks.md").read_text().splitlines()
    start = lines.index("## Summary")
    table = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    return "\n".join(table)


def test_docs_table_is_the_summary_file():
    # edit benchmarks/summary.json (or record a run) and paste markdown_table(...) into the page
    assert _docs_table() == markdown_table(load_summary(SUMMARY))


def test_every_family_has_a_row():
    families = {r["family"].split(" ")[0] for r in load_summary(SUMMARY)}
    assert {"FNO", "TFNO", "DeepONet", "Mesh", "Wave", "MLIP", "MeshGraphNet"} <= families


def test_cli_prints_each_row_plain(capsys):
    assert main(["bench", "--summary", "--dir", str(SUMMARY.parent)]) == 0
    out = capsys.readouterr().out
    rows = load_summary(SUMMARY)
    assert out.count("\n    ratio  ") == len(rows)
    assert "**" not in out and "`" not in out
    assert re.search(r"^FNO: sciops vs neuraloperator", out, re.M)


def test_cli_missing_file_is_one_line(tmp_path, capsys):
    assert main(["bench", "--summary", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "summary.json" in err[0]


def test_bad_rows_name_the_row_and_line(tmp_path):
    f = tmp_path / "summary.json"
    f.write_text(json.dumps([{k: "x" for k in COLUMNS}, {"family": "FNO"}]))
    with pytest.raises(ConfigError, match=r"row 1: missing comparison"):
        load_summary(f)
    f.write_text('[\n{"family": "FNO",\n}]')
    with pytest.raises(ConfigError, match=r"line 3"):
        load_summary(f)
