"""A learning-rate sweep: every value trained at once under ``vmap``, in one jit.

The single run the loop calls is the training section's program (``_train.train_job``): the
learning rate is its first argument, so the loop compiles nothing new.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx.demo import _train
from gradtx.demo._jit import Job, compiled, timed


class Sweep(NamedTuple):
    learning_rates: np.ndarray  # [n]
    final_loss: np.ndarray  # [n] from the vmapped sweep (nan where training diverged)
    loop_final_loss: np.ndarray  # [n] from the loop of separate runs
    vmap_compile_s: float  # compiling the vmapped sweep (one program for every value)
    vmap_run_s: float  # running it: one call
    loop_compile_s: float  # compiling the single run (shared with the training section)
    loop_run_s: float  # running it: one call per learning rate, one after the other


def learning_rates(quick: bool = False) -> np.ndarray:
    """The grid: 1e-4 to 100, evenly spaced on a log axis (13 values, 7 in quick mode).

    Wide enough that every optimizer's best value lies inside it (the table says so per
    optimizer): the largest values diverge or stall for all seven.
    """
    return np.logspace(-4, 2, 7 if quick else 13)


def best(s: Sweep) -> tuple[int, bool]:
    """The index of the lowest finite final loss, and whether it is inside the grid."""
    finite = np.where(np.isfinite(s.final_loss), s.final_loss, np.inf)
    i = int(np.argmin(finite))
    return i, 0 < i < len(finite) - 1


def sweep_job(name: str, lrs, steps: int, seed: int = 0):
    """The compile job behind the vmapped sweep (the loop reuses ``_train.train_job``)."""
    problem = _train.spiral(seed)
    fn = jax.vmap(_train.run_fn(problem, name, steps), in_axes=(0,) + (None,) * 6)
    args = (jnp.asarray(lrs, jnp.float32), *_train.data_args(problem, seed))
    key = ("sweep", name, _train._round(steps)[1])
    return Job(key, fn, args, f"vmapped sweep of {name}")


def sweep(name: str, lrs, steps: int, seed: int = 0) -> Sweep:
    """Train the spiral MLP (full batch) with optimizer ``name`` at every learning rate.

    The learning rate is data (an array passed to the compiled function), so one program
    serves the whole vmapped batch, and one more serves every call of the loop. Compile and
    run times are kept apart (compiling is measured once, when it happens).
    """
    job = sweep_job(name, lrs, steps, seed)
    executable, vmap_compile_s = compiled(job.key, job.fn, *job.args)
    out, vmap_run_s = timed(executable, *job.args)
    single = _train.train_job(_train.spiral(seed), name, steps, seed)
    one, loop_compile_s = compiled(single.key, single.fn, *single.args)
    start = time.perf_counter()
    looped = [float(one(lr, *single.args[1:])[-1]) for lr in job.args[0]]
    loop_run_s = time.perf_counter() - start
    return Sweep(
        np.asarray(lrs),
        np.asarray(out[-1]),
        np.asarray(looped),
        vmap_compile_s,
        vmap_run_s,
        loop_compile_s,
        loop_run_s,
    )
