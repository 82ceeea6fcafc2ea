"""The public tree helpers against NumPy float64 closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


@pytest.mark.parametrize("order", [1, 2, 3])
def test_tree_update_moment_is_the_moving_average_of_a_power(order):
    rng = np.random.default_rng(0)
    g, m = rng.standard_normal(5), rng.standard_normal(5)
    with jax.enable_x64(True):
        out = gradtx.tree_update_moment({"x": jnp.asarray(g)}, {"x": jnp.asarray(m)}, 0.9, order)
    np.testing.assert_allclose(np.asarray(out["x"]), 0.9 * m + 0.1 * g**order, rtol=1e-12)


def test_tree_bias_correction_and_safe_increment():
    with jax.enable_x64(True):
        out = gradtx.tree_bias_correction({"x": jnp.full(3, 2.0)}, 0.999, jnp.asarray(7))
    np.testing.assert_allclose(np.asarray(out["x"]), 2.0 / (1 - 0.999**7), rtol=1e-12)
    top = jnp.asarray(np.iinfo(np.int32).max, jnp.int32)
    assert int(gradtx.safe_increment(top)) == np.iinfo(np.int32).max
    assert int(gradtx.safe_increment(jnp.asarray(4, jnp.int32))) == 5
