"""What the training loop does besides stepping: callbacks for logging, the NaN/explosion guard,
evaluation, checkpoints and the progress bar.

The loop (`run_loop`) calls ``on_step(step, state, out)`` of each callback, in order, after
every optimizer step. `Monitor` comes first: at every step where anything is logged, evaluated
or saved, it checks the steps since its last check for a non-finite loss or parameter and for a
loss that exploded (`train.divergence_factor` times its running minimum) and raises
`TrainingError` before anything later is written; it then logs their mean loss and remembers
the state as the last good one.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .._errors import TrainingError
from ._distributed import gather, is_primary
from ._state import StepOutput, TrainState

__all__ = ["Callback", "MetricsLog", "Monitor", "Evaluator", "Checkpointer", "ProgressBar",
           "run_loop"]


class Callback:
    """A hook of the training loop (subclass and override what you need)."""

    def on_step(self, step: int, state: TrainState, out: StepOutput) -> None:
        """After optimizer step `step` (counted from 1) produced `state`."""

    def close(self) -> None:
        """When the loop ends, normally or not."""


class MetricsLog:
    """Append-only ``metrics.jsonl``, one JSON record per line, flushed per line (readable while
    the run goes on); written by process 0 only. On resume from step `resume_step` the lines
    after it are dropped, so the log equals an uninterrupted run's."""

    def __init__(self, path: pathlib.Path, resume_step: int | None, tracker=None):
        self.path = path
        self.tracker = tracker  # a sciops.track.Tracker that gets every record too
        self.active = is_primary()
        if not self.active:
            return
        if resume_step is not None and path.exists():
            keep = [ln for ln in path.read_text().splitlines()
                    if ln.strip() and json.loads(ln).get("step", 0) <= resume_step]
            path.write_text("".join(ln + "\n" for ln in keep))
        elif resume_step is None:
            path.write_text("")

    def write(self, record: dict[str, Any]) -> None:
        if self.active:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
            if self.tracker is not None:
                self.tracker.log_record(record)


class Monitor(Callback):
    """Logs the training loss and guards against divergence (see the module docstring).

    **Arguments:**

    - `log`: the metrics log.
    - `every`: the steps at which to check and log (log, evaluation and checkpoint intervals).
    - `last`: the final step (always checked).
    - `batch_size`: global batch size (for the samples/s figure, timed from the end of the
      first step on: the first step compiles).
    - `divergence_factor`: a loss above this many times its running minimum (when that is
      positive) stops the run; `None` disables the check.
    - `loss_min`: the running minimum so far (from the checkpoint when resuming).
    - `state`: the state the loop starts from (the last good state until a check passes).
    """

    def __init__(self, log: MetricsLog, every: Sequence[int], last: int, batch_size: int,
                 divergence_factor: float | None, loss_min: float, state: TrainState,
                 start: int):
        self.log, self.every, self.last = log, [e for e in every if e], last
        self.batch_size, self.factor, self.loss_min = batch_size, divergence_factor, loss_min
        self.good, self.good_step, self.good_min = state, start, loss_min
        self.pending: list[tuple[int, StepOutput]] = []
        self.start = start
        self.t_last, self.step_last = time.perf_counter(), start
        self.postfix: dict[str, str] = {}

    def on_step(self, step, state, out):
        self.pending.append((step, out))
        if step == self.last or any(step % e == 0 for e in self.every):
            self._check_and_log(step, state)
        if step == self.start + 1:  # the first step compiled: time the speed from here on
            self.t_last, self.step_last = time.perf_counter(), step

    def _check(self, records: list[tuple[int, float, dict, bool]]) -> None:
        for s, loss, _aux, fin in records:
            if not (np.isfinite(loss) and fin):
                raise TrainingError(f"loss became {loss} at step {s} (non-finite loss or "
                                    "parameters)")
            if self.factor is not None and self.loss_min > 0 and loss > self.factor * self.loss_min:
                raise TrainingError(f"loss exploded to {loss:.4g} at step {s} (more than "
                                    f"train.divergence_factor = {self.factor:g} times its "
                                    f"running minimum {self.loss_min:.4g})")
            self.loss_min = min(self.loss_min, loss)

    def _check_and_log(self, step: int, state: TrainState) -> None:
        records = [(s, float(loss), {k: float(v) for k, v in aux.items()}, bool(fin))
                   for s, (loss, aux, fin) in
                   ((s, gather((o.loss, o.aux, o.finite))) for s, o in self.pending)]
        self.pending.clear()
        self._check(records)
        now = time.perf_counter()
        rate = (step - self.step_last) * self.batch_size / max(now - self.t_last, 1e-9)
        self.t_last, self.step_last = now, step
        # the mean over the steps since the last line: less noisy than the last batch's loss
        loss = float(np.mean([r[1] for r in records]))
        aux = {k: float(np.mean([r[2][k] for r in records])) for k in records[-1][2]}
        self.log.write({"step": records[-1][0], "split": "train", "loss": loss, **aux,
                        "samples_per_s": rate})
        # three significant digits below 100: a mesh model's 0.4 samples/s is not "0"
        self.postfix = {"loss": f"{loss:.4g}",
                        "samples/s": f"{rate:.0f}" if rate >= 100 else f"{rate:.3g}"}
        self.good, self.good_step, self.good_min = state, step, self.loss_min


