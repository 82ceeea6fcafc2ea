"""Muon with parameters sharded over 8 simulated CPU devices (in a subprocess).

``tests/scaleout/muon8.py`` runs 6 jitted steps of a small attention-and-MLP block sharded over
a (2, 4) mesh (columns, rows, both axes, a vector) under each shard policy and compares them
with the same steps on one device; it also measures the bytes each step moves per device.
"""

from __future__ import annotations

import json

import pytest

from tests.scaleout.launch import run_with_devices


@pytest.fixture(scope="module")
def report():
    out = run_with_devices(["-m", "tests.scaleout.muon8"], 8, timeout=600)
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("policy", ["gspmd", "gspmd_batched", "owner", "owner_model"])
def test_sharded_muon_matches_one_device(report, policy):
    run = report[policy]
    assert run["rel_err"] < 1e-6, run
    assert run["kept_sharding"]


def test_owner_policy_moves_fewer_bytes(report):
    gspmd, owner = report["gspmd"]["bytes_per_device"], report["owner"]["bytes_per_device"]
    assert 0 < owner < gspmd, (owner, gspmd)
    # the owner policy moves each matrix's momentum in and its result out: a few times the
    # matrices' size at most
    assert owner <= 4 * report["matrix_bytes"], report
