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
    tree_bias_correction,
    tree_map_none,
    tree_zeros_like,
    value_at,
)


class TraceState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken if decay is a schedule or dampening is on, else ()
    trace: object  # like params (accumulator_dtype if given): the velocity


def _damped(dampening) -> bool:
    """Whether ``dampening`` may be nonzero: anything but the Python number 0 (decided on the
    value's type when the transform is built, so the state's structure is fixed)."""
    return not (_checks.is_python_number(dampening) and dampening == 0)


def trace(
    decay=0.9, nesterov: bool = False, *, dampening=0.0, accumulator_dtype=None
) -> GradientTransformation:
    """Heavy-ball momentum, optionally in Nesterov's form or with torch's dampening.

    trace = updates + decay * trace                           (first step, and dampening=0)
    trace = (1 - dampening) * updates + decay * trace         (from the second step on)
    updates = trace                        (nesterov=False)
    updates = updates + decay * trace      (nesterov=True)

    Followed by ``scale_by_learning_rate(lr)`` this is the seed's momentum
    ``v = mu * v - lr * dx; x += v`` with ``v = -lr * trace`` (and, with nesterov=True, its
    ``W += -rho * pre_v + (1 + rho) * v`` form), for a constant learning rate. With
    ``dampening`` it is torch.optim.SGD's buffer, which starts as the first gradient itself.

    Args:
        decay: the momentum coefficient (the seed's ``mu``/``rho``): a number, array or
            schedule of the step count.
        nesterov: use Nesterov's lookahead form.
        dampening: torch's ``dampening``, in [0, 1] (number, array or schedule). With the
            Python number 0 (the default) the state keeps no step count (unless decay is a
            schedule) and the numerics are those without dampening; any other value keeps an
            int32 count, to leave the first step undamped as torch does.
        accumulator_dtype: dtype of the trace; defaults to each parameter's dtype.
    """
    where = "gradtx.trace"
    _checks.check_number(where, "decay", decay, low=0.0, high=1.0, schedule_ok=True)
    _checks.check_number(where, "dampening", dampening, low=0.0, high=1.0, schedule_ok=True)
    damped = _damped(dampening)
    if nesterov and damped and _checks.is_python_number(dampening):
        raise ValueError(
            f"{where}: nesterov=True with dampening={dampening!r}; Nesterov momentum needs "
            "dampening=0 (as torch.optim.SGD). Pass dampening=0 or nesterov=False."
        )
    counted = damped or callable(decay)

    def init(params):
        count = jnp.zeros((), jnp.int32) if counted else ()
        return TraceState(count, tree_zeros_like(params, accumulator_dtype))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.trace, where, "updates", "trace")
        d = value_at(decay, state.count)
        add = None
        if damped:  # 1 - dampening, but 1 at the first step (torch's buffer = grad)
            add = jnp.where(state.count == 0, 1, 1 - value_at(dampening, state.count))
        new_trace, trace_read = tree_accumulate(updates, state.trace, d, add)
        out = tree_accumulate(updates, trace_read, d)[0] if nesterov else trace_read
        out = tree_map_none(lambda o, g: o.astype(g.dtype), out, updates)
        count = safe_increment(state.count) if counted else state.count
        return out, TraceState(count, new_trace)

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