class Evaluator(Callback):
    """Evaluates on `sets` every `every` steps (not at the last step: `fit` evaluates then).

    `evaluate(model, dataset, on_batch) -> {metric: mean}` calls ``on_batch(n)`` after each
    batch of `n` samples; each result is logged with its step. With `progress`, each set's
    evaluation reports its progress on stderr (`sciops._progress.Progress`).
    """

    def __init__(self, evaluate: Callable, sets: dict, every: int, last: int, log: MetricsLog,
                 progress: bool = False, desc: str = "eval"):
        self.evaluate, self.sets, self.every, self.last, self.log = evaluate, sets, every, last, log
        self.progress, self.desc = progress, desc

    def __call__(self, step: int, model: Any, sets: dict | None = None) -> dict:
        from .._progress import Progress

        results = {}
        for name, ds in (self.sets if sets is None else sets).items():
            bar = Progress(len(ds), f"{self.desc} {name}", unit="sample",
                                leave=False) if self.progress else None
            try:
                results[name] = self.evaluate(model, ds, None if bar is None else bar.update)
            finally:
                if bar is not None:
                    bar.close()
            self.log.write({"step": step, "split": name, **results[name]})
        return results

    def on_step(self, step, state, out):
        if self.every and step % self.every == 0 and step < self.last:
            self(step, state.model)


class Checkpointer(Callback):
    """Saves a checkpoint every `every` steps (not at the last: `fit` saves then, with metrics).

    `save(state, step, extra)` writes one; `monitor` supplies the running loss minimum at its
    last good state (every checkpoint is of that state), which the checkpoint carries so a
    resumed run guards exactly as an uninterrupted one.
    """

    def __init__(self, save: Callable, every: int, last: int, monitor: Monitor, saved: int):
        self.save, self.every, self.last, self.monitor = save, every, last, monitor
        self.last_saved = saved

    def __call__(self, state: TrainState, step: int, extra: dict | None = None) -> None:
        self.save(state, step, {"loss_min": self.monitor.good_min, **(extra or {})})
        self.last_saved = step

    def on_step(self, step, state, out):
        if self.every and step % self.every == 0 and step < self.last:
            self(state, step)


class ProgressBar(Callback):
    """The training loop's progress on stderr (process 0 only): a bar on a terminal, a line
    every tenth of the run in logs (see `sciops._progress.Progress`), with the monitor's last
    loss and speed and an ETA timed from the steps after the first (which compiles)."""

    def __init__(self, total: int, initial: int, desc: str, monitor: Monitor, **options):
        from .._progress import Progress

        self.monitor = monitor
        self.progress = Progress(total, desc, unit="step", initial=initial, skip=1,
                                 note="the first step compiles", **options)

    def on_step(self, step, state, out):
        if self.monitor.postfix:
            self.progress.set_info(**self.monitor.postfix)
        self.progress.update(1)

    def close(self):
        self.progress.close()


def run_loop(state: TrainState, step_fn: Callable, batches: Iterable, start: int, steps: int,
             callbacks: Sequence[Callback]) -> TrainState:
    """Step from `start` to `steps`, calling every callback after each step; returns the state."""
    step, batches = start, iter(batches)
    try:
        while step < steps:
            state, out = step_fn(state, next(batches))
            step += 1
            for cb in callbacks:
                cb.on_step(step, state, out)
    finally:
        for cb in callbacks:
            cb.close()
    return state
