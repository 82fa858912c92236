"""The training driver: `fit(config)`, what `sciops fit` calls.

It knows a model family only through its `Family` record. The pieces: the run folder and its
lock (`_run_folder`), a `TrainState` and one jitted step (`_state`), a short loop with
callbacks for the NaN/explosion guard and logging, evaluation, checkpoints and the progress bar
(`_callbacks`). Batches are sharded over the mesh axis ``data``, parameters replicated. The run
is a pure function of the config and the seed: step ``s`` uses the batch fixed by
``(seed, epoch, position)`` and the key ``fold_in(key, s)``, so a resumed run ends with the same
metrics as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import yaml

from .._errors import ConfigError, DataError, TrainingError
from ..data import Dataset, prefetch, shard_batch, write_hdf5
from ..models import Family
from ..models import family as get_family
from ..track import open_trackers
from ._announce import data_line, mesh_line, run_folder_line
from ._callbacks import (
    Callback,
    Checkpointer,
    Evaluator,
    MetricsLog,
    Monitor,
    ProgressBar,
    run_loop,
)
from ._checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from ._config import Config, config_to_dict
from ._data import DataBundle, ensure_generated, prepare_data
from ._distributed import (
    barrier,
    global_batch,
    is_primary,
    local_copy,
    process_slice,
    rows_split_over_processes,
)
from ._evaluation import evaluate_dataset
from ._mesh import field_shardings, make_mesh, replicated
from ._optimizer import make_optimizer
from ._partition import trainable_filter
from ._plots import plot_loss_curve
from ._run import SAMPLE_FILE, RunResult, load_run
from ._run_folder import RunLock, record_run_info, run_directory, write_atomic
from ._state import TrainState, init_state, make_step

__all__ = ["fit"]


@dataclasses.dataclass
class _Setup:
    """What a fit needs before its loop: mesh, data, state and where it starts from."""

    mesh: Any
    bundle: DataBundle
    state: TrainState
    header: dict[str, Any]
    optimizer: Any


def fit(config: Config, *, out: str | os.PathLike | None = None, resume: bool = False,
        devices=None, callbacks: Sequence[Callback] = ()) -> RunResult:
    """Train a model as `config` says; write the run folder; return the final metrics.

    **Arguments:**

    - `config`: a validated `Config` (see `load_config`).
    - `out`: the run folder (default ``runs/<name>``).
    - `resume`: continue from the newest intact checkpoint of the run folder (a corrupt one is
      skipped with a warning and set aside as ``corrupt-step_*``).
    - `devices`: the devices of the mesh (default all).
    - `callbacks`: more `sciops.train.Callback`s, called after the built-in ones (guard and
      logging, evaluation, checkpoints) at every step.

    The run folder is locked for the whole fit (`sciops.train.RunLock`): a second fit into it
    fails with a `ConfigError`. The process-wide allocator is not touched: `sciops fit` tunes
    it (`sciops.tune_malloc`); call that yourself first when training from Python.

    **Raises:** `ConfigError` / `DataError` naming the key or file; `TrainingError` when the
    loss becomes non-finite or explodes (the last good state is checkpointed first).
    """
    fam = get_family(config.family)
    run_dir = run_directory(config.name, out, resume)
    lock = RunLock(run_dir).acquire() if is_primary() else None
    try:
        run_directory(config.name, out, resume)  # again under the lock: no run appeared
        barrier("run-folder-checked")
        setup = _setup(config, fam, run_dir, resume, devices)
        return _train(config, fam, run_dir, setup, resume, callbacks)
    finally:
        if lock is not None:
            lock.release()


def _setup(config: Config, fam: Family, run_dir: pathlib.Path, resume: bool,
           devices) -> _Setup:
    tc = config.train
    mesh = make_mesh(tc.mesh, devices)
    for k in ("batch_size", "eval_batch_size"):
        if getattr(tc, k) % mesh.shape["data"]:
            raise ConfigError(f"train.{k}: {getattr(tc, k)} is not divisible by the "
                              f"{mesh.shape['data']} devices of the mesh axis 'data'")
    if is_primary():  # before the data and the first (compiling) step
        print(run_folder_line(run_dir, resume), mesh_line(mesh, tc.batch_size), sep="\n",
              flush=True)
    # One process generates a missing data set, the others wait for it, then all read it.
    # (Decided by the config alone, so every process takes the same branch to the barrier.)
    if config.data.generate is not None:
        if is_primary():
            ensure_generated(config.data, progress=tc.progress)
        barrier("data-set")
    bundle = prepare_data(config.data, progress=tc.progress)
    if is_primary():
        print(data_line(config.data.path, bundle.train, bundle.val, bundle.tests), flush=True)
    if len(bundle.train) < tc.batch_size:
        raise DataError(f"data: the training split has {len(bundle.train)} samples, fewer than "
                        f"train.batch_size = {tc.batch_size}")
    k_build, k_train = jax.random.split(jax.random.key(config.seed))
    try:
        model = fam.build(config.model, bundle.train, key=k_build)
    except DataError as e:  # name the file whose shapes do not fit the model
        raise DataError(f"{config.data.path}: {e}") from None
    if config.transfer is not None:
        model = _source_model(config, model)
    spec = trainable_filter(model, config.transfer.trainable if config.transfer else None,
                            base=fam.trainable(model))
    optimizer = make_optimizer(tc.optimizer, tc.steps)
    state, header = init_state(model, spec, optimizer, k_train), {}
    if resume:
        _check_same_config(run_dir, config)
        state, header = _restore(run_dir / "checkpoints", state, spec, replicated(mesh))
    elif is_primary():
        _start_run_folder(run_dir, config, bundle.train)
    barrier("run-folder")
    if fam.prepare is not None:
        bundle = DataBundle(
            train=fam.prepare(config.model, bundle.train),
            val=None if bundle.val is None else fam.prepare(config.model, bundle.val),
            tests={k: fam.prepare(config.model, v) for k, v in bundle.tests.items()})
    if mesh.shape.get("space", 1) > 1 and fam.partition is not None:
        # one mesh over the devices of `space`: the training split in the partitioned layout
        # (evaluation runs on the whole meshes, replicated over `space`)
        bundle = dataclasses.replace(bundle, train=fam.partition(config.model, bundle.train,
                                                                 mesh.shape["space"]))
    rep = replicated(mesh)
    state = jax.tree.map(lambda x: jax.device_put(x, rep) if eqx.is_array(x) else x, state)
    return _Setup(mesh=mesh, bundle=bundle, state=state, header=header, optimizer=optimizer)


def _train(config: Config, fam: Family, run_dir: pathlib.Path, setup: _Setup, resume: bool,
           extra: Sequence[Callback]) -> RunResult:
    tc, bundle, mesh = config.train, setup.bundle, setup.mesh
    start = int(setup.state.step)
    if start >= tc.steps and "metrics" in setup.header:  # nothing left to do
        return RunResult(run_dir=run_dir, model=local_copy(setup.state.model),
                         metrics=setup.header["metrics"], steps=start)
    # experiment tracking (sciops.track): every record also goes to TensorBoard/CSV/W&B
    trackers = open_trackers(tc.trackers if is_primary() else (), run_dir, name=config.name,
                             resume_step=start if resume else None)
    log = MetricsLog(run_dir / "metrics.jsonl", start if resume else None, trackers)
    metrics_fn = eqx.filter_jit(lambda m, b: fam.metrics(config.model, m, b))
    evaluator = Evaluator(
        lambda model, ds, on_batch: evaluate_dataset(fam, config.model, model, ds,
                                                     tc.eval_batch_size, mesh, metrics_fn,
                                                     on_batch),
        {"val": bundle.val} if bundle.val is not None else bundle.tests, tc.eval_every,
        tc.steps, log, progress=tc.progress and is_primary(), desc=f"{config.name} eval")
    monitor = Monitor(log, (tc.log_every, tc.eval_every, tc.checkpoint_every), tc.steps,
                      tc.batch_size, tc.divergence_factor,
                      setup.header.get("loss_min", math.inf), setup.state, start)
    ckpt_dir = run_dir / "checkpoints"

    def save(state: TrainState, step: int, extra: dict) -> None:
        save_checkpoint(ckpt_dir, step, (state.model, state.opt_state),
                        {"config": config_to_dict(config), **extra}, keep=tc.keep_checkpoints)

    checkpointer = Checkpointer(save, tc.checkpoint_every, tc.steps, monitor,
                                start if resume else -1)
    callbacks = [monitor, evaluator, checkpointer]
    if tc.progress and is_primary():
        callbacks.append(ProgressBar(tc.steps, start, config.name, monitor))
    callbacks += list(extra)
    step_fn = _on_mesh(make_step(fam, config.model, setup.optimizer, tc.memory_policy), mesh)
    batches = prefetch(_batches(bundle.train, config, mesh, start), config.data.prefetch)
    try:
        state = run_loop(setup.state, step_fn, batches, start, tc.steps, callbacks)
    except TrainingError as e:
        if monitor.good_step > max(checkpointer.last_saved, 0):
            checkpointer(monitor.good, monitor.good_step,
                         {"note": "last good state before the run stopped"})
        where = latest_checkpoint(ckpt_dir)
        trackers.close()
        raise TrainingError(f"{e}; the run stopped" + (f"; the last good checkpoint is {where}"
                                                       if where else "")) from None
    finally:
        batches.close()  # stops the read-ahead thread
    final = evaluator(tc.steps, state.model, {**({"val": bundle.val} if bundle.val else {}),
                                              **bundle.tests})
    if checkpointer.last_saved != tc.steps:
        checkpointer(state, tc.steps, {"metrics": final})
    if is_primary():
        _write_outputs(fam, config, local_copy(state.model), bundle, run_dir, trackers, final)
    trackers.close()
    barrier("run-end")
    return RunResult(run_dir=run_dir, model=local_copy(state.model), metrics=final,
                     steps=tc.steps)


def _write_outputs(fam: Family, config: Config, model: Any, bundle, run_dir: pathlib.Path,
                   trackers, final: dict) -> None:
    """The end of a run on the primary process: final metrics, figures, trackers' records."""
    write_atomic(run_dir / "final_metrics.json", json.dumps(final, indent=1))
    if config.train.plots:
        if config.train.progress:  # seconds of matplotlib that would otherwise pass in silence
            print(f"{config.name}: drawing the figures (loss_curve.png, prediction_*.png)",
                  file=sys.stderr, flush=True)
        _plots(fam, config, model, bundle, run_dir)
    for png in sorted(run_dir.glob("*.png")):
        trackers.log_image(png.stem, png, config.train.steps)
    trackers.log_config(config_to_dict(config), final)


