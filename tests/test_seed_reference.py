"""The seed's optimizers against NumPy float64 implementations of its pseudo-code.

The references below are written from docs/reference/update-rules.md, one function per rule, on
NumPy float64 arrays; they share nothing with gradtx. Each optimizer runs 25 steps on a nested
tree with mixed shapes and a scalar leaf, where the gradient depends on the current parameters
(so any error compounds): to 1e-10 relative in float64 and 1e-5 in float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

STEPS = 25
SHAPES = {"w": (4, 3), "b": (3,), "block": {"s": (), "k": (2, 2, 3)}}


def _tree_np(seed):
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: rng.standard_normal(s), SHAPES, is_leaf=lambda s: isinstance(s, tuple)
    )


PARAMS0 = _tree_np(0)
NOISE = [_tree_np(100 + i) for i in range(STEPS)]


def grad_np(x, noise):
    """The gradient of 0.5 * 1.3 * x**2 - cos(x), plus a fixed noise: depends on x."""
    return 1.3 * x + np.sin(x) + 0.3 * noise


def grad_jnp(x, noise):
    return (
        x * jnp.asarray(1.3, x.dtype)
        + jnp.sin(x)
        + noise.astype(x.dtype) * jnp.asarray(0.3, x.dtype)
    )


# ---- the seed's rules, per array, in float64 ----------------------------------------------


def ref_sgd(x, dx, s, t, lr):
    return x - lr * dx, s


def ref_momentum(x, dx, v, t, lr, mu):
    v = mu * v - lr * dx
    return x + v, v


def ref_nesterov(W, dW, v, t, lr, rho):
    pre_v = v
    v = rho * v - lr * dW
    return W + (-rho * pre_v + (1 + rho) * v), v


def ref_adagrad(W, dW, grad_squared, t, lr, eps):
    grad_squared = grad_squared + dW * dW
    return W - lr * dW / (np.sqrt(grad_squared) + eps), grad_squared


def ref_rmsprop(W, dW, grad_squared, t, lr, decay_rate, eps):
    grad_squared = decay_rate * grad_squared + (1 - decay_rate) * dW * dW
    return W - lr * dW / (np.sqrt(grad_squared) + eps), grad_squared


def ref_adam(W, dW, moments, t, lr, beta1, beta2, eps, weight_decay=0.0, l2=0.0):
    first_moment, second_moment = moments
    dW = dW + l2 * W  # coupled L2: the penalty's gradient flows through both moments
    first_moment = beta1 * first_moment + (1 - beta1) * dW
    second_moment = beta2 * second_moment + (1 - beta2) * dW * dW
    first_unbias = first_moment / (1 - beta1**t)
    second_unbias = second_moment / (1 - beta2**t)
    step = first_unbias / (np.sqrt(second_unbias) + eps)
    W = W - lr * (step + weight_decay * W)  # decoupled decay, multiplied by the learning rate
    return W, (first_moment, second_moment)


def run_reference(rule, init_slot, **hp):
    leaves, treedef = jax.tree.flatten(PARAMS0)
    slots = [init_slot(x) for x in leaves]
    path = [PARAMS0]
    for t in range(1, STEPS + 1):
        noise = jax.tree.leaves(NOISE[t - 1])
        for i, x in enumerate(list(leaves)):
            leaves[i], slots[i] = rule(x, grad_np(x, noise[i]), slots[i], t, **hp)
        path.append(jax.tree.unflatten(treedef, list(leaves)))
    return path


def run_gradtx(tx, dtype):
    params = jax.tree.map(lambda a: jnp.asarray(a, dtype), PARAMS0)
    noise = [jax.tree.map(lambda a: jnp.asarray(a, dtype), n) for n in NOISE]

    @jax.jit
    def step(params, state, noise):
        grads = jax.tree.map(grad_jnp, params, noise)
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    state = tx.init(params)
    path = [params]
    for t in range(STEPS):
        params, state = step(params, state, noise[t])
        path.append(params)
    return path


zero = lambda a: np.zeros_like(a)  # noqa: E731
zero2 = lambda a: (np.zeros_like(a), np.zeros_like(a))  # noqa: E731

CASES = {
    "sgd": (lambda: gradtx.sgd(0.1), ref_sgd, zero, dict(lr=0.1)),
    "momentum": (lambda: gradtx.sgd(0.05, momentum=0.9), ref_momentum, zero, dict(lr=0.05, mu=0.9)),
    "nesterov": (
        lambda: gradtx.sgd(0.05, momentum=0.9, nesterov=True),
        ref_nesterov,
        zero,
        dict(lr=0.05, rho=0.9),
    ),
    "adagrad": (lambda: gradtx.adagrad(0.2), ref_adagrad, zero, dict(lr=0.2, eps=1e-10)),
    "rmsprop": (
        lambda: gradtx.rmsprop(0.01),
        ref_rmsprop,
        zero,
        dict(lr=0.01, decay_rate=0.99, eps=1e-8),
    ),
    "adam": (
        lambda: gradtx.adam(),
        ref_adam,
        zero2,
        dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8),
    ),
    "adam-lr": (
        lambda: gradtx.adam(0.05),
        ref_adam,
        zero2,
        dict(lr=0.05, beta1=0.9, beta2=0.999, eps=1e-8),
    ),
    "adamw": (
        lambda: gradtx.adamw(0.05, weight_decay=0.1),
        ref_adam,
        zero2,
        dict(lr=0.05, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1),
    ),
    "adam+l2": (
        lambda: gradtx.chain(gradtx.add_l2_penalty(0.1), gradtx.adam(0.05)),
        ref_adam,
        zero2,
        dict(lr=0.05, beta1=0.9, beta2=0.999, eps=1e-8, l2=0.1),
    ),
}


def _assert_path_close(got, want, rtol, atol):
    for t, (g, w) in enumerate(zip(got, want)):
        for gl, wl in zip(jax.tree.leaves(g), jax.tree.leaves(w)):
            np.testing.assert_allclose(
                np.asarray(gl, np.float64), wl, rtol=rtol, atol=atol, err_msg=f"step {t}"
            )


@pytest.mark.parametrize("name", list(CASES))
def test_float64_trajectory_matches_seed(name):
    make, rule, init_slot, hp = CASES[name]
    want = run_reference(rule, init_slot, **hp)
    with jax.enable_x64(True):
        got = run_gradtx(make(), jnp.float64)
    _assert_path_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_float32_trajectory_matches_seed(name):
    make, rule, init_slot, hp = CASES[name]
    want = run_reference(rule, init_slot, **hp)
    got = run_gradtx(make(), jnp.float32)
    _assert_path_close(got, want, rtol=1e-5, atol=1e-6)


def test_coupled_l2_differs_from_decoupled_decay():
    """The seed's point: L2 inside Adam is not AdamW; AdamW is the decoupled formula."""
    hp = dict(lr=0.05, beta1=0.9, beta2=0.999, eps=1e-8)
    l2 = run_reference(ref_adam, zero2, l2=0.1, **hp)[-1]
    decoupled = run_reference(ref_adam, zero2, weight_decay=0.1, **hp)[-1]
    with jax.enable_x64(True):
        adamw = run_gradtx(gradtx.adamw(0.05, weight_decay=0.1), jnp.float64)[-1]
        adam_l2 = run_gradtx(CASES["adam+l2"][0](), jnp.float64)[-1]
    gap = max(
        np.max(np.abs(a - b)) for a, b in zip(jax.tree.leaves(l2), jax.tree.leaves(decoupled))
    )
    assert gap > 1e-2, "coupled L2 and decoupled decay should give clearly different paths"
    for a, b in zip(jax.tree.leaves(adamw), jax.tree.leaves(decoupled)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-10)
    for a, b in zip(jax.tree.leaves(adam_l2), jax.tree.leaves(l2)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-10)
