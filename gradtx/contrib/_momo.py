"""MoMo (Schaipp, Ohana, Eickenberg, Defazio & Gower 2023): momentum methods whose step size
is the largest one a model of the loss, built from the momentum averages, allows."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._aliases._common import maximizing
from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    bias_correction_factor,
    safe_increment,
    tree_map_none,
    tree_scalar_dtype,
    tree_squares_like,
    tree_sum_squares,
    tree_vdot,
    tree_zeros_like,
    value_at,
)
from gradtx.contrib._prodigy import _leafwise

_TINY = 2.220446049250313e-16  # float64's machine epsilon


def _read_value(extra_args, where):
    value = extra_args.get("value", extra_args.get("loss"))
    if value is None:
        raise ValueError(
            f"{where}: update needs the loss at the current params, but no value= was passed "
            f"(keyword arguments given: {sorted(extra_args) or 'none'}). Use "
            "loss, grads = jax.value_and_grad(f)(params) and tx.update(grads, state, params, "
            "value=loss)."
        )
    return value


def _step_size(alpha, wd, barf, lb, gamma, iprod, norm_sq, cap_alpha):
    """tau = min(cap_alpha, max((1 + alpha wd) (barf - lb - gamma) + iprod, 0) / norm_sq),
    0 where norm_sq is at most float64's machine epsilon (in every dtype, as optax)."""
    num = jnp.maximum((1 + alpha * wd) * (barf - lb - gamma) + iprod, 0)
    tiny = norm_sq <= _TINY
    return jnp.minimum(cap_alpha, jnp.where(tiny, 0, num / jnp.where(tiny, 1, norm_sq)))


class MomoState(NamedTuple):
    exp_avg: Any  # d: the average of the gradients, like params
    barf: jax.Array  # the average of the losses (float32, or float64 params)
    gamma: jax.Array  # the average of <g, x>
    lb: jax.Array  # the lower bound on the loss in use
    count: jax.Array  # int32 scalar: steps taken


