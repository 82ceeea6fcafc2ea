"""Weight decay: decoupled (AdamW) and coupled (L2 added to the gradient)."""

from __future__ import annotations

from typing import NamedTuple

import jax

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.trees import as_dtype, schedule_clock, schedule_count, value_at
from gradtx.transforms._combine import mask_flags, tree_or_fn


class AddDecayedWeightsState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken if weight_decay is a schedule, else ()


def _mask_flags(mask, params, where):
    """One bool per leaf of ``params`` (all True without a mask): a tree or a function."""
    if mask is None:
        return [x is not None for x in jax.tree.leaves(params, is_leaf=_is_none)]
    mask = tree_or_fn(mask, where, "mask")
    return [bool(f) for f in mask_flags(mask, params, where, mask.what())]


def _is_none(x) -> bool:
    return x is None


def add_decayed_weights(weight_decay=0.0, mask=None) -> GradientTransformation:
    """Add the parameters, scaled by the weight decay, to the updates.

    updates = updates + weight_decay * params      (on leaves where mask(params) is True)

    Placed after the moment transforms and before ``scale_by_learning_rate`` this is AdamW's
    decoupled decay, multiplied by the learning rate: W -= lr * (adam_step + weight_decay * W).
    Placed before them it is coupled L2 regularisation (see ``add_l2_penalty``).

    Args:
        weight_decay: a non-negative number, array, or schedule of the step count.
        mask: True decays the leaf: a tree of Python bools shaped like the parameters (or a
            prefix of them), a function ``params -> such a tree``, or None for every leaf.
    """
    where = "gradtx.add_decayed_weights"
    _checks.check_number(where, "weight_decay", weight_decay, low=0.0, schedule_ok=True)

    def init(params):
        _mask_flags(mask, params, where)  # a mask that does not fit fails here, not in update
        return AddDecayedWeightsState(schedule_count(weight_decay))

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, params, where, "updates", "params")
        wd = value_at(weight_decay, state.count)
        flags = _mask_flags(mask, params, where)
        u_leaves, treedef = jax.tree.flatten(updates, is_leaf=_is_none)
        p_leaves = jax.tree.leaves(params, is_leaf=_is_none)

        def leaf(u, p, decay_it):
            if u is None or not decay_it:
                return u
            return u + as_dtype(wd, u.dtype) * p.astype(u.dtype)

        updates = treedef.unflatten(map(leaf, u_leaves, p_leaves, flags))
        return updates, AddDecayedWeightsState(schedule_clock(state.count, weight_decay))

    return GradientTransformation(init, update)


def add_l2_penalty(weight_decay=0.0, mask=None) -> GradientTransformation:
    """Coupled L2 regularisation: the gradient of ``0.5 * weight_decay * ||params||**2``.

    updates = updates + weight_decay * params

    Put it first in a chain, before the moment transforms, so the penalty flows through them:
    ``chain(add_l2_penalty(wd), scale_by_adam(), scale_by_learning_rate(lr))`` is
    ``torch.optim.Adam(weight_decay=wd)``. The seed's point is that this is weaker than the
    decoupled decay of ``adamw``. The arithmetic is that of ``add_decayed_weights``; only the
    place in the chain differs, which this name documents.
    """
    return add_decayed_weights(weight_decay, mask)
