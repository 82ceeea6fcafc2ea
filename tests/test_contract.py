"""Contract tests over every registry entry: the properties every transform must have.

The properties are folded so that one entry compiles four programs, whatever the number of
properties: a jitted step (traced once, reused by every loop below), one program holding the
scan and both vmaps, the per-value reference of the hyperparameter sweep, and the bfloat16 run.

- jit equals eager, over K steps;
- traced once: the jitted step serves every loop (K steps, the ensemble members, the zero
  gradients) without a retrace, and the state keeps its shapes and dtypes;
- scan equals the loop;
- vmap over an ensemble of parameters equals a loop over the members;
- vmap over a hyperparameter equals a loop over its values, and the value the entry is built
  with, given as a float32 array, gives the result of the Python number;
- bfloat16 parameters keep bfloat16 updates, parameters and slots, finite;
- zero gradients give finite updates;
- abstract init (``jax.eval_shape``) has the structure, shapes and dtypes of init;
- a transform that needs params says so when called without them.
"""

from __future__ import annotations

import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.registry import ENTRIES, NOT_TRANSFORMS, example_grads, example_params, is_state_class

K = 3
TOL = {"rtol": 1e-5, "atol": 1e-6}
IDS = [e.name for e in ENTRIES]
GRADS = [example_grads(i) for i in range(K)]
STACKED = jax.tree.map(lambda *g: jnp.stack(g), *GRADS)
ZEROS = jax.tree.map(jnp.zeros_like, example_params())

# Public modules whose names the registry must cover (besides the top level).
COVERED_MODULES = ("transforms", "schedules", "contrib")


def _spec(tree):
    return jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), tree)


def _steps(entry, tx, params, state, grads, update=None):
    """Apply ``grads`` one step at a time; returns (params, state, last updates)."""
    updates = None
    for g in grads:
        if update is None:
            updates, state = tx.update(g, state, params, **entry.extra_args)
            params = gradtx.apply_updates(params, updates)
        else:
            params, state, updates = update(params, state, g)
    return params, state, updates


def _scan(entry, tx, params, state, stacked):
    def body(carry, g):
        p, s = carry
        u, s = tx.update(g, s, p, **entry.extra_args)
        return (gradtx.apply_updates(p, u), s), None

    return jax.lax.scan(body, (params, state), stacked)[0]


def _sweep_values(entry):
    """The sweep's values, then the entry's own value when it is a Python number."""
    own = entry.kwargs.get(entry.sweep)
    values = list(entry.sweep_values)
    has_own = isinstance(own, int | float) and not isinstance(own, bool)
    return jnp.asarray(values + ([own] if has_own else []), jnp.float32), has_own


def _close(want, got, what):
    try:
        chex.assert_trees_all_close(want, got, **TOL)
    except AssertionError as e:
        raise AssertionError(f"{what}: {e}") from None


