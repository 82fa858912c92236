"""Kill a fit at many random moments, with a reader polling its run folder, and resume it.

    python benchmarks/fault_injection.py --kills 24 --seed 0

A small family (registered here with the public `sciops.models.register_family`: the contract
of docs/adding-a-family.md) trains in a child process with a checkpoint every 2 steps, keeping
2 (so every checkpoint also prunes one). The parent kills the child with SIGKILL, either after
a random delay or from inside the child at a random call of a checkpoint write's steps (orbax
writing the state, the header's fsync, the rename into place, the pruning of an old
checkpoint), then resumes it with ``--resume``. Some kills are followed by flipping one byte of
the newest checkpoint, which the resume must refuse (checksums) and fall back from. A reader
process calls `sciops.train.load_run` on the folder the whole time.

Checks, all printed as one tally:

- the writer only ever ends by our SIGKILL or by finishing (never an error caused by the
  reader or by a leftover of an earlier kill);
- every resume restarts from an intact checkpoint (a corrupted one is refused and set aside);
- the reader gets a model or a one-line `DataError` (no checkpoint yet, or a corrupt one
  refused by its checksums), never another error, and every model it loads is finite;
- the final model, metrics and `metrics.jsonl` equal those of an uninterrupted run, bit for bit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve()
STEPS = 200
PHASES = ("orbax", "fsync", "rename", "prune")


# -- the family: a per-pixel two-layer network on (channels, h, w) fields, with a frozen
# -- normaliser; everything through the public API.

def _register() -> None:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from sciops.data import Normalizer, fit_normalizer
    from sciops.models import Family, family_names, register_family

    if "fi_toy" in family_names():
        return

    @dataclasses.dataclass(frozen=True)
    class Config:
        width: int = 16

    class Net(eqx.Module):
        norm: Normalizer
        first: eqx.nn.Linear
        second: eqx.nn.Linear

        def __call__(self, x):
            h = self.norm.encode(x)
            h = jnp.moveaxis(h, 0, -1)
            y = jax.vmap(jax.vmap(lambda v: self.second(jnp.tanh(self.first(v)))))(h)
            return jnp.moveaxis(y, -1, 0)

    def build(config, train, *, key):
        k1, k2 = jax.random.split(key)
        c_in, c_out = train.shape("x")[0], train.shape("y")[0]
        return Net(fit_normalizer(train, "x"), eqx.nn.Linear(c_in, config.width, key=k1),
                   eqx.nn.Linear(config.width, c_out, key=k2))

    def rel_l2(model, batch):
        pred = jax.vmap(model)(batch["x"])
        err = jnp.sqrt(jnp.sum((pred - batch["y"]) ** 2, axis=(1, 2, 3)))
        return err / jnp.sqrt(jnp.sum(batch["y"] ** 2, axis=(1, 2, 3)))

    def loss(config, model, batch, *, key):
        e = rel_l2(model, batch)
        return jnp.mean(e), {"rel_l2": jnp.mean(e)}

    register_family(Family("fi_toy", Config, build, loss,
                           lambda config, model, batch: {"l2": rel_l2(model, batch)}))


def _config(folder: pathlib.Path) -> dict:
    return {"name": "fault", "seed": 5,
            "data": {"path": str(folder / "data.h5"), "n_test": 16},
            "model": {"family": "fi_toy", "width": 16},
            "train": {"steps": STEPS, "batch_size": 8, "eval_batch_size": 16, "log_every": 1,
                      "eval_every": 10, "checkpoint_every": 2, "keep_checkpoints": 2,
                      "progress": False, "mesh": {"data": 1},
                      "optimizer": {"lr": 1e-2, "warmup_steps": 2}}}


# -- child processes --------------------------------------------------------------------------

def _arm(phase: str, count: int) -> None:
    """SIGKILL this process at the `count`-th call of a checkpoint write's `phase`."""
    import shutil

    calls = {"n": 0}

    def killer(real):
        def wrapped(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == count:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return wrapped

    if phase == "orbax":
        import orbax.checkpoint as ocp

        ocp.StandardCheckpointer.wait_until_finished = killer(
            ocp.StandardCheckpointer.wait_until_finished)
    elif phase == "fsync":
        os.fsync = killer(os.fsync)
    elif phase == "rename":
        os.rename = killer(os.rename)
    elif phase == "prune":
        shutil.rmtree = killer(shutil.rmtree)


def _child_fit(folder: pathlib.Path, out: pathlib.Path, resume: bool, phase: str | None,
               count: int) -> None:
    _register()
    from sciops.train import config_from_dict, fit

    if phase:
        _arm(phase, count)
    result = fit(config_from_dict(_config(folder)), out=out, resume=resume)
    (out / "done.json").write_text(json.dumps(result.metrics))


def _child_reader(out: pathlib.Path, stop: pathlib.Path, tally: pathlib.Path) -> None:
    _register()
    import equinox as eqx
    import jax
    import numpy as np

    from sciops import DataError
    from sciops.train import load_run

    counts = {"loaded": 0, "one_line_errors": 0, "corrupt_refused": 0, "other_errors": 0,
              "non_finite": 0, "examples": []}
    while not stop.exists():
        rounds = sorted(out.glob("faulty-*"), key=lambda p: int(p.name.split("-")[1]))
        if not rounds:
            time.sleep(0.05)
            continue
        try:
            run = load_run(rounds[-1])
            leaves = [np.asarray(x) for x in jax.tree.leaves(eqx.filter(run.model, eqx.is_array))]
            if not all(np.all(np.isfinite(x)) for x in leaves):
                counts["non_finite"] += 1
            counts["loaded"] += 1
        except DataError as e:
            counts["one_line_errors"] += 1
            counts["corrupt_refused"] += "corrupt checkpoint" in str(e)
            if len(counts["examples"]) < 3 and str(e) not in counts["examples"]:
                counts["examples"].append(str(e))
        except Exception as e:  # noqa: BLE001  the point: count anything else
            counts["other_errors"] += 1
            counts["examples"].append(f"{type(e).__name__}: {e}")
        time.sleep(0.05)
    tally.write_text(json.dumps(counts))


# -- the parent --------------------------------------------------------------------------------

def _spawn(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(HERE), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _data(folder: pathlib.Path) -> None:
    import numpy as np

    from sciops.data import write_hdf5

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2, 8, 8)).astype(np.float32)
    y = np.tanh(x[:, :1] - 0.4 * x[:, 1:]) + 0.5
    write_hdf5(folder / "data.h5", {"x": x, "y": y.astype(np.float32)})


