"""Numerics with finite gradients at the edges, and optax's small contract helpers.

``safe_norm`` and ``safe_root_mean_squares`` clamp from below without a NaN gradient at zero
(the norm's gradient is 0/0 there); ``scale_gradient`` scales only the backward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtx._core.base import EmptyState, GradientTransformation, call_update
from gradtx._core.trees import safe_increment, tree_map_none

# optax's type names, for annotations in code that moves over.
Params = Any
Updates = Any
OptState = Any
ScalarOrSchedule = Any  # a number, an array, or a schedule count -> value
MaskOrFn = Any  # a tree of bools, or a function params -> such a tree
TransformInitFn = Any  # a Callable: init(params) -> state
TransformUpdateFn = Any  # a Callable: update(updates, state, params=None, **extra_args)
TransformUpdateExtraArgsFn = Any  # the same: gradtx has one update signature


def safe_norm(x, min_norm, ord=None, axis=None, keepdims: bool = False):  # noqa: A002
    """max(norm(x), min_norm), with a zero gradient (not NaN) where norm(x) <= min_norm.

    ``ord``, ``axis`` and ``keepdims`` are those of ``jnp.linalg.norm``.
    """
    x = jnp.asarray(x)
    norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=True)
    small = norm <= min_norm
    safe_x = jnp.where(small, jnp.ones_like(x), x)
    masked = jnp.linalg.norm(safe_x, ord=ord, axis=axis, keepdims=keepdims)
    small = small if keepdims else jnp.squeeze(small, axis=axis)
    return jnp.where(small, jnp.asarray(min_norm, masked.dtype), masked)


def safe_root_mean_squares(x, min_rms):
    """max(sqrt(mean(|x|**2)), min_rms), with a zero gradient where the RMS <= min_rms."""
    x = jnp.asarray(x)
    sq = jnp.square(jnp.abs(x)) if jnp.iscomplexobj(x) else jnp.square(x)
    ms = jnp.mean(sq)
    small = ms <= jnp.square(min_rms)
    return jnp.where(small, jnp.asarray(min_rms, ms.dtype), jnp.sqrt(jnp.where(small, 1, ms)))


def safe_int32_increment(count):
    """optax's name for ``safe_increment``: count + 1, saturating at the int32 maximum."""
    return safe_increment(count)


def scale_gradient(inputs, scale):
    """The identity on the forward pass; gradients are multiplied by ``scale`` on the way back.

    backward: d inputs = scale * d outputs
    """

    @jax.custom_vjp
    def identity(x):
        return x

    def fwd(x):
        return x, None

    def bwd(_, g):
        return (tree_map_none(lambda t: t * jnp.asarray(scale, t.dtype), g),)

    identity.defvjp(fwd, bwd)
    return identity(inputs)


def init_empty_state(params) -> EmptyState:
    """The ``init`` of a transform without state: returns ``EmptyState()``."""
    del params
    return EmptyState()


def stateless_with_tree_map(f: Callable) -> GradientTransformation:
    """A transform without state from ``f(update_leaf, param_leaf) -> update_leaf``.

    updates = tree_map(f, updates, params)       (param_leaf is None when params is None)
    """

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            return tree_map_none(lambda u: f(u, None), updates), state
        return tree_map_none(f, updates, params), state

    return GradientTransformation(init_empty_state, update)


def with_extra_args_support(tx) -> GradientTransformation:
    """``tx`` as a transform whose update takes (and passes on where it can) extra arguments.

    updates = tx(updates)

    gradtx transforms already take them; a foreign transform gets them only if its update
    accepts ``**kwargs``.
    """

    def update(updates, state, params=None, **extra_args):
        return call_update(tx, updates, state, params, extra_args)

    return GradientTransformation(tx.init, update)
