"""The training driver: one jit-compiled, data-parallel step; evaluation; checkpoints; resume.

`fit(config)` is what `sciops fit` calls. It knows a model family only through its `Family`
record (build, loss, metrics, plot). Batches are sharded over the mesh axis ``data``,
parameters replicated. The run is a pure function of the config and the seed: step ``s`` uses
the batch fixed by ``(seed, epoch, position)`` and the key ``fold_in(key, s)``, so a resumed run
ends with the same metrics as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import yaml

from .._errors import ConfigError, DataError, TrainingError
from .._malloc import tune_malloc
from ..data import Dataset, read_hdf5, shard_batch, write_hdf5
from ..models import Family
from ..models import family as get_family
from ._checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ._config import Config, OptimizerConfig, config_from_dict, config_to_dict
from ._data import DataBundle, prepare_data
from ._distributed import barrier, gather, is_primary, local_copy, process_slice
from ._mesh import field_shardings, make_mesh, replicated
from ._partition import trainable_filter
from ._plots import plot_loss_curve

__all__ = ["fit", "RunResult", "Run", "load_run", "make_optimizer", "evaluate_dataset",
           "run_directory"]

_SAMPLE_FILE = "train_sample.h5"  # a few training samples: enough to rebuild the model's shapes


@dataclasses.dataclass
class RunResult:
    """What `fit` returns: the run folder, the final model and the final test metrics."""

    run_dir: pathlib.Path
    model: Any
    metrics: dict[str, dict[str, float]]
    steps: int


@dataclasses.dataclass
class Run:
    """A finished (or interrupted) run read back from its folder."""

    run_dir: pathlib.Path
    config: Config
    family: Family
    model: Any
    step: int


def make_optimizer(config: OptimizerConfig, steps: int) -> optax.GradientTransformation:
    """AdamW with linear warmup then cosine decay (or constant), after global-norm clipping."""
    if config.schedule == "cosine":
        warm = min(config.warmup_steps, max(steps - 1, 0))
        schedule = optax.warmup_cosine_decay_schedule(
            init_value=0.0 if warm else config.lr, peak_value=config.lr, warmup_steps=warm,
            decay_steps=max(steps, warm + 1), end_value=config.lr * config.final_lr_fraction)
    elif config.warmup_steps:
        schedule = optax.linear_schedule(0.0, config.lr, config.warmup_steps)
    else:
        schedule = optax.constant_schedule(config.lr)
    adam = optax.adamw(schedule, b1=config.b1, b2=config.b2, weight_decay=config.weight_decay)
    if config.clip_norm is None:
        return adam
    return optax.chain(optax.clip_by_global_norm(config.clip_norm), adam)


def run_directory(config: Config, out: str | os.PathLike | None, resume: bool) -> pathlib.Path:
    """The run folder: `out`, or ``runs/<name>`` (``runs/<name>-N`` if that one is taken)."""
    if out is not None:
        path = pathlib.Path(out)
        if not resume and (path / "checkpoints").is_dir() and any((path / "checkpoints").iterdir()):
            raise ConfigError(f"--out: {path} already holds a run; pass --resume to continue it "
                              "or choose another folder")
        return path
    base = pathlib.Path("runs") / config.name
    if jax.process_count() > 1 and not resume:
        # Every process must agree on the folder without racing: no automatic -N suffix.
        return run_directory(config, base, resume)
    if resume:
        if not base.is_dir():
            raise ConfigError(f"--resume: no run folder {base} to resume")
        return base
    path, i = base, 1
    while path.exists() and any(path.iterdir()):
        path = base.with_name(f"{config.name}-{i}")
        i += 1
    return path


def _pad_batch(batch: dict[str, np.ndarray], size: int) -> tuple[dict[str, np.ndarray], int]:
    n = len(next(iter(batch.values())))
    if n == size:
        return batch, n
    idx = np.concatenate([np.arange(n), np.full(size - n, n - 1)])
    return {k: v[idx] for k, v in batch.items()}, n


def evaluate_dataset(family: Family, model_config: Any, model: Any, dataset: Dataset,
                     batch_size: int, mesh=None, metrics_fn: Callable | None = None
                     ) -> dict[str, float]:
    """Mean of the family's per-sample metrics over a whole data set (no sample dropped)."""
    if metrics_fn is None:
        metrics_fn = eqx.filter_jit(lambda m, b: family.metrics(model_config, m, b))
    if mesh is not None:
        n_data = mesh.shape["data"]
        batch_size = max(n_data, (batch_size // n_data) * n_data)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    rows = process_slice(batch_size)
    for batch in dataset.batches(batch_size, seed=None, drop_last=False):
        batch, n = _pad_batch(batch, batch_size)
        if mesh is not None:
            local = {k: v[rows] for k, v in batch.items()}
            batch = shard_batch(local, field_shardings(mesh, {k: (batch_size, *v.shape[1:])
                                                               for k, v in local.items()}))
            with jax.set_mesh(mesh):
                out = gather(metrics_fn(model, batch))
        else:
            out = gather(metrics_fn(model, batch))
        for k, v in out.items():
            v = np.asarray(v)[:n]
            ok = np.isfinite(v)  # per-task metrics mark other tasks' samples with NaN
            sums[k] = sums.get(k, 0.0) + float(v[ok].sum())
            counts[k] = counts.get(k, 0) + int(ok.sum())
    return {k: sums[k] / counts[k] for k in sums if counts[k]}


def _write_sample(train: Dataset, path: pathlib.Path) -> None:
    n = min(len(train), 4)
    write_hdf5(path, train.take(np.arange(n)), {"note": "first training samples, used to "
                                                "rebuild the model's shapes"})


def _check_same_config(run_dir: pathlib.Path, config: Config) -> None:
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    now = config_to_dict(config)
    # A run may resume with more steps, without a progress bar, or on another mesh.
    ignore = {("train", "steps"), ("train", "progress"), ("train", "mesh")}
    diffs = []
    for section in set(saved) | set(now):
        a, b = saved.get(section), now.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            for k in set(a) | set(b):
                if (section, k) not in ignore and a.get(k) != b.get(k):
                    diffs.append(f"{section}.{k}")
        elif a != b:
            diffs.append(section)
    if diffs:
        raise ConfigError(f"--resume: the config differs from the run's config.yaml in "
                          f"{', '.join(sorted(diffs))}")


class _MetricsLog:
    """Append-only `metrics.jsonl`, flushed per line (readable while the run goes on); written
    by process 0 only."""

    def __init__(self, path: pathlib.Path, resume_step: int | None):
        self.path = path
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
        if not self.active:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


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


def fit(config: Config, *, out: str | os.PathLike | None = None, resume: bool = False,
        devices=None) -> RunResult:
    """Train a model as `config` says; write the run folder; return the final metrics.

    **Arguments:**

    - `config`: a validated `Config` (see `load_config`).
    - `out`: the run folder (default ``runs/<name>``).
    - `resume`: continue from the last checkpoint in the run folder.
    - `devices`: the devices of the mesh (default all).

    Also tunes glibc's malloc for the process (`sciops.tune_malloc`: higher mmap/trim
    thresholds and one arena, so XLA's per-step buffers are reused instead of page-faulted in
    again each step).
    """
    tune_malloc()
    tc = config.train
    fam = get_family(config.family)
    run_dir = run_directory(config, out, resume)
    ckpt_dir = run_dir / "checkpoints"
    start_ckpt = latest_checkpoint(ckpt_dir) if resume else None
    if resume and start_ckpt is None:
        raise ConfigError(f"--resume: no complete checkpoint in {ckpt_dir}")
    if resume:
        _check_same_config(run_dir, config)
    mesh = make_mesh(tc.mesh, devices)
    n_data = mesh.shape["data"]
    for k in ("batch_size", "eval_batch_size"):
        if getattr(tc, k) % n_data:
            raise ConfigError(f"train.{k}: {getattr(tc, k)} is not divisible by the {n_data} "
                              "devices of the mesh axis 'data'")

    bundle = prepare_data(config.data, progress=tc.progress)
    if len(bundle.train) < tc.batch_size:
        raise DataError(f"data: the training split has {len(bundle.train)} samples, fewer than "
                        f"train.batch_size = {tc.batch_size}")
    key = jax.random.key(config.seed)
    k_build, k_train = jax.random.split(key)
    try:
        model = fam.build(config.model, bundle.train, key=k_build)
    except DataError as e:  # name the file whose shapes do not fit the model
        raise DataError(f"{config.data.path}: {e}") from None
    if config.transfer is not None:
        model = _source_model(config, model)
    raw_train = bundle.train
    if fam.prepare is not None:
        bundle = _prepared(fam, config.model, bundle)
    spec = trainable_filter(model, config.transfer.trainable if config.transfer else None,
                            base=fam.trainable(model))
    params, static = eqx.partition(model, spec)
    optimizer = make_optimizer(tc.optimizer, tc.steps)
    opt_state = optimizer.init(params)

    rep = replicated(mesh)
    bsh = field_shardings(mesh, {k: (tc.batch_size, *bundle.train.shape(k))
                                 for k in bundle.train.keys()})
    start_step = 0
    if start_ckpt is not None:
        (model_loaded, opt_state), header = load_checkpoint(start_ckpt, (model, opt_state), rep)
        params, static = eqx.partition(model_loaded, spec)
        start_step = int(header["step"])
    elif is_primary():
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config_to_dict(config),
                                                            sort_keys=False))
        _write_sample(raw_train, run_dir / _SAMPLE_FILE)
    log = _MetricsLog(run_dir / "metrics.jsonl", start_step if resume else None)
    barrier("run-folder")

    params = jax.device_put(params, rep)
    opt_state = jax.device_put(opt_state, rep)

    # Frozen arrays (normalisers, tables, connectivity) are jit arguments, not baked constants.
    static = jax.tree.map(lambda x: jax.device_put(x, rep) if eqx.is_array(x) else x, static)

    @eqx.filter_jit
    def train_step(params, static, opt_state, batch, step):
        def loss_fn(p):
            return fam.loss(config.model, eqx.combine(p, static), batch,
                            key=jax.random.fold_in(k_train, step))

        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        finite = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x))
                                      for x in jax.tree.leaves(params)]))
        return params, opt_state, loss, aux, finite

    metrics_fn = eqx.filter_jit(lambda m, b: fam.metrics(config.model, m, b))

    def evaluate_all(model, step, sets):
        results = {}
        for name, ds in sets.items():
            res = evaluate_dataset(fam, config.model, model, ds, tc.eval_batch_size, mesh,
                                   metrics_fn)
            results[name] = res
            log.write({"step": step, "split": name, **res})
        return results

    def checkpoint(params, opt_state, step, extra=None):
        state = (eqx.combine(params, static), opt_state)
        save_checkpoint(ckpt_dir, step, state, {"config": config_to_dict(config),
                                                **(extra or {})}, keep=tc.keep_checkpoints)

    steps_per_epoch = len(bundle.train) // tc.batch_size
    progress = None
    if tc.progress and is_primary():
        from tqdm.auto import tqdm

        progress = tqdm(total=tc.steps, initial=start_step, unit="step", dynamic_ncols=True,
                        mininterval=0.5, file=sys.stderr, desc=config.name)

    rows = process_slice(tc.batch_size)

    def batches_from(step):
        """This process's rows of the global batches from `step` on (fixed by seed, epoch)."""
        epoch, pos = divmod(step, steps_per_epoch)
        while True:
            order = bundle.train.epoch_order(config.seed, epoch)
            for b in range(pos, steps_per_epoch):
                yield bundle.train.take(order[b * tc.batch_size:(b + 1) * tc.batch_size][rows])
            epoch, pos = epoch + 1, 0

    pending: list[tuple[int, Any, Any, Any]] = []
    good = (params, opt_state, start_step)
    last_saved = start_step if start_ckpt is not None else -1
    t_last, step_last = time.perf_counter(), start_step
    step = start_step
    eval_sets = {"val": bundle.val} if bundle.val is not None else bundle.tests

    def flush(step):
        """Check the pending steps for NaN/Inf, log them, update the last good state."""
        nonlocal good, t_last, step_last
        if not pending:
            return
        losses = [(s, *gather((value, a, f))) for s, value, a, f in pending]
        pending.clear()
        for s, loss, _aux, fin in losses:
            if not (np.isfinite(loss) and bool(fin)):
                where = (f"; the last good checkpoint is {latest_checkpoint(ckpt_dir)}"
                         if latest_checkpoint(ckpt_dir) else "")
                raise TrainingError(f"loss became {float(loss)} at step {s} (non-finite loss or "
                                    f"parameters); the run stopped{where}")
        now = time.perf_counter()
        rate = (step - step_last) * tc.batch_size / max(now - t_last, 1e-9)
        t_last, step_last = now, step
        # The logged loss is the mean over the steps since the last log line (less noisy
        # than the last batch's).
        s = losses[-1][0]
        loss = float(np.mean([float(x[1]) for x in losses]))
        aux = {k: float(np.mean([float(x[2][k]) for x in losses])) for k in losses[-1][2]}
        log.write({"step": s, "split": "train", "loss": loss, **aux, "samples_per_s": rate})
        if progress is not None:
            progress.set_postfix(loss=f"{loss:.4g}", samples_s=f"{rate:.0f}")
        good = (params, opt_state, step)

    try:
        data_iter = batches_from(start_step)
        while step < tc.steps:
            batch = shard_batch(next(data_iter), bsh)
            with jax.set_mesh(mesh):  # the mesh context lets layers see the `space` axis
                params, opt_state, loss, aux, finite = train_step(params, static, opt_state,
                                                                  batch, jnp.int32(step))
            step += 1
            pending.append((step, loss, aux, finite))
            if progress is not None:
                progress.update(1)
            if step % tc.log_every == 0 or step == tc.steps:
                flush(step)
            if tc.eval_every and step % tc.eval_every == 0 and step < tc.steps:
                flush(step)
                evaluate_all(eqx.combine(params, static), step, eval_sets)
            if tc.checkpoint_every and step % tc.checkpoint_every == 0 and step < tc.steps:
                flush(step)
                checkpoint(params, opt_state, step)
                last_saved = step
        flush(step)
    except TrainingError:
        gp, go, gs = good
        if gs > max(last_saved, 0):
            checkpoint(gp, go, gs, {"note": "last good state before a non-finite loss"})
        raise
    finally:
        if progress is not None:
            progress.close()

    model = eqx.combine(params, static)
    final = evaluate_all(model, step, {**({"val": bundle.val} if bundle.val else {}),
                                       **bundle.tests})
    if last_saved != step:
        checkpoint(params, opt_state, step, {"metrics": final})
    if is_primary():
        (run_dir / "final_metrics.json").write_text(json.dumps(final, indent=1))
        _plots(fam, config, local_copy(model), bundle, run_dir)
    barrier("run-end")
    return RunResult(run_dir=run_dir, model=local_copy(model), metrics=final, steps=step)


