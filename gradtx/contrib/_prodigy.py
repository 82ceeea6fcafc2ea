"""Prodigy (Mishchenko & Defazio 2023): Adam whose step size d estimates the distance to the
solution from the correlation of the gradients with the distance travelled."""

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
    tree_copy,
    tree_l1_norm,
    tree_map_none,
    tree_scalar_dtype,
    tree_squares_like,
    tree_unzip,
    tree_vdot,
    tree_zeros_like,
    value_at,
)


def _adam_bias_correction(b1, b2, count, dt, on: bool):
    """sqrt(1 - b2 ** count) / (1 - b1 ** count) when ``on``, else 1 (count from 1)."""
    if not on:
        return jnp.ones((), dt)
    return jnp.sqrt(bias_correction_factor(b2, count, dt)) / bias_correction_factor(b1, count, dt)


def _leafwise(fn, n, *trees):
    """Map ``fn`` (returning an ``n``-tuple) over leaves and return a tuple of ``n`` trees."""
    return tree_unzip(trees[0], tree_map_none(fn, *trees), n)


def _minus(a, b):
    """a - b in acc_dtype."""
    dt = acc_dtype(jnp.result_type(b))
    return a.astype(dt) - b.astype(dt)


class ProdigyState(NamedTuple):
    exp_avg: Any  # m: the average of d * g, like params
    exp_avg_sq: Any  # v: the average of (d * g) ** 2 (squares_dtype)
    grad_sum: Any  # s: the weighted sum of the d-scaled gradients, like params
    params0: Any  # x0: the initial parameters
    estim_lr: jax.Array  # d: the distance estimate (float32, or float64 params)
    numerator_weighted: jax.Array  # r: the weighted sum of <g, x0 - x> (same dtype as d)
    count: jax.Array  # int32 scalar: steps taken


