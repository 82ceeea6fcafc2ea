"""SAM: sharpness-aware minimisation, an ascent step then a descent step from the start point."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, call_update
from gradtx._core.trees import tree_map_none


class SAMState(NamedTuple):
    steps_since_sync: jax.Array  # int32 scalar: position in the cycle of sync_period steps
    opt_state: object  # the state of ``optimizer`` (the descent)
    adv_state: object  # the state of ``adv_optimizer`` (the ascent)
    cache: object  # like params: the start point w of the cycle; None in opaque mode


def _select(cond, if_true, if_false):
    """Leaf by leaf ``where(cond, if_true, if_false)`` (exact, and NaN-safe, unlike a blend)."""
    return jax.tree.map(
        lambda a, b: jnp.where(cond, jnp.asarray(a).astype(jnp.result_type(b)), b),
        if_true,
        if_false,
    )


def sam(
    optimizer,
    adv_optimizer,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name=None,
) -> GradientTransformation:
    """Sharpness-aware minimisation: ascend with ``adv_optimizer``, then descend from the start.

    With adv_optimizer = chain(normalize(), sgd(rho)) and sync_period = 2 this is SAM:
    step 1 (at w):          updates = rho * g(w) / ||g(w)||        (the ascent, applied)
    step 2 (at w + eps):    updates = (w - (w + eps)) + optimizer(g(w + eps))   (from w)

    Transparent mode (default): each call is one step of a cycle of ``sync_period``; the first
    ``sync_period - 1`` return the ascent step (minus the adv_optimizer's update, which descends),
    the last returns the step that takes the parameters from the cycle's start w (kept in
    ``cache``) to w + optimizer(g). The outer loop sees ordinary updates. Opaque mode: one
    call does the whole cycle, calling ``grad_fn(params, i)`` (an extra argument of update) for
    the gradient at each ascent point, and returns optimizer's step from w.

    Args:
        optimizer: the descent transform (e.g. sgd(learning_rate)).
        adv_optimizer: the ascent transform; its update is negated to ascend (e.g.
            chain(normalize(), sgd(rho)) for SAM's rho * g / ||g||).
        sync_period: steps per cycle (2 is SAM: one ascent, one descent).
        reset_state: reset adv_optimizer's state at the end of each cycle.
        opaque_mode: do the whole cycle in one call, with ``grad_fn``.
        batch_axis_name: in opaque mode, average the ascent gradients over this axis (pmean),
            as the paper's m-sharpness does per device otherwise.

    References:
        Foret, Kleiner, Mobahi and Neyshabur, Sharpness-Aware Minimization for Efficiently
        Improving Generalization, ICLR 2021, Algorithm 1 and eq. 2.
    """
    where = "gradtx.contrib.sam"
    if not isinstance(sync_period, int) or isinstance(sync_period, bool) or sync_period < 1:
        raise ValueError(
            f"{where}: sync_period={sync_period!r}; expected a Python int >= 1 (2 for SAM)."
        )

    def init(params):
        return SAMState(
            jnp.zeros((), jnp.int32),
            optimizer.init(params),
            adv_optimizer.init(params),
            None if opaque_mode else params,
        )

    def negate(tree):
        return tree_map_none(jnp.negative, tree)

    def transparent(updates, state, params=None, **extra_args):
        _checks.require_params(params, where)
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == sync_period - 1
        cache = _select(first, params, state.cache)  # w, the cycle's start
        adv_updates, adv_state = call_update(
            adv_optimizer, updates, state.adv_state, params, extra_args
        )
        descent, opt_state = call_update(optimizer, updates, state.opt_state, cache, extra_args)
        back_and_descend = tree_map_none(
            lambda w, p, u: ((w.astype(p.dtype) - p).astype(u.dtype) + u).astype(u.dtype),
            cache,
            params,
            descent,
        )
        updates = _select(last, back_and_descend, negate(adv_updates))
        if reset_state:
            adv_state = _select(last, adv_optimizer.init(params), adv_state)
        opt_state = _select(last, opt_state, state.opt_state)
        count = jnp.where(last, 0, state.steps_since_sync + 1).astype(jnp.int32)
        return updates, SAMState(count, opt_state, adv_state, cache)

    def opaque(updates, state, params=None, *, grad_fn=None, **extra_args):
        if grad_fn is None:
            raise ValueError(
                f"{where}: opaque_mode=True needs update(..., grad_fn=f) with f(params, i) the "
                "gradient at params for ascent step i."
            )
        _checks.require_params(params, where)
        adv_params, grads, adv_state = params, updates, state.adv_state
        for i in range(sync_period - 1):
            step, adv_state = call_update(adv_optimizer, grads, adv_state, adv_params, extra_args)
            adv_params = jax.tree.map(
                lambda p, s: (p - s.astype(p.dtype)).astype(p.dtype), adv_params, step
            )
            grads = grad_fn(adv_params, i)
            if batch_axis_name is not None:
                grads = jax.lax.pmean(grads, axis_name=batch_axis_name)
        if reset_state:
            adv_state = adv_optimizer.init(params)
        updates, opt_state = call_update(optimizer, grads, state.opt_state, params, extra_args)
        return updates, SAMState(state.steps_since_sync, opt_state, adv_state, None)

    return GradientTransformation(init, opaque if opaque_mode else transparent)
