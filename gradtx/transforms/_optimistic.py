"""Optimistic gradients: the current gradient extrapolated by its change since the last step."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.trees import acc_dtype, as_dtype, tree_map_none, tree_zeros_like


class ScaleByOptimisticGradientState(NamedTuple):
    is_initial_step: jax.Array  # bool scalar: True until the first update
    previous_gradient: object  # like params: the last step's input updates


def scale_by_optimistic_gradient(alpha=1.0, beta=1.0) -> GradientTransformation:
    """Generalized optimistic gradient: (alpha + beta) * g_t - beta * g_(t-1).

    prev = updates if is_initial_step else previous_gradient
    previous_gradient = updates
    updates = (alpha + beta) * updates - beta * prev

    At the first step there is no previous gradient and the output is ``alpha * updates``
    (the convention g_(-1) = g_0 of the papers; optax#1082).

    Args:
        alpha: the weight of the current gradient (1 in optimistic gradient descent).
        beta: the weight of the change, the "negative momentum" (1 in OGD).

    References:
        Mokhtari, Ozdaglar and Pattathil, A Unified Analysis of Extra-gradient and Optimistic
        Gradient Methods for Saddle Point Problems: Proximal Point Approach, AISTATS 2020,
        eq. (6) (OGDA: x_(k+1) = x_k - 2 eta F(x_k) + eta F(x_(k-1))).
        Daskalakis, Ilyas, Syrgkanis and Zeng, Training GANs with Optimism, ICLR 2018.
    """
    where = "gradtx.scale_by_optimistic_gradient"
    _checks.check_number(where, "alpha", alpha)
    _checks.check_number(where, "beta", beta)

    def init(params):
        return ScaleByOptimisticGradientState(jnp.asarray(True), tree_zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(
            updates, state.previous_gradient, where, "updates", "previous_gradient"
        )

        def leaf(g, prev):
            dt = acc_dtype(g.dtype)
            g_t = g.astype(dt)
            prev = jnp.where(state.is_initial_step, g_t, prev.astype(dt))
            a, b = as_dtype(alpha, dt), as_dtype(beta, dt)
            return ((a + b) * g_t - b * prev).astype(g.dtype)

        out = tree_map_none(leaf, updates, state.previous_gradient)
        stored = tree_map_none(lambda g, p: g.astype(p.dtype), updates, state.previous_gradient)
        return out, ScaleByOptimisticGradientState(jnp.asarray(False), stored)

    return GradientTransformation(init, update)
