"""Test-wide settings: strict dtype promotion, rank promotion is an error, CPU only, and XLA
set to compile fast.

The suite compiles thousands of small programs whose run time is microseconds, so compilation
is nearly all of its cost. Two XLA settings cut it about four-fold, for the suite only (the
library, the benchmark and the demo keep XLA's defaults): XLA CPU's loop emitters instead of
its newer MLIR fusion emitters (``--xla_cpu_use_fusion_emitters=false``), and LLVM's
optimisation level 0 (``jax_disable_most_optimizations``). A third saves about a tenth more
CPU: each program's machine code is generated in one piece
(``--xla_cpu_parallel_codegen_split_count=1``) rather than split for threads, which two busy
workers on two cores cannot use anyway. The HLO passes (fusion, layout, algebraic
simplification) are the same; level 0 does not contract a multiply and an add into one fused
multiply-add as level 2 may, so a compiled result can differ from XLA's default in the last
bit, which every comparison's tolerance covers. Subprocesses started by the tests inherit all
three through the environment.

Compiled programs are dropped after each test module (``jax.clear_caches``), and within a
module whenever the worker holds more than ``RSS_LIMIT``: no program is shared across modules,
and keeping them all would grow the suite's memory with the registry.
"""

import ctypes
import fcntl
import gc
import json
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
for _flag in ("--xla_cpu_use_fusion_emitters=false", "--xla_cpu_parallel_codegen_split_count=1"):
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), _flag]).strip()

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


# Files whose tests start subprocesses (notebook kernels, 8 simulated devices, several
# processes, the demo command): under pytest-xdist they share one worker, one at a time.
SUBPROCESS_FILES = ("test_notebooks.py", "test_scaleout.py", "test_sharding.py", "test_demo.py")


# Files whose tests share one costly session fixture (a subprocess, a set of runs): each file's
# tests go to one worker, so the fixture is computed once.
FIXTURE_FILES = ("test_muon_scaleout.py", "test_second_order.py", "test_checkpoint_faults.py")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups off the items
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SUBPROCESS_FILES:
            item.add_marker(pytest.mark.xdist_group("subprocesses"))
        elif item.path.name in FIXTURE_FILES:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))


try:  # glibc's malloc_trim gives freed pages back to the system; elsewhere they stay
    _MALLOC_TRIM = getattr(ctypes.CDLL("libc.so.6"), "malloc_trim", None)
except OSError:
    _MALLOC_TRIM = None


def _drop_compiled_programs():
    jax.clear_caches()
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)  # so the next module starts small


# Within a module, the compiled programs are dropped when the worker holds more than this
# (a module of many registry entries would otherwise keep every entry's programs).
RSS_LIMIT = 1600 * 2**20


def _rss():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


@pytest.fixture(autouse=True, scope="module")
def _drop_compiled_programs_after_each_module():
    yield
    _drop_compiled_programs()


@pytest.fixture(autouse=True)
def _bound_the_memory():
    yield
    if _rss() > RSS_LIMIT:
        _drop_compiled_programs()


@pytest.fixture(scope="session")
def once_per_run(tmp_path_factory):
    """``once_per_run(name, compute)``: ``compute()`` (a JSON value) computed by one process of
    the run and read by the others; pytest-xdist workers share the run's base temp folder, and
    a lock file makes the others wait for the first."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent

    def get(name, compute):
        path = root / f"{name}.json"
        with open(root / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if path.exists():
                return json.loads(path.read_text())
            value = compute()
            path.write_text(json.dumps(value))
            return value

    return get
