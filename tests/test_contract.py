"""Contract tests over every registry entry: the properties every transform must have.

The properties are folded so that one entry compiles ONE program, whatever the number of
properties. Every reference is computed op by op (``jax.disable_jit``: nothing compiled per
entry; eager operations are compiled once per shape and reused by every entry), and the one
jitted program holds everything that must be compiled to be tested:

- jit equals eager, over K steps;
- traced once: the step is a nested ``jax.jit`` under ``chex.assert_max_traces(n=1)`` called
  for the K steps, the zero gradients and the ensemble, so a state whose shapes, dtypes or
  weak types change after a step retraces and fails; the state keeps its shapes and dtypes;
- scan equals the loop;
- vmap over an ensemble of parameters equals a loop over the members;
- vmap over a hyperparameter equals a loop over its values, and the value the entry is built
  with, given as a float32 array, gives the result of the Python number;
- vmap over the same hyperparameter set in ``inject_hyperparams`` state (``tree_set``) equals
  optimizers built with each value;
- bfloat16 parameters keep bfloat16 updates, parameters and slots, finite;
- zero gradients give finite updates;
- jit equals eager on an irregular tree (None leaves, empty containers, 0-d and zero-size
  arrays, lists and NamedTuples) for entries that take any tree;
- abstract init (``jax.eval_shape``) has the structure, shapes and dtypes of init;
- a transform that needs params says so when called without them;
- elementwise transforms follow the same trajectory on the flat layout as on the tree.

The hypergradient of each entry (float64, against central differences) is checked op by op
in ``test_hypergradient``, in this module so that it shares the warm eager caches.
"""

from __future__ import annotations

import inspect
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.registry import (
    ELEMENTWISE,
    ENTRIES,
    NOT_TRANSFORMS,
    OPEN_GAPS,
    example_grads,
    example_params,
    is_state_class,
)

K = 3
TOL = {"rtol": 1e-5, "atol": 1e-6}
# A state with bfloat16 or float16 slots: a compiled program may keep a rounded slot's value in
# float32 between operations (XLA's allow_excess_precision), the op-by-op reference rounds it.
HALF_TOL = {"rtol": 2e-2, "atol": 1e-2}
IDS = [e.name for e in ENTRIES]
GRADS = [example_grads(i) for i in range(K)]
STACKED = jax.tree.map(lambda *g: jnp.stack(g), *GRADS)
ZEROS = jax.tree.map(jnp.zeros_like, example_params())
BF16_GRADS = [example_grads(i, jnp.bfloat16) for i in range(K + 1)]
BF16_STACKED = jax.tree.map(lambda *g: jnp.stack(g), *BF16_GRADS)
ELEMENTWISE_NAMES = {e.name for e in ELEMENTWISE}

# Public modules whose names the registry must cover (besides the top level).
COVERED_MODULES = ("transforms", "schedules", "contrib")


class Pair(NamedTuple):
    first: object
    second: object


def _irregular(seed):
    """A tree with every irregular feature: None, empty dict and tuple, 0-d, zero-size, list,
    NamedTuple."""
    rng = np.random.default_rng(seed)

    def a(*shape):
        return jnp.asarray(rng.uniform(-2.0, 2.0, size=shape), jnp.float32)

    return {
        "w": {"kernel": a(2, 3), "bias": None, "empty": {}},
        "b": [a(), a(0), ()],
        "block": Pair(a(3), Pair(a(2, 3), None)),
    }


IRREGULAR = _irregular(0)
IRREGULAR_GRADS = _irregular(1)


def _spec(tree):
    return jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), tree)


def _eager(fn, *args):
    """``fn(*args)`` op by op: no program is compiled for it."""
    with jax.disable_jit():
        return fn(*args)


def _steps(entry, tx, params, state, grads):
    """Apply ``grads`` one step at a time; returns (params, state, last updates)."""
    updates = None
    for g in grads:
        updates, state = tx.update(g, state, params, **entry.extra_args)
        params = gradtx.apply_updates(params, updates)
    return params, state, updates


