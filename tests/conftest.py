"""Test-wide settings: strict dtype promotion, rank promotion is an error, CPU only.

Compiled programs are dropped after each test module (``jax.clear_caches``): no program is
shared across modules, and keeping them all would grow the suite's memory with the registry.
"""

import gc
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True, scope="module")
def _drop_compiled_programs_after_each_module():
    yield
    jax.clear_caches()
    gc.collect()
