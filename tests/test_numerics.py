"""safe_norm, safe_root_mean_squares, scale_gradient and optax's small contract helpers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def test_safe_norm_and_rms_values_and_finite_gradients_at_zero():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    with jax.enable_x64(True):
        jx = jnp.asarray(x)
        np.testing.assert_allclose(gradtx.safe_norm(jx, 0.0), np.linalg.norm(x), rtol=1e-12)
        np.testing.assert_allclose(
            gradtx.safe_norm(jx, 0.0, axis=1), np.linalg.norm(x, axis=1), rtol=1e-12
        )
        np.testing.assert_allclose(
            gradtx.safe_norm(jx, 0.0, ord=1, axis=0, keepdims=True),
            np.abs(x).sum(0, keepdims=True),
            rtol=1e-12,
        )
        assert float(gradtx.safe_norm(jnp.zeros(3), 0.5)) == 0.5
        g = jax.grad(lambda v: gradtx.safe_norm(v, 1e-6))(jnp.zeros(3))
        assert bool(jnp.all(g == 0)), g  # jnp.linalg.norm's gradient is NaN here
        np.testing.assert_allclose(
            gradtx.safe_root_mean_squares(jx, 0.0), np.sqrt(np.mean(x**2)), rtol=1e-12
        )
        assert float(gradtx.safe_root_mean_squares(jnp.zeros(4), 0.25)) == 0.25
        g = jax.grad(lambda v: gradtx.safe_root_mean_squares(v, 1e-6))(jnp.zeros(4))
        assert bool(jnp.all(jnp.isfinite(g)))


def test_scale_gradient_scales_only_the_backward_pass():
    f = lambda w: jnp.sum(gradtx.scale_gradient(w, 0.25) ** 2)  # noqa: E731
    w = jnp.asarray([1.0, -2.0])
    np.testing.assert_allclose(f(w), 5.0)
    np.testing.assert_allclose(jax.grad(f)(w), 0.25 * 2 * np.asarray(w))


def test_contract_helpers():
    assert gradtx.init_empty_state({"w": 1.0}) == gradtx.EmptyState()
    assert int(gradtx.safe_int32_increment(jnp.asarray(2**31 - 1, jnp.int32))) == 2**31 - 1
    tx = gradtx.stateless_with_tree_map(lambda u, p: u + (0.0 if p is None else p))
    out, _ = tx.update({"w": jnp.ones(2)}, tx.init(None), {"w": jnp.full(2, 2.0)})
    np.testing.assert_allclose(out["w"], 3.0)
    out, _ = tx.update({"w": jnp.ones(2)}, tx.init(None))
    np.testing.assert_allclose(out["w"], 1.0)


def test_with_extra_args_support_passes_them_where_taken():
    optax = pytest.importorskip("optax")
    plateau = gradtx.with_extra_args_support(gradtx.reduce_on_plateau(patience=1))
    params = {"w": jnp.ones(2)}
    state = plateau.init(params)
    for _ in range(3):
        _, state = plateau.update(params, state, params, loss=jnp.asarray(1.0))
    assert float(state.scale) < 1.0
    wrapped = gradtx.with_extra_args_support(optax.scale(2.0))  # takes no extra args
    out, _ = wrapped.update(params, wrapped.init(params), params, loss=1.0)
    np.testing.assert_allclose(out["w"], 2.0)


def test_matches_optax_numerics():
    optax = pytest.importorskip("optax")
    x = jnp.asarray([[3.0, 4.0], [0.0, 0.0]])
    for kwargs in ({}, {"axis": 1}, {"ord": 1, "axis": 0, "keepdims": True}):
        np.testing.assert_allclose(
            gradtx.safe_norm(x, 0.1, **kwargs), optax.safe_norm(x, 0.1, **kwargs), rtol=1e-6
        )
    np.testing.assert_allclose(
        gradtx.safe_root_mean_squares(x, 0.1), optax.safe_root_mean_squares(x, 0.1), rtol=1e-6
    )
