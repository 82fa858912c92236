"""sciops.cli: the `sciops` command (fit, evaluate, rollout, generate, info)."""

import sys


def main(argv=None) -> int:
    """Run `sciops` with the arguments `argv` (default `sys.argv[1:]`) and return its exit
    status: 0 on success, 2 on bad input (one `error:` line on stderr), 130 when interrupted."""
    from ._main import main as _main

    return _main(argv)


def _entry() -> None:  # pragma: no cover - the console script
    sys.exit(main())
