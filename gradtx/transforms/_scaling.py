"""Scaling by a constant and by the learning rate."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import EmptyState, GradientTransformation
from gradtx._core.trees import (
    as_dtype,
    safe_increment,
    schedule_clock,
    schedule_count,
    tree_map_none,
    value_at,
)


def scale(step_size) -> GradientTransformation:
    """Multiply the updates by a constant.

    updates = step_size * updates

    Args:
        step_size: a number or an array (a tracer under vmap or grad is fine).
    """
    _checks.check_number("gradtx.scale", "step_size", step_size)

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return tree_map_none(lambda u: u * as_dtype(step_size, u.dtype), updates), state

    return GradientTransformation(init, update)


class ScaleByLearningRateState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken if learning_rate is a schedule, else ()


def scale_by_learning_rate(learning_rate, *, flip_sign: bool = True) -> GradientTransformation:
    """Scale the updates by the learning rate, negated so that applying them descends.

    lr = learning_rate(count) if it is a schedule, else learning_rate
    updates = -lr * updates          (lr * updates when flip_sign=False)

    Args:
        learning_rate: a number, an array, or a schedule ``count -> value`` evaluated at the
            0-based step count.
        flip_sign: negate the step (the default), as gradient descent needs.
    """
    _checks.check_number(
        "gradtx.scale_by_learning_rate",
        "learning_rate",
        learning_rate,
        low=0.0,
        schedule_ok=True,
        hint="For gradient ascent pass flip_sign=False instead.",
    )
    sign = -1 if flip_sign else 1

    def init(params):
        del params
        return ScaleByLearningRateState(schedule_count(learning_rate))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        lr = value_at(learning_rate, state.count)
        step = {}  # the signed rate once per dtype, not once per leaf: a smaller program

        def leaf(u):
            if u.dtype not in step:
                step[u.dtype] = sign * as_dtype(lr, u.dtype)
            return u * step[u.dtype]

        updates = tree_map_none(leaf, updates)
        return updates, ScaleByLearningRateState(schedule_clock(state.count, learning_rate))

    return GradientTransformation(init, update)


class ScaleByScheduleState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken, the schedule's argument


def scale_by_schedule(step_size_fn) -> GradientTransformation:
    """Multiply the updates by a schedule of the step count (no sign flip).

    updates = step_size_fn(count) * updates
    count = count + 1

    Args:
        step_size_fn: a schedule ``count -> value`` (count an int32 scalar, from 0).
    """
    if not callable(step_size_fn):
        raise TypeError(
            f"gradtx.scale_by_schedule: step_size_fn={step_size_fn!r} is not callable; pass a "
            "schedule count -> value (for a constant use gradtx.scale)."
        )

    def init(params):
        del params
        return ScaleByScheduleState(jnp.zeros((), jnp.int32))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        step_size = step_size_fn(state.count)
        updates = tree_map_none(lambda u: u * as_dtype(step_size, u.dtype), updates)
        return updates, ScaleByScheduleState(safe_increment(state.count))

    return GradientTransformation(init, update)
