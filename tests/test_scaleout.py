"""Scale-out on simulated CPU devices: GSPMD, ZeRO-1, shard_map, several processes.

Every check runs in its own interpreter (this process keeps its one device and never calls
jax.distributed): ``tests/scaleout/devices8.py`` once for all the 8-device checks, and
``tests/scaleout/launch.py`` for 2 processes x 4 devices. Each compares 10 steps of Adam with
global-norm clipping on a small MLP against a 1-device run.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.scaleout.cases import REDUCERS, reducer_id
from tests.scaleout.launch import ROOT, run_with_devices, run_workers

TOL = 1e-6


@pytest.fixture(scope="session")
def eight(once_per_run):
    def run():
        out = run_with_devices(["-m", "tests.scaleout.devices8"], 8, timeout=240)
        return json.loads(out.strip().splitlines()[-1])

    return once_per_run("devices8", run)  # one subprocess, whichever worker runs these tests


def test_every_transform_keeps_the_parameters_sharding(eight):
    follow = eight["follow"]
    assert follow.pop("plain_jit_devices") == 1  # the trap: jit(init) alone uses one device
    for name, got in follow.items():
        assert got["eager"] and got["jit"], name
    assert follow["adam"]["split_slots"] == 6  # mu and nu of w, b and block.k
    assert follow["rmsprop[centered-momentum]"]["split_slots"] == 9


def _check_run(run, fractions):
    assert run["err_params"] < TOL and run["err_state"] < TOL, run
    assert run["state_kept_sharding"] and run["donated"]
    assert run["slot_fractions"] == fractions


def test_gspmd_tensor_parallel_matches_one_device(eight):
    # the (4,) bias is replicated; every other slot is split 4 ways over "model" like its param
    _check_run(eight["gspmd"], [0.25, 1.0])
    assert eight["gspmd"]["mu_follows_params"]


def test_zero1_splits_every_slot_and_matches_one_device(eight):
    _check_run(eight["zero1"], [0.5])
    # over both axes: the (4,) bias slots cannot be split 8 ways and stay whole
    _check_run(eight["zero1_all"], [0.125, 1.0])
    # Adam's mu and nu of 420 float32 parameters, plus Adam's int32 step count (a constant
    # learning rate keeps no count)
    assert eight["zero1"]["opt_bytes_per_device"] == [2 * 420 * 4 // 2 + 4]


def test_clipping_is_active_on_some_steps_only(eight):
    from tests.scaleout.common import MAX_NORM

    norms = eight["shard_map"]["grad_norms"]
    assert min(norms) < MAX_NORM < max(norms)


def test_shard_map_data_parallel_matches_one_device(eight):
    run = eight["shard_map"]
    assert run["err_params"] < TOL and run["err_state"] < TOL
    # the gradients are already summed over the devices: an axis_name would count them 8 times
    wrong = eight["shard_map_wrong_axis"]
    assert wrong["err_params"] > 1e-3


def test_classic_pmean_of_grad_is_n_times_too_large_with_check_vma(eight):
    ratio = eight["classic_gradient_ratio"]
    assert ratio["check_vma=True"] == pytest.approx(8.0, rel=1e-5)
    assert ratio["check_vma=False"] == pytest.approx(1.0, rel=1e-5)


def test_shard_map_with_sharded_params_needs_axis_name(eight):
    run = eight["shard_map_fsdp"]
    assert run["err_params"] < TOL and run["err_state"] < TOL
    assert eight["shard_map_fsdp_no_axis"]["err_params"] > 1e-3


@pytest.mark.parametrize("case", REDUCERS, ids=reducer_id)
def test_whole_tree_reducers_need_axis_name_in_shard_map(eight, case):
    errs = eight["reducers"][reducer_id(case)]
    assert errs["with"] < TOL
    assert errs["without"] > 0.1


def test_two_processes_of_four_devices(tmp_path):
    run_workers("tests.scaleout.multiprocess_worker", 2, 4, tmp_path, timeout=300)
    for rank in range(2):
        report = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert (report["process_count"], report["device_count"]) == (2, 8)
        assert report["local_device_count"] == 4
        _check_run(report["gspmd"], [0.25, 1.0])
        _check_run(report["zero1"], [0.5])


def test_scaling_out_example():
    out = run_with_devices([str(ROOT / "notebooks" / "scaling_out.py")], 8, timeout=300)
    kib = {
        m["setup"].strip(): float(m["opt"])
        for m in re.finditer(
            r"^(?P<setup>[\w ,()-]+?)\s*\|\s*[\d.]+\s*\|\s*(?P<opt>[\d.]+)", out, re.M
        )
    }
    full = kib["replicated"]
    assert kib["sharded state (4-way model)"] == pytest.approx(full / 4, rel=0.01)
    assert kib["ZeRO-1 (8-way)"] == pytest.approx(full / 8, rel=0.01)
    assert "same parameters" in out


def _fake(tmp_path, behaviour, **kwargs):
    (tmp_path / "behaviour").write_text(behaviour)
    return run_workers("tests.scaleout.fake_worker", 2, 1, tmp_path, **kwargs)


def test_launcher_retries_on_a_busy_port(tmp_path):
    logs = _fake(tmp_path, "busy-once")
    assert "attempt 1" in logs[0] and "attempt 1" in logs[1]


@pytest.mark.parametrize(
    "behaviour, match", [("fail", "rank 1 broke"), ("hang", "killed by the launcher")]
)
def test_launcher_stops_every_worker_and_shows_the_logs(tmp_path, behaviour, match):
    with pytest.raises(AssertionError, match=match) as failure:
        _fake(tmp_path, behaviour, timeout=3.0)
    assert "(attempt 1)" in str(failure.value)  # not retried
    # A rank the launcher killed before its interpreter got going records no attempt (rank 0,
    # when rank 1 fails first on a loaded machine); none records a second one.
    recorded = [tmp_path / f"attempts{rank}" for rank in range(2)]
    assert [p.read_text() for p in recorded if p.exists()] in (["x"], ["x", "x"])
