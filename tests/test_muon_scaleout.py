"""Muon with parameters sharded over 8 simulated CPU devices (in a subprocess).

``tests/scaleout/muon8.py`` runs 6 jitted steps of a small attention-and-MLP block sharded over
a (2, 4) mesh (columns, rows, both axes, a vector) under each shard policy and compares them
with the same steps on one device; it also measures the bytes each step moves per device.
"""

from __future__ import annotations

import json

import pytest

from tests.scaleout.launch import run_with_devices


@pytest.fixture(scope="session")
def report(once_per_run):
    def run():
        out = run_with_devices(["-m", "tests.scaleout.muon8"], 8, timeout=600)
        return json.loads(out.strip().splitlines()[-1])

    return once_per_run("muon8", run)  # one subprocess, whichever worker runs these tests


@pytest.mark.parametrize("policy", ["gspmd", "gspmd_batched", "owner", "owner_model"])
def test_sharded_muon_matches_one_device(report, policy):
    """6 steps, float32. Under GSPMD with a mesh the Newton-Schulz layout is pinned (rows split
    over the mesh, the contraction axis whole, the norm from a gathered copy), so every sum
    runs in one device's order: 5e-8 Frobenius-relative. Left unpinned, the partitioner
    splits the contraction axis of the matmuls and the norm's sum, and the iteration
    amplifies the reordered float32 sums to 1.3e-6 (the one-device float32 result is itself
    1.4e-6 from float64). The owner policy computes each matrix on one device."""
    run = report[policy]
    if policy.startswith("gspmd"):
        assert run["norm_err"] < 1e-6 and run["rel_err"] < 1e-6, run
    else:
        assert run["norm_err"] < 3e-6 and run["rel_err"] < 1e-5, run
    assert run["kept_sharding"]


def test_owner_policy_is_bit_identical_to_one_device(report):
    """Over all 8 devices each matrix is orthogonalised whole on one device (shard_map), and
    the result matched the one-device run bit for bit. Over the 4-device "model" axis alone
    (the stacks replicated over "data") it matched to ~2e-6 only: observed, not explained."""
    assert report["owner"]["rel_err"] == 0.0


def test_owner_policy_moves_fewer_bytes(report):
    gspmd = report["gspmd"]["bytes_per_device"]
    for policy in ("owner", "owner_model"):
        assert 0 < report[policy]["bytes_per_device"] < gspmd, report
    # over the 4-device "model" axis: about twice the matrices' bytes (momentum in, result
    # out); over all 8 devices XLA replicates some stacks first (an "involuntary full
    # rematerialization" of the partitioner), so more moves
    assert report["owner_model"]["bytes_per_device"] <= 2.5 * report["matrix_bytes"], report
