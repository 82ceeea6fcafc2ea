"""One process of the multi-process check: ``python -m tests.scaleout.multiprocess_worker
PORT RANK NPROC OUT_DIR``, started by ``tests/scaleout/launch.py`` with its local device count
in JAX_NUM_CPU_DEVICES.

Runs the GSPMD and ZeRO-1 steps on a global 2 x 4 mesh whose "data" axis spans the processes,
compares with a 1-device run on this process, and writes ``OUT_DIR/rank{RANK}.json``.
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from tests.scaleout import common


def main(port: str, rank: str, nproc: str, out_dir: str):
    address = f"127.0.0.1:{port}"
    jax.distributed.initialize(
        coordinator_address=address,
        coordinator_bind_address=address,
        num_processes=int(nproc),
        process_id=int(rank),
        initialization_timeout=60,
        heartbeat_timeout_seconds=30,
        shutdown_timeout_seconds=30,
    )
    try:
        mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))
        replicated = {k: P() for k in common.MODEL_SPECS}
        report = {
            "process_count": jax.process_count(),
            "device_count": jax.device_count(),
            "local_device_count": jax.local_device_count(),
            "gspmd": common.run_gspmd(mesh, common.MODEL_SPECS),
            "zero1": common.run_gspmd(mesh, replicated, zero1_axis="data"),
        }
        with open(f"{out_dir}/rank{rank}.json", "w") as f:
            json.dump(report, f)
    finally:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:5])
