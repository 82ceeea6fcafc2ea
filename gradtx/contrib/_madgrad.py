"""MADGRAD: dual averaging with a cube-root denominator and momentum by averaging iterates."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._aliases._common import maximizing
from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, chain
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    safe_increment,
    tree_map_none,
    tree_squares_like,
    tree_unzip,
    tree_zeros_like,
    value_at,
)
from gradtx.transforms._decay import add_decayed_weights


class MadgradState(NamedTuple):
    count: jax.Array  # int32 scalar: the step k, from 0
    grad_sum_sq: object  # like params (float32 for float16 params): nu, sum of lamb * g ** 2
    s: object  # like params: the weighted sum of gradients, sum of lamb * g
    x0: object  # like params: the parameters at init (the dual-averaging anchor)


def scale_by_madgrad(
    learning_rate, momentum=0.9, eps=1e-6, *, eps_in_lr: bool = False
) -> GradientTransformation:
    """MADGRAD's step: dual averaging from x0, then an average with the current iterate.

    lamb = lr * sqrt(k + 1)            (lr + eps with eps_in_lr=True, as the authors' code)
    s = s + lamb * updates
    grad_sum_sq = grad_sum_sq + lamb * updates ** 2
    z = x0 - s / (cbrt(grad_sum_sq) + eps)
    updates = (1 - momentum) * z + momentum * params - params

    The result is the whole step (the learning rate is inside): apply it as it is.

    Args:
        learning_rate: gamma_k, a number or a schedule of the step k.
        momentum: beta = 1 - c_k of the paper, in [0, 1).
        eps: added to the cube root.
        eps_in_lr: add eps to the learning rate in lamb (facebookresearch/madgrad, optax).

    References:
        Defazio and Jelassi, Adaptivity without Compromise: A Momentumized, Adaptive, Dual
        Averaged Gradient Method for Stochastic Optimization, JMLR 2022 (arXiv:2101.11075),
        Algorithm 1.
    """
    where = "gradtx.contrib.scale_by_madgrad"
    _checks.check_number(where, "learning_rate", learning_rate, low=0.0, schedule_ok=True)
    _checks.check_number(where, "momentum", momentum, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "eps", eps, low=0.0)

    def init(params):
        x0 = tree_map_none(jnp.copy, params)
        return MadgradState(
            jnp.zeros((), jnp.int32), tree_squares_like(params), tree_zeros_like(params), x0
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, state.s, where, "updates", "state.s")
        lr = value_at(learning_rate, state.count)

        def leaf(g, sum_sq, s, x0, x):
            dt = acc_dtype(x.dtype)
            g = g.astype(dt)
            rate = as_dtype(lr, dt) + (as_dtype(eps, dt) if eps_in_lr else 0)
            lamb = rate * jnp.sqrt(state.count.astype(dt) + 1)
            s_new = s.astype(dt) + lamb * g
            sum_sq_new = sum_sq.astype(dt) + lamb * jnp.square(g)
            z = x0.astype(dt) - s_new / (jnp.cbrt(sum_sq_new) + as_dtype(eps, dt))
            c = 1 - as_dtype(momentum, dt)
            step = c * (z - x.astype(dt))  # (1 - momentum) * z + momentum * x - x
            return step.astype(x.dtype), sum_sq_new.astype(sum_sq.dtype), s_new.astype(s.dtype)

        out = tree_map_none(leaf, updates, state.grad_sum_sq, state.s, state.x0, params)
        step, sum_sq, s = tree_unzip(updates, out, 3)
        return step, MadgradState(safe_increment(state.count), sum_sq, s, state.x0)

    return GradientTransformation(init, update)


def madgrad(
    learning_rate,
    momentum=0.9,
    weight_decay=0.0,
    eps=1e-6,
    *,
    eps_in_lr: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """MADGRAD: chain(add_decayed_weights(weight_decay), scale_by_madgrad(...)).

    The decay is added to the gradient (coupled, as the authors' code without decouple_decay).
    The update rule is ``scale_by_madgrad``'s.
    """
    return maximizing(
        chain(
            add_decayed_weights(weight_decay),
            scale_by_madgrad(learning_rate, momentum, eps, eps_in_lr=eps_in_lr),
        ),
        maximize,
    )
