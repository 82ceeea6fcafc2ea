"""reduce_on_plateau against a plain-Python reference of optax's rule, step by step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


class Plateau:
    """The rule, one loss at a time, in plain Python (written from optax's documentation)."""

    def __init__(self, factor, patience, rtol, atol, cooldown, accumulation_size, min_scale):
        self.hp = factor, patience, rtol, atol, cooldown, accumulation_size, min_scale
        self.scale, self.best, self.plateau, self.cooldown_left = 1.0, float("inf"), 0, 0
        self.losses = []

    def step(self, loss):
        factor, patience, rtol, atol, cooldown, size, min_scale = self.hp
        self.losses.append(loss)
        if len(self.losses) < size:
            return self.scale
        avg, self.losses = sum(self.losses) / size, []
        if avg < (1 - rtol) * self.best - atol:
            self.best, self.plateau = avg, 0
        else:
            self.plateau += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.plateau = 0
        elif self.plateau == patience:
            self.scale = max(self.scale * factor, min_scale)
            self.plateau, self.cooldown_left = 0, cooldown
        else:
            self.scale = max(self.scale, min_scale)
        return self.scale


LOSSES = [5.0, 4.0, 4.0, 3.9998, 4.1, 3.0, 3.0, 3.0, 3.0, 2.9999, 3.5, 3.0, 3.0, 3.0, 3.0,
          3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # fmt: skip
CASES = [
    dict(factor=0.5, patience=2, rtol=1e-4, atol=0.0, cooldown=0, accumulation_size=1,
         min_scale=0.0),
    dict(factor=0.5, patience=2, rtol=0.0, atol=0.05, cooldown=2, accumulation_size=1,
         min_scale=0.2),
    dict(factor=0.1, patience=1, rtol=1e-3, atol=0.0, cooldown=1, accumulation_size=2,
         min_scale=0.0),
]  # fmt: skip


@pytest.mark.parametrize("hp", CASES, ids=["rel", "abs-cooldown-min", "accumulate"])
def test_matches_python_reference(hp):
    tx = gradtx.reduce_on_plateau(**hp)
    ref = Plateau(**hp)
    params = {"w": jnp.ones(3), "b": None}
    state = tx.init(params)
    step = jax.jit(lambda g, s, loss: tx.update(g, s, params, loss=loss))
    scales = []
    for loss in LOSSES:
        updates, state = step({"w": jnp.full(3, 2.0), "b": None}, state, jnp.float32(loss))
        want = ref.step(np.float32(loss).item())
        scales.append(want)
        np.testing.assert_allclose(state.scale, want, rtol=1e-6)
        np.testing.assert_allclose(updates["w"], 2.0 * want, rtol=1e-6)
        assert updates["b"] is None
        assert int(state.plateau_count) == ref.plateau
        assert int(state.cooldown_count) == ref.cooldown_left
        assert int(state.count) == len(ref.losses)
        np.testing.assert_allclose(state.best_value, ref.best, rtol=1e-6)
    assert min(scales) < 1.0  # the sequence does trigger reductions


def test_reduction_needs_patience_steps_without_improvement():
    tx = gradtx.reduce_on_plateau(factor=0.5, patience=3)
    state = tx.init(jnp.zeros(2))
    scales = []
    for loss in (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0):
        _, state = tx.update(jnp.ones(2), state, loss=jnp.asarray(loss))
        scales.append(float(state.scale))
    # step 1 improves on inf; steps 2, 3, 4 do not, so the scale halves at step 4, then at 7
    assert scales == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_state_fields_and_value_alias():
    tx = gradtx.reduce_on_plateau()
    state = tx.init({"w": jnp.zeros(2, jnp.bfloat16)})
    assert state._fields == (
        "scale", "best_value", "plateau_count", "cooldown_count", "count", "avg_value"
    )  # fmt: skip
    assert state.best_value == jnp.inf and state.scale == 1.0
    updates, state = tx.update({"w": jnp.ones(2, jnp.bfloat16)}, state, value=jnp.asarray(2.0))
    assert updates["w"].dtype == jnp.bfloat16 and float(state.best_value) == 2.0


def test_vmap_over_factor_and_in_a_chain():
    params = jnp.ones(2)

    def final_scale(factor):
        tx = gradtx.chain(gradtx.sgd(0.1), gradtx.reduce_on_plateau(factor=factor, patience=1))
        state = tx.init(params)
        for _ in range(3):
            _, state = tx.update(jnp.ones(2), state, params, loss=jnp.asarray(1.0))
        return state[1].scale

    got = jax.vmap(final_scale)(jnp.asarray([0.1, 0.5]))
    np.testing.assert_allclose(got, [0.01, 0.25], rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(factor=1.0), r"factor=1.0 is out of range"),
        (dict(patience=0), r"patience=p \+ 1"),
        (dict(rtol=0.0, atol=0.0), "both 0"),
        (dict(rtol=1.5), r"rtol=1.5 is out of range"),
        (dict(accumulation_size=0), r"accumulation_size=0"),
        (dict(min_scale=-1.0), r"min_scale=-1.0"),
    ],
)
def test_python_arguments_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gradtx.reduce_on_plateau(**kwargs)


def test_missing_loss_is_a_clear_error():
    tx = gradtx.reduce_on_plateau()
    state = tx.init(jnp.zeros(2))
    with pytest.raises(ValueError, match=r"no loss= was passed .*tx.update\(updates, state"):
        tx.update(jnp.ones(2), state)
    with pytest.raises(ValueError, match="both loss= and value="):
        tx.update(jnp.ones(2), state, loss=1.0, value=1.0)