def _member(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_contract(entry):
    tx = entry.build()
    params = entry.params()
    state0 = tx.init(params)
    spec0 = _spec(state0)

    abstract = jax.eval_shape(tx.init, params)
    assert jax.tree.structure(abstract) == jax.tree.structure(state0), "abstract init structure"
    assert _spec(abstract) == spec0, "abstract init shapes or dtypes"

    if entry.needs_params:
        with pytest.raises(ValueError, match="params=None"):
            tx.update(GRADS[0], state0, None, **entry.extra_args)

    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(p, s, g):
        u, s = tx.update(g, s, p, **entry.extra_args)
        return gradtx.apply_updates(p, u), s, u

    def checked_step(p, s, g):
        p, s, u = step(p, s, g)
        assert _spec(s) == spec0, "the state changed shape or dtype after a step"
        return p, s, u

    eager = _steps(entry, tx, params, state0, GRADS)
    jitted = _steps(entry, tx, params, state0, GRADS, checked_step)
    _close(eager[:2], jitted[:2], "jit differs from eager")

    _, _, u0 = _steps(entry, tx, params, state0, [ZEROS, ZEROS], checked_step)
    for leaf in jax.tree.leaves(u0):
        assert bool(jnp.all(jnp.isfinite(leaf))), "zero gradients gave a non-finite update"

    members = [
        entry.wrap(jax.tree.map(lambda x, i=i: x * (1.0 + i), example_params())) for i in range(3)
    ]
    batched = jax.tree.map(lambda *x: jnp.stack(x), *members)
    values, has_own = _sweep_values(entry) if entry.sweep else (jnp.zeros((0,)), False)

    def run_value(v):
        t = entry.build(**{entry.sweep: v})
        return _steps(entry, t, params, t.init(params), GRADS)[:2]

    @jax.jit
    def together(params, state, batched, values):
        scanned = _scan(entry, tx, params, state, STACKED)
        ensemble = jax.vmap(lambda p: _scan(entry, tx, p, tx.init(p), STACKED))(batched)
        swept = jax.vmap(run_value)(values) if entry.sweep else None
        return scanned, ensemble, swept

    scanned, ensemble, swept = together(params, state0, batched, values)
    _close(jitted[:2], scanned, "scan differs from the loop")
    for i, m in enumerate(members):
        want = _steps(entry, tx, m, tx.init(m), GRADS, checked_step)[:2]
        _close(want, _member(ensemble, i), f"vmap over the ensemble, member {i}")

    if entry.sweep:
        reference = jax.jit(run_value)
        n = len(entry.sweep_values)
        for i in range(n):
            _close(reference(values[i]), _member(swept, i), f"vmap over {entry.sweep}, value {i}")
        if has_own:
            _close(jitted[:2], _member(swept, n), f"{entry.sweep} as an array vs a Python number")

    if entry.bf16_ok:
        _check_bfloat16(entry)


def _check_bfloat16(entry):
    params = entry.params(jnp.bfloat16)
    tx = entry.build()
    state = tx.init(params)
    if entry.sweep:  # a float32 hyperparameter array must not promote bf16 state
        tx = entry.build(**{entry.sweep: jnp.asarray(entry.sweep_values[-1], jnp.float32)})
    grads = [example_grads(i, jnp.bfloat16) for i in range(K + 1)]
    params, state, updates = jax.jit(lambda p, s: _steps(entry, tx, p, s, grads))(params, state)
    for leaf in jax.tree.leaves(updates) + jax.tree.leaves(params):
        assert leaf.dtype == jnp.bfloat16, f"bf16 params gave a {leaf.dtype} update or param"
    for leaf in jax.tree.leaves(state):
        assert leaf.dtype in (jnp.bfloat16, jnp.int32, jnp.float32, jnp.bool_), leaf.dtype
        if jnp.issubdtype(leaf.dtype, jnp.floating) and leaf.ndim > 0 and not entry.float32_slots:
            assert leaf.dtype == jnp.bfloat16, "a slot mirroring a bf16 parameter left bf16"
        assert bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32)))) or leaf.dtype == jnp.int32


def _public_names():
    names = {n: gradtx for n in gradtx.__all__}
    for mod_name in COVERED_MODULES:
        mod = getattr(gradtx, mod_name)
        names.update({n: mod for n in mod.__all__})
    return names


def test_registry_covers_api():
    registered = {e.factory.__name__ for e in ENTRIES}
    public = _public_names()
    states = {n for n, m in public.items() if is_state_class(getattr(m, n))}
    missing = set(public) - registered - set(NOT_TRANSFORMS) - states
    assert not missing, f"public names with no registry entry: {sorted(missing)}"
    stale = (registered | set(NOT_TRANSFORMS)) - set(public)
    assert not stale, f"registry names that gradtx does not export: {sorted(stale)}"
    for name, mod in public.items():
        assert hasattr(mod, name), name


def test_submodules_re_export_one_definition():
    """A name reachable from a submodule and the top level is the same object."""
    for mod_name in COVERED_MODULES:
        mod = getattr(gradtx, mod_name)
        for name in mod.__all__:
            if name in gradtx.__all__:
                assert getattr(mod, name) is getattr(gradtx, name), f"{mod_name}.{name}"
            obj = getattr(mod, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                assert obj.__module__.startswith("gradtx."), f"{mod_name}.{name}"


def test_apply_updates_keeps_dtype():
    params = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float32), "c": None}
    updates = {"a": jnp.full(3, 0.5, jnp.float32), "b": jnp.full(2, 0.25, jnp.float32), "c": None}
    new = gradtx.apply_updates(params, updates)
    assert new["a"].dtype == jnp.bfloat16 and new["b"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(new["a"], np.float32), 1.5)
    np.testing.assert_allclose(np.asarray(new["b"]), 1.25)
    assert new["c"] is None
