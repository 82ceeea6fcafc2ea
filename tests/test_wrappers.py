"""apply_if_finite, zero_nans, skip_not_finite, skip_large_updates, flatten: against NumPy."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

NAN, INF = float("nan"), float("inf")


def test_apply_if_finite_skips_counts_and_gives_up():
    lr, mu, max_errors = 0.1, 0.9, 2
    tx = gradtx.apply_if_finite(gradtx.sgd(lr, momentum=mu), max_errors)
    grads = [1.0, NAN, 2.0, INF, NAN, -INF, 3.0]
    with jax.enable_x64(True):
        params = {"w": jnp.zeros(2), "masked": None, "empty": {}}
        state = tx.init(params)
        v = np.zeros(2)  # NumPy reference: heavy-ball velocity, counters of optax's rule
        run, total = 0, 0
        for g in grads:
            before = state.inner_state
            updates, state = tx.update({"w": jnp.full(2, g), "masked": None, "empty": {}}, state)
            finite = np.isfinite(g)
            run = 0 if finite else run + 1
            total += 0 if finite else 1
            if finite or run > max_errors:
                v = mu * v + g
                want = -lr * v
            else:
                want = np.zeros(2)
                chex.assert_trees_all_equal(state.inner_state, before)  # untouched
            np.testing.assert_array_equal(np.asarray(updates["w"]), want)
            assert updates["masked"] is None and updates["empty"] == {}
            assert int(state.notfinite_count) == run and int(state.total_notfinite) == total
            assert bool(state.last_finite) == finite
    # the third non-finite step in a row (run=3 > 2) was applied: the velocity is no longer finite
    assert not np.isfinite(v).any()


def test_apply_if_finite_agrees_across_shards():
    # a vmap axis stands in for a mesh axis: one shard's NaN must skip the step on every shard
    tx = gradtx.apply_if_finite(gradtx.sgd(1.0), 5, axis_name="d")
    shards = jnp.array([[1.0, 2.0], [NAN, 4.0]])

    def step(g):
        return tx.update({"w": g}, tx.init({"w": g}))[0]["w"]

    out = jax.vmap(step, axis_name="d")(shards)
    np.testing.assert_array_equal(np.asarray(out), 0.0)


def test_apply_if_finite_rejects_bad_inner_and_count():
    with pytest.raises(TypeError, match="inner is .* not a gradient transformation"):
        gradtx.apply_if_finite(gradtx.sgd, 3)
    with pytest.raises(ValueError, match=r"max_consecutive_errors=-1 is out of range"):
        gradtx.apply_if_finite(gradtx.sgd(0.1), -1)


def test_zero_nans():
    tx = gradtx.zero_nans()
    g = {"a": jnp.array([1.0, NAN, INF]), "b": jnp.array([[2.0]]), "n": None, "e": ()}
    state = tx.init(g)
    out, state = tx.update(g, state)
    ref = np.array([1.0, NAN, INF])
    np.testing.assert_array_equal(np.asarray(out["a"]), np.where(np.isnan(ref), 0.0, ref))
    np.testing.assert_array_equal(np.asarray(out["b"]), [[2.0]])
    assert bool(state.found_nan["a"]) and not bool(state.found_nan["b"])
    assert out["n"] is None and state.found_nan["n"] is None and out["e"] == ()


def test_skip_not_finite_and_skip_large_updates():
    g = {"a": jnp.array([3.0, NAN]), "b": jnp.array([INF, 1.0, -INF]), "n": None}
    skip, info = gradtx.skip_not_finite(g, jnp.int32(0), None)
    assert bool(skip) and int(info["num_not_finite"]) == 3 and bool(info["should_skip"])
    ok = {"a": jnp.array([3.0, 4.0]), "n": None}
    skip, info = gradtx.skip_not_finite(ok, 0, None)
    assert not bool(skip) and int(info["num_not_finite"]) == 0
    for limit, want in [(25.5, False), (25.0, True), (10.0, True)]:  # skip unless norm^2 < limit
        skip, info = gradtx.skip_large_updates(ok, 0, None, limit)
        assert bool(skip) == want
        np.testing.assert_allclose(float(info["norm_squared"]), 25.0)
    skip, _ = gradtx.skip_large_updates(g, 0, None, 1e30)  # a NaN norm is skipped
    assert bool(skip)


def _np_adam(grads, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
    m, v, out = np.zeros_like(grads[0]), np.zeros_like(grads[0]), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        out.append(-lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
    return out


def test_flatten_runs_inner_on_one_vector():
    rng = np.random.default_rng(0)
    shapes = {"w": (2, 3), "b": (3,), "s": ()}
    steps = [{k: rng.normal(size=s) for k, s in shapes.items()} for _ in range(3)]
    with jax.enable_x64(True):
        tx = gradtx.flatten(gradtx.adam(0.01))
        params = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3), "s": jnp.zeros(()), "n": None}
        state = tx.init(params)
        assert state[0].mu.shape == (10,)  # one concatenated vector: 6 + 3 + 1
        flat = [np.concatenate([np.ravel(g[k]) for k in ("b", "s", "w")]) for g in steps]
        want = _np_adam(flat)
        for g, w in zip(steps, want):
            grads = {k: jnp.asarray(v) for k, v in g.items()} | {"n": None}
            out, state = tx.update(grads, state, params)
            assert out["n"] is None
            got = np.concatenate([np.ravel(out[k]) for k in ("b", "s", "w")])
            np.testing.assert_allclose(got, w, rtol=1e-12)
            assert out["w"].shape == (2, 3) and out["s"].shape == ()


def test_flatten_mixed_dtypes_and_global_inner():
    tx = gradtx.flatten(gradtx.clip_by_global_norm(1.0))
    g = {"a": jnp.array([3.0], jnp.bfloat16), "b": jnp.array([4.0], jnp.float32)}
    out, _ = tx.update(g, tx.init(g))
    assert out["a"].dtype == jnp.bfloat16 and out["b"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out["b"]), [0.8], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(out["a"], np.float32), [0.6], rtol=1e-2)
    empty = gradtx.flatten(gradtx.adam(0.1))
    assert empty.update({}, empty.init({}))[0] == {}


NESTED = [  # every transform of this family, on a tree with None leaves and empty subtrees
    (gradtx.apply_if_finite, lambda: {"inner": gradtx.adam(0.1), "max_consecutive_errors": 2}),
    (gradtx.zero_nans, dict),
    (gradtx.flatten, lambda: {"inner": gradtx.sgd(0.1, momentum=0.9)}),
    (gradtx.average_params, lambda: {"decay": 0.5, "mode": "swa"}),
    (gradtx.monitor, dict),
    (gradtx.snapshot, lambda: {"measure_name": "m", "measure": gradtx.global_norm}),
    (gradtx.clip_by_block_rms, lambda: {"threshold": 0.3}),
    (gradtx.adaptive_grad_clip, lambda: {"clipping": 0.01}),
    (gradtx.centralize, dict),
    (gradtx.normalize_by_update_norm, dict),
]


def _nested(scale):
    return {
        "a": jnp.arange(6.0).reshape(2, 3) * scale - 2.0,
        "masked": None,
        "empty": {},
        "deep": {"b": jnp.array([1.0, -3.0]) * scale, "none": None, "t": ()},
    }


@pytest.mark.parametrize("factory,kwargs", NESTED, ids=[f.__name__ for f, _ in NESTED])
def test_nested_tree_jit_eager_batched(factory, kwargs):
    tx = factory(**kwargs())
    params = _nested(1.0)

    def run(p):
        state = tx.init(p)
        outs = []
        for i in range(3):
            g = jax.tree.map(lambda x, i=i: x * (0.5 - i) + 0.1, p)
            u, state = tx.update(g, state, p)
            outs.append(u)
        return outs, state

    eager = run(params)
    assert eager[0][0]["masked"] is None and eager[0][0]["empty"] == {}
    chex.clear_trace_counter()
    jitted = jax.jit(chex.assert_max_traces(run, n=1))
    chex.assert_trees_all_close(eager, jitted(params), rtol=1e-5)
    chex.assert_trees_all_close(eager, jitted(params), rtol=1e-5)  # no retrace
    members = [_nested(1.0), _nested(2.0)]
    batched = jax.vmap(run)(jax.tree.map(lambda *x: jnp.stack(x), *members))
    for i, m in enumerate(members):
        chex.assert_trees_all_close(run(m), jax.tree.map(lambda x, i=i: x[i], batched), rtol=1e-5)
