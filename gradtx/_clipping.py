"""Clipping of update values and of the update's global norm."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from gradtx import _checks
from gradtx._base import EmptyState, GradientTransformation
from gradtx._tree import as_dtype, global_norm, tree_map_none


def clip(max_delta) -> GradientTransformation:
    """Clip every coordinate of the updates to [-max_delta, max_delta].

    updates = clip(updates, -max_delta, max_delta)
    """
    _checks.check_number("gradtx.clip", "max_delta", max_delta, low=0.0)

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra_args):
        del params, extra_args

        def leaf(u):
            d = as_dtype(max_delta, u.dtype)
            return jnp.clip(u, -d, d)

        return tree_map_none(leaf, updates), state

    return GradientTransformation(init, update)


def clip_by_global_norm(max_norm, *, axis_name: Any = None) -> GradientTransformation:
    """Rescale the updates so their global L2 norm is at most ``max_norm``.

    norm = sqrt(sum over leaves of sum(updates ** 2))
    updates = updates * min(1, max_norm / norm)

    Args:
        max_norm: the largest allowed global norm (number or array).
        axis_name: inside ``shard_map``, the mesh axis (or axes) the updates are sharded
            over; the squared norms are summed over them so the norm is the true global one.
    """
    _checks.check_number("gradtx.clip_by_global_norm", "max_norm", max_norm, low=0.0)

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        norm = global_norm(updates, axis_name)
        limit = as_dtype(max_norm, norm.dtype)
        factor = jnp.where(norm <= limit, 1.0, limit / jnp.where(norm > 0, norm, 1.0))
        return tree_map_none(lambda u: u * factor.astype(u.dtype), updates), state

    return GradientTransformation(init, update)
