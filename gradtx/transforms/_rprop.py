"""Sign-of-change methods: Rprop's per-coordinate step sizes, grown or shrunk by sign agreement."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.trees import acc_dtype, as_dtype, tree_full_like, tree_map_none, tree_zeros_like


class ScaleByRpropState(NamedTuple):
    step_sizes: object  # like params: the per-coordinate step size (torch's ``step_size``)
    prev_updates: object  # like params: the last step's output, step_size * sign(g), 0 on a flip


def scale_by_rprop(
    learning_rate=0.01,
    eta_minus=0.5,
    eta_plus=1.2,
    min_step_size=1e-6,
    max_step_size=50.0,
    *,
    one_step_lag: bool = False,
) -> GradientTransformation:
    """Rprop: a step size per coordinate, grown while the gradient keeps its sign (iRprop-).

    s = sign(updates) * sign(prev_updates)     (the sign agreement with the last step)
    factor = eta_plus if s > 0, eta_minus if s < 0, 1 if s == 0
    step_sizes = clip(step_sizes * factor, min_step_size, max_step_size)
    new = 0 if s < 0 else step_sizes * sign(updates)
    prev_updates = new
    updates = new                                              (the default: torch, the paper)
    updates = 0 if s < 0 else old prev_updates                 (one_step_lag=True: optax 0.2.8)

    The output is the step to subtract (chain a negative scale, as ``rprop`` does). At the first
    step ``prev_updates`` is 0, so every coordinate moves by ``learning_rate``. With a sign flip
    the step size shrinks and the coordinate does not move (torch's ``grad = 0``); the next step
    then sees s == 0 and keeps the step size.

    Args:
        learning_rate: the initial step size of every coordinate (torch's ``lr``).
        eta_minus: the factor applied on a sign flip, in (0, 1] (torch's ``etas[0]``).
        eta_plus: the factor applied while the sign holds, >= 1 (torch's ``etas[1]``).
        min_step_size: the smallest step size (torch's ``step_sizes[0]``).
        max_step_size: the largest step size (torch's ``step_sizes[1]``).
        one_step_lag: return the previous step's update, as optax 0.2.8's ``scale_by_rprop``
            does (all zeros at the first step; google-deepmind/optax#1725). Only for
            reproducing optax; the optax dialect sets it.

    References:
        Riedmiller and Braun, A Direct Adaptive Method for Faster Backpropagation Learning: The
        RPROP Algorithm, ICNN 1993 (the step-size rule, eq. 4-7).
        Igel and Huesken, Improving the Rprop Learning Algorithm, 2000 (iRprop-: no move and a
        zeroed gradient after a sign change), as in torch.optim.Rprop.
    """
    where = "gradtx.scale_by_rprop"
    _checks.check_number(where, "learning_rate", learning_rate, low=0.0)
    _checks.check_number(where, "eta_minus", eta_minus, low=0.0, high=1.0, low_open=True)
    _checks.check_number(where, "eta_plus", eta_plus, low=1.0)
    _checks.check_number(where, "min_step_size", min_step_size, low=0.0)
    _checks.check_number(where, "max_step_size", max_step_size, low=0.0)
    if _checks.is_python_number(min_step_size) and _checks.is_python_number(max_step_size):
        if min_step_size > max_step_size:
            raise ValueError(
                f"{where}: min_step_size={min_step_size!r} exceeds max_step_size="
                f"{max_step_size!r}; pass min_step_size <= max_step_size."
            )

    def init(params):
        return ScaleByRpropState(tree_full_like(params, learning_rate), tree_zeros_like(params))

    def leaf(g, step, prev):
        dt = acc_dtype(step.dtype)
        g, step, prev = g.astype(dt), step.astype(dt), prev.astype(dt)
        s = jnp.sign(g) * jnp.sign(prev)  # the sign of g * prev, without underflow
        factor = jnp.where(
            s > 0, as_dtype(eta_plus, dt), jnp.where(s < 0, as_dtype(eta_minus, dt), 1)
        )
        step = step * factor
        # clip written as selects (same values, NaN included): with jnp.clip's minimum and
        # maximum, XLA's CPU fusion recomputes the new step size inside the kernel of the new
        # previous update from the old one, and copies every step-size buffer to keep it alive
        lo, hi = as_dtype(min_step_size, dt), as_dtype(max_step_size, dt)
        step = jnp.where(step < lo, lo, jnp.where(step > hi, hi, step))
        new = jnp.where(s < 0, jnp.zeros_like(g), step * jnp.sign(g))
        out = jnp.where(s < 0, jnp.zeros_like(prev), prev) if one_step_lag else new
        return out, step, new

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.step_sizes, where, "updates", "step_sizes")
        results = tree_map_none(leaf, updates, state.step_sizes, state.prev_updates)

        def pick(i, like):  # the i-th result of every leaf, in the dtype of ``like``'s leaf
            return tree_map_none(lambda _, r, x: r[i].astype(x.dtype), updates, results, like)

        new_state = ScaleByRpropState(pick(1, state.step_sizes), pick(2, state.prev_updates))
        return pick(0, updates), new_state

    return GradientTransformation(init, update)
