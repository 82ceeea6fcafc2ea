"""A gradtx transform works wherever an optax one does, and the other way round.

optax 0.2.8 itself fails under strict dtype promotion (``decay ** count`` with a Python float and
an int32), so these tests run optax with standard promotion.
"""

import chex
import jax
import optax
import pytest

import gradtx
from tests.registry import example_grads, example_params


@pytest.fixture(autouse=True)
def _standard_promotion():
    with jax.numpy_dtype_promotion("standard"):
        yield


def _run(tx, steps=5):
    params = example_params()
    state = tx.init(params)
    for i in range(steps):
        updates, state = jax.jit(tx.update)(example_grads(i), state, params)
        params = optax.apply_updates(params, updates)
    return params


def test_gradtx_inside_optax_chain():
    want = _run(gradtx.adamw(0.01, weight_decay=0.1))
    got = _run(
        optax.chain(gradtx.scale_by_adam(), gradtx.add_decayed_weights(0.1), optax.scale(-0.01))
    )
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)


def test_optax_inside_gradtx_chain():
    want = _run(gradtx.adam(0.01))
    got = _run(gradtx.chain(optax.scale_by_adam(), gradtx.scale_by_learning_rate(0.01)))
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)


def test_optax_transform_in_gradtx_chain_with_extra_args():
    """Extra keyword arguments reach gradtx transforms and are withheld from optax's."""
    tx = gradtx.chain(optax.scale(0.5), gradtx.scale(2.0))
    params = example_params()
    out, _ = tx.update(example_grads(0), tx.init(params), params, loss=1.0)
    chex.assert_trees_all_close(out, example_grads(0), rtol=1e-6)


def test_gradtx_optimizer_with_optax_helpers():
    """optax's own utilities accept a gradtx transformation."""
    tx = optax.MultiSteps(gradtx.sgd(0.1), every_k_schedule=2)
    params = example_params()
    state = tx.init(params)
    u, state = tx.update(example_grads(0), state, params)
    u, state = tx.update(example_grads(0), state, params)
    want = jax.tree.map(lambda g: -0.1 * g, example_grads(0))
    chex.assert_trees_all_close(u, want, rtol=1e-6)


def _plateau_scales(tx, losses):
    """The learning-rate scale reduce_on_plateau reaches inside ``tx`` after these losses."""
    params = {"w": jax.numpy.ones(2)}
    state = tx.init(params)
    for loss in losses:
        _, state = tx.update({"w": jax.numpy.ones(2)}, state, params, loss=loss)
    return float(gradtx.tree_get(state, "scale"))


def test_extra_args_inside_optax_chain_and_multisteps():
    """optax.chain and optax.MultiSteps strip keyword arguments from any transform that is not
    optax's own GradientTransformationExtraArgs, so reduce_on_plateau never sees loss=. Wrapping
    the gradtx transform in that type (one line, no gradtx change) makes them pass; gradtx.chain
    passes them as it is."""
    losses = [jax.numpy.asarray(1.0)] * 4
    plateau = dict(patience=1, factor=0.5)
    reached = _plateau_scales(gradtx.chain(gradtx.reduce_on_plateau(**plateau)), losses)
    assert reached < 1.0  # the plateau was seen
    with pytest.raises(ValueError, match="no loss= was passed"):  # optax dropped loss=
        _plateau_scales(optax.chain(gradtx.reduce_on_plateau(**plateau)), losses)
    wrapped = optax.chain(
        optax.GradientTransformationExtraArgs(*gradtx.reduce_on_plateau(**plateau))
    )
    assert _plateau_scales(wrapped, losses) == reached
    multi = optax.MultiSteps(
        optax.GradientTransformationExtraArgs(*gradtx.reduce_on_plateau(**plateau)), 1
    )
    assert _plateau_scales(multi, losses) == reached