def _scan(entry, tx, params, state, stacked, last=False):
    """``jax.lax.scan`` over the stacked gradients: (params, state), and the last updates."""

    def body(carry, g):
        p, s = carry
        u, s = tx.update(g, s, p, **entry.extra_args)
        return (gradtx.apply_updates(p, u), s), (u if last else None)

    (params, state), updates = jax.lax.scan(body, (params, state), stacked)
    return (params, state, jax.tree.map(lambda x: x[-1], updates)) if last else (params, state)


def _sweep_values(entry):
    """The sweep's values, then the entry's own value when it is a Python number."""
    own = entry.kwargs.get(entry.sweep)
    values = list(entry.sweep_values)
    has_own = isinstance(own, int | float) and not isinstance(own, bool)
    return jnp.asarray(values + ([own] if has_own else []), jnp.float32), has_own


def _injected(entry):
    """The entry's factory under ``inject_hyperparams``, its sweep hyperparameter in state."""
    kwargs = {**entry.kwargs, entry.sweep: entry.sweep_values[0]}
    static = tuple(k for k, v in kwargs.items() if callable(v) and k != entry.sweep)
    return gradtx.inject_hyperparams(entry.wraps or entry.factory, static_args=static)(**kwargs)


def _close(want, got, what, tol=None):
    """Equal to float32 rounding: relative 1e-5, absolute 1e-6 times the leaf's largest value
    (a compiled program may order its sums differently from the op-by-op reference)."""
    tol = tol or TOL
    want_leaves, got_leaves = jax.tree.leaves(want), jax.tree.leaves(got)
    assert jax.tree.structure(want) == jax.tree.structure(got), f"{what}: structures differ"
    for path, w, g in zip(_keys(want), want_leaves, got_leaves):
        w, g = np.asarray(w, np.float64), np.asarray(g, np.float64)
        scale = max(1.0, float(np.max(np.abs(w)))) if w.size and np.all(np.isfinite(w)) else 1.0
        try:
            np.testing.assert_allclose(g, w, rtol=tol["rtol"], atol=tol["atol"] * scale)
        except AssertionError as e:
            raise AssertionError(f"{what}, leaf {path}: {e}") from None


