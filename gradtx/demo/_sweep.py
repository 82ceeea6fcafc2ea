"""One program per optimizer for the training section, the learning-rate sweep and schedules.

Every learning rate is data: a table of per-step values, one row per run, all rows trained
at once under ``vmap`` in one compiled program. The training section's run is row 0 (the
optimizer's ``TRAIN_LR``), the sweep is the rows of the grid, and for momentum the schedule
zoo's rows follow. The full demo also times a loop of single runs (one more program, whose
learning-rate table is its argument) beside the vmapped sweep.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from gradtx.demo import _train
from gradtx.demo._jit import compiled

ZOO_OPTIMIZER, ZOO_PEAK = "momentum", 0.1  # the schedule zoo runs SGD with momentum 0.9
_RESULTS: dict = {}


def learning_rates(quick: bool = False) -> np.ndarray:
    """The grid: 1e-4 to 100, evenly spaced on a log axis (13 values, 7 in quick mode).

    Wide enough that every optimizer's best value lies inside it (the sweep's table says so
    per optimizer): the largest values diverge or stall for all seven.
    """
    return np.logspace(-4, 2, 7 if quick else 13)


def _tables(name, steps, quick):
    rows = [_train.constant(_train.TRAIN_LR[name], steps)]
    rows += [_train.constant(lr, steps) for lr in learning_rates(quick)]
    zoo = _train.schedule_tables(steps, ZOO_PEAK) if name == ZOO_OPTIMIZER else {}
    return np.stack(rows + list(zoo.values())), list(zoo)


def optimizer_job(name: str, steps: int, seed: int = 0, quick: bool = False, mixup=False):
    """The program of optimizer ``name``: its training run, the sweep, and (momentum) the zoo."""
    tables, _ = _tables(name, steps, quick)
    return _train.rows_job(_train.spiral(seed), name, tables, steps, seed, mixup=mixup)


class OptimizerRuns(NamedTuple):
    train: _train.Run  # at TRAIN_LR[name]
    sweep: list  # [Run] one per learning rate of the grid
    schedules: dict  # {schedule name: (table, Run)} (momentum only)
    compile_s: float  # compiling the program (once for every run above)
    run_s: float  # running every row in one call


def optimizer_runs(name: str, steps: int, seed: int = 0, quick=False, mixup=False):
    """Run (or recall) optimizer ``name``'s program; see ``OptimizerRuns``."""
    job = optimizer_job(name, steps, seed, quick, mixup)
    if job.key not in _RESULTS:
        out, compile_s, run_s = _train.run_rows(job)
        runs = _train.runs_of(_train.spiral(seed), steps, out)
        tables, zoo = _tables(name, steps, quick)
        n = len(learning_rates(quick))
        schedules = {z: (tables[1 + n + i], runs[1 + n + i]) for i, z in enumerate(zoo)}
        _RESULTS[job.key] = OptimizerRuns(runs[0], runs[1 : 1 + n], schedules, compile_s, run_s)
    return _RESULTS[job.key]


class Sweep(NamedTuple):
    learning_rates: np.ndarray  # [n]
    final_loss: np.ndarray  # [n] from the vmapped program (nan where training diverged)
    loop_final_loss: np.ndarray | None  # [n] from the loop of single runs (None: not timed)
    vmap_compile_s: float  # compiling the vmapped program (one for every value)
    vmap_run_s: float  # running it: one call for every row
    loop_compile_s: float  # compiling the single run (nan: not timed)
    loop_run_s: float  # running it: one call per learning rate (nan: not timed)


def best(s: Sweep) -> tuple[int, bool]:
    """The index of the lowest finite final loss, and whether it is inside the grid."""
    finite = np.where(np.isfinite(s.final_loss), s.final_loss, np.inf)
    i = int(np.argmin(finite))
    return i, 0 < i < len(finite) - 1


def sweep(name: str, steps: int, seed: int = 0, quick: bool = False, loop: bool = True) -> Sweep:
    """The sweep of optimizer ``name`` on the spiral, and with ``loop`` the loop's timing."""
    runs = optimizer_runs(name, steps, seed, quick)
    lrs = learning_rates(quick)
    final = np.array([r.final_loss for r in runs.sweep])
    looped, loop_compile_s, loop_run_s = None, float("nan"), float("nan")
    if loop:
        single = _train.single_job(_train.spiral(seed), name, steps, seed)
        one, loop_compile_s = compiled(single.key, single.fn, *single.args)
        start = time.perf_counter()
        looped = np.array(
            [float(one(_train.constant(lr, steps), *single.args[1:])[-1][0]) for lr in lrs]
        )
        loop_run_s = time.perf_counter() - start
    return Sweep(lrs, final, looped, runs.compile_s, runs.run_s, loop_compile_s, loop_run_s)
