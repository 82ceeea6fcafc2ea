"""Bad input gets a clear error: it names the argument or leaf path, the value and the fix."""

import jax.numpy as jnp
import pytest

import gradtx


@pytest.mark.parametrize(
    "build, pattern",
    [
        (
            lambda: gradtx.adam(eps=-1e-8),
            r"scale_by_adam: eps=-1e-08 is out of range; expected eps in \[0, inf\]",
        ),
        (lambda: gradtx.adam(b1=1.0), r"b1=1.0 is out of range; expected b1 in \[0, 1\)"),
        (lambda: gradtx.adamw(b2=1.5), r"b2=1.5 is out of range; expected b2 in \[0, 1\)"),
        (lambda: gradtx.adamw(weight_decay=-0.1), r"weight_decay=-0.1 is out of range"),
        (lambda: gradtx.sgd(-0.1), r"learning_rate=-0.1 is out of range.*flip_sign=False"),
        (lambda: gradtx.sgd(0.1, momentum=-0.5), r"trace: decay=-0.5 is out of range"),
        (lambda: gradtx.rmsprop(0.1, decay=1.2), r"scale_by_rms: decay=1.2 is out of range"),
        (lambda: gradtx.adagrad(0.1, eps=float("nan")), r"eps=nan is out of range"),
        (lambda: gradtx.clip_by_global_norm(-1.0), r"max_norm=-1.0 is out of range"),
    ],
)
def test_out_of_range_numbers_rejected_at_build(build, pattern):
    with pytest.raises(ValueError, match=pattern):
        build()


def test_arrays_and_schedules_pass_unchecked():
    gradtx.adam(b1=jnp.asarray(0.95), b2=jnp.asarray(0.99), eps=jnp.asarray(1e-6))
    gradtx.sgd(lambda count: 0.1 / (1 + count))


def test_schedule_where_none_is_accepted():
    with pytest.raises(TypeError, match="eps is the callable .* does not accept a schedule"):
        gradtx.adam(eps=lambda c: 1e-8)


def test_bool_hyperparameter_rejected():
    with pytest.raises(TypeError, match="nesterov|b1=True is a bool"):
        gradtx.scale_by_adam(b1=True)


def test_update_tree_mismatch_names_the_leaves():
    tx = gradtx.adam()
    state = tx.init({"w": jnp.ones(3), "b": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"(?s)tree structure of updates differs.*\['bias'\]"):
        tx.update({"w": jnp.ones(3), "bias": jnp.ones(2)}, state)


def test_missing_params_named():
    tx = gradtx.adamw()
    state = tx.init({"w": jnp.ones(3)})
    with pytest.raises(
        ValueError, match=r"add_decayed_weights: .*params=None.*tx.update\(updates, state, params\)"
    ):
        tx.update({"w": jnp.ones(3)}, state)


def test_chain_rejects_uncalled_factory():
    with pytest.raises(TypeError, match=r"argument 0 .* gradtx.scale_by_adam\(\)"):
        gradtx.chain(gradtx.scale_by_adam)


def test_chain_rejects_foreign_state():
    tx = gradtx.chain(gradtx.scale_by_adam(), gradtx.scale(-0.1))
    with pytest.raises(ValueError, match="expected a tuple of 2 states"):
        tx.update({"w": jnp.ones(3)}, (), None)


def test_mask_is_a_tree_or_a_function_of_bools_checked_at_init():
    params = {"w": jnp.ones(2), "b": jnp.ones(3)}
    tx = gradtx.adamw(1e-3, mask={"w": True, "b": False})  # optax's tree form works
    updates, _ = tx.update(params, tx.init(params), params)
    assert updates["w"].shape == (2,)
    with pytest.raises(ValueError, match=r"add_decayed_weights: mask is not shaped like the par"):
        gradtx.adamw(1e-3, mask={"w": True}).init(params)  # at init, not inside the step
    tx = gradtx.adamw(mask=lambda p: {"w": jnp.asarray(True), "b": False})
    with pytest.raises(TypeError, match=r"mask\(params\) has .* at 'w'; expected a Python bool"):
        tx.init(params)


def test_apply_updates_mismatch():
    with pytest.raises(ValueError, match=r"(?s)apply_updates: .*leaves only in updates: \['x'\]"):
        gradtx.apply_updates({"w": jnp.ones(2)}, {"x": jnp.ones(2)})
