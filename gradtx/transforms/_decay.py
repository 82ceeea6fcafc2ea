"""Weight decay: decoupled (AdamW) and coupled (L2 added to the gradient)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.trees import as_dtype, schedule_clock, schedule_count, value_at


class AddDecayedWeightsState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken if weight_decay is a schedule, else ()


def _mask_tree(mask, params, where):
    """Evaluate ``mask(params)`` and check it is a tree of Python bools shaped like params."""
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    if not callable(mask):
        raise TypeError(
            f"{where}: mask={mask!r} is not callable. Pass a function params -> tree of bool, "
            "e.g. mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)."
        )
    tree = mask(params)
    _checks.check_same_structure(params, tree, where, "params", "mask(params)")
    for path, m in jax.tree_util.tree_leaves_with_path(tree):
        if not isinstance(m, bool):
            raise TypeError(
                f"{where}: mask(params) has {m!r} at {jax.tree_util.keystr(path)}; expected a "
                "Python bool (the mask decides which leaves are decayed when tracing)."
            )
    return tree


def add_decayed_weights(weight_decay=0.0, mask: Callable | None = None) -> GradientTransformation:
    """Add the parameters, scaled by the weight decay, to the updates.

    updates = updates + weight_decay * params      (on leaves where mask(params) is True)

    Placed after the moment transforms and before ``scale_by_learning_rate`` this is AdamW's
    decoupled decay, multiplied by the learning rate: W -= lr * (adam_step + weight_decay * W).
    Placed before them it is coupled L2 regularisation (see ``add_l2_penalty``).

    Args:
        weight_decay: a non-negative number, array, or schedule of the step count.
        mask: a function ``params -> tree of bool`` (True: decay this leaf), or None for all.
    """
    where = "gradtx.add_decayed_weights"
    _checks.check_number(where, "weight_decay", weight_decay, low=0.0, schedule_ok=True)

    def init(params):
        del params
        return AddDecayedWeightsState(schedule_count(weight_decay))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, params, where, "updates", "params")
        wd = value_at(weight_decay, state.count)
        decay_it = _mask_tree(mask, params, where)

        def leaf(u, p, m):
            if u is None or not m:
                return u
            return u + as_dtype(wd, u.dtype) * p.astype(u.dtype)

        updates = jax.tree.map(leaf, updates, params, decay_it, is_leaf=lambda x: x is None)
        return updates, AddDecayedWeightsState(schedule_clock(state.count, weight_decay))

    return GradientTransformation(init, update)


def add_l2_penalty(weight_decay=0.0, mask: Callable | None = None) -> GradientTransformation:
    """Coupled L2 regularisation: the gradient of ``0.5 * weight_decay * ||params||**2``.

    updates = updates + weight_decay * params

    Put it first in a chain, before the moment transforms, so the penalty flows through them:
    ``chain(add_l2_penalty(wd), scale_by_adam(), scale_by_learning_rate(lr))`` is
    ``torch.optim.Adam(weight_decay=wd)``. The seed's point is that this is weaker than the
    decoupled decay of ``adamw``. The arithmetic is that of ``add_decayed_weights``; only the
    place in the chain differs, which this name documents.
    """
    return add_decayed_weights(weight_decay, mask)
