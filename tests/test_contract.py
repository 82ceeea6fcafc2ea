"""Contract tests over every registry entry: the properties every transform must have."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.registry import (
    ENTRIES,
    NOT_TRANSFORMS,
    example_grads,
    example_params,
    is_state_class,
)

IDS = [e.name for e in ENTRIES]
SWEEPABLE = [e for e in ENTRIES if e.sweep]


def _run(entry, tx, params, state, steps, start=0, dtype=jnp.float32):
    for i in range(start, start + steps):
        grads = example_grads(i, dtype)
        updates, state = tx.update(grads, state, params, **entry.extra_args)
        params = gradtx.apply_updates(params, updates)
    return params, state


def test_registry_covers_api():
    registered = {e.factory.__name__ for e in ENTRIES}
    public = set(gradtx.__all__)
    states = {n for n in public if is_state_class(getattr(gradtx, n))}
    missing = public - registered - set(NOT_TRANSFORMS) - states
    assert not missing, f"public names with no registry entry: {sorted(missing)}"
    stale = (registered | set(NOT_TRANSFORMS)) - public
    assert not stale, f"registry names that gradtx does not export: {sorted(stale)}"
    for name in public:
        assert hasattr(gradtx, name), name


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_jit_equals_eager(entry):
    tx = entry.build()
    params = entry.params()
    eager = _run(entry, tx, params, tx.init(params), 3)
    jit_tx = gradtx.GradientTransformation(jax.jit(tx.init), jax.jit(tx.update))
    jitted = _run(entry, jit_tx, params, jit_tx.init(params), 3)
    chex.assert_trees_all_close(eager, jitted, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_traced_once_and_state_stable(entry):
    chex.clear_trace_counter()
    tx = entry.build()
    params = entry.params()
    state = tx.init(params)
    spec0 = jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), state)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params, **entry.extra_args)
        return gradtx.apply_updates(params, updates), state

    for i in range(4):
        params, state = step(params, state, example_grads(i))
        spec = jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), state)
        assert spec == spec0, f"state changed shape or dtype at step {i}"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_scan_equals_loop(entry):
    tx = entry.build()
    params = entry.params()
    loop = _run(entry, tx, params, tx.init(params), 4)
    grads = jax.tree.map(lambda *g: jnp.stack(g), *[example_grads(i) for i in range(4)])

    def body(carry, g):
        p, s = carry
        u, s = tx.update(g, s, p, **entry.extra_args)
        return (gradtx.apply_updates(p, u), s), None

    scanned, _ = jax.lax.scan(body, (params, tx.init(params)), grads)
    chex.assert_trees_all_close(loop, scanned, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_vmap_over_ensemble_equals_loop(entry):
    tx = entry.build()
    members = [
        entry.wrap(jax.tree.map(lambda x, i=i: x * (1.0 + i), example_params())) for i in range(3)
    ]
    batched = jax.tree.map(lambda *x: jnp.stack(x), *members)

    def run(p):
        return _run(entry, tx, p, tx.init(p), 3)

    loop_run = jax.jit(run)  # one compilation serves every member of the loop
    want = [loop_run(p) for p in members]
    got = jax.jit(jax.vmap(run))(batched)
    for i, w in enumerate(want):
        chex.assert_trees_all_close(w, jax.tree.map(lambda x, i=i: x[i], got), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("entry", SWEEPABLE, ids=[e.name for e in SWEEPABLE])
def test_vmap_over_hyperparameter_equals_loop(entry):
    params = entry.params()

    def run(value):
        tx = entry.build(**{entry.sweep: value})
        return _run(entry, tx, params, tx.init(params), 3)

    values = jnp.asarray(entry.sweep_values, jnp.float32)
    got = jax.jit(jax.vmap(run))(values)
    for i, v in enumerate(entry.sweep_values):
        want = run(v)
        chex.assert_trees_all_close(
            want, jax.tree.map(lambda x, i=i: x[i], got), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.bf16_ok], ids=lambda e: e.name)
def test_bfloat16_stays_bfloat16(entry):
    tx = entry.build()
    params = entry.params(jnp.bfloat16)
    state = tx.init(params)
    if entry.sweep:  # a float32 hyperparameter array must not promote bf16 state
        tx = entry.build(**{entry.sweep: jnp.asarray(entry.sweep_values[-1], jnp.float32)})
    params, state = _run(entry, tx, params, state, 3, dtype=jnp.bfloat16)
    grads = example_grads(5, jnp.bfloat16)
    updates, _ = tx.update(grads, state, params, **entry.extra_args)
    for leaf in jax.tree.leaves(updates) + jax.tree.leaves(params):
        assert leaf.dtype == jnp.bfloat16
    for leaf in jax.tree.leaves(state):
        assert leaf.dtype in (jnp.bfloat16, jnp.int32, jnp.float32, jnp.bool_), leaf.dtype
        if jnp.issubdtype(leaf.dtype, jnp.floating) and leaf.ndim > 0:
            assert leaf.dtype == jnp.bfloat16, "a slot mirroring a bf16 parameter left bf16"
        assert bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32)))) or leaf.dtype == jnp.int32


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_zero_gradients_give_finite_updates(entry):
    tx = entry.build()
    params = entry.params()
    state = tx.init(params)
    zeros = jax.tree.map(jnp.zeros_like, example_params())
    for _ in range(2):
        updates, state = tx.update(zeros, state, params, **entry.extra_args)
        for leaf in jax.tree.leaves(updates):
            assert bool(jnp.all(jnp.isfinite(leaf)))


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_abstract_init(entry):
    tx = entry.build()
    params = entry.params()
    abstract = jax.eval_shape(tx.init, params)
    concrete = tx.init(params)
    assert jax.tree.structure(abstract) == jax.tree.structure(concrete)
    for a, c in zip(jax.tree.leaves(abstract), jax.tree.leaves(concrete)):
        assert a.shape == jnp.shape(c) and a.dtype == jnp.result_type(c)


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.needs_params], ids=lambda e: e.name)
def test_params_required(entry):
    tx = entry.build()
    params = entry.params()
    with pytest.raises(ValueError, match="params=None"):
        tx.update(example_grads(0), tx.init(params), None, **entry.extra_args)


def test_apply_updates_keeps_dtype():
    params = {"a": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2, jnp.float32), "c": None}
    updates = {"a": jnp.full(3, 0.5, jnp.float32), "b": jnp.full(2, 0.25, jnp.float32), "c": None}
    new = gradtx.apply_updates(params, updates)
    assert new["a"].dtype == jnp.bfloat16 and new["b"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(new["a"], np.float32), 1.5)
    np.testing.assert_allclose(np.asarray(new["b"]), 1.25)
    assert new["c"] is None