def _on_mesh(step_fn, mesh):
    """The step run with the mesh as context (layers see the `space` axis through it)."""

    def step(state, batch):
        with jax.set_mesh(mesh):
            return step_fn(state, batch)

    return step


def _batches(train: Dataset, config: Config, mesh, step: int):
    """The global batches from `step` on (fixed by seed, epoch), this process's rows, sharded."""
    tc = config.train
    space_axes = {k: int(a["space_axis"]) for k, a in train.field_attrs.items()
                  if "space_axis" in a}
    sharding = field_shardings(mesh, {k: (tc.batch_size, *train.shape(k)) for k in train.keys()},
                               space_axes)
    # when processes share rows (a mesh partitioned over the devices of several processes),
    # every process reads the whole batch and places the blocks of its own devices
    whole = not rows_split_over_processes(mesh)
    rows = slice(None) if whole else process_slice(tc.batch_size)
    per_epoch = len(train) // tc.batch_size
    epoch, pos = divmod(step, per_epoch)
    while True:
        order = train.epoch_order(config.seed, epoch)
        for b in range(pos, per_epoch):
            idx = order[b * tc.batch_size:(b + 1) * tc.batch_size][rows]
            if whole:
                yield global_batch(train.take(idx), sharding)
            else:
                yield shard_batch(train.take(idx), sharding)
        epoch, pos = epoch + 1, 0


