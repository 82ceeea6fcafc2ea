"""A stand-in rank for testing the launcher itself (no jax): ``OUT_DIR/behaviour`` says what to do.

busy-once: rank 0 fails as if its port were taken on the first attempt, then all succeed.
hang: rank 1 never finishes.
fail: rank 1 exits with an error.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def main(port: str, rank: str, nproc: str, out_dir: str):
    out = Path(out_dir)
    behaviour = (out / "behaviour").read_text().strip()
    attempts = out / f"attempts{rank}"
    attempt = len(attempts.read_text()) if attempts.exists() else 0
    attempts.write_text("x" * (attempt + 1))
    print(f"rank {rank} of {nproc} on port {port}, attempt {attempt}", flush=True)
    if behaviour == "busy-once" and rank == "0" and attempt == 0:
        sys.exit("Failed to start RPC server")
    if behaviour == "hang" and rank == "1":
        time.sleep(600)
    if behaviour == "fail" and rank == "1":
        sys.exit("rank 1 broke")


if __name__ == "__main__":
    main(*sys.argv[1:5])
