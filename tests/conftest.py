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


# Files whose tests start subprocesses (notebook kernels, 8 simulated devices, several
# processes, the demo command): under pytest-xdist they share one worker, one at a time.
SUBPROCESS_FILES = ("test_notebooks.py", "test_scaleout.py", "test_sharding.py", "test_demo.py")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SUBPROCESS_FILES:
            item.add_marker(pytest.mark.xdist_group("subprocesses"))


@pytest.fixture(autouse=True, scope="module")
def _drop_compiled_programs_after_each_module():
    yield
    jax.clear_caches()
    gc.collect()