def _start_run_folder(run_dir: pathlib.Path, config: Config, train: Dataset) -> None:
    """A new run's files; config.yaml last, so a reader that finds it finds the rest."""
    run_dir.mkdir(parents=True, exist_ok=True)
    n = min(len(train), 4)
    tmp = run_dir / f".{SAMPLE_FILE}.tmp-{os.getpid()}"
    write_hdf5(tmp, train.take(np.arange(n)), {"note": "first training samples, used to "
                                               "rebuild the model's shapes"},
               field_attrs=train.field_attrs)  # units: for the CLI's metrics
    os.replace(tmp, run_dir / SAMPLE_FILE)
    record_run_info(run_dir)
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(config_to_dict(config),
                                                         sort_keys=False))


def _restore(ckpt_dir: pathlib.Path, state: TrainState, spec: Any,
             sharding) -> tuple[TrainState, dict[str, Any]]:
    """The newest intact checkpoint into `state`; corrupt ones are set aside with a warning.
    With none left, `state` itself (step 0): the run was stopped before its first checkpoint."""
    for ckpt in reversed(list_checkpoints(ckpt_dir)):
        try:
            (model, opt_state), header = load_checkpoint(ckpt, (state.model, state.opt_state),
                                                         sharding)
        except DataError as e:
            print(f"warning: {e}; resuming from an older checkpoint", file=sys.stderr)
            if is_primary():
                _set_aside(ckpt)
            continue
        params, frozen = eqx.partition(model, spec)
        return dataclasses.replace(state, params=params, frozen=frozen, opt_state=opt_state,
                                   step=jnp.asarray(header["step"], jnp.int32)), header
    # stopped before its first checkpoint: the same run from the start
    print(f"warning: no intact checkpoint in {ckpt_dir}; resuming from step 0",
          file=sys.stderr)
    return state, {}


