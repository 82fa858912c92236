"""sciops.cli: the `sciops` command (fit, evaluate, rollout, generate, info)."""

import sys


def main(argv=None) -> int:
    """Run `sciops` with the arguments `argv` (default `sys.argv[1:]`) and return its exit
    status: 0 on success, 2 on bad input (one `error:` line on stderr), 130 when interrupted."""
    from ._main import main as _main

    return _main(argv)


def _entry() -> None:  # pragma: no cover - the console script
    import os

    # a line at a time: in a log file (CI, SLURM) stdout's lines stay in order with the
    # progress lines on stderr
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `sciops generate darcy --help | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    sys.exit(code)
