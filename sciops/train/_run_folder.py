"""The run folder: where it is, who may write it, and what it records about where it ran.

A run folder (``runs/<name>/`` or ``--out``) has exactly one writer at a time: `fit` holds an
exclusive lock on ``<run>/.lock`` (`RunLock`, an OS file lock released when the process ends,
even by SIGKILL) for as long as it runs, and a second fit into the same folder fails with one
line instead of interleaving `metrics.jsonl` and checkpoints. Readers (`load_run`,
`sciops evaluate`, `sciops rollout`) take no lock and change nothing.

``run.json`` records the working directory the run started in, so that a relative
``data.path`` is read from the same place when the run is evaluated from elsewhere.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
from typing import Any

from .._errors import ConfigError

__all__ = ["RunLock", "run_directory", "free_run_directory", "check_run_name", "write_atomic",
           "record_run_info", "run_info"]

_RUN_INFO = "run.json"
_NAME_OK = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]*$")


def check_run_name(name: str) -> str:
    """`name` if it is a plain folder name (no separators, no leading dot), else a ConfigError:
    a run named ``../../x`` must not write outside ``runs/``."""
    if not isinstance(name, str) or not _NAME_OK.match(name) or name in (".", ".."):
        raise ConfigError(f"name: {name!r} is not a plain folder name (letters, digits and "
                          "_ . + = -, not starting with a dot): runs go to runs/<name>/")
    return name


def _holds_run(path: pathlib.Path) -> bool:
    ckpts = path / "checkpoints"
    return (path / "config.yaml").is_file() or (ckpts.is_dir() and any(ckpts.iterdir()))


def run_directory(name: str, out: str | os.PathLike | None, resume: bool,
                  runs: str | os.PathLike = "runs") -> pathlib.Path:
    """The run folder of a fit: `out`, or ``runs/<name>``.

    **Raises:** `ConfigError` when `out` is a file, when a fresh fit would overwrite a run
    (pass `resume`, or choose another name or `out`), or when `resume` finds no run.
    """
    flag = "--out" if out is not None else "name"
    path = pathlib.Path(out) if out is not None else pathlib.Path(runs) / check_run_name(name)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag}: {path} is a file, not a run folder")
    if resume and not _holds_run(path):
        raise ConfigError(f"--resume: {path} holds no run to resume")
    if not resume and _holds_run(path):
        raise ConfigError(f"{flag}: {path} already holds a run; pass --resume to continue it, "
                          "or choose another " + ("folder" if out is not None else
                                                  "name (name=... on the command line)"))
    return path


def free_run_directory(name: str, runs: str | os.PathLike = "runs") -> pathlib.Path:
    """``runs/<name>``, or the first ``runs/<name>-<k>`` (k = 1, 2, ...) that holds no run.

    What `sciops fit` without `--out` uses for a fresh run, announcing the folder when it is
    not ``runs/<name>``; `fit` itself never picks another folder than the one it is given.
    """
    base = pathlib.Path(runs) / check_run_name(name)
    path, k = base, 0
    while _holds_run(path) or (path.exists() and not path.is_dir()):
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


class RunLock:
    """An exclusive lock on a run folder, held by its one writer (`fit`).

    Uses `fcntl.flock` on ``<run>/.lock``: the operating system drops it when the holder
    exits, however it exits, so a killed fit never leaves a stale lock.

    **Arguments:**

    - `run_dir`: the run folder (created if missing).

    **Raises:** `ConfigError` naming the folder (and the holder's pid) when another process or
    another `fit` in this process holds it.
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.path = pathlib.Path(run_dir) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"{self.path.parent}: another fit is writing this run folder "
                              f"(pid {holder}); wait for it to end or choose another --out"
                              ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def write_atomic(path: pathlib.Path, data: str | bytes) -> None:
    """Write a file under a temporary name and rename it into place (readers never see half)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def record_run_info(run_dir: pathlib.Path) -> None:
    """Write ``run.json``: the working directory relative data paths are read from."""
    write_atomic(run_dir / _RUN_INFO, json.dumps({"cwd": os.getcwd()}, indent=1))


def run_info(run_dir: pathlib.Path) -> dict[str, Any]:
    """``run.json`` of a run folder (``{}`` for runs written before it existed)."""
    try:
        return json.loads((pathlib.Path(run_dir) / _RUN_INFO).read_text())
    except (OSError, ValueError):
        return {}
