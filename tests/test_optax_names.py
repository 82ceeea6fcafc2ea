"""Small optax names: ShouldSkipUpdateFunction (the type of MultiSteps' should_skip_update_fn)
nnls (non-negative least squares, against scipy and optax) and multi_normal (a diagonal
normal: its log density against NumPy, its draws against optax's)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def test_a_function_of_the_protocol_skips_a_mini_step():
    """A function with the protocol's signature drops the mini-steps it flags: with k = 2 and
    the first gradient (norm > 5) skipped, the inner step averages the next two."""

    def skip_big(updates, gradient_step, params):
        del gradient_step, params
        return jnp.max(jnp.abs(updates["w"])) > 5.0, ()

    fn: gradtx.ShouldSkipUpdateFunction = skip_big
    tx = gradtx.MultiSteps(gradtx.sgd(1.0), 2, should_skip_update_fn=fn)
    params = {"w": jnp.zeros(2)}
    state = tx.init(params)
    for g in ([10.0, 10.0], [1.0, 3.0], [3.0, 1.0]):
        updates, state = tx.update({"w": jnp.asarray(g)}, state, params)
        params = gradtx.apply_updates(params, updates)
    np.testing.assert_allclose(np.asarray(params["w"]), [-2.0, -2.0])


def test_nnls_matches_scipy_and_optax():
    """Polyak 2015's fast projected gradient converges to scipy's active-set NNLS solution
    (Lawson and Hanson) in float64; a vector b and a matrix b of two problems in one call."""
    scipy_opt = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(5)
    a = rng.standard_normal((8, 5))
    b = rng.standard_normal((8, 2))
    want = np.stack([scipy_opt.nnls(a, b[:, k])[0] for k in range(2)], axis=1)
    assert (want == 0).any() and (want > 0).any()  # some constraints active, some not
    with jax.enable_x64(True):
        got = np.asarray(gradtx.nnls(jnp.asarray(a), jnp.asarray(b), 3000))
        got_vec = np.asarray(gradtx.nnls(jnp.asarray(a), jnp.asarray(b[:, 0]), 3000))
    np.testing.assert_allclose(got, want, atol=1e-9)
    np.testing.assert_allclose(got_vec, want[:, 0], atol=1e-9)
    optax = pytest.importorskip("optax")
    a32, b32 = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    with jax.numpy_dtype_promotion("standard"):
        theirs = optax.nnls(a32, b32, 200)
    np.testing.assert_allclose(np.asarray(gradtx.nnls(a32, b32, 200)), theirs, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"A has shape \(8, 5\) and b \(7,\)"):
        gradtx.nnls(a32, b32[:7, 0], 10)


def test_multi_normal_log_prob_and_samples():
    """log_prob is the sum of the coordinates' normal log densities (NumPy, float64); draws
    with one key equal optax's; params are [loc, log_scale]."""
    loc, log_scale = np.array([0.5, -1.0, 2.0]), np.array([[0.1, -0.3, 0.0]])
    x = np.array([[[0.0, 0.0, 0.0]], [[1.0, -2.0, 3.0]]])  # two draws of shape (1, 3)
    scale = np.exp(log_scale)
    want = np.sum(
        -0.5 * ((x - loc) / scale) ** 2 - log_scale - 0.5 * np.log(2 * np.pi), axis=(1, 2)
    )
    with jax.enable_x64(True):
        dist = gradtx.multi_normal(jnp.asarray(loc), jnp.asarray(log_scale))
        np.testing.assert_allclose(np.asarray(dist.log_prob(jnp.asarray(x))), want, rtol=1e-12)
        assert dist.params[0].shape == (3,) and dist.log_scale.shape == (1, 3)
    optax = pytest.importorskip("optax")
    loc32, ls32 = jnp.asarray(loc, jnp.float32), jnp.asarray(log_scale, jnp.float32)
    key = jax.random.key(3)
    ours = gradtx.multi_normal(loc32, ls32).sample((5,), key)
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        theirs = optax.multi_normal(loc32, ls32).sample((5,), key)  # optax broadcasts ranks
    assert ours.shape == (5, 1, 3)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-6)