def momo(
    learning_rate=1.0,
    beta=0.9,
    lower_bound=0.0,
    weight_decay=0.0,
    adapt_lower_bound: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """MoMo: SGD with momentum, the step capped by a model of the loss (needs ``value=``).

    b = 0 at the first step, else beta;  alpha = learning_rate(count) (count from 0)
    barf = b * barf + (1 - b) * value;  d = b * d + (1 - b) * g
    gamma = b * gamma + (1 - b) * <g, x>
    tau = min(alpha, max((1 + alpha * wd) * (barf - lb - gamma) + <d, x>, 0) / ||d|| ** 2)
    updates = -(alpha * wd) / (1 + alpha * wd) * x - tau * d
    adapt_lower_bound: lb is re-estimated each step as max(barf + <d, x> - gamma
    - tau * ||d|| ** 2 / 2, lower_bound), and lowered first when the cap falls below it.

    Args:
        learning_rate: alpha, the largest step (1, or a schedule).
        beta: the momentum.
        lower_bound: a lower bound on the loss (0 for non-negative losses).
        weight_decay: wd, the paper's lambda (decay as in AdamW).
        adapt_lower_bound: estimate the lower bound online (MoMo*).

    References:
        Schaipp et al. 2023, "MoMo: Momentum Models for Adaptive Learning Rates",
        Algorithm 1 (MoMo) with the weight decay and lower-bound estimate of Section 5.
    """
    where = "gradtx.contrib.momo"
    _checks.check_number(where, "learning_rate", learning_rate, low=0.0, schedule_ok=True)
    _checks.check_number(where, "beta", beta, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "lower_bound", lower_bound)
    _checks.check_number(where, "weight_decay", weight_decay, low=0.0)

    def init(params):
        dt = tree_scalar_dtype(params)
        zero = jnp.zeros((), dt)
        return MomoState(
            tree_zeros_like(params), zero, zero, as_dtype(lower_bound, dt), jnp.zeros((), jnp.int32)
        )

    def update(updates, state, params=None, **extra_args):
        _checks.require_params(params, where)
        value = _read_value(extra_args, where)
        dt = state.barf.dtype
        b = jnp.where(state.count == 0, 0, as_dtype(beta, dt))
        barf = b * state.barf + (1 - b) * as_dtype(value, dt)
        gamma = b * state.gamma + (1 - b) * tree_vdot(updates, params, dt)

        def avg(g, d):
            a = acc_dtype(d.dtype)
            return ((b.astype(a) * d.astype(a) + (1 - b.astype(a)) * g.astype(a)).astype(d.dtype),)

        (d,) = _leafwise(avg, 1, updates, state.exp_avg)
        norm_sq = tree_sum_squares(d).astype(dt)
        iprod = tree_vdot(d, params, dt)
        alpha, wd = as_dtype(value_at(learning_rate, state.count), dt), as_dtype(weight_decay, dt)
        lb, floor = state.lb, as_dtype(lower_bound, dt)
        if adapt_lower_bound:
            cap = (1 + alpha * wd) * (barf - gamma) + iprod
            lb = jnp.where(
                cap < (1 + alpha * wd) * lb, jnp.maximum(cap / (2 * (1 + alpha * wd)), floor), lb
            )
        tau = _step_size(alpha, wd, barf, lb, gamma, iprod, norm_sq, alpha)

        def step(di, x):
            a = acc_dtype(x.dtype)
            shrink = (alpha * wd / (1 + alpha * wd)).astype(a)
            return (-shrink * x.astype(a) - tau.astype(a) * di.astype(a)).astype(x.dtype)

        if adapt_lower_bound:
            lb = jnp.maximum(barf + iprod - gamma - tau * norm_sq / 2, floor)
        new_updates = tree_map_none(step, d, params)
        return new_updates, MomoState(d, barf, gamma, lb, safe_increment(state.count))

    return maximizing(GradientTransformation(init, update), maximize)


class MomoAdamState(NamedTuple):
    exp_avg: Any  # d: the average of the gradients, like params
    exp_avg_sq: Any  # v: the average of g ** 2 (squares_dtype: float32 for float16)
    barf: jax.Array  # the average of the losses (float32, or float64 params)
    gamma: jax.Array  # the average of <g, x>
    lb: jax.Array  # the lower bound on the loss in use
    count: jax.Array  # int32 scalar: steps taken


def momo_adam(
    learning_rate=1e-2,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    lower_bound=0.0,
    weight_decay=0.0,
    adapt_lower_bound: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """MoMo-Adam: Adam's preconditioner in MoMo's model of the loss (needs ``value=``).

    barf = b1 * barf + (1 - b1) * value;  d = b1 * d + (1 - b1) * g;  v = b2 * v + (1 - b2) * g ** 2
    D = eps + sqrt(v / (1 - b2 ** t));  gamma = b1 * gamma + (1 - b1) * <g, x>   (t from 1)
    bc1 = 1 - b1 ** t;  alpha = learning_rate(t - 1)
    tau = min(alpha / bc1, max((1 + alpha * wd) * (barf - bc1 * lb - gamma) + <d, x>, 0)
              / <d, d / D>)
    updates = -(alpha * wd) / (1 + alpha * wd) * x - tau * d / D
    adapt_lower_bound: lb = max((barf + <d, x> - gamma - tau * <d, d / D> / 2) / bc1,
    lower_bound), lowered first when the cap falls below bc1 * (1 + alpha * wd) * lb.

    Args:
        learning_rate: alpha, the largest step (before bias correction).
        b1: the momentum; b2: the decay of v; eps: added to D.
        lower_bound: a lower bound on the loss.
        weight_decay: wd, as in AdamW.
        adapt_lower_bound: estimate the lower bound online.

    References:
        Schaipp et al. 2023, "MoMo: Momentum Models for Adaptive Learning Rates",
        Algorithm 2 (MoMo-Adam).
    """
    where = "gradtx.contrib.momo_adam"
    _checks.check_number(where, "learning_rate", learning_rate, low=0.0, schedule_ok=True)
    _checks.check_number(where, "b1", b1, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "b2", b2, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "lower_bound", lower_bound)
    _checks.check_number(where, "weight_decay", weight_decay, low=0.0)

    def init(params):
        dt = tree_scalar_dtype(params)
        zero = jnp.zeros((), dt)
        return MomoAdamState(
            tree_zeros_like(params),
            tree_squares_like(params),
            zero,
            zero,
            as_dtype(lower_bound, dt),
            jnp.zeros((), jnp.int32),
        )

    def update(updates, state, params=None, **extra_args):
        _checks.require_params(params, where)
        value = _read_value(extra_args, where)
        dt = state.barf.dtype
        count = safe_increment(state.count)
        beta1 = as_dtype(b1, dt)
        barf = beta1 * state.barf + (1 - beta1) * as_dtype(value, dt)
        gamma = beta1 * state.gamma + (1 - beta1) * tree_vdot(updates, params, dt)
        bc2 = bias_correction_factor(b2, count, dt)

        def moments(g, d, v):
            a = acc_dtype(d.dtype)
            g, d_, v_ = g.astype(a), d.astype(a), v.astype(a)
            d_new = as_dtype(b1, a) * d_ + as_dtype(1 - b1, a) * g
            v_new = as_dtype(b2, a) * v_ + as_dtype(1 - b2, a) * g * g
            precond = as_dtype(eps, a) + jnp.sqrt(v_new.astype(v.dtype).astype(a) / bc2.astype(a))
            d_new = d_new.astype(d.dtype)
            return d_new, v_new.astype(v.dtype), d_new.astype(a) / precond, precond

        d, v, weighted, precond = _leafwise(moments, 4, updates, state.exp_avg, state.exp_avg_sq)
        norm_sq = tree_vdot(d, weighted, dt)
        iprod = tree_vdot(d, params, dt)
        alpha, wd = as_dtype(value_at(learning_rate, state.count), dt), as_dtype(weight_decay, dt)
        bc1 = bias_correction_factor(b1, count, dt)
        lb, floor = state.lb, as_dtype(lower_bound, dt)
        if adapt_lower_bound:
            cap = (1 + alpha * wd) * (barf - gamma) + iprod
            low = cap < (1 + alpha * wd) * bc1 * lb
            lb = jnp.where(low, jnp.maximum(cap / (2 * bc1 * (1 + alpha * wd)), floor), lb)
        tau = _step_size(alpha, wd, barf, bc1 * lb, gamma, iprod, norm_sq, alpha / bc1)

        def step(w, x):
            a = acc_dtype(x.dtype)
            shrink = (alpha * wd / (1 + alpha * wd)).astype(a)
            return (-shrink * x.astype(a) - tau.astype(a) * w).astype(x.dtype)

        if adapt_lower_bound:
            lb = jnp.maximum((barf + iprod - gamma - tau * norm_sq / 2) / bc1, floor)
        new_updates = tree_map_none(step, weighted, params)
        return new_updates, MomoAdamState(d, v, barf, gamma, lb, count)

    return maximizing(GradientTransformation(init, update), maximize)
