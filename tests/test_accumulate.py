"""Gradient accumulation (MultiSteps, apply_every) and conditionally_transform."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def params_tree():
    """A nested tree with a None leaf and an empty subtree."""
    return {
        "a": jnp.asarray([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]),
        "b": None,
        "c": {},
        "d": [jnp.asarray([0.25, -0.75])],
    }


def grads(step):
    key = jax.random.fold_in(jax.random.PRNGKey(11), step)
    ka, kd = jax.random.split(key)
    return {
        "a": jax.random.normal(ka, (2, 3)),
        "b": None,
        "c": {},
        "d": [jax.random.normal(kd, (2,))],
    }


def np_leaves(tree):
    return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


def np_adam_step(m, v, g, t, lr, b1=0.9, b2=0.999, eps=1e-8):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    return -lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps), m, v


def test_multisteps_k_steps_equal_one_step_on_the_mean_gradient():
    k, lr = 3, 0.1
    ms = gradtx.MultiSteps(gradtx.adam(lr), every_k_schedule=k)
    params = params_tree()
    state = ms.init(params)
    init_inner = state.inner_opt_state
    m = v = [np.zeros_like(x) for x in np_leaves(params)]
    for i in range(2 * k):
        updates, new_state = ms.update(grads(i), state, params)
        mini = i % k
        got_mean = np_leaves(new_state.acc_grads)
        if mini < k - 1:
            assert all(np.all(u == 0) for u in np_leaves(updates))
            chex.assert_trees_all_equal(new_state.inner_opt_state, state.inner_opt_state)
            want_mean = [
                np.mean([np_leaves(grads(j))[n] for j in range(i - mini, i + 1)], 0)
                for n in range(2)
            ]
            for got, want in zip(got_mean, want_mean):
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
            assert not bool(ms.has_updated(new_state))
        else:
            t = i // k + 1
            mean = [
                np.mean([np_leaves(grads(j))[n] for j in range(i - k + 1, i + 1)], 0)
                for n in range(2)
            ]
            steps = [np_adam_step(m[n], v[n], mean[n], t, lr) for n in range(2)]
            m, v = [s[1] for s in steps], [s[2] for s in steps]
            for got, (want, _, _) in zip(np_leaves(updates), steps):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
            assert all(np.all(a == 0) for a in got_mean)
            assert bool(ms.has_updated(new_state)) and int(new_state.gradient_step) == t
        assert updates["b"] is None and updates["c"] == {}
        assert int(new_state.mini_step) == (i + 1) % k
        state = new_state
    assert int(jax.tree.leaves(init_inner)[0]) == 0


def test_multisteps_sum_schedule_and_skip():
    ms = gradtx.MultiSteps(gradtx.sgd(1.0), lambda step: jnp.where(step < 1, 1, 2), False)
    params = params_tree()
    state = ms.init(params)
    outs = []
    for i in range(5):
        u, state = ms.update(grads(i), state, params)
        outs.append(np_leaves(u))
    np.testing.assert_allclose(outs[0][0], -np_leaves(grads(0))[0], rtol=1e-6)  # k = 1 first
    assert np.all(outs[1][0] == 0)
    want = -(np_leaves(grads(1))[0] + np_leaves(grads(2))[0])  # then k = 2, summed
    np.testing.assert_allclose(outs[2][0], want, rtol=1e-6, atol=1e-7)

    def skip_not_finite(updates, gradient_step, params):
        bad = sum(jnp.sum(~jnp.isfinite(x)) for x in jax.tree.leaves(updates))
        return bad > 0, {"num_not_finite": bad}

    ms = gradtx.MultiSteps(gradtx.adam(0.1), 2, should_skip_update_fn=skip_not_finite)
    state = ms.init(params)
    u, state = ms.update(grads(0), state, params)
    nan = jax.tree.map(lambda g: g * jnp.nan, grads(1))
    u, skipped = ms.update(nan, state, params)
    assert int(skipped.skip_state["num_not_finite"]) == 8
    assert all(np.all(x == 0) for x in np_leaves(u))
    chex.assert_trees_all_equal(skipped._replace(skip_state=()), state._replace(skip_state=()))
    u_after_skip, _ = ms.update(grads(1), skipped, params)
    u_direct, _ = ms.update(grads(1), state, params)
    chex.assert_trees_all_close(u_after_skip, u_direct)


def test_apply_every_emits_the_sum_every_k():
    tx = gradtx.apply_every(3)
    state = tx.init(params_tree())
    for i in range(6):
        u, state = tx.update(grads(i), state)
        if i % 3 == 2:
            want = sum(np_leaves(grads(j))[0] for j in range(i - 2, i + 1))
            np.testing.assert_allclose(u["a"], want, rtol=1e-6, atol=1e-7)
        else:
            assert np.all(np.asarray(u["a"]) == 0) and np.all(np.asarray(u["d"][0]) == 0)
        assert u["b"] is None and int(state.count) == (i + 1) % 3


def test_conditionally_transform_runs_inner_only_when_told():
    tx = gradtx.conditionally_transform(gradtx.trace(0.5), lambda step: step % 2 == 0)
    state = tx.init(params_tree())
    trace = 0.0
    for i in range(4):
        g = np_leaves(grads(i))[0]
        u, state = tx.update(grads(i), state)
        if i % 2 == 0:
            trace = 0.5 * trace + g
            np.testing.assert_allclose(u["a"], trace, rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(u["a"], grads(i)["a"])
        np.testing.assert_allclose(state.inner_state.trace["a"], trace, rtol=1e-6, atol=1e-7)
    assert int(state.step) == 4
    fwd = gradtx.conditionally_transform(
        gradtx.scale(2.0), lambda step, loss: loss < 1.0, forward_extra_args=True
    )
    s = fwd.init(params_tree())
    np.testing.assert_allclose(fwd.update(grads(0), s, loss=0.5)[0]["a"], 2 * grads(0)["a"])
    np.testing.assert_allclose(fwd.update(grads(0), s, loss=2.0)[0]["a"], grads(0)["a"])


@pytest.mark.parametrize(
    "make",
    [
        lambda: gradtx.MultiSteps(gradtx.adam(0.1), 2).gradient_transformation(),
        lambda: gradtx.apply_every(2),
        lambda: gradtx.conditionally_transform(gradtx.adam(0.1), lambda s: s % 2 == 1),
    ],
    ids=["MultiSteps", "apply_every", "conditionally_transform"],
)
def test_jit_equals_eager_traced_once_and_ensemble(make):
    tx = make()
    params = params_tree()

    def run(p, scale, step_fn):
        s, outs = tx.init(p), []
        for i in range(4):
            u, s = step_fn(jax.tree.map(lambda g: g * scale, grads(i)), s, p)
            outs.append(u)
        return outs

    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def jitted(g, s, p):
        return tx.update(g, s, p)

    eager = run(params, 1.0, tx.update)
    chex.assert_trees_all_close(eager, run(params, 1.0, jitted), rtol=1e-6, atol=1e-7)
    member = lambda c: run(jax.tree.map(lambda x: x * c, params), c, tx.update)
    batched = jax.vmap(member)(jnp.asarray([1.0, 3.0]))
    for j, c in enumerate([1.0, 3.0]):
        want = member(c)
        chex.assert_trees_all_close(want, jax.tree.map(lambda x, j=j: x[j], batched), rtol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match=r"every_k_schedule=0 is out of range"):
        gradtx.MultiSteps(gradtx.sgd(0.1), 0)
    with pytest.raises(ValueError, match=r"every_k_schedule=2.5 is not a whole number"):
        gradtx.MultiSteps(gradtx.sgd(0.1), 2.5)
    with pytest.raises(TypeError, match="not a gradient transformation"):
        gradtx.MultiSteps(gradtx.sgd, 2)
    with pytest.raises(ValueError, match=r"k=0 is out of range"):
        gradtx.apply_every(0)
    with pytest.raises(TypeError, match="lambda step: step % 2 == 0"):
        gradtx.conditionally_transform(gradtx.sgd(0.1), True)
    ms = gradtx.MultiSteps(gradtx.sgd(0.1), 2, should_skip_update_fn=lambda u, s, p: (1.0, ()))
    with pytest.raises(ValueError, match="expected a bool scalar"):
        ms.update(grads(0), ms.init(params_tree()), params_tree())
