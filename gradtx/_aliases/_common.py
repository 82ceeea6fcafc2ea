"""Pieces every alias shares."""

from __future__ import annotations

import jax

from gradtx._core.base import GradientTransformation, call_update
from gradtx._core.trees import tree_map_none


def maximizing(tx: GradientTransformation, maximize: bool) -> GradientTransformation:
    """``tx`` fed the negated gradient when ``maximize`` (torch.optim's ``maximize=True``).

    updates = tx(-updates); the state is ``tx``'s own, so switching ``maximize`` changes no
    state path. ``maximize`` is a static switch (a Python bool).
    """
    if not isinstance(maximize, bool):
        raise TypeError(f"maximize={maximize!r} must be a Python bool (True or False).")
    if not maximize:
        return tx

    def update(updates, state, params=None, **extra_args):
        negated = tree_map_none(jax.numpy.negative, updates)
        return call_update(tx, negated, state, params, extra_args)

    return GradientTransformation(tx.init, update)
