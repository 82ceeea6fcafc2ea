"""Reduce the step size when the loss stops improving (optax's ``reduce_on_plateau``)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.trees import acc_dtype, as_dtype, safe_increment, tree_map_none


class ReduceLROnPlateauState(NamedTuple):
    scale: jax.Array  # float scalar (float32, or float64 params): the factor on the updates
    best_value: jax.Array  # float scalar: the lowest averaged loss so far (inf at start)
    plateau_count: jax.Array  # int32 scalar: evaluations since the loss last improved
    cooldown_count: jax.Array  # int32 scalar: evaluations left before plateaus count again
    count: jax.Array  # int32 scalar: losses averaged since the last evaluation
    avg_value: jax.Array  # float scalar: the mean of those losses


def _state_dtype(params):
    """float64 if any parameter is float64, else float32."""
    dtypes = [jnp.result_type(x) for x in jax.tree.leaves(params)]
    wide = any(jnp.issubdtype(d, jnp.floating) and acc_dtype(d).itemsize > 4 for d in dtypes)
    return jnp.dtype(jnp.float64 if wide else jnp.float32)


def _read_loss(extra_args, where):
    if "loss" in extra_args and "value" in extra_args:
        raise ValueError(f"{where}: got both loss= and value=; pass the loss once, as loss=.")
    loss = extra_args.get("loss", extra_args.get("value"))
    if loss is None:
        raise ValueError(
            f"{where}: update needs the loss, but no loss= was passed (keyword arguments given: "
            f"{sorted(extra_args) or 'none'}). Call tx.update(updates, state, params, loss=loss)."
        )
    return loss


def reduce_on_plateau(
    factor=0.1,
    patience=10,
    rtol=1e-4,
    atol=0.0,
    cooldown=0,
    accumulation_size=1,
    min_scale=0.0,
    min_decrease=0.0,
    *,
    mode: str = "min",
) -> GradientTransformation:
    """Scale the updates down by ``factor`` when the loss stops improving (optax's rule).

    Each update adds ``loss`` (a keyword argument of update) to a running mean; every
    ``accumulation_size`` updates the mean is evaluated and reset:
    improved = avg_value < (1 - rtol) * best_value - atol     (mode "min"; best starts at inf)
    improved = avg_value > (1 + rtol) * best_value + atol     (mode "max"; best starts at -inf)
    best_value = avg_value if improved else best_value
    plateau_count = 0 if improved else plateau_count + 1
    in cooldown (cooldown_count > 0): plateau_count = 0, cooldown_count -= 1
    otherwise, if plateau_count == patience:
        scale = max(scale * factor, min_scale) if that lowers it by more than min_decrease,
        plateau_count = 0, cooldown_count = cooldown
    updates = scale * updates     (with the scale after this step's evaluation)

    Put it after ``scale_by_learning_rate`` (or after an optimizer) to scale the learning
    rate: ``chain(adam(1e-3), reduce_on_plateau())``, updated with ``loss=loss``.

    Args:
        factor: the factor applied on a plateau, in (0, 1).
        patience: evaluations without improvement before the scale drops (>= 1; torch's
            ``patience=p`` is ``patience=p + 1`` here).
        rtol: relative improvement needed, in [0, 1].
        atol: absolute improvement needed (>= 0; rtol and atol not both 0).
        cooldown: evaluations after a drop during which plateaus are not counted.
        accumulation_size: losses averaged per evaluation (>= 1; > 1 for minibatch losses).
        min_scale: the scale never drops below this.
        min_decrease: a drop that would lower the scale by ``min_decrease`` or less is
            skipped (torch's ``eps``, divided by the learning rate; 0 keeps optax's rule).
        mode: ``"min"`` (the loss should fall, optax) or ``"max"`` (a metric that should
            rise, as torch's ``mode="max"``; static).
    """
    where = "gradtx.reduce_on_plateau"
    check = _checks.check_number
    check(where, "factor", factor, low=0.0, high=1.0, low_open=True, high_open=True)
    check(where, "patience", patience, low=1.0, hint="torch's patience=p is patience=p + 1 here.")
    check(where, "rtol", rtol, low=0.0, high=1.0)
    check(where, "atol", atol, low=0.0)
    if _checks.is_python_number(rtol) and _checks.is_python_number(atol) and rtol == atol == 0:
        raise ValueError(f"{where}: rtol and atol are both 0; at least one must be positive.")
    check(where, "cooldown", cooldown, low=0.0)
    check(where, "accumulation_size", accumulation_size, low=1.0)
    check(where, "min_scale", min_scale, low=0.0)
    check(where, "min_decrease", min_decrease, low=0.0)
    if mode not in ("min", "max"):
        raise ValueError(f"{where}: mode={mode!r}; expected 'min' or 'max'.")
    worst = jnp.inf if mode == "min" else -jnp.inf

    def init(params):
        dt = _state_dtype(params)
        zero = jnp.zeros((), jnp.int32)
        return ReduceLROnPlateauState(
            jnp.ones((), dt), jnp.full((), worst, dt), zero, zero, zero, jnp.zeros((), dt)
        )

    def update(updates, state, params=None, **extra_args):
        del params
        loss = _read_loss(extra_args, where)
        dt, i32 = state.avg_value.dtype, jnp.int32
        count = safe_increment(state.count)
        avg = (state.count.astype(dt) * state.avg_value + as_dtype(loss, dt)) / count.astype(dt)
        evaluate = count == as_dtype(accumulation_size, i32)
        if mode == "min":
            improved = avg < as_dtype(1 - rtol, dt) * state.best_value - as_dtype(atol, dt)
        else:
            improved = avg > as_dtype(1 + rtol, dt) * state.best_value + as_dtype(atol, dt)
        best = jnp.where(improved, avg, state.best_value)
        plateau = jnp.where(improved, 0, safe_increment(state.plateau_count))
        cooling = state.cooldown_count > 0
        drop = ~cooling & (plateau == as_dtype(patience, i32))
        lowered = jnp.maximum(jnp.where(drop, state.scale * as_dtype(factor, dt), state.scale),
                              as_dtype(min_scale, dt))  # fmt: skip
        small = (lowered < state.scale) & (state.scale - lowered <= as_dtype(min_decrease, dt))
        scale = jnp.where(cooling | small, state.scale, lowered)
        plateau = jnp.where(cooling | drop, 0, plateau)
        cooldown_count = jnp.where(
            cooling, state.cooldown_count - 1, jnp.where(drop, as_dtype(cooldown, i32), 0)
        )
        new = ReduceLROnPlateauState(
            jnp.where(evaluate, scale, state.scale),
            jnp.where(evaluate, best, state.best_value),
            jnp.where(evaluate, plateau, state.plateau_count).astype(i32),
            jnp.where(evaluate, cooldown_count, state.cooldown_count).astype(i32),
            jnp.where(evaluate, 0, count).astype(i32),
            jnp.where(evaluate, 0, avg).astype(dt),
        )
        updates = tree_map_none(lambda u: u * as_dtype(new.scale, u.dtype), updates)
        return updates, new

    return GradientTransformation(init, update)
