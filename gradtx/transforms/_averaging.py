"""Parameter averaging: lookahead's slow weights, Polyak/EMA and SWA averages, target copies."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, call_update
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    safe_increment,
    tree_cast,
    tree_map_none,
    value_at,
)
from gradtx.transforms._wrappers import _check_inner


def incremental_update(new_tensors, old_tensors, step_size):
    """Polyak (exponential moving) average of parameters, one step.

    returns step_size * new_tensors + (1 - step_size) * old_tensors

    Each result keeps the dtype of ``old_tensors``; None leaves of ``new_tensors`` stay None.
    ``step_size`` may be a number, an array or a tracer.
    """
    _checks.check_same_structure(
        new_tensors, old_tensors, "gradtx.incremental_update", "new_tensors", "old_tensors"
    )
    one_minus = 1 - step_size

    def leaf(new, old):
        dt = acc_dtype(old.dtype)
        mixed = as_dtype(step_size, dt) * new.astype(dt) + as_dtype(one_minus, dt) * old.astype(dt)
        return mixed.astype(old.dtype)

    return tree_map_none(leaf, new_tensors, old_tensors)


def periodic_update(new_tensors, old_tensors, steps, update_period):
    """Replace a slow copy of the parameters by the latest ones every ``update_period`` steps.

    returns new_tensors if steps % update_period == 0 else old_tensors

    (the target network of DQN, BYOL). ``steps`` and ``update_period`` may be arrays or tracers.
    """
    _checks.check_same_structure(
        new_tensors, old_tensors, "gradtx.periodic_update", "new_tensors", "old_tensors"
    )
    steps = jnp.asarray(steps)
    now = jnp.mod(steps, as_dtype(update_period, steps.dtype)) == 0
    return tree_map_none(lambda new, old: jnp.where(now, new, old), new_tensors, old_tensors)


class LookaheadParams(NamedTuple):
    """The pair of parameters lookahead works on: take gradients at ``fast``, evaluate ``slow``."""

    fast: Any  # the fast weights, moved by the fast optimizer every step
    slow: Any  # the slow weights, moved toward the fast ones every sync_period steps

    @classmethod
    def init_synced(cls, params) -> LookaheadParams:
        """Start with fast and slow weights equal to ``params``."""
        return cls(fast=params, slow=params)


def _is_pair(params) -> bool:
    """A LookaheadParams, ours or optax's (any NamedTuple with fast and slow fields)."""
    return isinstance(params, tuple) and getattr(params, "_fields", None) == ("fast", "slow")


class LookaheadState(NamedTuple):
    fast_state: Any  # the fast optimizer's state
    steps_since_sync: jax.Array  # int32 scalar: fast steps since the last synchronisation


def lookahead(
    fast_optimizer, sync_period, slow_step_size, reset_state: bool = False
) -> GradientTransformation:
    """Lookahead: k fast steps forward, then the slow weights take a step toward them.

    u = fast_optimizer(updates)                     (gradients taken at params.fast)
    sync = steps_since_sync == sync_period - 1
    diff = params.fast + u - params.slow
    slow updates = slow_step_size * sync * diff
    fast updates = u - sync * (1 - slow_step_size) * diff
    steps_since_sync = (steps_since_sync + 1) % sync_period

    On a sync step the slow weights move to slow + slow_step_size * (fast_after - slow) and the
    fast weights jump to the new slow weights. ``params`` are ``LookaheadParams(fast, slow)`` and
    the returned updates are ``LookaheadParams`` too: pass them to ``apply_updates`` unchanged.

    Args:
        fast_optimizer: the inner optimizer (a transform).
        sync_period: fast steps between synchronisations, >= 1 (number or array).
        slow_step_size: how far the slow weights move toward the fast ones (alpha).
        reset_state: reset the fast optimizer's state to its init after each synchronisation.

    Example:
        >>> import jax.numpy as jnp, gradtx
        >>> tx = gradtx.lookahead(gradtx.sgd(0.5), sync_period=2, slow_step_size=0.5)
        >>> params = gradtx.LookaheadParams.init_synced({"w": jnp.array(0.0)})
        >>> state = tx.init(params)
        >>> for _ in range(2):  # fast: 0.5, 1.0; then slow = 0 + 0.5 * (1.0 - 0) = fast
        ...     updates, state = tx.update({"w": jnp.array(-1.0)}, state, params)
        ...     params = gradtx.apply_updates(params, updates)
        >>> float(params.fast["w"]), float(params.slow["w"])
        (0.5, 0.5)

    References:
        Zhang et al., Lookahead Optimizer: k steps forward, 1 step back, 2019.
    """
    where = "gradtx.lookahead"
    _check_inner(where, fast_optimizer)
    _checks.check_number(where, "sync_period", sync_period, low=1.0)
    _checks.check_number(where, "slow_step_size", slow_step_size, low=0.0, high=1.0)

    def init(params):
        fast = params.fast if _is_pair(params) else params
        return LookaheadState(fast_optimizer.init(fast), jnp.zeros((), jnp.int32))

    def update(updates, state, params=None, **extra_args):
        _checks.require_params(params, where)
        if not _is_pair(params):
            raise TypeError(
                f"{where}: params is of {_checks.describe(params)}, expected "
                "gradtx.LookaheadParams(fast, slow). Start from "
                "gradtx.LookaheadParams.init_synced(params) and take gradients at params.fast."
            )
        u, fast_state = call_update(
            fast_optimizer, updates, state.fast_state, params.fast, extra_args
        )
        sync = state.steps_since_sync == as_dtype(sync_period, jnp.int32) - 1

        def diff(u, f, s):
            dt = acc_dtype(s.dtype)
            return f.astype(dt) + u.astype(dt) - s.astype(dt)

        def slow_leaf(d, s):
            return (as_dtype(slow_step_size, d.dtype) * sync.astype(d.dtype) * d).astype(s.dtype)

        def fast_leaf(u, d):
            back = as_dtype(1 - slow_step_size, d.dtype) * sync.astype(d.dtype) * d
            return (u.astype(d.dtype) - back).astype(u.dtype)

        last_difference = tree_map_none(diff, u, params.fast, params.slow)
        slow_updates = tree_map_none(slow_leaf, last_difference, params.slow)
        fast_updates = tree_map_none(fast_leaf, u, last_difference)
        if reset_state:
            fresh = fast_optimizer.init(params.fast)
            fast_state = jax.tree.map(
                lambda f, c: jnp.where(sync, f.astype(c.dtype), c), fresh, fast_state
            )
        steps = jnp.mod(state.steps_since_sync + 1, as_dtype(sync_period, jnp.int32))
        new = params._replace(fast=fast_updates, slow=slow_updates)
        return new, LookaheadState(fast_state, steps)

    return GradientTransformation(init, update)


