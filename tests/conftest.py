"""Test-wide settings: strict dtype promotion, rank promotion is an error, CPU only, and XLA
set to compile fast.

The suite compiles thousands of small programs whose run time is microseconds, so compilation
is nearly all of its cost. Two XLA settings cut it about four-fold, for the suite only (the
library, the benchmark and the demo keep XLA's defaults): XLA CPU's loop emitters instead of its
newer MLIR fusion emitters (``--xla_cpu_use_fusion_emitters=false``), and LLVM's optimisation
level 0 (``jax_disable_most_optimizations``). Neither changes what is computed: the HLO passes
(fusion, layout, algebraic simplification) are the same, and without fast-math flags LLVM does
not reorder floating-point arithmetic at any level. Subprocesses started by the tests inherit
both through the environment.

Compiled programs are dropped after each test module (``jax.clear_caches``): no program is
shared across modules, and keeping them all would grow the suite's memory with the registry.
"""

import gc
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(
        [os.environ.get("XLA_FLAGS", ""), "--xla_cpu_use_fusion_emitters=false"]
    ).strip()

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
