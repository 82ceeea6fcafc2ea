"""Which compositions of the small transforms are equivalent, and which are not.

Adam needs the raw gradient in both moments, so momentum-then-RMS (or RMS-then-momentum) is
not Adam; RMS scaling with bias correction is Adam with b1 = 0.
"""

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from tests.registry import example_grads, example_params


def _updates(tx, steps=10):
    params = example_params()
    state = tx.init(params)
    out = []
    for i in range(steps):
        u, state = tx.update(example_grads(i), state, params)
        out.append(np.concatenate([np.ravel(x) for x in jax.tree.leaves(u)]))
    return np.stack(out)


def test_rms_with_bias_correction_is_adam_with_b1_zero():
    a = _updates(gradtx.scale_by_rms(decay=0.999, eps=1e-8, bias_correction=True))
    b = _updates(gradtx.scale_by_adam(b1=0.0, b2=0.999, eps=1e-8))
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_momentum_then_rms_is_not_adam():
    adam = _updates(gradtx.scale_by_adam())
    for tx in [
        gradtx.chain(gradtx.ema(0.9), gradtx.scale_by_rms(0.999, bias_correction=True)),
        gradtx.chain(gradtx.scale_by_rms(0.999, bias_correction=True), gradtx.ema(0.9)),
    ]:
        rel = np.linalg.norm(_updates(tx)[-1] - adam[-1]) / np.linalg.norm(adam[-1])
        assert rel > 0.1, rel


def test_ema_with_debias_is_adams_first_moment():
    """Adam's mu_hat is the bias-corrected EMA of the raw gradient (checked in float64)."""
    with jax.enable_x64(True):
        params = jax.tree.map(lambda x: x.astype(jnp.float64), example_params())
        tx = gradtx.ema(0.9)
        state = tx.init(params)
        m = jax.tree.map(lambda x: np.zeros(x.shape), params)
        for t in range(1, 6):
            g = jax.tree.map(lambda x: np.asarray(x, np.float64), example_grads(t))
            out, state = tx.update(jax.tree.map(jnp.asarray, g), state)
            m = jax.tree.map(lambda mm, gg: 0.9 * mm + 0.1 * gg, m, g)
            for o, mm in zip(jax.tree.leaves(out), jax.tree.leaves(m)):
                np.testing.assert_allclose(np.asarray(o), mm / (1 - 0.9**t), rtol=1e-12)


def test_sgd_momentum_is_trace_then_learning_rate():
    a = _updates(gradtx.sgd(0.1, momentum=0.9, nesterov=True))
    b = _updates(gradtx.chain(gradtx.trace(0.9, nesterov=True), gradtx.scale(-0.1)))
    np.testing.assert_allclose(a, b, rtol=1e-6)
