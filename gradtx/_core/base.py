"""The contract: a gradient transformation is a pure ``(init, update)`` pair over pytrees."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks

Params = Any
Updates = Any
State = Any


class GradientTransformation(NamedTuple):
    """A pure optimizer piece, with optax's protocol.

    init(params) -> state
    update(updates, state, params=None, **extra_args) -> (new_updates, new_state)

    ``extra_args`` (for example ``loss=...`` for ``reduce_on_plateau``) are accepted by every
    gradtx transform and ignored by those that do not need them.
    """

    init: Callable[[Params], State]
    update: Callable[..., tuple[Updates, State]]


class EmptyState(NamedTuple):
    """The state of a stateless transform: holds nothing."""


def identity() -> GradientTransformation:
    """Return the updates unchanged: ``updates = updates``."""

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return updates, state

    return GradientTransformation(init, update)


def stateless(fn: Callable[[Updates, Params], Updates]) -> GradientTransformation:
    """Build a transform without state from ``fn(updates, params) -> updates``.

    updates = fn(updates, params)

    Example:
        >>> import jax, gradtx
        >>> halve = gradtx.stateless(lambda u, p: jax.tree.map(lambda g: g / 2, u))
        >>> halve.update({"w": 4.0}, halve.init({"w": 0.0}))[0]
        {'w': 2.0}
    """

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra_args):
        del extra_args
        return fn(updates, params), state

    return GradientTransformation(init, update)


def _accepts_extra_args(tx) -> bool:
    if isinstance(tx, GradientTransformation):
        return True
    try:
        sig = inspect.signature(tx.update)
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())


def call_update(tx, updates, state, params, extra_args):
    """Call ``tx.update``, passing ``extra_args`` only where the transform takes them.

    gradtx transforms always take them; a foreign (optax) transform may not.
    """
    if extra_args and _accepts_extra_args(tx):
        return tx.update(updates, state, params, **extra_args)
    return tx.update(updates, state, params)


def chain(*transforms) -> GradientTransformation:
    """Apply transforms one after the other; the state is the tuple of their states.

    updates = t_n(...t_2(t_1(updates)))

    Any object with optax's ``init``/``update`` protocol may be chained, optax's own included.
    """
    for i, tx in enumerate(transforms):
        if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
            raise TypeError(
                f"gradtx.chain: argument {i} is {tx!r}, which is not a gradient transformation "
                "(an object with init and update). Did you pass a factory without calling it, "
                "e.g. gradtx.scale_by_adam instead of gradtx.scale_by_adam()?"
            )

    def init(params):
        return tuple(tx.init(params) for tx in transforms)

    def update(updates, state, params=None, **extra_args):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise ValueError(
                f"gradtx.chain: the state has {_checks.describe(state)}, expected a tuple of "
                f"{len(transforms)} states (one per chained transform). Pass the state that "
                "this chain's init returned."
            )
        new_state = []
        for tx, s in zip(transforms, state):
            updates, s = call_update(tx, updates, s, params, extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def apply_updates(params: Params, updates: Updates) -> Params:
    """Return ``params + updates``, each result in its parameter's dtype.

    None leaves in ``updates`` (from masked transforms) leave the parameter unchanged.
    """
    _checks.check_same_structure(
        params,
        updates,
        "gradtx.apply_updates",
        "params",
        "updates",
        fix="Pass the updates that the optimizer's update returned for these params.",
    )

    def add(p, u):
        if u is None:
            return p
        p = jnp.asarray(p)
        return (p + u.astype(p.dtype)).astype(p.dtype)

    return jax.tree.map(add, params, updates, is_leaf=lambda x: x is None)