def _records(path: pathlib.Path) -> list[dict]:
    return [{k: v for k, v in json.loads(ln).items() if k != "samples_per_s"}
            for ln in path.read_text().splitlines()]


def _flip_newest(out: pathlib.Path, rng: random.Random) -> bool:
    from sciops.train import latest_checkpoint

    newest = latest_checkpoint(out / "checkpoints")
    if newest is None:
        return False
    files = [p for p in (newest / "state").rglob("*") if p.is_file() and p.stat().st_size]
    target = rng.choice(files)
    data = bytearray(target.read_bytes())
    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    target.write_bytes(bytes(data))
    return True


def _round(work: pathlib.Path, out: pathlib.Path, rng: random.Random, t_startup: float,
           tally: dict, kills: int) -> bool:
    """Kill and resume one run in `out` until it finishes (or the kill target is met and it is
    let finish); True when it ended exactly as the uninterrupted run."""
    while not (out / "done.json").exists():
        resume = (out / "config.yaml").exists()
        tally["resumes"] += resume
        if tally["kills"] >= kills:
            phase, count, delay = None, 0, None  # let it finish
        elif rng.random() < 0.5:
            phase, count, delay = rng.choice(PHASES), rng.randint(1, 4), None
        else:  # start-up, loading, the first steps and their checkpoints
            phase, count, delay = None, 0, rng.uniform(0.3, 1.5) * t_startup
        args = ["--child-fit", str(work), str(out)] + (["--resume"] if resume else [])
        args += ["--phase", phase, "--count", str(count)] if phase else []
        child = _spawn(*args)
        try:
            _, err = child.communicate(timeout=delay)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            _, err = child.communicate()
        tally["corrupt_refused"] += err.count("resuming from an older checkpoint")
        if child.returncode == -signal.SIGKILL:
            tally["kills"] += 1
            moment = phase or "timer"
            tally["kills_by_moment"][moment] = tally["kills_by_moment"].get(moment, 0) + 1
            if rng.random() < 0.25 and _flip_newest(out, rng):
                tally["corrupted"] += 1
        elif child.returncode != 0:
            tally["writer_errors"].append(err.strip()[-600:] if err.strip() else
                                          f"exit {child.returncode}")
            if len(tally["writer_errors"]) > 3:
                return False
    straight = work / "straight"
    return (json.loads((out / "done.json").read_text())
            == json.loads((straight / "done.json").read_text())
            and _records(out / "metrics.jsonl") == _records(straight / "metrics.jsonl")
            and _final_models_equal(out, straight))