def _keys(tree):
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


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
            _eager(lambda: tx.update(GRADS[0], state0, None, **entry.extra_args))

    # ---- the references, op by op
    eager = _eager(_steps, entry, tx, params, state0, GRADS)
    members = [
        entry.wrap(jax.tree.map(lambda x, i=i: x * (1.0 + i), example_params())) for i in range(2)
    ]
    member_refs = [_eager(lambda m=m: _steps(entry, tx, m, tx.init(m), GRADS)[:2]) for m in members]
    values, has_own = _sweep_values(entry) if entry.sweep else (jnp.zeros((0,)), False)
    n = len(entry.sweep_values)

    def run_value(v):
        t = entry.build(**{entry.sweep: v})
        return _steps(entry, t, params, t.init(params), GRADS)[:2]

    value_refs = [_eager(run_value, values[i]) for i in range(n)] if entry.sweep else []
    inject = entry.sweep is not None and entry.name not in OPEN_GAPS
    injected = _injected(entry) if inject else None

    irregular = entry.any_tree and entry.params_fn is None
    if irregular:
        odd_state = tx.init(IRREGULAR)
        odd_ref = _eager(
            lambda: tx.update(IRREGULAR_GRADS, odd_state, IRREGULAR, **entry.extra_args)
        )

    bf16_params = entry.params(jnp.bfloat16) if entry.bf16_ok else None
    bf16_tx = tx
    if entry.bf16_ok and entry.sweep:  # a float32 hyperparameter array must not promote bf16
        bf16_tx = entry.build(**{entry.sweep: jnp.asarray(entry.sweep_values[-1], jnp.float32)})
    bf16_state = bf16_tx.init(bf16_params) if entry.bf16_ok else None

    # ---- traced once: the step's output state has the input's shapes, dtypes and weak types,
    # so a jitted step called on its own output never retraces (the jit cache key)
    after = jax.eval_shape(lambda s: tx.update(GRADS[0], s, params, **entry.extra_args)[1], state0)
    assert jax.tree.structure(after) == jax.tree.structure(state0), "a step changed the state"
    for path, a, b in _paths(state0, after):
        assert (a.shape, a.dtype, a.weak_type) == (b.shape, b.dtype, b.weak_type), (
            f"state leaf {path} is {b.dtype}{list(b.shape)} (weak_type={b.weak_type}) after a "
            f"step but {a.dtype}{list(a.shape)} (weak_type={a.weak_type}) at init: a jitted "
            "step would retrace every step"
        )
    zeros = _eager(_steps, entry, tx, params, state0, [ZEROS, ZEROS])
    for leaf in jax.tree.leaves(zeros[2]):
        assert bool(jnp.all(jnp.isfinite(leaf))), "zero gradients gave a non-finite update"

    # ---- the one compiled program: every loop is a scan, so each holds one copy of the step
    def run_value_scan(v):
        t = entry.build(**{entry.sweep: v})
        return _scan(entry, t, params, t.init(params), STACKED)

    def run_injected(v):
        state = gradtx.tree_set(injected.init(params), {f"hyperparams/{entry.sweep}": v})
        return _scan(entry, injected, params, state, STACKED)[0]

    @jax.jit
    def together(params, state, batched, values):
        out = {"scanned": _scan(entry, tx, params, state, STACKED)}
        out["ensemble"] = jax.vmap(lambda p: _scan(entry, tx, p, tx.init(p), STACKED))(batched)
        if entry.sweep:
            out["swept"] = jax.vmap(run_value_scan)(values)
        if inject:
            out["injected"] = jax.vmap(run_injected)(values[:n])
        if irregular:
            out["irregular"] = tx.update(IRREGULAR_GRADS, odd_state, IRREGULAR, **entry.extra_args)
        if entry.bf16_ok:
            out["bf16"] = _scan(entry, bf16_tx, bf16_params, bf16_state, BF16_STACKED, last=True)
        return out

    batched = jax.tree.map(lambda *x: jnp.stack(x), *members)
    out = together(params, state0, batched, values)

    assert _spec(out["scanned"][1]) == spec0, "the state changed shape or dtype after a step"
    _close(eager[:2], out["scanned"], "jit (a scan) differs from the eager loop")
    for i, want in enumerate(member_refs):
        _close(want, _member(out["ensemble"], i), f"vmap over the ensemble, member {i}")
    for i, want in enumerate(value_refs):
        _close(want, _member(out["swept"], i), f"vmap over {entry.sweep}, value {i}")
        if inject:
            _close(want[0], _member(out["injected"], i), f"vmap over injected {entry.sweep}, {i}")
    if has_own:
        _close(eager[:2], _member(out["swept"], n), f"{entry.sweep} as an array vs a Python number")
    if irregular:
        _check_irregular(odd_ref, out["irregular"])
    if entry.bf16_ok:
        _check_bfloat16(entry, *out["bf16"])
    if entry.name in ELEMENTWISE_NAMES:
        _check_flat(entry, tx, eager[0])


def _paths(want, got):
    flat_want = jax.tree_util.tree_flatten_with_path(want)[0]
    for (path, a), b in zip(flat_want, jax.tree.leaves(got)):
        yield jax.tree_util.keystr(path), jax.typeof(a), b


def _check_irregular(eager, jitted):
    """The irregular tree: jit equals eager, and the updates keep the gradients' structure."""
    is_none = lambda x: x is None  # noqa: E731
    assert jax.tree.structure(eager[0], is_leaf=is_none) == jax.tree.structure(
        IRREGULAR_GRADS, is_leaf=is_none
    ), "the updates lost the structure of an irregular tree"
    half = any(
        jnp.issubdtype(x.dtype, jnp.floating) and jnp.dtype(x.dtype).itemsize < 4
        for x in jax.tree.leaves(eager[1])
    )
    _close(eager, jitted, "irregular tree: jit differs from eager", HALF_TOL if half else None)


