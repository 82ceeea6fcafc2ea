"""gradtx.ShouldSkipUpdateFunction: the type of MultiSteps' should_skip_update_fn (optax's)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

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
