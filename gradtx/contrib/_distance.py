"""Distance over gradients: step sizes from the distance travelled from the start and the
gradients seen so far, DoG (Ivgi et al. 2023) and DoWG (Khaled et al. 2023).

DoG's rule has one definition, ``distance_over_gradients_rule`` beside the top-level
``scale_by_distance_over_gradients`` (L-DoG: the same rule with norms per leaf); here it runs
once over the whole tree, with optax.contrib's state and initial-step options.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._aliases._common import maximizing
from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, chain, identity
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    tree_copy,
    tree_map_none,
    tree_scalar_dtype,
    tree_sum_squares,
)
from gradtx.transforms._decay import add_decayed_weights
from gradtx.transforms._scaling import scale_by_learning_rate
from gradtx.transforms._stepsize import distance_over_gradients_rule

_INIT_STEPS = ("distance", "learning_rate", "heuristic")


def _sq_dist(a, b, dt):
    """||a - b|| ** 2 over the tree, each leaf in acc_dtype, returned in ``dt``."""

    def leaf(x, y):
        d = acc_dtype(jnp.result_type(y))
        return x.astype(d) - y.astype(d)

    return tree_sum_squares(tree_map_none(leaf, a, b)).astype(dt)


def _scale(updates, lr):
    def leaf(u):
        a = acc_dtype(u.dtype)
        return (u.astype(a) * lr.astype(a)).astype(u.dtype)

    return tree_map_none(leaf, updates)


class DoGState(NamedTuple):
    is_init_step: jax.Array  # bool scalar: True before the first update
    init_params: Any  # x0: the initial parameters
    max_dist: jax.Array  # rbar: max(r_eps, max over steps of ||x - x0||) (float32 or float64)
    sum_sq_norm_grads: jax.Array  # G: the sum over steps of ||g|| ** 2 (same dtype)


def scale_by_dog(init_step=("heuristic", 1e-6), eps=1e-8) -> GradientTransformation:
    """DoG's step size: the largest distance from x0 over the root of the summed squared norms.

    rbar = max(rbar, ||x - x0||)       (rbar starts at r_eps, see init_step)
    G = G + ||g|| ** 2
    updates = (rbar / sqrt(G + eps)) * g    (the first step uses init_step's value for
                                             init_step=("learning_rate", value))

    Args:
        init_step: (kind, value): ("distance", r_eps), ("heuristic", a) for
            r_eps = a * (1 + ||x0||) (the paper's choice with a = 1e-6), or
            ("learning_rate", lr0) for r_eps = 0 and a first step of size lr0.
        eps: added to G under the root, so zero gradients give a finite step.

    References:
        Ivgi, Hinder & Carmon 2023, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step
        Size Schedule", Algorithm 1 (and Section 3.3 for r_eps).
    """
    where = "gradtx.contrib.scale_by_dog"
    if not (isinstance(init_step, tuple | list) and len(init_step) == 2):
        raise ValueError(
            f"{where}: init_step={init_step!r}; expected a pair (kind, value) with kind one of "
            f"{_INIT_STEPS}, e.g. ('heuristic', 1e-6)."
        )
    kind, value = init_step
    if kind not in _INIT_STEPS:
        raise ValueError(
            f"{where}: init_step={init_step!r} has kind {kind!r}; expected one of {_INIT_STEPS}."
        )
    _checks.check_number(where, "init_step[1]", value, low=0.0)
    _checks.check_number(where, "eps", eps, low=0.0)

    def init(params):
        dt = tree_scalar_dtype(params)
        if kind == "distance":
            r_eps = as_dtype(value, dt)
        elif kind == "heuristic":
            r_eps = as_dtype(value, dt) * (1 + jnp.sqrt(tree_sum_squares(params).astype(dt)))
        else:
            r_eps = jnp.zeros((), dt)
        return DoGState(jnp.asarray(True), tree_copy(params), r_eps, jnp.zeros((), dt))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        dt = state.max_dist.dtype
        max_dist, sum_sq, lr = distance_over_gradients_rule(
            state.max_dist,
            state.sum_sq_norm_grads,
            jnp.sqrt(_sq_dist(state.init_params, params, dt)),
            tree_sum_squares(updates),
            eps,
        )
        if kind == "learning_rate":
            lr = jnp.where(state.is_init_step, as_dtype(value, dt), lr)
        new_state = DoGState(jnp.asarray(False), state.init_params, max_dist, sum_sq)
        return _scale(updates, lr), new_state

    return GradientTransformation(init, update)


def dog(
    learning_rate=1.0,
    init_step=("heuristic", 1e-6),
    eps=1e-8,
    weight_decay=None,
    mask=None,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """DoG: chain(add_decayed_weights(weight_decay, mask) if weight_decay is not None,
    scale_by_dog(init_step, eps), scale_by_learning_rate(learning_rate)).

    learning_rate multiplies DoG's step (1, the paper's; or a schedule from 1 down).
    See ``scale_by_dog`` for the rule.
    """
    decay = identity() if weight_decay is None else add_decayed_weights(weight_decay, mask)
    return maximizing(
        chain(decay, scale_by_dog(init_step, eps), scale_by_learning_rate(learning_rate)),
        maximize,
    )


class DoWGState(NamedTuple):
    init_params: Any  # x0: the initial parameters
    weighted_sq_norm_grads: jax.Array  # v: the sum over steps of rbar ** 2 * ||g|| ** 2
    estim_sq_dist: jax.Array  # rbar ** 2: max(r_eps ** 2, max over steps of ||x - x0|| ** 2)
    # (0 before the first step; r_eps ** 2 enters at each step, see scale_by_dowg)


def scale_by_dowg(init_estim_sq_dist=None, eps=1e-4) -> GradientTransformation:
    """DoWG's step size: distances weight the gradients in the normaliser.

    rbar2 = max(rbar2, r_eps2, ||x - x0|| ** 2)   (r_eps2 = init_estim_sq_dist, or eps; the
                                                 state's rbar2 is 0 before the first step)
    v = v + rbar2 * ||g|| ** 2
    updates = (rbar2 / (sqrt(v) + eps)) * g

    Args:
        init_estim_sq_dist: r_eps ** 2, the initial squared distance estimate (None: eps).
        eps: added to sqrt(v), so zero gradients give a finite step.

    References:
        Khaled, Mishchenko & Jin 2023, "DoWG Unleashed: An Efficient Universal
        Parameter-Free Gradient Descent Method", Algorithm 1.
    """
    where = "gradtx.contrib.scale_by_dowg"
    _checks.check_number(where, "init_estim_sq_dist", init_estim_sq_dist, low=0.0, none_ok=True)
    _checks.check_number(where, "eps", eps, low=0.0)
    start = eps if init_estim_sq_dist is None else init_estim_sq_dist

    # rbar2 starts at 0 and every step takes max(rbar2, start, ||x - x0|| ** 2): the same
    # sequence as starting at ``start``, but the state does not hold a hyperparameter's value,
    # so a value set later in injected state (inject_hyperparams, tree_set) is the one used
    def init(params):
        dt = tree_scalar_dtype(params)
        return DoWGState(tree_copy(params), jnp.zeros((), dt), jnp.zeros((), dt))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        dt = state.estim_sq_dist.dtype
        floor = jnp.maximum(state.estim_sq_dist, as_dtype(start, dt))
        rbar2 = jnp.maximum(floor, _sq_dist(state.init_params, params, dt))
        v = state.weighted_sq_norm_grads + rbar2 * tree_sum_squares(updates).astype(dt)
        lr = rbar2 / (jnp.sqrt(v) + as_dtype(eps, dt))
        return _scale(updates, lr), DoWGState(state.init_params, v, rbar2)

    return GradientTransformation(init, update)


def dowg(
    learning_rate=1.0,
    init_estim_sq_dist=None,
    eps=1e-4,
    weight_decay=None,
    mask=None,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """DoWG: chain(add_decayed_weights(weight_decay, mask) if weight_decay is not None,
    scale_by_dowg(init_estim_sq_dist, eps), scale_by_learning_rate(learning_rate)).

    See ``scale_by_dowg`` for the rule.
    """
    decay = identity() if weight_decay is None else add_decayed_weights(weight_decay, mask)
    return maximizing(
        chain(decay, scale_by_dowg(init_estim_sq_dist, eps), scale_by_learning_rate(learning_rate)),
        maximize,
    )
