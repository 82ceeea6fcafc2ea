"""Small optax names: ShouldSkipUpdateFunction (the type of MultiSteps' should_skip_update_fn)
and nnls (non-negative least squares, against scipy and optax)."""

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
