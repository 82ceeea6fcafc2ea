"""Momentum-style accumulation: heavy-ball/Nesterov traces and moving averages."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.fused import tree_accumulate, tree_moment
from gradtx._core.trees import (
    safe_increment,
    schedule_clock,
    schedule_count,
    tree_bias_correction,
    tree_map_none,
    tree_zeros_like,
    value_at,
)


class TraceState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken if decay is a schedule, else ()
    trace: object  # like params (accumulator_dtype if given): the velocity


def trace(decay=0.9, nesterov: bool = False, *, accumulator_dtype=None) -> GradientTransformation:
    """Heavy-ball momentum, optionally in Nesterov's form.

    trace = updates + decay * trace
    updates = trace                        (nesterov=False)
    updates = updates + decay * trace      (nesterov=True)

    Followed by ``scale_by_learning_rate(lr)`` this is the seed's momentum
    ``v = mu * v - lr * dx; x += v`` with ``v = -lr * trace`` (and, with nesterov=True, its
    ``W += -rho * pre_v + (1 + rho) * v`` form), for a constant learning rate.

    Args:
        decay: the momentum coefficient (the seed's ``mu``/``rho``): a number, array or
            schedule of the step count.
        nesterov: use Nesterov's lookahead form.
        accumulator_dtype: dtype of the trace; defaults to each parameter's dtype.
    """
    _checks.check_number("gradtx.trace", "decay", decay, low=0.0, high=1.0, schedule_ok=True)

    def init(params):
        return TraceState(schedule_count(decay), tree_zeros_like(params, accumulator_dtype))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.trace, "gradtx.trace", "updates", "trace")
        d = value_at(decay, state.count)
        new_trace, trace_read = tree_accumulate(updates, state.trace, d)
        out = tree_accumulate(updates, trace_read, d)[0] if nesterov else trace_read
        out = tree_map_none(lambda o, g: o.astype(g.dtype), out, updates)
        return out, TraceState(schedule_clock(state.count, decay), new_trace)

    return GradientTransformation(init, update)


class EmaState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken, for the bias correction
    ema: object  # like params (accumulator_dtype if given): the moving average


def ema(decay=0.9, debias: bool = True, *, accumulator_dtype=None) -> GradientTransformation:
    """Exponential moving average of the updates, optionally bias-corrected.

    ema = decay * ema + (1 - decay) * updates
    updates = ema / (1 - decay ** count)     (debias=True, count from 1)
    updates = ema                            (debias=False)

    Args:
        decay: the averaging coefficient in [0, 1] (number, array or schedule).
        debias: divide by ``1 - decay ** count`` so early averages are not biased to zero.
        accumulator_dtype: dtype of the average; defaults to each parameter's dtype.
    """
    _checks.check_number("gradtx.ema", "decay", decay, low=0.0, high=1.0, schedule_ok=True)

    def init(params):
        return EmaState(jnp.zeros((), jnp.int32), tree_zeros_like(params, accumulator_dtype))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.ema, "gradtx.ema", "updates", "ema")
        d = value_at(decay, state.count)
        count = safe_increment(state.count)
        new_ema, ema_read = tree_moment(updates, state.ema, d, 1)
        out = tree_bias_correction(ema_read, d, count) if debias else ema_read
        out = tree_map_none(lambda o, u: o.astype(u.dtype), out, updates)
        return out, EmaState(count, new_ema)

    return GradientTransformation(init, update)
