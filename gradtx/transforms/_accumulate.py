"""Gradient accumulation (MultiSteps, apply_every) and conditional application of a transform."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, call_update
from gradtx._core.trees import (
    acc_dtype,
    check_float_leaves,
    safe_increment,
    tree_map_none,
    tree_zeros_like,
    value_at,
)
from gradtx.transforms._combine import check_transform


def _check_k(where, name, k, schedule_ok):
    _checks.check_number(where, name, k, low=1, schedule_ok=schedule_ok)
    if _checks.is_python_number(k) and int(k) != k:
        raise ValueError(f"{where}: {name}={k!r} is not a whole number of steps; pass an int.")


def _as_steps(k):
    """A step count as an int32 scalar (a float array, as in a vmap sweep, is rounded)."""
    k = jnp.asarray(k)
    return (jnp.round(k) if jnp.issubdtype(k.dtype, jnp.floating) else k).astype(jnp.int32)


class ShouldSkipUpdateFunction(Protocol):
    """The type of ``MultiSteps``' ``should_skip_update_fn`` (optax's name).

    ``fn(updates, gradient_step, params) -> (skip, skip_state)``: ``skip`` a bool scalar (True
    drops this mini-step's gradient), ``skip_state`` any tree, kept in
    ``MultiStepsState.skip_state`` for monitoring. ``skip_not_finite`` and
    ``skip_large_updates`` are two such functions.
    """

    def __call__(self, updates: Any, gradient_step: jax.Array, params: Any) -> tuple[Any, Any]:
        """Whether to skip this mini-step, and what to keep for monitoring."""
        ...


def _no_skip(updates, gradient_step, params):
    del updates, gradient_step, params
    return jnp.zeros((), jnp.bool_), ()


class MultiStepsState(NamedTuple):
    mini_step: jax.Array  # int32 scalar: mini-steps accumulated since the last inner step
    gradient_step: jax.Array  # int32 scalar: inner optimizer steps taken
    inner_opt_state: Any  # the wrapped optimizer's state, changed only on inner steps
    acc_grads: Any  # like params, in accumulator_dtype (default: at least float32): their mean
    skip_state: Any = ()  # what should_skip_update_fn returned last (for monitoring)


class MultiSteps:
    """Accumulate gradients over k mini-steps, then step the wrapped optimizer once.

    acc = acc + (updates - acc) / (mini_step + 1)     (use_grad_mean; else acc = acc + updates)
    on the k-th mini-step (mini_step == k - 1): updates, inner_state = opt(acc), acc = 0
    on the others: updates = 0, and the inner state is left as it was

    k = every_k_schedule(gradient_step) if it is a function, else every_k_schedule. A mini-step
    for which ``should_skip_update_fn`` returns True changes nothing but ``skip_state`` and
    returns zero updates. ``gradient_transformation()`` gives the ``(init, update)`` pair.

    Args:
        opt: the wrapped optimizer.
        every_k_schedule: k, the mini-steps per inner step: an int >= 1, an array, or a
            function ``gradient_step -> k``.
        use_grad_mean: pass the mean of the k gradients (True) or their sum.
        should_skip_update_fn: ``(updates, gradient_step, params) -> (bool scalar, skip_state)``.
        accumulator_dtype: dtype of ``acc_grads``; by default each parameter's dtype, widened
            to float32 when narrower (a bfloat16 running mean over k = 256 mini-steps drifts by
            4%: each addition rounds to 8 bits). The inner optimizer still receives the mean
            in the parameter's dtype.
    """

    def __init__(
        self,
        opt,
        every_k_schedule,
        use_grad_mean: bool = True,
        should_skip_update_fn: ShouldSkipUpdateFunction | None = None,
        accumulator_dtype=None,
    ):
        where = "gradtx.MultiSteps"
        check_transform(opt, where, "opt")
        _check_k(where, "every_k_schedule", every_k_schedule, schedule_ok=True)
        self.inner_opt = opt
        self._every_k = every_k_schedule
        self._use_grad_mean = use_grad_mean
        self._should_skip = should_skip_update_fn or _no_skip
        self._acc_dtype = accumulator_dtype

    def init(self, params) -> MultiStepsState:
        step = jnp.zeros((), jnp.int32)
        _, skip_state = self._should_skip(tree_zeros_like(params), step, params)
        if self._acc_dtype is None:
            check_float_leaves(params, "gradtx.MultiSteps")
            acc = tree_map_none(lambda p: jnp.zeros_like(p, acc_dtype(jnp.result_type(p))), params)
        else:
            acc = tree_zeros_like(params, self._acc_dtype)
        return MultiStepsState(step, step, self.inner_opt.init(params), acc, skip_state)

    def update(self, updates, state, params=None, **extra_args):
        _checks.check_same_shapes(
            updates, state.acc_grads, "gradtx.MultiSteps", "updates", "state.acc_grads"
        )
        k = _as_steps(value_at(self._every_k, state.gradient_step))
        skip, skip_state = self._should_skip(updates, state.gradient_step, params)
        skip = jnp.asarray(skip)
        if skip.shape != () or skip.dtype != jnp.bool_:
            raise ValueError(
                f"gradtx.MultiSteps: should_skip_update_fn returned an array of shape "
                f"{skip.shape} and dtype {skip.dtype}; expected a bool scalar."
            )

        def accumulate(g, a):
            dt = acc_dtype(a.dtype)
            g, old = g.astype(dt), a.astype(dt)
            n = (state.mini_step + 1).astype(dt)
            return (old + (g - old) / n if self._use_grad_mean else old + g).astype(a.dtype)

        acc = tree_map_none(accumulate, updates, state.acc_grads)
        emit = jnp.logical_and(state.mini_step == k - 1, jnp.logical_not(skip))
        grads = tree_map_none(lambda a, g: a.astype(g.dtype), acc, updates)
        step = lambda: call_update(self.inner_opt, grads, state.inner_opt_state, params, extra_args)

        def hold():
            zeros = tree_map_none(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(step)[0])
            return zeros, state.inner_opt_state

        new_updates, inner_state = jax.lax.cond(emit, step, hold)
        keep = lambda new, old: jnp.where(skip, old, new)
        mini_step = jnp.where(emit, 0, safe_increment(state.mini_step)).astype(jnp.int32)
        acc = tree_map_none(
            lambda a, old: keep(jnp.where(emit, 0, a), old).astype(old.dtype), acc, state.acc_grads
        )
        return new_updates, MultiStepsState(
            keep(mini_step, state.mini_step),
            jnp.where(emit, safe_increment(state.gradient_step), state.gradient_step),
            inner_state,
            acc,
            skip_state,
        )

    def has_updated(self, state: MultiStepsState) -> jax.Array:
        """True right after a mini-step that stepped the inner optimizer."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> GradientTransformation:
        """This wrapper as a plain ``GradientTransformation(init, update)``."""
        return GradientTransformation(self.init, self.update)


class ApplyEveryState(NamedTuple):
    count: jax.Array  # int32 scalar: mini-steps since the last emission, in [0, k)
    grad_acc: Any  # like params: sum of the updates since the last emission


def apply_every(k=1) -> GradientTransformation:
    """Sum the updates over k steps and emit the sum every k-th step, zeros in between.

    grad_acc = updates + (grad_acc if count != 0 else 0)
    updates = grad_acc if count == k - 1 else 0
    count = (count + 1) mod k

    Transforms before it in a chain still step every time; for an exact large-batch
    equivalent wrap the optimizer in ``MultiSteps`` instead.

    Args:
        k: emit every k steps: an int >= 1 or an array.
    """
    _check_k("gradtx.apply_every", "k", k, schedule_ok=False)

    def init(params):
        return ApplyEveryState(jnp.zeros((), jnp.int32), tree_zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_shapes(
            updates, state.grad_acc, "gradtx.apply_every", "updates", "state.grad_acc"
        )
        steps = _as_steps(k)
        emit = state.count == steps - 1
        grad_acc = tree_map_none(
            lambda g, a: g + jnp.where(state.count != 0, a, 0).astype(g.dtype),
            updates,
            state.grad_acc,
        )
        updates = tree_map_none(lambda a: jnp.where(emit, a, 0).astype(a.dtype), grad_acc)
        count = jnp.where(emit, 0, safe_increment(state.count)).astype(jnp.int32)
        return updates, ApplyEveryState(count, grad_acc)

    return GradientTransformation(init, update)


class ConditionallyTransformState(NamedTuple):
    inner_state: Any  # the inner transform's state, changed only on the steps it runs
    step: jax.Array  # int32 scalar: update calls so far


def conditionally_transform(
    inner, should_transform_fn: Callable, forward_extra_args: bool = False
) -> GradientTransformation:
    """Run ``inner`` only on the steps where ``should_transform_fn(step)`` is True.

    updates, inner_state = inner(updates) if should_transform_fn(step) else (updates, inner_state)
    step = step + 1

    The inner transform must return updates of the same structure and dtypes as its input.

    Args:
        inner: the transform to run conditionally.
        should_transform_fn: ``step -> bool scalar`` (``step`` an int32 scalar, from 0); with
            ``forward_extra_args`` it is also given the update's keyword arguments.
        forward_extra_args: pass the extra keyword arguments to ``should_transform_fn``.
    """
    where = "gradtx.conditionally_transform"
    check_transform(inner, where, "inner")
    if not callable(should_transform_fn):
        raise TypeError(
            f"{where}: should_transform_fn={should_transform_fn!r} is not callable; pass a "
            "function step -> bool, e.g. lambda step: step % 2 == 0."
        )

    def init(params):
        return ConditionallyTransformState(inner.init(params), jnp.zeros((), jnp.int32))

    def update(updates, state, params=None, **extra_args):
        run = should_transform_fn(state.step, **(extra_args if forward_extra_args else {}))
        updates, inner_state = jax.lax.cond(
            jnp.asarray(run, jnp.bool_),
            lambda: call_update(inner, updates, state.inner_state, params, extra_args),
            lambda: (updates, state.inner_state),
        )
        return updates, ConditionallyTransformState(inner_state, safe_increment(state.step))

    return GradientTransformation(init, update)


class ConditionallyMaskState(NamedTuple):
    step: jax.Array  # int32 scalar: update calls so far
    inner_state: Any  # the inner transform's state, changed only on the steps it runs


def conditionally_mask(
    inner, should_transform_fn: Callable, forward_extra_args: bool = False
) -> GradientTransformation:
    """Run ``inner`` where ``should_transform_fn(step)`` is True; elsewhere output zeros.

    updates, inner_state = inner(updates) if should_transform_fn(step) else (0, inner_state)
    step = step + 1

    Unlike ``conditionally_transform``, a skipped step moves nothing (the updates are zeros).

    Args:
        inner: the transform to run conditionally.
        should_transform_fn: ``step -> bool scalar`` (``step`` an int32 scalar, from 0); with
            ``forward_extra_args`` it is also given the update's keyword arguments.
        forward_extra_args: pass the extra keyword arguments to ``should_transform_fn``.
    """
    where = "gradtx.conditionally_mask"
    check_transform(inner, where, "inner")
    if not callable(should_transform_fn):
        raise TypeError(
            f"{where}: should_transform_fn={should_transform_fn!r} is not callable; pass a "
            "function step -> bool, e.g. lambda step: step % 2 == 0."
        )

    def init(params):
        return ConditionallyMaskState(jnp.zeros((), jnp.int32), inner.init(params))

    def update(updates, state, params=None, **extra_args):
        run = should_transform_fn(state.step, **(extra_args if forward_extra_args else {}))
        updates, inner_state = jax.lax.cond(
            jnp.asarray(run, jnp.bool_),
            lambda: call_update(inner, updates, state.inner_state, params, extra_args),
            lambda: (tree_zeros_like(updates), state.inner_state),
        )
        return updates, ConditionallyMaskState(safe_increment(state.step), inner_state)

    return GradientTransformation(init, update)
