"""inject_hyperparams, tree_get/tree_set, sweeps over injected state, and hypergradients."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.registry import example_grads, example_params


def _np_adam(w, grads, lrs, b1s, b2=0.999, eps=1e-8):
    """Adam in NumPy float64 (Kingma and Ba, Algorithm 1), hyperparameters per step."""
    m, v, out = np.zeros_like(w), np.zeros_like(w), []
    for t, (g, lr, b1) in enumerate(zip(grads, lrs, b1s), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        out.append(w)
    return out


def test_stored_dtypes_and_static_arguments():
    tx = gradtx.inject_hyperparams(gradtx.sgd)(
        learning_rate=0.1, momentum=jnp.asarray(0.9, jnp.bfloat16), nesterov=True
    )
    hp = tx.init({"w": jnp.ones(3)}).hyperparams
    assert set(hp) == {"learning_rate", "momentum"}  # nesterov (a bool) is static
    assert hp["learning_rate"].dtype == jnp.float32 and hp["momentum"].dtype == jnp.bfloat16
    rss = gradtx.inject_hyperparams(gradtx.scale_by_rss)(initial_accumulator_value=1)
    assert rss.init({"w": jnp.ones(3)}).hyperparams["initial_accumulator_value"].dtype == jnp.int32
    with jax.enable_x64(True):
        tx64 = gradtx.inject_hyperparams(gradtx.adam, hyperparam_dtype=jnp.float64)(b1=0.5)
        assert tx64.init({"w": jnp.ones(3)}).hyperparams["b1"].dtype == jnp.float64


def test_positional_arguments_bound_through_the_signature():
    """As optax: inject_hyperparams(sgd)(0.1, 0.9) names 0.1 learning_rate and 0.9 momentum."""
    tx = gradtx.inject_hyperparams(gradtx.sgd)(0.1, 0.9, nesterov=True)
    state = tx.init({"w": jnp.ones(2)})
    assert set(state.hyperparams) == {"learning_rate", "momentum"}
    np.testing.assert_allclose(float(state.hyperparams["momentum"]), 0.9, rtol=1e-7)
    updates, _ = tx.update({"w": jnp.ones(2)}, state)
    np.testing.assert_allclose(np.asarray(updates["w"]), -0.1 * (1 + 0.9), rtol=1e-6)


def test_tree_get_default_for_a_missing_name():
    state = gradtx.adam(0.1).init({"w": jnp.ones(2)})
    assert gradtx.tree_get(state, "no_such_name", None) is None
    assert gradtx.tree_get(state, "no_such_name", default=3) == 3
    assert gradtx.tree_get(state, "mu", None)["w"].shape == (2,)
    with pytest.raises(KeyError, match="no field named 'no_such_name'"):
        gradtx.tree_get(state, "no_such_name")


def test_none_hyperparameter_is_refused_at_build_time():
    with pytest.raises(TypeError, match=r"gradtx.scale_by_learning_rate: learning_rate=None"):
        gradtx.adam(learning_rate=None)
    with pytest.raises(TypeError, match=r"gradtx.scale_by_adam: b2=None"):
        gradtx.adam(b2=None)


def test_schedule_value_stored_each_step():
    sched = lambda count: 0.5 ** count.astype(jnp.float32)  # noqa: E731
    tx = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=sched)
    params = {"w": jnp.ones(2)}
    state = tx.init(params)
    assert float(state.hyperparams["learning_rate"]) == 1.0
    for t in range(3):
        updates, state = tx.update({"w": jnp.ones(2)}, state)
        np.testing.assert_allclose(np.asarray(updates["w"]), -(0.5**t))
        assert float(state.hyperparams["learning_rate"]) == 0.5**t  # the value this step used


def test_bad_arguments_are_explained():
    with pytest.raises(TypeError, match=r"cannot bind the arguments \(0\.1, 0\.9, True, 1, 2\)"):
        gradtx.inject_hyperparams(gradtx.sgd)(0.1, 0.9, True, 1, 2)
    with pytest.raises(ValueError, match="hyperparam_dtype=bfloat16 is not float32 or float64"):
        gradtx.inject_hyperparams(gradtx.adam, hyperparam_dtype=jnp.bfloat16)
    with pytest.raises(ValueError, match=r"b2=1\.5 is out of range"):
        gradtx.inject_hyperparams(gradtx.adam)(b2=1.5)  # the factory's own check, at build time
    mask = lambda p: {"w": True}  # noqa: E731
    params = {"w": jnp.ones(2)}
    with pytest.raises(TypeError, match=r"pass static_args=\('mask',\)"):
        gradtx.inject_hyperparams(gradtx.adamw)(mask=mask).init(params)
    tx = gradtx.inject_hyperparams(gradtx.adamw, static_args=("mask",))(mask=mask)
    assert set(tx.init(params).hyperparams) == set()


def test_trajectory_matches_numpy_adam_with_values_changed_by_name():
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(5) for _ in range(8)]
    lrs = [0.1] * 3 + [0.02] * 5
    b1s = [0.9] * 5 + [0.5] * 3
    want = _np_adam(np.linspace(-1, 1, 5), grads, lrs, b1s)
    with jax.enable_x64(True):
        tx = gradtx.inject_hyperparams(gradtx.adam, hyperparam_dtype=jnp.float64)(
            learning_rate=0.1, b1=0.9
        )
        params = {"w": jnp.linspace(-1.0, 1.0, 5)}
        state = tx.init(params)
        for t, g in enumerate(grads):
            state = gradtx.tree_set(state, learning_rate=lrs[t], b1=b1s[t])
            updates, state = tx.update({"w": jnp.asarray(g)}, state)
            params = gradtx.apply_updates(params, updates)
            np.testing.assert_allclose(np.asarray(params["w"]), want[t], rtol=1e-10)
        assert state.hyperparams["b1"].dtype == jnp.float64


def test_bfloat16_model_with_float32_hyperparameters():
    params = example_params(jnp.bfloat16)
    plain = gradtx.adam(1e-3, b1=0.9, b2=0.999)
    injected = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=1e-3, b1=0.9, b2=0.999)
    arrays = gradtx.adam(jnp.float32(1e-3), b1=jnp.float32(0.9), b2=jnp.float32(0.999))
    results = []
    for tx in (plain, injected, arrays):
        p, state = params, tx.init(params)
        for t in range(3):
            updates, state = tx.update(example_grads(t, jnp.bfloat16), state)
            if t == 0:  # Adam's first step is lr * g / |g| = 1e-3 * sign(g): NaN if b2 -> 1
                for u, g in zip(
                    jax.tree.leaves(updates), jax.tree.leaves(example_grads(0, jnp.bfloat16))
                ):
                    want = -1e-3 * np.sign(np.asarray(g, np.float64))
                    np.testing.assert_allclose(np.asarray(u, np.float64), want, rtol=1e-2)
            p = gradtx.apply_updates(p, updates)
        assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves((p, updates)))
        results.append(p)
    chex.assert_trees_all_equal(results[0], results[1], results[2])


def _dict_chain(**named):
    """A chain whose state is a dict of named states (the shape of a named_chain state)."""

    def init(params):
        return {k: tx.init(params) for k, tx in named.items()}

    def update(updates, state, params=None):
        new = {}
        for k, tx in named.items():
            updates, new[k] = tx.update(updates, state[k], params)
        return updates, new

    return gradtx.GradientTransformation(init, update)


def _nested_state():
    inner = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1, momentum=0.9)
    tx = _dict_chain(
        adam=gradtx.chain(gradtx.clip(1.0), gradtx.scale_by_adam()),
        sgd=gradtx.chain(gradtx.identity(), inner),
    )
    return tx.init({"w": jnp.ones((2, 3)), "b": jnp.zeros(3)})


def test_tree_get_by_name_and_suffix():
    state = _nested_state()
    assert float(gradtx.tree_get(state, "learning_rate")) == pytest.approx(0.1)
    assert float(gradtx.tree_get(state, "1/hyperparams/momentum")) == pytest.approx(0.9)
    mu = gradtx.tree_get(state, "adam/1/mu")
    assert set(mu) == {"w", "b"} and mu["w"].shape == (2, 3)
    assert gradtx.tree_get(state, "adam/1/nu/w").shape == (2, 3)
    with pytest.raises(KeyError, match=r"(?s)ambiguous.*adam/1/count.*sgd/1/count"):
        gradtx.tree_get(state, "count")
    with pytest.raises(KeyError, match=r"no field named 'lr'.*Names present: .*learning_rate"):
        gradtx.tree_get(state, "lr")


def test_tree_set_keeps_dtype_shape_and_checks():
    state = _nested_state()
    new = gradtx.tree_set(state, learning_rate=3e-4, momentum=np.float64(0.5))
    lr = gradtx.tree_get(new, "learning_rate")
    assert lr.dtype == jnp.float32 and lr.shape == () and float(lr) == pytest.approx(3e-4)
    assert gradtx.tree_get(new, "momentum").dtype == jnp.float32
    assert float(gradtx.tree_get(state, "learning_rate")) == pytest.approx(0.1)  # a copy
    zeros = {"w": np.zeros((2, 3)), "b": jnp.zeros(3)}
    new = gradtx.tree_set(state, {"adam/1/mu": zeros})
    assert gradtx.tree_get(new, "adam/1/mu")["w"].dtype == jnp.float32
    with pytest.raises(ValueError, match=r"'sgd/1/hyperparams/learning_rate' has shape \(\)"):
        gradtx.tree_set(state, learning_rate=jnp.ones(3))
    with pytest.raises(ValueError, match="int32 values; 2.5 would be truncated"):
        gradtx.tree_set(state, {"sgd/1/count": 2.5})
    with pytest.raises(ValueError, match="Pass a tree of the same structure"):
        gradtx.tree_set(state, {"adam/1/mu": {"w": jnp.zeros((2, 3))}})


def test_tree_set_does_not_retrace_a_jitted_step():
    chex.clear_trace_counter()
    tx = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    params = {"w": jnp.zeros(3)}
    state = tx.init(params)
    for lr in (0.1, 0.01, 2.0, 0.5):
        state = gradtx.tree_set(state, learning_rate=lr)
        before = np.asarray(params["w"])
        params, state = step(params, state, {"w": jnp.ones(3)})
        np.testing.assert_allclose(np.asarray(params["w"]), before - lr, rtol=1e-6)


# The injected-state vmap sweep and the hypergradient of every registry entry are in
# tests/test_contract.py (folded into the entry's one compiled program, and op by op).


def test_hypergradient_through_injected_state():
    """d loss / d lr through tree_set on injected state equals building with lr inside."""
    params = {"w": jnp.asarray([1.0, -2.0])}
    loss = lambda p: jnp.sum(p["w"] ** 2)  # noqa: E731
    injected = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=0.1)

    def after(lr, build_inside):
        tx = gradtx.adam(lr) if build_inside else injected
        state = tx.init(params)
        state = state if build_inside else gradtx.tree_set(state, learning_rate=lr)
        p = params
        for _ in range(4):
            updates, state = tx.update(jax.grad(loss)(p), state, p)
            p = gradtx.apply_updates(p, updates)
        return loss(p)

    g_injected = jax.grad(after)(0.1, False)
    np.testing.assert_allclose(g_injected, jax.grad(after)(0.1, True), rtol=1e-6)
    fd = (after(0.1 + 1e-3, False) - after(0.1 - 1e-3, False)) / 2e-3
    np.testing.assert_allclose(g_injected, fd, rtol=1e-3)