def _prepared(fam: Family, model_config: Any, bundle: DataBundle) -> DataBundle:
    """The family's host-side preprocessing applied to every split."""
    return DataBundle(
        train=fam.prepare(model_config, bundle.train),
        val=None if bundle.val is None else fam.prepare(model_config, bundle.val),
        tests={k: fam.prepare(model_config, v) for k, v in bundle.tests.items()})


def _plots(fam: Family, config: Config, model: Any, bundle, run_dir: pathlib.Path) -> None:
    plot_loss_curve(run_dir / "metrics.jsonl", run_dir / "loss_curve.png")
    if fam.plot is not None:
        for name, ds in bundle.tests.items():
            batch = ds.take(np.arange(min(len(ds), 4)))
            fam.plot(config.model, model, batch, run_dir / f"prediction_{name}.png")


def load_run(run_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None) -> Run:
    """Read a run folder back: its config, family and the model of its last checkpoint."""
    run_dir = pathlib.Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise DataError(f"{run_dir}: not a run folder (no config.yaml)")
    config = config_from_dict(yaml.safe_load(cfg_path.read_text()))
    fam = get_family(config.family)
    sample = read_hdf5(run_dir / _SAMPLE_FILE, lazy=False)
    like = fam.build(config.model, sample, key=jax.random.key(0))
    ckpt = pathlib.Path(checkpoint) if checkpoint else latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None:
        raise DataError(f"{run_dir}: no checkpoint in {run_dir / 'checkpoints'}")
    spec = trainable_filter(like, config.transfer.trainable if config.transfer else None,
                            base=fam.trainable(like))
    opt_like = make_optimizer(config.train.optimizer, config.train.steps).init(
        eqx.filter(like, spec))
    (model, _), header = load_checkpoint(ckpt, (like, opt_like))
    return Run(run_dir=run_dir, config=config, family=fam, model=model,
               step=int(header["step"]))

