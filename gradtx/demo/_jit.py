"""Compile once per configuration, two at a time, and time it: a cache of executables.

Data is passed as arguments (not closed over), so a second run of the same configuration in
the same process (``gradtx demo`` after ``gradtx train``, or the tests) reuses the executable.
XLA compiles outside the GIL, so ``compile_many`` keeps both cores of a laptop busy.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import jax

_CACHE: dict = {}


class Job(NamedTuple):
    key: tuple  # names the configuration (what ``fn`` closes over)
    fn: object  # the function to jit
    args: tuple  # example arguments (their shapes and dtypes are compiled for)
    label: str  # shown in the progress bar


def _full_key(key, args):
    spec = tuple((x.shape, str(x.dtype)) for x in jax.tree.leaves(args))
    return key, spec, bool(jax.config.jax_enable_x64)


def compiled(key: tuple, fn, *args):
    """``jax.jit(fn)`` compiled for ``args``: ``(executable, seconds it took to compile)``.

    Argument shapes, dtypes and the x64 switch are added to ``key``. A cached executable comes
    back with the seconds its compilation took.
    """
    full = _full_key(key, args)
    if full not in _CACHE:
        start = time.perf_counter()
        executable = jax.jit(fn).lower(*args).compile()
        _CACHE[full] = (executable, time.perf_counter() - start)
    return _CACHE[full]


def compile_many(jobs, progress=None, workers: int = 2):
    """Compile every job, ``workers`` at a time; step ``progress`` as each one is ready."""
    x64 = bool(jax.config.jax_enable_x64)

    def one(job):
        with jax.enable_x64(x64):
            compiled(job.key, job.fn, *job.args)
        return job

    with ThreadPoolExecutor(workers) as pool:
        for job in pool.map(one, jobs):
            if progress is not None:
                progress.step(job.label)


def timed(executable, *args):
    """Call a compiled executable and wait for it; returns ``(result, seconds)``."""
    start = time.perf_counter()
    out = jax.block_until_ready(executable(*args))
    return out, time.perf_counter() - start
