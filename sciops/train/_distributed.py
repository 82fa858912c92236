"""Multi-process runs on JAX's own runtime: `jax.distributed.initialize` with launcher detection.

One process per host (or per GPU) runs the same `sciops fit` command. Process 0 writes the run
folder's files; every process takes part in the collectives and in (orbax) checkpoint writes,
and reads only its own slice of each global batch.

Launchers:

- **SLURM** (`srun`): detected by JAX from ``SLURM_*`` variables.
- **MPI** (`mpirun`/`mpiexec`): Open MPI ≥ 5 is not always detected by JAX's own probe, so
  ``method="mpi"`` uses `mpi4py` (``cluster_detection_method="mpi4py"``) when it is installed.
- **explicit**: coordinator address, number of processes and process id given as arguments
  (any other launcher, and the 2-process test).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import jax
import numpy as np

from .._errors import ConfigError, TrainingError

__all__ = ["initialize", "detect_launcher", "is_primary", "barrier", "gather", "local_copy",
           "process_slice", "rows_split_over_processes", "global_batch"]

Method = Literal["auto", "slurm", "mpi", "explicit"]


def detect_launcher(environ: dict[str, str] | None = None) -> str | None:
    """``"slurm"`` or ``"mpi"`` when this process was started by one with several tasks."""
    env = os.environ if environ is None else environ
    if int(env.get("SLURM_NTASKS", env.get("SLURM_NPROCS", "1")) or 1) > 1:
        return "slurm"
    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        if int(env.get(var, "1") or 1) > 1:
            return "mpi"
    return None


def initialize(method: Method = "auto", *, coordinator: str | None = None,
               num_processes: int | None = None, process_id: int | None = None,
               local_device_ids: Sequence[int] | None = None, cpu_devices: int | None = None,
               timeout_s: int = 120, heartbeat_s: int = 60,
               coordinator_bind: str | None = None) -> bool:
    """Join a multi-process JAX run; must come before any other JAX call touches a device.

    **Arguments:**

    - `method`: ``"auto"`` (SLURM or MPI if detected, else single-process), ``"slurm"``,
      ``"mpi"`` or ``"explicit"``.
    - `coordinator`, `num_processes`, `process_id`: required for ``"explicit"``; the
      coordinator is ``host:port`` of process 0.
    - `local_device_ids`: the GPUs this process drives (several GPUs per task).
    - `cpu_devices`: on CPU, the number of (virtual) devices this process exposes.
    - `timeout_s`: how long to wait for the other processes / the coordinator before failing.
    - `heartbeat_s`: after how long without a heartbeat a dead process fails the others.
    - `coordinator_bind`: ``host:port`` the coordinator (process 0) listens on. Default for
      ``"explicit"``: the `coordinator` address itself (so ``127.0.0.1:PORT`` listens on
      loopback only, never on every interface); for SLURM and MPI JAX's default (every
      interface, as multi-node runs need) unless given.

    **Returns:** True if a multi-process run was initialised.

    **Raises:** `ConfigError` for missing explicit arguments; `TrainingError` naming the
    coordinator when it cannot be reached within `timeout_s`.
    """
    if method == "auto":
        method = detect_launcher() or "none"
        if method == "none":
            return False
    kwargs: dict = {"initialization_timeout": timeout_s, "heartbeat_timeout_seconds": heartbeat_s}
    if method == "explicit":
        missing = [n for n, v in (("--coordinator", coordinator), ("--num-processes",
                   num_processes), ("--process-id", process_id)) if v is None]
        if missing:
            raise ConfigError(f"distributed: method 'explicit' needs {', '.join(missing)}")
        if not 0 <= process_id < num_processes:
            raise ConfigError(f"--process-id: expected 0 <= id < {num_processes}, got {process_id}")
        kwargs.update(coordinator_address=coordinator, num_processes=num_processes,
                      process_id=process_id)
        coordinator_bind = coordinator_bind or coordinator
        if process_id == 0:
            _check_port_free(coordinator, coordinator_bind)
        if process_id != 0:
            _wait_for_coordinator(coordinator, timeout_s)
    elif method == "mpi":
        try:
            import mpi4py  # noqa: F401

            kwargs["cluster_detection_method"] = "mpi4py"
        except ImportError:
            pass  # JAX's own Open MPI / PMI probe
    elif method != "slurm":
        raise ConfigError(f"distributed: unknown method {method!r}; expected auto, slurm, mpi "
                          "or explicit")
    if coordinator_bind is not None:
        kwargs["coordinator_bind_address"] = coordinator_bind
    if local_device_ids is not None:
        kwargs["local_device_ids"] = list(local_device_ids)
    if cpu_devices is not None:
        jax.config.update("jax_num_cpu_devices", cpu_devices)
    # CPU collectives across processes need gloo; GPU runs use NCCL regardless of this flag.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(**kwargs)
    except Exception as e:  # the runtime raises several types (XlaRuntimeError, RuntimeError)
        where = coordinator or "the coordinator"
        raise TrainingError(f"distributed: could not join the run at {where} within "
                            f"{timeout_s} s ({type(e).__name__}: {str(e).splitlines()[0]})"
                            ) from None
    return True


def _check_port_free(coordinator: str, bind: str) -> None:
    """A TrainingError when something already listens at `bind`.

    With an explicit bind address JAX's runtime crashes (SIGSEGV) instead of raising when the
    port is taken, so process 0 probes it first (SO_REUSEADDR, as gRPC binds: a port in
    TIME_WAIT is free, one with a listener is not).
    """
    import socket

    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--coordinator-bind: expected host:port, got {bind!r}")
    try:
        infos = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
    except OSError as e:
        raise ConfigError(f"--coordinator-bind: cannot resolve {host!r} ({e})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            raise TrainingError(f"distributed: could not join the run at {coordinator}: Failed "
                                f"to start RPC server ({bind} is taken: {e.strerror or e})"
                                ) from None


def _wait_for_coordinator(address: str, timeout_s: float) -> None:
    """Fail with a clear error if nothing listens at `address` within `timeout_s`.

    JAX's runtime aborts the process (a C++ check failure, no Python exception) when the
    coordinator cannot be reached; probing the port first turns that into one readable line.
    """
    import socket
    import time

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--coordinator: expected host:port, got {address!r}")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return
        except OSError as e:
            if time.monotonic() > deadline:
                raise TrainingError(f"distributed: no coordinator answered at {address} within "
                                    f"{timeout_s} s ({e.strerror or e}); is process 0 running?"
                                    ) from None
            time.sleep(0.25)


def is_primary() -> bool:
    """True on the process that writes files (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches this point (no-op in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def gather(tree):
    """The global values of (possibly cross-process sharded) arrays, as numpy, on every process."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, tree)
    from jax.experimental import multihost_utils

    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            if x.is_fully_replicated:
                return np.asarray(x.addressable_data(0))
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(one, tree)


def local_copy(tree):
    """The pytree with every replicated global array replaced by this process's local copy, so
    that it can be used with host data (plots, evaluation, an ASE calculator)."""
    if jax.process_count() == 1:
        return tree
    return jax.tree.map(lambda x: x.addressable_data(0)
                        if isinstance(x, jax.Array) and not x.is_fully_addressable else x, tree)


def process_slice(n: int) -> slice:
    """The rows of a global batch of `n` that this process feeds (contiguous, equal)."""
    count, index = jax.process_count(), jax.process_index()
    if n % count:
        raise ConfigError(f"train.batch_size: {n} is not divisible by the {count} processes")
    per = n // count
    return slice(index * per, (index + 1) * per)


def rows_split_over_processes(mesh) -> bool:
    """True when each process's devices hold a distinct part of the batch rows (the mesh axis
    `data` spans the processes evenly), so that a process reads only its rows
    (`process_slice`). False when processes share rows: a `space` axis across processes,
    such as one mesh partitioned over the devices of several processes."""
    count = jax.process_count()
    if count == 1:
        return True
    data = mesh.shape.get("data", 1)
    if data % count:
        return False
    # the devices of one `data` index must all belong to one process
    grid = np.asarray(mesh.devices).reshape(data, -1)
    return all(len({d.process_index for d in row}) == 1 for row in grid)


def global_batch(batch, shardings) -> dict:
    """Global arrays from a host batch that every process holds whole: each process places
    only the blocks of its own devices (`jax.make_array_from_callback`)."""
    return {k: jax.make_array_from_callback(np.shape(v), shardings[k],
                                            lambda i, v=v: np.asarray(v[i]))
            for k, v in batch.items()}
