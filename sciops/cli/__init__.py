"""sciops.cli: the `sciops` command (fit, evaluate, rollout, generate, info)."""

import sys


def main(argv=None) -> int:
    from ._main import main as _main

    return _main(argv)


def _entry() -> None:  # pragma: no cover - the console script
    sys.exit(main())
