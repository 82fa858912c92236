"""Metrics as a tidy CSV (one row per step, split and metric), for pandas and spreadsheets."""

from __future__ import annotations

import csv
import os
import pathlib
from collections.abc import Mapping
from typing import Any

from ._tracker import Tracker

COLUMNS = ("step", "split", "metric", "value")


class CSVTracker(Tracker):
    """Appends each metrics record to a CSV file with the columns ``step, split, metric,
    value`` (long format: every split and metric in one table, whatever their names), flushed
    per record so the file can be read while the run goes on.

    **Arguments:**

    - `path`: the CSV file (`fit` uses ``<run>/metrics.csv``).
    - `resume_step`: `None` starts a new file; a step keeps the rows up to it (resuming a run).
    """

    def __init__(self, path: str | os.PathLike, *, resume_step: int | None = None):
        self.path = pathlib.Path(path)
        rows = []
        if resume_step is not None and self.path.exists():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def log_record(self, record: Mapping[str, Any]) -> None:
        step, split = int(record["step"]), str(record.get("split", ""))
        with open(self.path, "a", newline="") as f:
            writer = csv.writer(f)
            for metric, value in record.items():
                if metric not in ("step", "split") and isinstance(value, int | float):
                    writer.writerow((step, split, metric, repr(float(value))))