class AverageParamsState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken (compared with start_step)
    n_averaged: jax.Array  # int32 scalar: parameter values in the average so far
    average: Any  # like params (dtype if given): the averaged parameters


def average_params(
    decay=0.999, start_step=0, *, mode: str = "ema", dtype=None
) -> GradientTransformation:
    """Keep a running average of the parameters in the state (torch's AveragedModel).

    new_params = params + updates                   (updates pass through unchanged)
    if count >= start_step:
        average = new_params                                              (n_averaged == 0)
        average = decay * average + (1 - decay) * new_params              (mode="ema")
        average = average + (new_params - average) / (n_averaged + 1)     (mode="swa")
        n_averaged = n_averaged + 1

    Put it last in a chain, so that ``updates`` are the final ones; read the average as
    ``state.average``. "ema" is Polyak averaging with exponential weights; "swa" is the equal-
    weight mean of stochastic weight averaging.

    Args:
        decay: the EMA coefficient (number, array or schedule of count; unused by "swa").
        start_step: the first step whose parameters enter the average (number or array).
        mode: "ema" or "swa".
        dtype: dtype of the average (e.g. float32 for bf16 params); defaults to the params'.

    Example:
        >>> import jax.numpy as jnp, gradtx
        >>> tx = gradtx.chain(gradtx.sgd(1.0), gradtx.average_params(mode="swa"))
        >>> params = {"w": jnp.array(0.0)}
        >>> state = tx.init(params)
        >>> for _ in range(3):  # the params go 1, 2, 3
        ...     updates, state = tx.update({"w": jnp.array(-1.0)}, state, params)
        ...     params = gradtx.apply_updates(params, updates)
        >>> float(state[1].average["w"])
        2.0

    References:
        Polyak and Juditsky, Acceleration of stochastic approximation by averaging, 1992.
        Izmailov et al., Averaging Weights Leads to Wider Optima and Better Generalization, 2018.
    """
    where = "gradtx.average_params"
    if mode not in ("ema", "swa"):
        raise ValueError(f"{where}: mode={mode!r} is not one of 'ema', 'swa'.")
    _checks.check_number(where, "decay", decay, low=0.0, high=1.0, schedule_ok=True)
    _checks.check_number(where, "start_step", start_step, low=0.0)

    def init(params):
        zero = jnp.zeros((), jnp.int32)
        return AverageParamsState(zero, zero, tree_cast(params, dtype))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, state.average, where, "updates", "state.average")
        d = value_at(decay, state.count)
        active = state.count >= as_dtype(start_step, jnp.int32)
        first = state.n_averaged == 0

        def leaf(a, u, p):
            dt = acc_dtype(a.dtype)
            new, old = p.astype(dt) + (0 if u is None else u.astype(dt)), a.astype(dt)
            if mode == "ema":
                avg = as_dtype(d, dt) * old + as_dtype(1 - d, dt) * new
            else:
                avg = old + (new - old) / safe_increment(state.n_averaged).astype(dt)
            return jnp.where(active, jnp.where(first, new, avg), old).astype(a.dtype)

        average = tree_map_none(leaf, state.average, updates, params)
        n_averaged = jnp.where(active, safe_increment(state.n_averaged), state.n_averaged)
        return updates, AverageParamsState(safe_increment(state.count), n_averaged, average)

    return GradientTransformation(init, update)
