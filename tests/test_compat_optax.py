"""The optax dialect: ``import gradtx.compat.optax as optax`` behaves like optax 0.2.8.

- The committed name list (``gradtx/compat/optax/_names.py``) is optax's, when optax is
  installed; the test prints how many names the dialect has and which it lacks.
- Every name in a registry module's ``OPTAX_CASES`` is run in optax and in the dialect for
  ``steps`` steps on a small tree, in float64 (to ``rtol``) and float32 (to float32 rounding),
  and every step's updates must agree; schedules are compared value by value.
- Every transform or schedule the dialect exports has a case, or is listed below with the
  reason it is checked elsewhere.

optax 0.2.8 fails under strict dtype promotion, so optax runs with standard promotion here.
"""

from __future__ import annotations

import importlib
import types
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx.compat.optax as dialect
from gradtx.compat.optax import _dialect, _names
from tests.registry import OPTAX_CASES

optax = pytest.importorskip("optax")

MODULES = (
    "",
    "contrib",
    "losses",
    "microbatching",
    "projections",
    "schedules",
    "second_order",
    "transforms",
    "tree",
    "tree_utils",
)
# Dialect names without an OPTAX_CASE, and where they are checked instead.
CHECKED_ELSEWHERE = {
    # per-example gradients (a leading batch axis per leaf) do not fit this file's tree
    "dpsgd": "test_privacy compares with optax on per-example gradients",
    "differentially_private_aggregate": "test_privacy compares with optax",
    "per_example_layer_norm_clip": "test_privacy compares with optax",
    "nnls": "test_optax_names compares with optax and scipy",
    "multi_normal": "test_optax_names compares with optax",
    "inject_hyperparams": "test_hyperparams (optax parity of injected Adam)",
    "lookahead": "test_averaging compares with optax.lookahead",
    "flatten": "test_wrappers compares with optax.flatten",
    "apply_if_finite": "test_wrappers",
    "MultiSteps": "case below and test_accumulate",
    "conditionally_transform": "test_accumulate",
    "apply_every": "test_accumulate",
    "snapshot": "test_monitoring",
    "monitor": "test_monitoring",
    "measure_with_ema": "test_monitoring",
    "reduce_on_plateau": "test_plateau compares with optax.contrib.reduce_on_plateau",
    "named_chain": "test_combine",
    "chain": "every case composes chains",
    "stateless": "test_base",
    "identity": "trivial",
    "freeze": "test_combine (tree and function masks)",
    "selective_transform": "test_combine",
    "per_example_global_norm_clip": "test_clipping",
    "skip_large_updates": "test_wrappers",
    "skip_not_finite": "test_wrappers",
    "sgdr_schedule": "test_schedules compares every schedule with optax",
    "join_schedules": "test_schedules",
    "apply_updates": "a function; test_contract and every parity case apply updates",
    "global_norm": "test_tree (against NumPy)",
    "incremental_update": "test_averaging",
    "periodic_update": "test_averaging",
    "safe_increment": "test_tree",
    "optimistic_adam": "test_zoo_misc (optax's warns DeprecationWarning when built)",
    "scale_by_distance_over_gradients": "test_zoo_misc (optax's needs rank promotion)",
    "schedule_free_eval_params": "test_paramfree compares it with optax's",
    "scale_by_muon": "test_muon compares with optax.contrib.scale_by_muon on matrices",
    "microbatch": "test_microbatching compares gradtx.microbatching with optax's",
    "bias_correction": "test_tree_module (against optax.tree)",
    "update_moment": "test_tree_module (against optax.tree)",
    "update_infinity_moment": "test_tree_module (against optax.tree)",
    "update_moment_per_elem_norm": "test_tree_module (against optax.tree)",
    "init_empty_state": "test_numerics",
    "safe_int32_increment": "test_numerics",
    "safe_norm": "test_numerics (against optax)",
    "safe_root_mean_squares": "test_numerics (against optax)",
    "scale_gradient": "test_numerics",
    "stateless_with_tree_map": "test_numerics",
    "with_extra_args_support": "test_numerics (with optax's scale)",
    "power_iteration": "test_second_order (the known largest eigenvalue)",
    "value_and_grad_from_state": "test_second_order (no re-evaluation after the line search)",
}


def _optax_module(module):
    return importlib.import_module("optax" + (f".{module}" if module else ""))


def _dialect_module(module):
    return importlib.import_module("gradtx.compat.optax" + (f".{module}" if module else ""))


def _resolve(root, path):
    module, _, name = path.rpartition(":")
    return getattr(root(module), name.split("#")[0]), module, name.split("#")[0]


@pytest.mark.parametrize("module", MODULES)
def test_committed_names_are_optax_names(module):
    mod = _optax_module(module)
    listed = set(_names.NAMES[module])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # optax's deprecated aliases
        public = {
            n
            for n in (set(mod.__all__) if hasattr(mod, "__all__") and module else set())
            | (set(dir(mod)) if not module or not hasattr(mod, "__all__") else set())
            | set(getattr(mod, "__all__", ()))
            if not n.startswith("_") and not isinstance(getattr(mod, n), types.ModuleType)
        }
    if module in ("tree_utils",):  # its dir() also shows the helper modules' imports
        public = {n for n in public if n.startswith("tree_") or n == "NamedTupleKey"}
    assert listed == public, f"regenerate gradtx/compat/optax/_names.py: {sorted(listed ^ public)}"
    have = _dialect_module(module).__all__
    missing = _dialect.missing(module)
    print(f"optax.{module or '<top>'}: dialect has {len(have)} of {len(listed)}; lacks {missing}")
    assert set(have) | set(missing) == listed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # optax's deprecated aliases
        for name in have:
            assert hasattr(mod, name)


