"""Progress of long loops (training, evaluation, data generation) on stderr.

On a terminal: a tqdm bar. Anywhere else (CI logs, SLURM output files, pipes, notebooks): plain
lines, one at every tenth of the loop and at least every `interval` seconds, so a log file gets
readable lines instead of thousands of carriage-return updates.

The ETA comes from `EtaEstimator`, which times only the steps after the first `skip` ones: the
first call of a jitted step compiles (seconds to minutes), and a rate that counts it (tqdm's
own) shows an ETA many times too long early in a run (58 min for a 6 min run).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["EtaEstimator", "Progress", "progress", "format_duration"]


def format_duration(seconds: float | int) -> str:
    """``m:ss`` or ``h:mm:ss`` (seconds rounded to the nearest second)."""
    s = max(int(round(seconds)), 0)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class EtaEstimator:
    """Rate and remaining time of a loop, from the steps after its first `skip` ones.

    **Arguments:**

    - `total`: the loop's last step (or item) count.
    - `initial`: where the loop starts (a resumed run's step).
    - `skip`: steps at the start not timed (the first call of a jitted step compiles).
    - `clock`: a monotonic clock in seconds (a fake one in tests).

    The timing starts when step ``initial + skip`` ends; after `n` more steps that took `t`
    seconds the rate is ``n / t`` and the remaining time ``(total - done) * t / n``. Before
    that (`rate` and `remaining` are `None`) nothing is known about the speed.
    """

    def __init__(self, total: int, initial: int = 0, skip: int = 1,
                 clock: Callable[[], float] = time.perf_counter):
        self.total, self.done, self.clock = total, initial, clock
        self.started = clock()
        self.timed_from = initial + skip
        self.t0: float | None = clock() if skip <= 0 else None
        self.n0 = initial
        self.t_last = self.t0

    def update(self, n: int = 1) -> None:
        """`n` more steps have ended (now, by the clock)."""
        self.done += n
        now = self.clock()
        if self.t0 is None:
            if self.done >= self.timed_from:
                self.t0, self.n0 = now, self.done
        self.t_last = now

    @property
    def compile_s(self) -> float | None:
        """Seconds from the start to the end of the untimed steps (`None` before)."""
        return None if self.t0 is None else self.t0 - self.started

    @property
    def rate(self) -> float | None:
        """Timed steps per second (`None` until a step after the untimed ones has ended)."""
        if self.t0 is None or self.done <= self.n0 or self.t_last <= self.t0:
            return None
        return (self.done - self.n0) / (self.t_last - self.t0)

    @property
    def remaining(self) -> float | None:
        """Seconds left at the timed rate (`None` while the rate is unknown)."""
        rate = self.rate
        return None if rate is None else max(self.total - self.done, 0) / rate

    def eta_text(self) -> str:
        """``ETA m:ss``, or what the ETA waits for."""
        left = self.remaining
        if left is not None:
            return f"ETA {format_duration(left)}"
        return "ETA after compilation" if self.t0 is None else "ETA after the next step"


class Progress:
    """A progress report for one loop: a tqdm bar on a terminal, plain lines elsewhere.

    **Arguments:**

    - `total`: the number of steps (or items) of the whole loop.
    - `desc`: what runs (the run's name, ``darcy_masked``, ``evaluate test``, ...).
    - `unit`: what is counted (``step``, ``sample``, ``batch``).
    - `initial`: steps already done (a resumed run).
    - `skip`: untimed steps at the start (see `EtaEstimator`; 0 for loops that do not compile).
    - `file`: where to write (default `sys.stderr` at construction).
    - `tty`: draw a bar (default: when `file` is a terminal).
    - `interval`: in line mode, the longest time between two lines, in seconds.
    - `leave`: keep the finished bar on the terminal (lines are always kept).
    - `note`: in line mode, a first line ``desc: 0/total units; note`` at the start.
    - `clock`: the clock of the ETA (a fake one in tests).
    """

    def __init__(self, total: int, desc: str, *, unit: str = "step", initial: int = 0,
                 skip: int = 1, file: Any = None, tty: bool | None = None,
                 interval: float = 60.0, leave: bool = True, note: str | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.total, self.desc, self.unit, self.interval = total, desc, unit, interval
        self.file = sys.stderr if file is None else file
        self.tty = _isatty(self.file) if tty is None else tty
        self.eta = EtaEstimator(total, initial, skip, clock)
        self.info: dict[str, str] = {}
        self.bar = None
        self._last_line, self._last_tenth = self.eta.started, self._tenth(initial)
        self._printed_at = initial
        if self.tty:
            from tqdm import tqdm

            # tqdm's own ETA ({remaining}) counts compilation: ours goes in the postfix
            self.bar = tqdm(total=total, initial=initial, unit=unit, desc=desc,
                            dynamic_ncols=True, mininterval=0.5, file=self.file, leave=leave,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
                            postfix=self._postfix())
        elif note is not None:  # e.g. before a first step that may take minutes to compile
            print(f"{desc}: {initial}/{total} {_plural(unit)}; {note}", file=self.file,
                  flush=True)

    def _tenth(self, n: int) -> int:
        return 10 * n // self.total if self.total > 0 else 10

    def _postfix(self) -> str:
        return ", ".join([self.eta.eta_text(), *(f"{k}={v}" for k, v in self.info.items())])

    def set_info(self, **info: str) -> None:
        """Values shown beside the count (e.g. ``loss='0.12'``), replaced by name."""
        self.info.update(info)

    def update(self, n: int = 1) -> None:
        """`n` more steps have ended."""
        self.eta.update(n)
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix_str(self._postfix(), refresh=False)
            return
        now, tenth = self.eta.t_last, self._tenth(self.eta.done)
        if tenth > self._last_tenth or now - self._last_line >= self.interval:
            self._line()
            self._last_tenth = tenth

    def line(self) -> str:
        """The current state as one line (what line mode prints)."""
        done, total = self.eta.done, self.total
        pct = f" ({100 * done / total:.0f} %)" if total else ""
        parts = [f"{done}/{total} {_plural(self.unit)}{pct}",
                 f"{format_duration(self.eta.t_last - self.eta.started)} elapsed"]
        if done < total:
            parts.append(self.eta.eta_text())
        parts += [f"{k}={v}" for k, v in self.info.items()]
        return f"{self.desc}: " + ", ".join(parts)

    def _line(self) -> None:
        print(self.line(), file=self.file, flush=True)
        self._last_line, self._printed_at = self.eta.t_last, self.eta.done

    def close(self) -> None:
        """End the bar (or print the last line, if the last step has not been printed)."""
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix(), refresh=False)
            self.bar.close()
            self.bar = None
        elif self.eta.done != self._printed_at:
            self._line()


def _plural(unit: str) -> str:
    if unit.endswith("y") and unit[-2:-1] not in "aeiou":
        return unit[:-1] + "ies"  # trajectory -> trajectories
    return unit + ("es" if unit.endswith(("s", "x", "ch", "sh")) else "s")


def _isatty(file) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):
        return False


class _Iterating(Progress):
    """A `Progress` over an iterable: one step per item, closed when the items end."""

    def __init__(self, iterable: Iterable, total: int, desc: str, **options):
        super().__init__(total, desc, **options)
        self.iterable = iterable

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()


def progress(iterable: Iterable | None = None, *, desc: str, total: int | None = None,
             unit: str = "item", skip: int = 1, **options: Any) -> Progress:
    """The progress of a loop, for the loops of data generation and evaluation.

    **Arguments:**

    - `iterable`: the items to loop over (iterate the returned object); or `None`, and call
      `update(n)` and `close()` of the returned `Progress` yourself.
    - `desc`, `unit`, `skip` and the other options: as `Progress`.
    - `total`: the item count (default ``len(iterable)``).

    **Returns:** a `Progress` (iterable when `iterable` is given).
    """
    if iterable is None:
        return Progress(total if total is not None else 0, desc, unit=unit, skip=skip, **options)
    n = len(iterable) if total is None else total  # type: ignore[arg-type]
    return _Iterating(iterable, n, desc, unit=unit, skip=skip, **options)