def _set_aside(ckpt: pathlib.Path) -> None:
    """Rename a corrupt checkpoint out of the way (kept for inspection, never loaded again)."""
    target, i = ckpt.with_name(f"corrupt-{ckpt.name}"), 1
    while target.exists():  # the same step may go bad again after it is rewritten
        target, i = ckpt.with_name(f"corrupt-{ckpt.name}-{i}"), i + 1
    os.rename(ckpt, target)


def _check_same_config(run_dir: pathlib.Path, config: Config) -> None:
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    now = config_to_dict(config)
    # A run may resume with more steps, without a progress bar, or on another mesh.
    # (remat recomputes the same function: a run may resume with it switched)
    ignore = {("train", "steps"), ("train", "progress"), ("train", "mesh"), ("train", "trackers"),
              ("train", "remat"), ("train", "remat_policy")}
    diffs = []
    for section in set(saved) | set(now):
        a, b = saved.get(section), now.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{section}.{k}" for k in set(a) | set(b)
                      if (section, k) not in ignore and a.get(k) != b.get(k)]
        elif a != b:
            diffs.append(section)
    if diffs:
        raise ConfigError(f"--resume: the config differs from the run's config.yaml in "
                          f"{', '.join(sorted(diffs))}")


def _source_model(config: Config, model: Any) -> Any:
    """The model of `transfer.from_run`, checked against the architecture of this config."""
    source = load_run(config.transfer.from_run)
    if source.family.name != config.family:
        raise ConfigError(f"transfer.from_run: {config.transfer.from_run} is a "
                          f"{source.family.name!r} run, this config trains {config.family!r}")
    a = jax.tree.map(lambda x: (x.shape, x.dtype) if eqx.is_array(x) else None, model)
    b = jax.tree.map(lambda x: (x.shape, x.dtype) if eqx.is_array(x) else None, source.model)
    if jax.tree.structure(a) != jax.tree.structure(b) or jax.tree.leaves(a) != jax.tree.leaves(b):
        raise ConfigError(f"transfer.from_run: the architecture of {config.transfer.from_run} "
                          "does not match this config's model section")
    return source.model


def _plots(fam: Family, config: Config, model: Any, bundle, run_dir: pathlib.Path) -> None:
    plot_loss_curve(run_dir / "metrics.jsonl", run_dir / "loss_curve.png")
    if fam.plot is not None:
        for name, ds in bundle.tests.items():
            batch = ds.take(np.arange(min(len(ds), 4)))
            fam.plot(config.model, model, batch, run_dir / f"prediction_{name}.png")