def _tree(dtype, scalar_leaf=True):
    k = jax.random.split(jax.random.PRNGKey(3), 3)
    tree = {
        "w": jax.random.normal(k[0], (3, 2), dtype),
        "b": jax.random.normal(k[1], (2,), dtype),
        "s": jnp.asarray(0.3, dtype),
    }
    if not scalar_leaf:
        del tree["s"]
    return tree


def _grads(i, dtype, scalar_leaf=True):
    g = jax.tree.map(lambda x: jnp.sin(3.0 * x + 0.7 * i) + 0.1 * i, _tree(dtype, scalar_leaf))
    return jax.tree.map(lambda x: x.astype(dtype), g)


# A transform's float64 run follows ``case.steps`` steps bit for bit (TRANSFORM_STEPS by
# default: past the first steps' bias corrections and warm-ups); the float32 run checks dtype
# handling and rounding, for which FLOAT32_STEPS suffice. A schedule is compared at counts
# 0..``case.steps`` (SCHEDULE_COUNTS by default).
TRANSFORM_STEPS = 6
FLOAT32_STEPS = 3
SCHEDULE_COUNTS = 10


def _trajectory(tx, case, dtype):
    """The updates of the case's steps (at most ``FLOAT32_STEPS`` in float32), op by op
    (``jax.disable_jit``): a ``lax.cond`` or ``while_loop`` inside either library would
    otherwise compile its body at every step."""
    params = _tree(dtype, case.scalar_leaf)
    out = []
    steps = case.steps or TRANSFORM_STEPS
    steps = steps if dtype == jnp.float64 else min(steps, FLOAT32_STEPS)
    with jax.disable_jit():
        state = tx.init(params)
        for i in range(steps):
            grads = _grads(i, dtype, case.scalar_leaf)
            updates, state = tx.update(grads, state, params, **case.extra_args)
            params = jax.tree.map(lambda p, u: (p + u).astype(p.dtype), params, updates)
            out.append(updates)
    return out


@pytest.mark.parametrize("path", sorted(OPTAX_CASES), ids=sorted(OPTAX_CASES))
def test_dialect_matches_optax(path):
    case = OPTAX_CASES[path]
    theirs, module, name = _resolve(_optax_module, path)
    ours = getattr(_dialect_module(module), name, None)
    assert ours is not None, f"the dialect lacks {path}"

    def kwargs(lib):
        return case.kwargs(lib) if callable(case.kwargs) else case.kwargs

    with jax.numpy_dtype_promotion("standard"):
        if case.kind == "schedule":
            with jax.enable_x64(True):
                counts = jnp.arange((case.steps or SCHEDULE_COUNTS) + 1)
                want = np.asarray([theirs(*case.args, **kwargs(optax))(c) for c in counts])
                got = np.asarray([ours(*case.args, **kwargs(dialect))(c) for c in counts])
            np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol)
            return
        runs = [(jnp.float64, case.rtol, case.atol)] + [(jnp.float32, 2e-5, 1e-6)] * case.float32
        for dtype, rtol, atol in runs:
            with jax.enable_x64(dtype == jnp.float64):
                want = _trajectory(theirs(*case.args, **kwargs(optax)), case, dtype)
                got = _trajectory(ours(*case.args, **kwargs(dialect)), case, dtype)
                for step, (w, g) in enumerate(zip(want, got)):
                    try:
                        chex.assert_trees_all_close(g, w, rtol=rtol, atol=atol)
                    except AssertionError as e:
                        raise AssertionError(
                            f"{path}, {dtype.__name__}, step {step}: {e}"
                        ) from None


def test_every_dialect_transform_has_a_case():
    """A dialect transform or schedule without a parity case is listed with its reason."""
    cased = {p.split(":")[-1].split("#")[0] for p in OPTAX_CASES}
    lacking = []
    for module in ("", "contrib", "schedules", "transforms"):
        for name in _dialect_module(module).__all__:
            obj = getattr(_dialect_module(module), name)
            if not callable(obj) or isinstance(obj, type) or name[0].isupper():
                continue
            if name in cased or name in CHECKED_ELSEWHERE:
                continue
            lacking.append(f"{module or 'optax'}.{name}")
    # tree functions and losses are compared in their own tests
    # (the top-level losses: tests/test_losses.py::test_dialect_losses_equal_optax)
    losses = set(importlib.import_module("gradtx.losses").__all__)
    lacking = [n for n in lacking if not n.startswith("optax.tree_") and n[6:] not in losses]
    assert not lacking, f"dialect names with no parity case: {sorted(lacking)}"


def test_one_line_switch_runs_an_optax_program():
    """An optax-style program with the import switched trains as the optax one does."""

    def program(opt_module):
        params = {"w": jnp.ones(3), "b": jnp.zeros(())}
        tx = opt_module.chain(
            opt_module.clip_by_global_norm(1.0),
            opt_module.rmsprop(opt_module.exponential_decay(0.1, 5, 0.5)),
        )
        state = tx.init(params)
        for i in range(8):
            grads = jax.tree.map(lambda p, i=i: 2 * p + 0.1 * i, params)
            updates, state = tx.update(grads, state, params)
            params = opt_module.apply_updates(params, updates)
        return params

    with jax.numpy_dtype_promotion("standard"):
        chex.assert_trees_all_close(program(dialect), program(optax), rtol=1e-5, atol=1e-7)
