"""Mechanic (Cutkosky, Defazio & Mehta 2023): a scale on a base optimizer's steps, learned
online by coin betting at several time scales."""

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
    tree_copy,
    tree_map_none,
    tree_scalar_dtype,
    tree_sum_squares,
    tree_vdot,
)


class MechanicState(NamedTuple):
    base_optimizer_state: Any  # the base optimizer's state
    count: jax.Array  # int32 scalar: steps taken
    r: jax.Array  # [num_betas]: the betting rewards (float32, or float64 params)
    m: jax.Array  # [num_betas]: the decayed maximum of |h|
    v: jax.Array  # [num_betas]: the decayed sum of h ** 2
    s: jax.Array  # [num_betas]: the scales, summed into the step's scale
    x0: Any  # the reference point (the initial parameters)


def mechanize(
    base_optimizer,
    weight_decay=0.01,
    eps=1e-8,
    s_init=1e-6,
    num_betas: int = 6,
    *,
    eps_in_delta: bool = False,
) -> GradientTransformation:
    """Learn the scale S of ``base_optimizer``'s steps: x = x0 + S * (the sum of its steps).

    u = base_optimizer(g);  S = sum(s);  beta_i = 1 - 0.1 ** i  (i = 1..num_betas)
    g = g + weight_decay * S * ||g|| / (||x|| + eps) * x
    delta = (x0 - x) / S          (minus the sum of the base steps so far, since x = x0 - S * delta)
    h = <g, delta>;  hc = clip(h, -m, m)            (m of the previous step)
    m = max(beta * m, |h| + eps);  v = beta ** 2 * v + h ** 2;  r = beta * r + hc * s
    s = (s_init / num_betas * m + max(r, 0)) / (sqrt(v) + eps)
    updates = x0 - sum(s) * (delta - u) - x

    Args:
        base_optimizer: the transform whose steps are scaled (e.g. ``gradtx.adam(1e-3)``).
        weight_decay: the paper's lambda, a decay scaled to the gradient's norm.
        eps: guards the divisions.
        s_init: the initial wealth, shared by the betas.
        num_betas: how many time scales (a static int).
        eps_in_delta: divide by S + eps in delta, as optax 0.2.8 does; with S of order
            num_betas * s_init early on, that shrinks the recovered steps by eps / S (0.2% at
            the defaults). S is always positive, so the default divides by S alone.

    References:
        Cutkosky, Defazio & Mehta 2023, "Mechanic: A Learning Rate Tuner", Algorithm 1
        (with the reward's clipping of h as in the authors' implementation).
    """
    where = "gradtx.contrib.mechanize"
    if not (
        callable(getattr(base_optimizer, "init", None))
        and callable(getattr(base_optimizer, "update", None))
    ):
        raise TypeError(
            f"{where}: base_optimizer={base_optimizer!r} is not a gradient transformation; pass "
            "one such as gradtx.adam(1e-3) (called, not the factory)."
        )
    if isinstance(num_betas, bool) or not isinstance(num_betas, int) or num_betas < 1:
        raise ValueError(f"{where}: num_betas={num_betas!r}; expected a positive int.")
    _checks.check_number(where, "weight_decay", weight_decay, low=0.0)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "s_init", s_init, low=0.0, low_open=True)

    def init(params):
        dt = tree_scalar_dtype(params)
        zeros = jnp.zeros((num_betas,), dt)
        return MechanicState(
            base_optimizer_state=base_optimizer.init(params),
            count=jnp.zeros((), jnp.int32),
            r=zeros,
            m=zeros,
            v=zeros,
            s=jnp.full((num_betas,), as_dtype(s_init, dt)),
            x0=tree_copy(params),
        )

    def update(updates, state, params=None, **extra_args):
        _checks.require_params(params, where)
        base, base_state = call_update(
            base_optimizer, updates, state.base_optimizer_state, params, extra_args
        )
        dt = state.s.dtype
        e = as_dtype(eps, dt)
        s_sum = jnp.sum(state.s)
        g_norm = jnp.sqrt(tree_sum_squares(updates).astype(dt))
        p_norm = jnp.sqrt(tree_sum_squares(params).astype(dt))
        decay = as_dtype(weight_decay, dt) * s_sum * g_norm / (p_norm + e)

        def decayed(g, x):
            a = acc_dtype(x.dtype)
            return g.astype(a) + decay.astype(a) * x.astype(a)

        def back(x0, x):
            a = acc_dtype(x.dtype)
            return (x0.astype(a) - x.astype(a)) / divisor.astype(a)

        divisor = s_sum + e if eps_in_delta else s_sum
        delta = tree_map_none(back, state.x0, params)
        h = tree_vdot(tree_map_none(decayed, updates, params), delta, dt)
        betas = 1 - as_dtype(0.1, dt) ** jnp.arange(1, num_betas + 1).astype(dt)
        clipped = jnp.clip(h, -state.m, state.m)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + e)
        v = betas**2 * state.v + h**2
        r = betas * state.r + clipped * state.s
        s = (as_dtype(s_init, dt) / num_betas * m + jnp.maximum(r, 0)) / (jnp.sqrt(v) + e)
        total = jnp.sum(s)

        def step(x0, d, u, x):
            a = acc_dtype(x.dtype)
            new = x0.astype(a) - total.astype(a) * (d - u.astype(a))
            return (new - x.astype(a)).astype(x.dtype)

        new_updates = tree_map_none(step, state.x0, delta, base, params)
        new_state = MechanicState(base_state, safe_increment(state.count), r, m, v, s, state.x0)
        return new_updates, new_state

    return GradientTransformation(init, update)


# num_betas sets the length of the betting state: inject_hyperparams keeps it static
mechanize.static_args = ("num_betas",)
