"""Constraints on the parameters, enforced through the updates."""

from __future__ import annotations

import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import EmptyState, GradientTransformation
from gradtx._core.trees import tree_map_none

NonNegativeParamsState = EmptyState  # keep_params_nonnegative keeps nothing (as optax)


def keep_params_nonnegative() -> GradientTransformation:
    """Change the updates so that the parameters stay >= 0 after they are applied.

    updates = -params where params + updates < 0, else updates

    Put it last in a chain: it sees the final step. A parameter that is already negative is
    moved to 0.
    """
    where = "gradtx.keep_params_nonnegative"

    def init(params):
        del params
        return NonNegativeParamsState()

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, params, where, "updates", "params")

        def leaf(u, p):
            return jnp.where(p + u.astype(p.dtype) < 0, -p.astype(u.dtype), u)

        return tree_map_none(leaf, updates, params), state

    return GradientTransformation(init, update)
