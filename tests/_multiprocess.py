"""Starting the processes of one multi-process JAX run in a test: a coordinator port that was
free a moment ago may be taken before the coordinator binds it, so the pair starts again on a
new port when JAX says so (issue #27: no port races)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable

import pytest

# JAX's coordinator service when its port is taken (it binds [::]:port; jax 0.10.2)
PORT_TAKEN = "Failed to start RPC server"


def free_port() -> int:
    """A port that was free a moment ago (see `run_processes`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(start: Callable[[int, int], list[subprocess.Popen]], *, timeout: float,
                  attempts: int = 3) -> tuple[int, list[tuple[str, str]]]:
    """Run the processes `start(port, attempt)` launches (process 0 first, the one that hosts
    the coordinator) until they end; a new port and attempt when process 0 could not bind its
    port. `timeout` only guards a hang. Returns (attempt, [(stdout, stderr)] per process), after
    checking that every process exited with 0."""
    for attempt in range(attempts):
        procs = start(free_port(), attempt)
        try:
            first = procs[0].communicate(timeout=timeout)
            if procs[0].returncode != 0 and PORT_TAKEN in first[1]:
                continue  # the others wait for a coordinator that never came: killed below
            outs = [first] + [p.communicate(timeout=timeout) for p in procs[1:]]
            assert [p.returncode for p in procs] == [0] * len(procs), \
                [o[1][-2000:] for o in outs]
            return attempt, outs
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.communicate()
    pytest.fail(f"the coordinator could not bind a free port in {attempts} attempts")
