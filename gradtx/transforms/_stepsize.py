"""Step sizes computed from the run itself: Polyak's from the loss, DoG's from the distance
travelled, averaged SGD's decaying step with its running average of the iterates."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import EmptyState, GradientTransformation
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    safe_increment,
    tree_map_none,
    tree_sum_squares,
    tree_zeros_like,
)

# optax's guard on the denominator: the float64 machine epsilon, whatever the leaves' dtype.
_POLYAK_TINY = float(jnp.finfo(jnp.float64).eps)


def scale_by_polyak(
    f_min=0.0, max_learning_rate=1.0, eps=0.0, variant: str = "sps"
) -> GradientTransformation:
    """Polyak's step size from the loss value: the gap to f_min over the squared gradient norm.

    gap = value - f_min                     (variant="sps")
    gap = max(value - f_min, 0)             (variant="sps+")
    sq = sum over leaves of sum(updates ** 2)
    step = 0 if sq + eps <= 2.2e-16 else min(gap / (sq + eps), max_learning_rate)
    updates = step * updates

    ``update`` needs the loss at the current parameters as a keyword: ``update(grads, state,
    params, value=loss)`` (optax's name). The output is the step to subtract.

    Args:
        f_min: a lower bound on the loss (the paper's f_i^*; 0 for interpolating models).
        max_learning_rate: the largest step (the paper's gamma_b in SPS_max).
        eps: added to the squared norm (0 in the paper).
        variant: "sps" or "sps+" (the gap clipped at 0), a static switch.

    References:
        Loizou, Vaswani, Laradji and Lacoste-Julien, Stochastic Polyak Step-size for SGD: An
        Adaptive Learning Rate for Fast Convergence, AISTATS 2021, eq. (5) and (7) (SPS_max,
        here with c = 1); Polyak, Introduction to Optimization, 1987.
    """
    where = "gradtx.scale_by_polyak"
    _checks.check_number(where, "max_learning_rate", max_learning_rate, low=0.0)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "f_min", f_min)
    if variant not in ("sps", "sps+"):
        raise ValueError(f"{where}: variant={variant!r} is not known; pass 'sps' or 'sps+'.")

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra_args):
        del params
        if "value" not in extra_args:
            raise ValueError(
                f"{where}: update needs the loss at the current parameters; call "
                "tx.update(grads, state, params, value=loss)."
            )
        sq = tree_sum_squares(updates)
        dt = sq.dtype
        gap = as_dtype(extra_args["value"], dt) - as_dtype(f_min, dt)
        if variant == "sps+":
            gap = jnp.maximum(gap, 0)
        denom = sq + as_dtype(eps, dt)
        small = denom <= _POLYAK_TINY
        ratio = gap / jnp.where(small, jnp.ones_like(denom), denom)
        ratio = jnp.minimum(ratio, as_dtype(max_learning_rate, dt))
        step = jnp.where(small, jnp.zeros_like(denom), ratio)

        def scaled(u):
            d = acc_dtype(u.dtype)
            return (u.astype(d) * step.astype(d)).astype(u.dtype)

        return tree_map_none(scaled, updates), state

    return GradientTransformation(init, update)


def distance_over_gradients_rule(max_dist, grad_sum_of_squares, dist, grad_sq, eps):
    """DoG's step size, the one definition that L-DoG and DoG (gradtx.contrib) share.

    max_dist = max(max_dist, dist)                        (dist = ||x - x_0||)
    grad_sum_of_squares = grad_sum_of_squares + grad_sq   (grad_sq = ||g|| ** 2)
    eta = max_dist / sqrt(grad_sum_of_squares + eps)
    Returns (max_dist, grad_sum_of_squares, eta), all in max_dist's dtype. The norms are per
    leaf for L-DoG and over the whole tree for DoG.

    References:
        Ivgi, Hinder and Carmon, DoG is SGD's Best Friend, ICML 2023, Algorithm 1.
    """
    dt = max_dist.dtype
    max_dist = jnp.maximum(max_dist, dist.astype(dt))
    grad_sum_of_squares = grad_sum_of_squares + grad_sq.astype(dt)
    return (
        max_dist,
        grad_sum_of_squares,
        max_dist / jnp.sqrt(grad_sum_of_squares + as_dtype(eps, dt)),
    )


class ScaleByDistanceOverGradientsState(NamedTuple):
    max_dist: object  # per leaf, a scalar: the largest distance from the start seen (r_bar)
    grad_sum_of_squares: object  # per leaf, a scalar: the sum of squared gradient norms (G)
    init_params: object  # like params (param_dtype if given): the starting point x_0


def scale_by_distance_over_gradients(
    reps_rel=1e-6, eps=1e-8, param_dtype=None, global_scale=1.0
) -> GradientTransformation:
    """Layer-wise DoG: per leaf, the distance travelled over the root of the summed gradients.

    max_dist = max(max_dist, ||params - init_params||)      (from reps_rel * (1 + ||x_0||))
    grad_sum_of_squares = grad_sum_of_squares + ||updates|| ** 2
    updates = global_scale * max_dist / sqrt(grad_sum_of_squares + eps) * updates

    Norms are over each leaf (L-DoG). The output is the step to subtract (global_scale=1).
    The authors recommend averaging the iterates (``average_params``).

    Args:
        reps_rel: the initial distance relative to 1 + ||x_0|| (the paper's r_eps; 1e-6, or
            1e-4 for models with batch norm).
        eps: added under the root.
        param_dtype: dtype of the stored x_0; None keeps each parameter's dtype (exact).
            optax's default is float32 (the optax dialect).
        global_scale: a factor on the whole update.

    References:
        Ivgi, Hinder and Carmon, DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size
        Schedule, ICML 2023, Algorithm 1 and eq. (4) (L-DoG).
    """
    where = "gradtx.scale_by_distance_over_gradients"
    _checks.check_number(where, "reps_rel", reps_rel, low=0.0)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "global_scale", global_scale)

    def norm(x, y=None):
        dt = acc_dtype(x.dtype)
        d = x.astype(dt) if y is None else x.astype(dt) - y.astype(dt)
        return jnp.sqrt(jnp.sum(jnp.square(d)))

    def init(params):
        first = tree_map_none(
            lambda x: as_dtype(reps_rel, acc_dtype(x.dtype)) * (1 + norm(x)), params
        )
        zero = tree_map_none(lambda x: jnp.zeros((), acc_dtype(x.dtype)), params)
        # a copy, so the state never shares a buffer with the parameters (donation)
        x0 = tree_map_none(
            lambda x: jnp.array(x, dtype=param_dtype or jnp.result_type(x), copy=True), params
        )
        return ScaleByDistanceOverGradientsState(first, zero, x0)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        leaves, treedef = jax.tree.flatten(updates)
        rules = [
            distance_over_gradients_rule(
                d, s, norm(x, x0), jnp.sum(jnp.square(g.astype(d.dtype))), eps
            )
            for g, d, s, x, x0 in zip(
                leaves,
                treedef.flatten_up_to(state.max_dist),
                treedef.flatten_up_to(state.grad_sum_of_squares),
                treedef.flatten_up_to(params),
                treedef.flatten_up_to(state.init_params),
            )
        ]
        max_dist, g_sos = (treedef.unflatten([r[i] for r in rules]) for i in (0, 1))
        scale = [as_dtype(global_scale, r[2].dtype) * r[2] for r in rules]
        updates = treedef.unflatten(
            [(e * g.astype(e.dtype)).astype(g.dtype) for g, e in zip(leaves, scale)]
        )
        return updates, ScaleByDistanceOverGradientsState(max_dist, g_sos, state.init_params)

    return GradientTransformation(init, update)


class ScaleByAsgdState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken (torch's ``step``)
    ax: object  # like params: the running average of the iterates (torch's ``ax``)


def scale_by_asgd(learning_rate=0.01, lambd=1e-4, alpha=0.75, t0=1e6) -> GradientTransformation:
    """Averaged SGD's step (torch's ASGD): a decaying step, a shrinkage, and the iterate average.

    c = count                                  (steps taken before this one, from 0)
    eta = learning_rate / (1 + lambd * learning_rate * c) ** alpha
    mu = 1 / max(1, c - t0)
    updates = -(lambd * eta * params + eta * updates)      (the whole step, sign included)
    new_params = params + updates
    ax = new_params if mu == 1 else ax + mu * (new_params - ax)

    The averaged parameters are ``state.ax`` (``gradtx.tree_get(state, "ax")``); they follow
    the iterates until ``count`` passes ``t0``, then average them. This transform produces the
    final update, so it goes last in a chain (``asgd`` adds weight decay before it).

    Args:
        learning_rate: the initial step (torch's ``lr``).
        lambd: the decay of the step and the shrinkage of the parameters.
        alpha: the power of the step's decay.
        t0: the step after which averaging starts.

    References:
        Polyak and Juditsky, Acceleration of Stochastic Approximation by Averaging, 1992.
        Bottou, Stochastic Gradient Descent Tricks, 2012, section 5.4 (eta_t and mu_t, eq. 11),
        with torch.optim.ASGD's indexing (eta and mu computed after a step, used at the next).
    """
    where = "gradtx.scale_by_asgd"
    _checks.check_number(where, "learning_rate", learning_rate, low=0.0)
    _checks.check_number(where, "lambd", lambd, low=0.0)
    _checks.check_number(where, "alpha", alpha, low=0.0)
    _checks.check_number(where, "t0", t0, low=0.0)

    def init(params):
        return ScaleByAsgdState(jnp.zeros((), jnp.int32), tree_zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, state.ax, where, "updates", "ax")

        def leaf(g, p, ax):
            dt = acc_dtype(p.dtype)
            c = state.count.astype(dt)
            lr, lam = as_dtype(learning_rate, dt), as_dtype(lambd, dt)
            eta = lr / (1 + lam * lr * c) ** as_dtype(alpha, dt)
            mu = 1 / jnp.maximum(jnp.ones_like(c), c - as_dtype(t0, dt))
            u = (-(lam * eta * p.astype(dt) + eta * g.astype(dt))).astype(g.dtype)
            new_p = (p + u.astype(p.dtype)).astype(dt)
            ax32 = ax.astype(dt)
            new_ax = jnp.where(mu == 1, new_p, ax32 + mu * (new_p - ax32))
            return u, new_ax.astype(ax.dtype)

        both = tree_map_none(leaf, updates, params, state.ax)
        out = tree_map_none(lambda _, t: t[0], updates, both)
        ax = tree_map_none(lambda _, t: t[1], updates, both)
        return out, ScaleByAsgdState(safe_increment(state.count), ax)

    return GradientTransformation(init, update)
