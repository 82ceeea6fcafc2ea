"""ACProp: AdaBelief's centred second moment, applied one step late (asynchronously)."""

from __future__ import annotations

import jax.numpy as jnp

from gradtx._aliases._common import maximizing
from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, chain
from gradtx._core.fused import tree_moment
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    bias_correction_factor,
    safe_increment,
    tree_map_none,
    tree_squares_like,
    tree_zeros_like,
)
from gradtx.transforms._adam_variants import ScaleByBeliefState  # optax's acprop state too
from gradtx.transforms._decay import add_decayed_weights
from gradtx.transforms._scaling import scale_by_learning_rate


def scale_by_acprop(
    b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, *, residual_of_previous_mu: bool = False
) -> GradientTransformation:
    """ACProp's scaling: the gradient over the root of the previous step's centred moment.

    mu = b1 * mu + (1 - b1) * updates
    nu_new = b2 * nu + (1 - b2) * (updates - mu) ** 2 + eps_root
    updates = updates / (sqrt(nu / (1 - b2 ** (t - 1))) + eps)   (nu before this step; t >= 2)
    updates = updates / (1 + eps)                                  (first step: no nu yet)
    nu = nu_new

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added outside the square root.
        eps_root: added to the second moment at every step.
        residual_of_previous_mu: centre with the first moment before this step (updates -
            mu_old), as optax 0.2.8's code does, rather than after it (optax's docstring,
            AdaBelief, the authors' code; optax PR #1716).

    References:
        Zhuang et al., Momentum Centering and Asynchronous Update for Adaptive Gradient
        Methods, NeurIPS 2021 (arXiv:2110.05454), Algorithm 2 (ACProp); the authors' code,
        github.com/juntang-zhuang/ACProp-Optimizer.
    """
    where = "gradtx.contrib.scale_by_acprop"
    _checks.check_number(where, "b1", b1, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "b2", b2, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "eps_root", eps_root, low=0.0)

    def init(params):
        return ScaleByBeliefState(
            jnp.zeros((), jnp.int32), tree_zeros_like(params), tree_squares_like(params)
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.mu, where, "updates", "state.mu")
        first = state.count == 0
        mu, mu_read = tree_moment(updates, state.mu, b1, 1)
        centre = state.mu if residual_of_previous_mu else mu_read
        residual = tree_map_none(lambda g, m: g - m.astype(g.dtype), updates, centre)

        nu_avg, _ = tree_moment(residual, state.nu, b2, 2)
        nu = tree_map_none(
            lambda v: (
                v.astype(acc_dtype(v.dtype)) + as_dtype(eps_root, acc_dtype(v.dtype))
            ).astype(v.dtype),
            nu_avg,
        )

        def scale(g, v):
            dt = acc_dtype(v.dtype)
            bc = bias_correction_factor(b2, jnp.maximum(state.count, 1), dt)
            v_hat = jnp.where(first, jnp.ones((), dt), v.astype(dt) / bc)
            return (g.astype(dt) / (jnp.sqrt(v_hat) + as_dtype(eps, dt))).astype(g.dtype)

        updates = tree_map_none(scale, updates, state.nu)
        return updates, ScaleByBeliefState(safe_increment(state.count), mu, nu)

    return GradientTransformation(init, update)


def acprop(
    learning_rate,
    b1=0.9,
    b2=0.999,
    eps=1e-16,
    eps_root=1e-16,
    weight_decay=0.0,
    mask=None,
    *,
    residual_of_previous_mu: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """ACProp: chain(scale_by_acprop(...), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate)).

    The update rule is ``scale_by_acprop``'s; defaults are optax's (and the authors' code's).
    """
    return maximizing(
        chain(
            scale_by_acprop(b1, b2, eps, eps_root, residual_of_previous_mu=residual_of_previous_mu),
            add_decayed_weights(weight_decay, mask),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )
