"""The benchmark summary: one row per comparison of a family against its peer or baseline.

The rows live in `benchmarks/summary.json` (a list of objects with the keys of `COLUMNS`, each
cell Markdown text), the one source for `sciops bench --summary` and for the table at the top
of docs/benchmarks.md (`markdown_table` renders it; a test keeps the page and the file equal). Each row states the
date, the machine and its load of the run that gave its figures, and the command to rerun it.
"""

from __future__ import annotations

import json
import pathlib

from .._errors import ConfigError

__all__ = ["COLUMNS", "load_summary", "format_table", "markdown_table"]

# key -> column title
COLUMNS = {
    "family": "family",
    "comparison": "ours vs peer / baseline",
    "ratio": "speed or size ratio",
    "ours": "error, ours",
    "peer": "error, peer / baseline",
    "date": "date, machine",
    "command": "command",
    "details": "details",
}


def load_summary(path: str | os.PathLike) -> list[dict]:
    """The rows of a summary file, each checked for the `COLUMNS` keys."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"bench --summary: no summary file {path} (run from a source checkout "
                          "or pass --dir)")
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"bench --summary: {path} line {e.lineno}: not valid JSON ({e.msg})"
                          ) from None
    if not isinstance(rows, list):
        raise ConfigError(f"bench --summary: {path}: expected a list of rows")
    for i, row in enumerate(rows):
        missing = [k for k in COLUMNS if k not in row]
        if missing:
            raise ConfigError(f"bench --summary: {path} row {i}: missing {', '.join(missing)}")
    return rows


def format_table(rows: list[dict], width: int = 100) -> str:
    """Plain text for a terminal: one block per row, the comparison and its figures."""
    lines = []
    for row in map(_plain, rows):
        lines.append(f"{row['family']}: {row['comparison']}")
        lines.append(f"    ratio  {row['ratio']}")
        lines.append(f"    error  ours {row['ours']} | peer/baseline {row['peer']}")
        lines.append(f"    when   {row['date']}")
        lines.append(f"    run    {row['command']}")
    return "\n".join(_clip(line, width) for line in lines)


def _plain(row: dict) -> dict:
    """The row without Markdown emphasis and code marks, for a terminal."""
    return {k: str(v).replace("**", "").replace("`", "") for k, v in row.items()}


def _clip(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def markdown_table(rows: list[dict]) -> str:
    """The summary as the Markdown table of docs/benchmarks.md."""
    out = ["| " + " | ".join(COLUMNS.values()) + " |",
           "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [str(row[k]).replace("|", "\\|") for k in COLUMNS]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)
