"""Layer-wise trust ratios: scale each leaf by a ratio of its parameter norm to its update norm.

Each leaf (a weight matrix, a bias vector, a kernel) is one "layer" or block, as in LARS,
LAMB and Fromage. The norms are taken in at least float32 and are safe to differentiate at 0.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import EmptyState, GradientTransformation
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    schedule_clock,
    schedule_count,
    tree_map_none,
    value_at,
)


def _empty_init(params):
    del params
    return EmptyState()


def _safe_root(sq, floor):
    """max(sqrt(sq), floor), with a finite derivative where sq is 0."""
    small = sq <= jnp.square(floor)
    return jnp.where(small, floor, jnp.sqrt(jnp.where(small, jnp.ones_like(sq), sq)))


def block_norm(x, floor, dt):
    """max(||x||, floor): the L2 norm of the whole leaf in dtype ``dt``, floored."""
    return _safe_root(jnp.sum(jnp.square(x.astype(dt))), as_dtype(floor, dt))


def block_rms(x, floor, dt):
    """max(sqrt(mean(x ** 2)), floor): the root mean square of the whole leaf, floored."""
    return _safe_root(jnp.mean(jnp.square(x.astype(dt))), as_dtype(floor, dt))


class ScaleByTrustRatioState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken if weight_decay is a schedule, else ()


def scale_by_trust_ratio(
    min_norm=0.0, trust_coefficient=1.0, eps=0.0, *, weight_decay=0.0
) -> GradientTransformation:
    """Scale each leaf by its trust ratio, trust_coefficient * ||params|| / ||updates||.

    p_norm = max(||params||, min_norm);  u_norm = max(||updates||, min_norm)
    denom = u_norm + weight_decay * p_norm
    ratio = trust_coefficient * p_norm / (denom + eps)     (1 where p_norm or denom is 0)
    updates = ratio * (updates + weight_decay * params)

    With weight_decay=0 (the default) this is LAMB's ratio (and optax's transform); with
    weight_decay > 0 it is LARS's local rate, whose denominator is ||g|| + weight_decay * ||w||
    rather than the norm of the decayed gradient.

    Args:
        min_norm: the floor of both norms (0: none).
        trust_coefficient: LARS's eta, a multiplier of the ratio.
        eps: added to the ratio's denominator.
        weight_decay: LARS's beta, added to the updates and to the ratio's denominator
            (number, array or schedule).

    References:
        You et al., Large Batch Training of Convolutional Networks, 2017, eq. 6 and
        Algorithm 1; You et al., Large Batch Optimization for Deep Learning: Training BERT in
        76 minutes, ICLR 2020, Algorithm 2.
    """
    where = "gradtx.scale_by_trust_ratio"
    _checks.check_number(where, "min_norm", min_norm, low=0.0)
    _checks.check_number(where, "trust_coefficient", trust_coefficient, low=0.0)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "weight_decay", weight_decay, low=0.0, schedule_ok=True)

    def init(params):
        del params
        return ScaleByTrustRatioState(schedule_count(weight_decay))

    def leaf(u, p, decay):
        dt = acc_dtype(u.dtype)
        wd = as_dtype(decay, dt)
        p_norm = block_norm(p, min_norm, dt)
        denom = block_norm(u, min_norm, dt) + wd * p_norm
        ratio = as_dtype(trust_coefficient, dt) * p_norm / (denom + as_dtype(eps, dt))
        ratio = jnp.where((p_norm == 0) | (denom == 0), jnp.ones_like(ratio), ratio)
        return (ratio * (u.astype(dt) + wd * p.astype(dt))).astype(u.dtype)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, params, where, "updates", "params")
        decay = value_at(weight_decay, state.count)
        updates = tree_map_none(lambda u, p: leaf(u, p, decay), updates, params)
        return updates, ScaleByTrustRatioState(schedule_clock(state.count, weight_decay))

    return GradientTransformation(init, update)


def scale_by_param_block_norm(min_scale=1e-3) -> GradientTransformation:
    """Multiply each leaf's updates by the norm of its parameters.

    updates = updates * max(||params||, min_scale)       (one norm per leaf)

    Args:
        min_scale: the floor of the norm, so that zero parameters still move.
    """
    where = "gradtx.scale_by_param_block_norm"
    _checks.check_number(where, "min_scale", min_scale, low=0.0)

    def leaf(u, p):
        dt = acc_dtype(u.dtype)
        return (u.astype(dt) * block_norm(p, min_scale, dt)).astype(u.dtype)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, params, where, "updates", "params")
        return tree_map_none(leaf, updates, params), state

    return GradientTransformation(_empty_init, update)


def scale_by_param_block_rms(min_scale=1e-3) -> GradientTransformation:
    """Multiply each leaf's updates by the root mean square of its parameters.

    updates = updates * max(sqrt(mean(params ** 2)), min_scale)       (one RMS per leaf)

    This is Adafactor's relative step: the step of a leaf is proportional to its scale.

    Args:
        min_scale: the floor of the RMS (Adafactor's epsilon2, 1e-3).

    References:
        Shazeer and Stern, Adafactor: Adaptive Learning Rates with Sublinear Memory Cost, ICML
        2018, Section 8 and Algorithms 4-5 (alpha_t = max(epsilon2, RMS(X)) * rho_t).
    """
    where = "gradtx.scale_by_param_block_rms"
    _checks.check_number(where, "min_scale", min_scale, low=0.0)

    def leaf(u, p):
        dt = acc_dtype(u.dtype)
        return (u.astype(dt) * block_rms(p, min_scale, dt)).astype(u.dtype)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, params, where, "updates", "params")
        return tree_map_none(leaf, updates, params), state

    return GradientTransformation(_empty_init, update)
