"""D-Adaptation for AdamW (Defazio & Mishchenko 2023): Adam whose learning rate d is a lower
bound on the distance to the solution, grown from the gradients' correlations."""

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
    safe_increment,
    tree_l1_norm,
    tree_map_none,
    tree_scalar_dtype,
    tree_squares_like,
    tree_vdot,
    tree_zeros_like,
    value_at,
)
from gradtx.contrib._prodigy import _adam_bias_correction, _leafwise


class DAdaptAdamWState(NamedTuple):
    exp_avg: Any  # m: the average of dlr * g, like params
    exp_avg_sq: Any  # v: the average of g ** 2 (squares_dtype: float32 for float16)
    grad_sum: Any  # s: the average of dlr * g with decay sqrt(b2), like params
    estim_lr: jax.Array  # d: the distance estimate (float32, or float64 params)
    numerator_weighted: jax.Array  # r: the average of dlr * <g, s / (sqrt(v) + eps)>
    count: jax.Array  # int32 scalar: steps taken


def dadapt_adamw(
    learning_rate=1.0,
    betas=(0.9, 0.999),
    eps=1e-8,
    estim_lr0=1e-6,
    weight_decay=0.0,
    *,
    bias_correction: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """D-Adapt AdamW: Adam with the learning rate d * learning_rate, d estimated on the fly.

    (b1, b2) = betas; sb2 = sqrt(b2); d = estim_lr (estim_lr0 at start)
    lr = learning_rate(count) if a schedule, else learning_rate       (count from 0)
    dlr = d * lr * bc      (bc = sqrt(1 - b2 ** (count+1)) / (1 - b1 ** (count+1)), or 1)
    r = sb2 * r + (1 - sb2) * dlr * <g, s / (sqrt(v) + eps)>     (s and v before this step)
    m = b1 * m + (1 - b1) * dlr * g;  v = b2 * v + (1 - b2) * g ** 2
    s = sb2 * s + (1 - sb2) * dlr * g
    d_new = max(d, r / ((1 - sb2) * sum(abs(s))))          (d unchanged while s is 0)
    updates = -m / (sqrt(v) + eps) - weight_decay * dlr * x

    Args:
        learning_rate: a multiplier on d (1, or a schedule from 1 down).
        betas: (b1, b2), Adam's decays.
        eps: Adam's eps.
        estim_lr0: the initial (under-)estimate of d.
        weight_decay: decoupled weight decay, multiplied by dlr.
        bias_correction: Adam's bias correction in dlr (optax 0.2.8 always applies it; the
            paper's Algorithm and the authors' implementation by default do not).

    References:
        Defazio & Mishchenko 2023, "Learning-Rate-Free Learning by D-Adaptation",
        Algorithm 4 (Adam with D-Adaptation), with the inner product weighted by the
        denominator of the previous step, as in the authors' implementation.
    """
    where = "gradtx.contrib.dadapt_adamw"
    if not (isinstance(betas, tuple | list) and len(betas) == 2):
        raise ValueError(f"{where}: betas={betas!r}; expected a pair (b1, b2) of decays.")
    b1, b2 = betas
    _checks.check_number(where, "learning_rate", learning_rate, low=0.0, schedule_ok=True)
    _checks.check_number(where, "betas[0]", b1, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "betas[1]", b2, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "estim_lr0", estim_lr0, low=0.0, low_open=True)
    _checks.check_number(where, "weight_decay", weight_decay, low=0.0)

    def init(params):
        dt = tree_scalar_dtype(params)
        return DAdaptAdamWState(
            exp_avg=tree_zeros_like(params),
            exp_avg_sq=tree_squares_like(params),
            grad_sum=tree_zeros_like(params),
            estim_lr=as_dtype(estim_lr0, dt),
            numerator_weighted=jnp.zeros((), dt),
            count=jnp.zeros((), jnp.int32),
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        d = state.estim_lr
        dt = d.dtype
        sb2 = as_dtype(b2, dt) ** 0.5
        count = safe_increment(state.count)
        lr = as_dtype(value_at(learning_rate, state.count), dt)
        dlr = d * lr * _adam_bias_correction(b1, b2, count, dt, bias_correction)

        def weighted(s, v):
            a = acc_dtype(s.dtype)
            return s.astype(a) / (jnp.sqrt(v.astype(a)) + as_dtype(eps, a))

        s_w = tree_map_none(weighted, state.grad_sum, state.exp_avg_sq)
        r = sb2 * state.numerator_weighted + (1 - sb2) * dlr * tree_vdot(updates, s_w, dt)

        def moments(g, m, v, s):
            a = acc_dtype(m.dtype)
            g, c, q, m_, v_, s_ = (t.astype(a) for t in (g, dlr, sb2, m, v, s))
            m_new = as_dtype(b1, a) * m_ + as_dtype(1 - b1, a) * c * g
            v_new = as_dtype(b2, a) * v_ + as_dtype(1 - b2, a) * jnp.square(g)
            s_new = q * s_ + (1 - q) * c * g
            return m_new.astype(m.dtype), v_new.astype(v.dtype), s_new.astype(s.dtype)

        m, v, s = _leafwise(moments, 3, updates, state.exp_avg, state.exp_avg_sq, state.grad_sum)
        l1 = tree_l1_norm(s, dt)
        d_hat = r / ((1 - sb2) * jnp.where(l1 > 0, l1, 1))
        d_new = jnp.where(l1 > 0, jnp.maximum(d, d_hat), d)

        def step(m, v, x):
            a = acc_dtype(x.dtype)
            u = -m.astype(a) / (jnp.sqrt(v.astype(a)) + as_dtype(eps, a))
            u = u - as_dtype(weight_decay, a) * dlr.astype(a) * x.astype(a)
            return u.astype(x.dtype)

        new_updates = tree_map_none(step, m, v, params)
        return new_updates, DAdaptAdamWState(m, v, s, d_new, r, count)

    return maximizing(GradientTransformation(init, update), maximize)