def main(kills: int = 24, seed: int = 0, folder: str | None = None) -> dict:
    """Run the experiment; returns (and prints) the tally.

    A run that finishes before `kills` kills were made is checked, and a fresh one (the next
    round, in ``faulty-<round>``) takes the remaining kills."""
    rng = random.Random(seed)
    work = pathlib.Path(folder or tempfile.mkdtemp(prefix="sciops-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    _data(work)
    t0 = time.perf_counter()
    straight = _spawn("--child-fit", str(work), str(work / "straight"))
    _, err = straight.communicate()
    if straight.returncode != 0:
        raise SystemExit(f"the uninterrupted run failed:\n{err[-3000:]}")
    t_straight = time.perf_counter() - t0
    log = [json.loads(ln) for ln in (work / "straight" / "metrics.jsonl").read_text().splitlines()]
    rate = float(np.median([r["samples_per_s"] for r in log if "samples_per_s" in r]))
    t_startup = max(t_straight - STEPS * 8 / rate, 1.0)  # 8 = the batch size
    stop = work / "reader.stop"
    reader = _spawn("--child-reader", str(work), str(stop), str(work / "reader.json"))
    tally = {"kills": 0, "kills_by_moment": {}, "writer_errors": [], "corrupted": 0,
             "corrupt_refused": 0, "resumes": 0, "rounds": 0, "rounds_exact": 0}
    while tally["kills"] < kills and len(tally["writer_errors"]) <= 3:
        out = work / f"faulty-{tally['rounds']}"
        tally["rounds"] += 1
        tally["rounds_exact"] += _round(work, out, rng, t_startup, tally, kills)
    stop.write_text("stop")
    reader.communicate(timeout=120)
    read = json.loads((work / "reader.json").read_text())
    tally.update({
        "reader_loaded": read["loaded"], "reader_one_line_errors": read["one_line_errors"],
        "reader_corrupt_refused": read["corrupt_refused"],
        "reader_other_errors": read["other_errors"], "reader_non_finite": read["non_finite"],
        "reader_examples": read["examples"][:4],
        "every_round_exact": tally["rounds_exact"] == tally["rounds"],
        "seconds": round(time.perf_counter() - t0, 1),
        "uninterrupted_seconds": round(t_straight, 1),
        "startup_seconds": round(t_startup, 1), "folder": str(work)})
    print(json.dumps(tally, indent=1))
    return tally


def _final_models_equal(a_dir: pathlib.Path, b_dir: pathlib.Path) -> bool:
    _register()
    import equinox as eqx
    import jax

    from sciops.train import load_run

    a, b = (load_run(d).model for d in (a_dir, b_dir))
    return all(np.array_equal(x, y) for x, y in zip(
        jax.tree.leaves(eqx.filter(a, eqx.is_array)), jax.tree.leaves(eqx.filter(b, eqx.is_array)),
        strict=True))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folder")
    p.add_argument("--child-fit", nargs=2, metavar=("FOLDER", "OUT"))
    p.add_argument("--resume", action="store_true")
    p.add_argument("--phase", choices=PHASES)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--child-reader", nargs=3, metavar=("WORK", "STOP", "TALLY"))
    a = p.parse_args()
    if a.child_fit:
        _child_fit(pathlib.Path(a.child_fit[0]), pathlib.Path(a.child_fit[1]), a.resume,
                   a.phase, a.count)
    elif a.child_reader:
        _child_reader(*map(pathlib.Path, a.child_reader))
    else:
        tally = main(a.kills, a.seed, a.folder)
        ok = (tally["kills"] >= a.kills and not tally["writer_errors"]
              and not tally["reader_other_errors"] and not tally["reader_non_finite"]
              and tally["every_round_exact"])
        sys.exit(0 if ok else 1)
