"""A learning-rate sweep: every value trained at once under ``vmap``, in one jit."""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx.demo._jit import Job, compiled, timed
from gradtx.demo._optimizers import make
from gradtx.demo._problems import mlp_init, mlp_loss, spiral_data


class Sweep(NamedTuple):
    learning_rates: np.ndarray  # [n]
    final_loss: np.ndarray  # [n] from the vmapped sweep (nan where training diverged)
    loop_final_loss: np.ndarray  # [n] from the loop of separate runs
    vmap_compile_s: float  # compiling the vmapped sweep (one program for every value)
    vmap_run_s: float  # running it: one call
    loop_compile_s: float  # compiling the single run (one program, the value is an argument)
    loop_run_s: float  # running it: one call per learning rate, one after the other


def learning_rates(quick: bool = False) -> np.ndarray:
    """The grid: 1e-4 to 3, evenly spaced on a log axis (9 values, 5 in quick mode)."""
    return np.logspace(-4, np.log10(3.0), 5 if quick else 9)


def _final_loss(name: str, steps: int):
    def final_loss(lr, params, inputs, labels):
        tx = make(name, lr)

        def step(carry, _):
            p, state = carry
            grads = jax.grad(mlp_loss)(p, inputs, labels)
            updates, state = tx.update(grads, state, p)
            return (gradtx.apply_updates(p, updates), state), None

        (p, _), _ = jax.lax.scan(step, (params, tx.init(params)), length=steps)
        return mlp_loss(p, inputs, labels)

    return final_loss


def _data(seed):
    return (mlp_init(jax.random.PRNGKey(seed)), *spiral_data(seed=seed))


def sweep_jobs(name: str, lrs, steps: int, seed: int = 0):
    """The two compile jobs behind ``sweep``: the vmapped sweep and the single run."""
    fn, data, lrs32 = _final_loss(name, steps), _data(seed), jnp.asarray(lrs, jnp.float32)
    batched = jax.vmap(fn, in_axes=(0, None, None, None))
    return (
        Job(("sweep", name, steps), batched, (lrs32, *data), f"vmapped sweep of {name}"),
        Job(("sweep-one", name, steps), fn, (lrs32[0], *data), f"single run of {name}"),
    )


def sweep(name: str, lrs, steps: int, seed: int = 0) -> Sweep:
    """Train the spiral MLP (full batch) with optimizer ``name`` at every learning rate.

    The learning rate is data (an array passed to the compiled function), so one program
    serves the whole vmapped batch, and one more serves every call of the loop. Compile and
    run times are kept apart (compiling is measured once, when it happens).
    """
    vmapped, single = sweep_jobs(name, lrs, steps, seed)
    executable, vmap_compile_s = compiled(vmapped.key, vmapped.fn, *vmapped.args)
    batched, vmap_run_s = timed(executable, *vmapped.args)
    executable, loop_compile_s = compiled(single.key, single.fn, *single.args)
    data = single.args[1:]
    start = time.perf_counter()
    looped = [float(executable(lr, *data)) for lr in vmapped.args[0]]
    loop_run_s = time.perf_counter() - start
    return Sweep(
        np.asarray(lrs),
        np.asarray(batched),
        np.asarray(looped),
        vmap_compile_s,
        vmap_run_s,
        loop_compile_s,
        loop_run_s,
    )