def prodigy(
    learning_rate=1.0,
    betas=(0.9, 0.999),
    beta3=None,
    eps=1e-8,
    estim_lr0=1e-6,
    estim_lr_coef=1.0,
    weight_decay=0.0,
    safeguard_warmup: bool = False,
    *,
    bias_correction: bool = False,
    eps_with_new_estimate: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """Prodigy: Adam with the learning rate d * learning_rate, d estimated on the fly.

    (b1, b2) = betas; b3 = beta3, or sqrt(b2) when None; d0 = estim_lr0; d = estim_lr
    lr = learning_rate(count) if a schedule, else learning_rate       (count from 0)
    dlr = d * lr * bc      (bc = sqrt(1 - b2 ** (count+1)) / (1 - b1 ** (count+1)), or 1)
    m = b1 * m + (1 - b1) * d * g;  v = b2 * v + (1 - b2) * (d * g) ** 2
    r = b3 * r + (d / d0) * dlr * <g, x0 - x>
    s = b3 * s + (d / d0) * dlr * g                (safeguard_warmup: (d / d0) * d * g)
    d_new = max(d, estim_lr_coef * r / sum(abs(s)))       (d unchanged while s is 0)
    updates = -dlr * (m / (sqrt(v) + d * eps) + weight_decay * x)

    The paper writes the r and s increments as (1 - b3) * lr * d ** 2 * (...); the factor
    (1 - b3) / d0 is common to r and s and cancels in r / sum(abs(s)), and dividing by d0
    keeps the sums of order 1 in float32 (as the authors' implementation does).

    Args:
        learning_rate: a multiplier on d (1, or a schedule from 1 down).
        betas: (b1, b2), Adam's decays.
        beta3: the decay of r and s (None: sqrt(b2)).
        eps: Adam's eps, scaled by d.
        estim_lr0: d0, the initial (under-)estimate of d.
        estim_lr_coef: a factor on each estimate of d.
        weight_decay: decoupled weight decay, multiplied by dlr.
        safeguard_warmup: leave lr out of s, so a warmup does not inflate d.
        bias_correction: Adam's bias correction in dlr (optax 0.2.8 always applies it; the
            paper's Algorithm and the authors' implementation by default do not).
        eps_with_new_estimate: scale eps by the updated d_new, as optax and the authors'
            implementation do (the paper's Algorithm uses d).

    References:
        Mishchenko & Defazio 2023, "Prodigy: An Expeditiously Adaptive Parameter-Free
        Learner", Algorithm 3 (Prodigy, Adam version).
    """
    where = "gradtx.contrib.prodigy"
    if not (isinstance(betas, tuple | list) and len(betas) == 2):
        raise ValueError(f"{where}: betas={betas!r}; expected a pair (b1, b2) of decays.")
    b1, b2 = betas
    b3 = b2**0.5 if beta3 is None else beta3
    _checks.check_number(where, "learning_rate", learning_rate, low=0.0, schedule_ok=True)
    _checks.check_number(where, "betas[0]", b1, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "betas[1]", b2, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "beta3", beta3, low=0.0, high=1.0, none_ok=True)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "estim_lr0", estim_lr0, low=0.0, low_open=True)
    _checks.check_number(where, "estim_lr_coef", estim_lr_coef, low=0.0)
    _checks.check_number(where, "weight_decay", weight_decay, low=0.0)

    def init(params):
        dt = tree_scalar_dtype(params)
        return ProdigyState(
            exp_avg=tree_zeros_like(params),
            exp_avg_sq=tree_squares_like(params),
            grad_sum=tree_zeros_like(params),
            params0=tree_copy(params),
            estim_lr=as_dtype(estim_lr0, dt),
            numerator_weighted=jnp.zeros((), dt),
            count=jnp.zeros((), jnp.int32),
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        d = state.estim_lr
        dt = d.dtype
        count = safe_increment(state.count)
        lr = as_dtype(value_at(learning_rate, state.count), dt)
        dlr = d * lr * _adam_bias_correction(b1, b2, count, dt, bias_correction)
        ratio = d / as_dtype(estim_lr0, dt)
        s_rate = ratio * (d if safeguard_warmup else dlr)
        dist = tree_map_none(_minus, state.params0, params)
        r = as_dtype(b3, dt) * state.numerator_weighted + ratio * dlr * tree_vdot(updates, dist, dt)

        def moments(g, m, v, s):
            a = acc_dtype(m.dtype)
            g, dd, m_, v_, s_ = (t.astype(a) for t in (g, d, m, v, s))
            m_new = as_dtype(b1, a) * m_ + as_dtype(1 - b1, a) * dd * g
            v_new = as_dtype(b2, a) * v_ + as_dtype(1 - b2, a) * jnp.square(dd * g)
            s_new = as_dtype(b3, a) * s_ + s_rate.astype(a) * g
            return m_new.astype(m.dtype), v_new.astype(v.dtype), s_new.astype(s.dtype)

        m, v, s = _leafwise(moments, 3, updates, state.exp_avg, state.exp_avg_sq, state.grad_sum)
        l1 = tree_l1_norm(s, dt)
        d_hat = as_dtype(estim_lr_coef, dt) * r / jnp.where(l1 > 0, l1, 1)
        d_new = jnp.where(l1 > 0, jnp.maximum(d, d_hat), d)
        d_eps = d_new if eps_with_new_estimate else d

        def step(m, v, x):
            a = acc_dtype(x.dtype)
            u = m.astype(a) / (jnp.sqrt(v.astype(a)) + d_eps.astype(a) * as_dtype(eps, a))
            u = -dlr.astype(a) * (u + as_dtype(weight_decay, a) * x.astype(a))
            return u.astype(x.dtype)

        new_updates = tree_map_none(step, m, v, params)
        return new_updates, ProdigyState(m, v, s, state.params0, d_new, r, count)

    return maximizing(GradientTransformation(init, update), maximize)
