"""Start scale-out workers in their own interpreters; never imports jax.

The device count of a jax process is fixed at its first operation, and jax.distributed failures
are C++ aborts or segfaults, so both run outside the pytest process: each worker in its own
session (process group), its output in a log file (a full pipe could deadlock ranks waiting on
each other), under a wall timeout; on failure only these children are killed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Worth another try with a fresh port: rank 0 could not bind the coordinator's port.
RETRY_MARKERS = ("Failed to start RPC server", "Address already in use")


def worker_env(n_devices: int) -> dict:
    """The environment of a worker with ``n_devices`` simulated CPU devices."""
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f]
    env.update(
        XLA_FLAGS=" ".join(flags),
        JAX_NUM_CPU_DEVICES=str(n_devices),
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    return env


def run_with_devices(args: list[str], n_devices: int, timeout: float) -> str:
    """Run ``python *args`` with ``n_devices`` devices; return its stdout, raise on failure."""
    proc = subprocess.run(
        [sys.executable, *args],
        env=worker_env(n_devices),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(f"{args} exited with {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc.stdout


def reserve_port() -> socket.socket:
    """A socket bound to a free 127.0.0.1 port with SO_REUSEPORT; keep it open during the run.

    jax's coordinator sets SO_REUSEPORT as well, so it can still bind the port, while no other
    program asking the kernel for a free port is given this one.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _start_all(module: str, nproc: int, local_devices: int, out_dir: Path, port: int, timeout):
    """Start the ranks, wait for all (or the first failure, or the deadline); return codes."""
    procs = []
    try:
        for rank in range(nproc):
            with open(out_dir / f"worker{rank}.log", "w") as log:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", module, str(port), str(rank), str(nproc)]
                        + [str(out_dir)],
                        env=worker_env(local_devices),
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            codes = [p.poll() for p in procs]
            if all(c == 0 for c in codes) or any(c not in (None, 0) for c in codes):
                break
            time.sleep(0.1)
        return [p.poll() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)  # this worker's own process group only
                p.wait()


def run_workers(
    module: str, nproc: int, local_devices: int, out_dir: Path, *, timeout=90.0, attempts=3
):
    """Run ``python -m module PORT RANK NPROC OUT_DIR`` as ``nproc`` jax.distributed ranks.

    Retries with a new port when rank 0 could not bind its port (an error, or a segfault).
    Raises AssertionError with every worker's log on failure or timeout.
    """
    attempt = 0
    while True:
        attempt += 1
        with reserve_port() as sock:
            codes = _start_all(
                module, nproc, local_devices, out_dir, sock.getsockname()[1], timeout
            )
        logs = [(out_dir / f"worker{r}.log").read_text() for r in range(nproc)]
        if all(c == 0 for c in codes):
            return logs
        busy = any(m in log for m in RETRY_MARKERS for log in logs)
        if attempt < attempts and (busy or -signal.SIGSEGV in codes):
            continue
        report = "\n".join(
            f"--- rank {r} (exit {'killed by the launcher' if c is None else c}) ---\n{log[-3000:]}"
            for r, (c, log) in enumerate(zip(codes, logs))
        )
        raise AssertionError(f"{module}: the workers failed (attempt {attempt}):\n{report}")
