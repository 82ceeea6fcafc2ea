"""Sign-based scaling: the sign of the gradient (signSGD) and Lion's interpolated sign."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import EmptyState, GradientTransformation
from gradtx._core.fused import tree_moment
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    schedule_clock,
    schedule_count,
    tree_map_none,
    tree_zeros_like,
    value_at,
)

_LION_MODES = ("hard", "smooth", "refined")


def scale_by_sign() -> GradientTransformation:
    """Replace each coordinate of the updates by its sign (signSGD's compression).

    updates = sign(updates)          (-1, 0 or +1; the update of a zero coordinate is 0)

    References:
        Bernstein et al., signSGD: Compressed Optimisation for Non-Convex Problems, ICML 2018
        (the signSGD algorithm box, Section 2).
    """

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return tree_map_none(jnp.sign, updates), state

    return GradientTransformation(init, update)


class ScaleByLionState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken if b1 or b2 is a schedule, else ()
    mu: object  # like params (mu_dtype if given): the moving average of the gradients


def scale_by_lion(
    b1=0.9, b2=0.99, mu_dtype=None, *, mode: str = "hard", smooth_beta=1.0
) -> GradientTransformation:
    """Lion's update direction: the sign of an interpolation of the momentum and the gradient.

    c = b1 * mu + (1 - b1) * updates
    updates = sign(c)                                  (mode="hard": the paper's)
    updates = tanh(smooth_beta * c)                    (mode="smooth")
    updates = c if |c| < 1 else sign(c)                (mode="refined")
    mu = b2 * mu + (1 - b2) * updates_in               (the momentum sees the raw gradient)

    Args:
        b1: the interpolation weight of the momentum in the direction (number, array or
            schedule).
        b2: the decay of the momentum (number, array or schedule).
        mu_dtype: dtype of ``mu``; defaults to each parameter's dtype.
        mode: "hard" (the paper's sign), "smooth" or "refined" (optax's variants).
        smooth_beta: the slope of the tanh when mode="smooth".

    References:
        Chen et al., Symbolic Discovery of Optimization Algorithms, NeurIPS 2023, Algorithm 2.
    """
    where = "gradtx.scale_by_lion"
    _checks.check_number(where, "b1", b1, low=0.0, high=1.0, schedule_ok=True)
    _checks.check_number(where, "b2", b2, low=0.0, high=1.0, schedule_ok=True)
    _checks.check_number(where, "smooth_beta", smooth_beta, low=0.0)
    if mode not in _LION_MODES:
        raise ValueError(f"{where}: mode={mode!r} is not one of {_LION_MODES}.")

    def direction(g, m, beta1):
        dt = acc_dtype(g.dtype)
        c1 = as_dtype(beta1, dt)
        c = c1 * m.astype(dt) + as_dtype(1 - beta1, dt) * g.astype(dt)
        if mode == "hard":
            out = jnp.sign(c)
        elif mode == "smooth":
            out = jnp.tanh(as_dtype(smooth_beta, dt) * c)
        else:
            out = jnp.where(jnp.abs(c) < 1, c, jnp.sign(c))
        return out.astype(g.dtype)

    def init(params):
        return ScaleByLionState(schedule_count(b1, b2), tree_zeros_like(params, mu_dtype))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.mu, where, "updates", "state.mu")
        beta1, beta2 = value_at(b1, state.count), value_at(b2, state.count)
        out = tree_map_none(lambda g, m: direction(g, m, beta1), updates, state.mu)
        mu, _ = tree_moment(updates, state.mu, beta2, 1)
        return out, ScaleByLionState(schedule_clock(state.count, b1, b2), mu)

    return GradientTransformation(init, update)
