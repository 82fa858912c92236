"""A fit that streams a data set larger than the machine's memory, against the same fit on
in-memory data of the same shapes: peak resident memory and step time.

The benchmark writes a chunked, uncompressed sciops HDF5 file of `--gb` GiB (default 32, more
than this machine's 24 GB of RAM, so the page cache cannot hold it) with fields ``x`` and ``y``
of shape `(1, S, S)`, and a small file with the same fields of `--small` samples. The fields
are synthetic (a seeded block of smooth random fields, shifted per sample; ``y = tanh(x)``):
this measures reading, not learning. Each fit runs in its own process, the default Darcy
job's FNO (`configs/darcy.yaml`, its data section replaced) for `--steps` steps:

- **streamed**: ``data.in_memory=false`` (batches read from the file by shuffled index),
  ``data.prefetch=2`` (read on a background thread) or `--prefetch`;
- **in memory**: the small file, ``data.in_memory=true``.

Step time is the median over the `metrics.jsonl` records after the first (compilation left
out) of batch size / samples per second. Peak memory is the child process's maximum resident
set size (`ru_maxrss`); the page cache is not part of it. The big file is deleted at the end
unless `--keep`.

    python benchmarks/streaming_fit.py --gb 32 --size 128 --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import textwrap
import time

CHILD = textwrap.dedent("""
    import json, resource, sys
    from sciops.train import fit, load_config
    cfg = load_config({config!r}, {overrides!r})
    res = fit(cfg, out={out!r})
    print("RESULT " + json.dumps({{"max_rss_mib": resource.getrusage(resource.RUSAGE_SELF)
                                  .ru_maxrss / 1024, "test_l2": res.metrics["test"]["l2"]}}))
""")


def write_file(path: pathlib.Path, n: int, size: int, seed: int = 0, block: int = 64) -> float:
    """`n` samples of x, y `(1, size, size)` float32, chunked per sample, uncompressed;
    returns the seconds it took."""
    import numpy as np

    from sciops.data import open_hdf5_writer

    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, size, dtype=np.float32)
    modes = rng.normal(size=(block, 4, 4)).astype(np.float32)
    base = np.einsum("bij,ix,jy->bxy", modes, np.sin(np.outer(np.arange(1, 5), t)),
                     np.cos(np.outer(np.arange(1, 5), t)))[:, None].astype(np.float32)
    t0 = time.perf_counter()
    with open_hdf5_writer(path, {"problem": "streaming_benchmark"}, compression=None) as w:
        for start in range(0, n, block):
            m = min(block, n - start)
            shift = (np.arange(start, start + m, dtype=np.float32) % 97 / 97.0)[:, None, None,
                                                                                 None]
            x = base[:m] + shift
            w.append({"x": x, "y": np.tanh(x)})
    return time.perf_counter() - t0


def run_fit(config: str, overrides: list[str], out: pathlib.Path) -> dict:
    """One fit in a child process: its peak RSS, test error, step times and wall time."""
    code = CHILD.format(config=config, overrides=overrides, out=str(out))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"fit failed ({out}):\n{proc.stderr[-3000:]}")
    result = json.loads(next(ln for ln in proc.stdout.splitlines()
                             if ln.startswith("RESULT "))[7:])
    records = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["samples_per_s"] for r in records if r.get("split") == "train"][1:]
    batch = int(next(o.split("=")[1] for o in overrides if o.startswith("train.batch_size=")))
    result.update(wall_s=wall, step_ms=1e3 * statistics.median(batch / r for r in rates),
                  records=len(rates))
    return result


def main(gb: float, size: int, steps: int, small: int, batch: int, prefetch: int,
         folder: pathlib.Path, keep: bool) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    sample_bytes = 2 * size * size * 4
    n_big = int(gb * 2**30 // sample_bytes)
    big, little = folder / "big.h5", folder / "small.h5"
    load = os.getloadavg()
    out = {"gb": gb, "size": size, "n_big": n_big, "n_small": small, "steps": steps,
           "batch": batch, "prefetch": prefetch, "load_before": load}
    print(f"writing {n_big:,} samples of 2 x {size}^2 float32 ({n_big * sample_bytes / 2**30:.1f} "
          f"GiB) to {big}; load {load[0]:.1f}", flush=True)
    out["write_s"] = write_file(big, n_big, size) if not big.is_file() else None
    write_file(little, small, size)
    common = ["data.generate=null", "data.n_val=0", f"data.n_test={batch}",
              f"train.steps={steps}", f"train.batch_size={batch}", f"train.eval_batch_size={batch}",
              f"train.eval_every={steps}", f"train.checkpoint_every={steps}", "train.log_every=10",
              "train.progress=false", "train.trackers=[]", "train.optimizer.warmup_steps=0"]
    config = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "darcy.yaml")
    for name, extra in (("in_memory", [f"data.path={little}", "data.in_memory=true",
                                       f"data.n_train={small - batch}"]),
                        ("streamed", [f"data.path={big}", "data.in_memory=false",
                                      f"data.prefetch={prefetch}",
                                      f"data.n_train={n_big - batch}"])):
        run_dir = folder / f"run_{name}"
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f"fit, {name} ...", flush=True)
        out[name] = run_fit(config, common + extra, run_dir)
        print(f"  {name}: step {out[name]['step_ms']:.0f} ms (median of {out[name]['records']} "
              f"records), peak RSS {out[name]['max_rss_mib']:.0f} MiB, wall "
              f"{out[name]['wall_s']:.0f} s", flush=True)
    out["load_after"] = os.getloadavg()
    out["overhead"] = out["streamed"]["step_ms"] / out["in_memory"]["step_ms"] - 1
    print(f"streamed / in memory: step time {1 + out['overhead']:.3f}x "
          f"({100 * out['overhead']:+.1f} %), peak RSS {out['streamed']['max_rss_mib']:.0f} vs "
          f"{out['in_memory']['max_rss_mib']:.0f} MiB; load {out['load_before'][0]:.1f} -> "
          f"{out['load_after'][0]:.1f}")
    if not keep:
        big.unlink()
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gb", type=float, default=32.0, help="size of the streamed file (GiB)")
    p.add_argument("--size", type=int, default=128, help="grid points per side")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--small", type=int, default=520, help="samples of the in-memory file")
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--prefetch", type=int, default=2)
    p.add_argument("--dir", default="data/cache/streaming_benchmark")
    p.add_argument("--keep", action="store_true", help="keep the big file")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    res = main(a.gb, a.size, a.steps, a.small, a.batch, a.prefetch, pathlib.Path(a.dir), a.keep)
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(res, indent=1))
