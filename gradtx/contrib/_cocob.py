"""COCOB-Backprop (Orabona & Tommasi 2017): coin betting per coordinate, no learning rate."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp

from gradtx._aliases._common import maximizing
from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, chain
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    tree_copy,
    tree_full_like,
    tree_zeros_like,
)
from gradtx.contrib._prodigy import _leafwise
from gradtx.transforms._decay import add_decayed_weights
from gradtx.transforms._scaling import scale_by_learning_rate


class COCOBState(NamedTuple):
    init_particles: Any  # w1: the initial parameters
    cumulative_gradients: Any  # theta: the sum of the negated gradients, like params
    scale: Any  # L: the largest |g| so far per coordinate (eps at start), like params
    subgradients: Any  # G: the sum of |g| per coordinate, like params
    reward: Any  # Reward: the coin-betting wealth gained per coordinate, like params


def scale_by_cocob(alpha=100.0, eps=1e-8) -> GradientTransformation:
    """COCOB-Backprop's step, per coordinate, from the gradient g at the params w.

    L = max(L, |g|);  G = G + |g|;  reward = max(reward - g * (w - w1), 0);  theta = theta - g
    w_new = w1 + theta / (L * max(G + L, alpha * L)) * (L + reward);  updates = w_new - w

    Args:
        alpha: bounds the bet early on (the paper's 100).
        eps: the initial L (the paper's L_0).

    References:
        Orabona & Tommasi 2017, "Training Deep Networks without Learning Rates Through Coin
        Betting", Algorithm 2 (COCOB-Backprop).
    """
    where = "gradtx.contrib.scale_by_cocob"
    _checks.check_number(where, "alpha", alpha, low=0.0, low_open=True)
    _checks.check_number(where, "eps", eps, low=0.0, low_open=True)

    def init(params):
        zeros = tree_zeros_like(params)
        w1 = tree_copy(params)
        return COCOBState(w1, zeros, tree_full_like(params, eps), zeros, zeros)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)

        def leaf(g, w, w1, theta, lo, big_g, reward):
            dt, a = w.dtype, acc_dtype(w.dtype)
            g, w, w1, theta, lo, big_g, reward = (
                t.astype(a) for t in (g, w, w1, theta, lo, big_g, reward)
            )
            lo = jnp.maximum(lo, jnp.abs(g))
            big_g = big_g + jnp.abs(g)
            reward = jnp.maximum(reward - g * (w - w1), 0)
            theta = theta - g
            bet = theta / (lo * jnp.maximum(big_g + lo, as_dtype(alpha, a) * lo)) * (lo + reward)
            return tuple(t.astype(dt) for t in (w1 + bet - w, theta, lo, big_g, reward))

        u, theta, lo, big_g, reward = _leafwise(
            leaf,
            5,
            updates,
            params,
            state.init_particles,
            state.cumulative_gradients,
            state.scale,
            state.subgradients,
            state.reward,
        )
        return u, COCOBState(state.init_particles, theta, lo, big_g, reward)

    return GradientTransformation(init, update)


def cocob(
    learning_rate=1.0, alpha=100.0, eps=1e-8, weight_decay=0.0, mask=None, *, maximize=False
) -> GradientTransformation:
    """COCOB: chain(add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate, flip_sign=False), scale_by_cocob(alpha, eps)).

    learning_rate scales the gradients the bets see (1: the paper's method).
    """
    return maximizing(
        chain(
            add_decayed_weights(weight_decay, mask),
            scale_by_learning_rate(learning_rate, flip_sign=False),
            scale_by_cocob(alpha, eps),
        ),
        maximize,
    )