def _check_bfloat16(entry, params, state, updates):
    for leaf in jax.tree.leaves(updates) + jax.tree.leaves(params):
        assert leaf.dtype == jnp.bfloat16, f"bf16 params gave a {leaf.dtype} update or param"
    for leaf in jax.tree.leaves(state):
        assert leaf.dtype in (jnp.bfloat16, jnp.int32, jnp.float32, jnp.bool_), leaf.dtype
        if jnp.issubdtype(leaf.dtype, jnp.floating) and leaf.ndim > 0 and not entry.float32_slots:
            assert leaf.dtype == jnp.bfloat16, "a slot mirroring a bf16 parameter left bf16"
        assert bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32)))) or leaf.dtype == jnp.int32


def _check_flat(entry, tx, tree_params):
    """On the flat layout (one buffer per dtype) the trajectory is the tree's."""
    layout = gradtx.flat_layout(example_params())
    flat = layout.buffers

    def run():
        p, s = flat, tx.init(flat)
        for g in GRADS:
            u, s = tx.update(layout.pack(g), s, p, **entry.extra_args)
            p = gradtx.apply_updates(p, u)
        return p

    got = layout.unflatten(_eager(run))
    _close(tree_params, got, "the flat layout's trajectory differs from the tree's")


HYPER = ("learning_rate", "b1", "b2", "decay", "momentum", "weight_decay")
DIFFERENTIABLE = [
    e
    for e in ENTRIES
    if isinstance(e.kwargs.get("learning_rate"), int | float)
    and e.differentiable
    and e.name not in OPEN_GAPS
]


def _hyperparameters(entry):
    sig = inspect.signature(entry.wraps or entry.factory).parameters
    values = {n: entry.kwargs.get(n, sig[n].default if n in sig else None) for n in HYPER}
    return {n: float(v) for n, v in values.items() if isinstance(v, int | float)}


@pytest.mark.parametrize("entry", DIFFERENTIABLE, ids=[e.name for e in DIFFERENTIABLE])
def test_hypergradient(entry):
    """d(loss after 3 steps)/d(hyperparameter) equals a central difference, in float64 (three
    steps: the hyperparameter reaches the loss through the state as well as the update)."""
    rng = np.random.default_rng(0)
    a, y = rng.standard_normal((8, 4)), rng.standard_normal(8)
    with jax.enable_x64(True):
        data = jnp.asarray(a), jnp.asarray(y)
        w0 = {"w": jnp.asarray(rng.standard_normal(4)), "b": jnp.asarray(0.3)}
        loss = lambda p: 0.5 * jnp.mean((data[0] @ p["w"] + p["b"] - data[1]) ** 2)  # noqa: E731

        def loss_after(hyper):
            tx = entry.build(**hyper)
            params, state = w0, tx.init(w0)
            for _ in range(3):
                value, grads = jax.value_and_grad(loss)(params)
                # the objective's value where the entry takes it (Polyak and MoMo steps)
                extra = {k: value for k in ("value", "loss") if k in entry.extra_args}
                updates, state = tx.update(grads, state, params, **extra)
                params = gradtx.apply_updates(params, updates)
            return loss(params)

        hyper = {n: jnp.float64(v) for n, v in _hyperparameters(entry).items()}
        grads = _eager(jax.grad(loss_after), hyper)
        # every central difference in one batched op-by-op run: row 2i raises hyperparameter
        # i by h_i, row 2i+1 lowers it
        names = list(hyper)
        steps = np.asarray([1e-6 * max(abs(float(hyper[n])), 1e-2) for n in names])
        deltas = np.repeat(np.diag(steps), 2, axis=0) * np.tile([1.0, -1.0], len(names))[:, None]
        rows = {n: jnp.asarray(float(hyper[n]) + deltas[:, i]) for i, n in enumerate(names)}
        losses = np.asarray(_eager(jax.vmap(loss_after), rows))
        for i, (name, h) in enumerate(zip(names, steps)):
            f_up, f_down = losses[2 * i], losses[2 * i + 1]
            fd = (f_up - f_down) / (2 * h)
            # the difference's round-off: the loss after three steps (hundreds of operations)
            # carries about 1e-13 relative, divided by 2h
            roundoff = 1e-13 * max(abs(float(f_up)), 1.0) / (2 * h)
            assert np.isfinite(grads[name]), (name, grads[name])
            np.testing.assert_allclose(
                grads[name], fd, rtol=1e-4, atol=max(1e-9, roundoff), err_msg=name
            )


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
