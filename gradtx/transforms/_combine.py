"""Combinators: named chains, masks, and partitions of the parameters into groups.

Masks and labels are always functions of the parameters (``params -> tree``), evaluated when
tracing, so every decision is static. A masked-out leaf reaches the inner transform as None
(gradtx transforms pass None through and keep no state for it) and leaves it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np

from gradtx._core.base import GradientTransformation, call_update

_NONE = lambda x: x is None  # noqa: E731


def check_transform(tx, where: str, name: str):
    if not (callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None))):
        raise TypeError(
            f"{where}: {name} is {tx!r}, which is not a gradient transformation (an object with "
            "init and update). Did you pass a factory without calling it, e.g. gradtx.adam "
            "instead of gradtx.adam(1e-3)?"
        )


def check_callable(fn, where: str, name: str, example: str):
    if not callable(fn):
        raise TypeError(
            f"{where}: {name}={fn!r} is not callable; {name} must be a function of the "
            f"parameters, e.g. {name}={example}. To use a fixed tree, wrap it: "
            f"{name}=lambda p: tree."
        )


def path_str(path) -> str:
    """A key path as an ``"a/b/0"`` string: dict keys, sequence indices, attribute names."""
    parts = []
    for k in path:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def leaf_values(fn: Callable, tree, where: str, what: str, check: Callable):
    """Evaluate ``fn(tree)``, a tree of static values shaped like ``tree`` or a prefix of it.

    Returns one value per leaf of ``tree`` (None leaves count as leaves and get None), each
    passed through ``check(value, path)``.
    """
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_NONE)
    prefix = fn(tree)
    full_def = err = None
    try:
        full = jax.tree.map(
            lambda v, sub: jax.tree.map(lambda _: v, sub, is_leaf=_NONE), prefix, tree
        )
        values, full_def = jax.tree.flatten(full, is_leaf=_NONE)
    except (ValueError, TypeError) as e:
        err = e
    if full_def is None or full_def != treedef:
        raise ValueError(
            f"{where}: {what} is not shaped like the parameters (nor a prefix of them).\n"
            f"  {what}: {jax.tree.structure(prefix, is_leaf=_NONE)}\n"
            f"  params: {treedef}\n"
            "Build it from the tree it is given, e.g. lambda p: jax.tree.map(lambda x: ..., p)."
        ) from err
    return [
        None if leaf is None else check(v, path_str(path))
        for (path, leaf), v in zip(paths_leaves, values)
    ]


def mask_flags(mask: Callable, tree, where: str, what: str = "mask(params)"):
    """One Python bool per leaf of ``tree`` (None for None leaves) from a mask function."""

    def check(v, path):
        if not isinstance(v, bool | np.bool_):
            raise TypeError(
                f"{where}: {what} has {v!r} at '{path}'; expected a Python bool, decided from "
                "static properties (path, shape, dtype), e.g. lambda p: jax.tree.map(lambda x: "
                "x.ndim > 1, p)."
            )
        return bool(v)

    return leaf_values(mask, tree, where, what, check)


def _select(tree, flags):
    """Replace the leaves whose flag is not True by None."""
    leaves, treedef = jax.tree.flatten(tree, is_leaf=_NONE)
    return treedef.unflatten([x if f else None for x, f in zip(leaves, flags)])


def masked_init(inner, flags, params):
    return inner.init(_select(params, flags))


def masked_update(inner, flags, updates, inner_state, params, extra_args, where):
    """Run ``inner`` on the flagged leaves only; the others come out unchanged."""
    u_leaves, treedef = jax.tree.flatten(updates, is_leaf=_NONE)
    if len(u_leaves) != len(flags):
        raise ValueError(
            f"{where}: updates have {len(u_leaves)} leaves but the parameters the mask was "
            f"evaluated on have {len(flags)}. Pass updates shaped like the parameters."
        )
    inner_params = None if params is None else _select(params, flags)
    new, inner_state = call_update(
        inner, _select(updates, flags), inner_state, inner_params, extra_args
    )
    n_leaves = jax.tree.leaves(new, is_leaf=_NONE)
    if len(n_leaves) != len(u_leaves):
        raise ValueError(
            f"{where}: the inner transform returned {len(n_leaves)} update leaves for "
            f"{len(u_leaves)}; it must return updates shaped like its input (None stays None)."
        )
    out = [n if f else u for n, u, f in zip(n_leaves, u_leaves, flags)]
    return treedef.unflatten(out), inner_state


def named_chain(*transforms: tuple[str, Any]) -> GradientTransformation:
    """Apply ``(name, transform)`` pairs in order; the state is a dict ``name -> state``.

    updates = t_n(...t_1(updates)), and ``state[name]`` is the state of the transform so named.

    Args:
        *transforms: ``(name, transform)`` pairs with distinct string names.
    """
    where = "gradtx.named_chain"
    for i, pair in enumerate(transforms):
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
            raise TypeError(
                f"{where}: argument {i} is {pair!r}; expected a (name, transform) pair with a "
                "string name, e.g. ('adam', gradtx.scale_by_adam())."
            )
        check_transform(pair[1], where, f"the transform named {pair[0]!r}")
    names = [name for name, _ in transforms]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"{where}: the names {dup} are used more than once; names must differ.")

    def init(params):
        return {name: tx.init(params) for name, tx in transforms}

    def update(updates, state, params=None, **extra_args):
        if not isinstance(state, Mapping) or set(state) != set(names):
            got = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(
                f"{where}: the state has keys {got}, expected {sorted(names)}. Pass the state "
                "that this named_chain's init returned."
            )
        new_state = {}
        for name, tx in transforms:
            updates, new_state[name] = call_update(tx, updates, state[name], params, extra_args)
        return updates, new_state

    return GradientTransformation(init, update)


class MaskedState(NamedTuple):
    inner_state: Any  # the inner transform's state, with None for the masked-out leaves


def masked(inner, mask: Callable) -> GradientTransformation:
    """Apply ``inner`` only to the leaves where ``mask(params)`` is True.

    updates[leaf] = inner(updates)[leaf] if mask(params)[leaf] else updates[leaf]

    The inner transform sees the masked-out leaves (and their parameters) as None and keeps no
    state for them.

    Args:
        inner: the transform to apply to the selected leaves.
        mask: a function ``params -> tree of Python bool`` shaped like the parameters or a
            prefix of them (a bool for a whole subtree), decided from static properties such
            as paths, shapes and dtypes. In ``update`` it is given the parameters, or the
            updates when ``params`` is None.
    """
    where = "gradtx.masked"
    check_transform(inner, where, "inner")
    check_callable(mask, where, "mask", "lambda p: jax.tree.map(lambda x: x.ndim > 1, p)")

    def init(params):
        return MaskedState(masked_init(inner, mask_flags(mask, params, where), params))

    def update(updates, state, params=None, **extra_args):
        flags = mask_flags(mask, updates if params is None else params, where)
        updates, inner_state = masked_update(
            inner, flags, updates, state.inner_state, params, extra_args, where
        )
        return updates, MaskedState(inner_state)

    return GradientTransformation(init, update)


class PartitionState(NamedTuple):
    inner_states: dict  # label -> that transform's state (None for the other groups' leaves)


def _label_list(param_labels, tree, where):
    def check(v, path):
        if not isinstance(v, str):
            raise TypeError(
                f"{where}: param_labels(params) has {v!r} at '{path}'; expected a string label "
                "(a key of transforms)."
            )
        return v

    return leaf_values(param_labels, tree, where, "param_labels(params)", check)


def _checked_labels(transforms, param_labels, tree, where, allow_unused):
    paths = [path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree, is_leaf=_NONE)[0]]
    labels = _label_list(param_labels, tree, where)
    missing = {}
    for path, label in zip(paths, labels):
        if label is not None and label not in transforms:
            missing.setdefault(label, []).append(path)
    if missing:
        lines = "\n".join(f"  {lb!r}: {', '.join(ps[:5])}" for lb, ps in sorted(missing.items()))
        raise ValueError(
            f"{where}: these labels have no transform (label: parameters):\n{lines}\n"
            f"transforms has {sorted(transforms)}. Add a transform for each label."
        )
    unused = sorted(set(transforms) - set(labels) - set(allow_unused))
    if unused:
        raise ValueError(
            f"{where}: the transforms {unused} label no parameter (labels in use: "
            f"{sorted({lb for lb in labels if lb is not None})}). Remove them or fix "
            "param_labels."
        )
    return labels


def make_partition(transforms, param_labels, where, allow_unused=()) -> GradientTransformation:
    """``partition`` with a caller's name for errors and labels that may go unused."""
    if not isinstance(transforms, Mapping) or not transforms:
        raise TypeError(
            f"{where}: transforms={transforms!r}; expected a non-empty dict label -> transform."
        )
    for label, tx in transforms.items():
        if not isinstance(label, str):
            raise TypeError(f"{where}: the label {label!r} is not a string; use string labels.")
        check_transform(tx, where, f"transforms[{label!r}]")
    check_callable(
        param_labels, where, "param_labels", "lambda p: jax.tree.map(lambda x: 'adam', p)"
    )

    def flags_for(labels, label):
        return [None if lb is None else lb == label for lb in labels]

    def init(params):
        labels = _checked_labels(transforms, param_labels, params, where, allow_unused)
        return PartitionState(
            {lb: masked_init(tx, flags_for(labels, lb), params) for lb, tx in transforms.items()}
        )

    def update(updates, state, params=None, **extra_args):
        tree = updates if params is None else params
        labels = _checked_labels(transforms, param_labels, tree, where, allow_unused)
        new_states = {}
        for lb, tx in transforms.items():
            updates, new_states[lb] = masked_update(
                tx,
                flags_for(labels, lb),
                updates,
                state.inner_states[lb],
                params,
                extra_args,
                where,
            )
        return updates, PartitionState(new_states)

    return GradientTransformation(init, update)


def partition(transforms: Mapping[str, Any], param_labels: Callable) -> GradientTransformation:
    """Apply a different transform to each group of parameters, chosen by a label function.

    updates[leaf] = transforms[label](updates restricted to that label's leaves)[leaf],
    with label = param_labels(params)[leaf]

    Each transform sees the other groups' leaves as None, so it keeps state only for its own.
    A label without a transform, or a transform whose label no parameter carries, is an error.

    Args:
        transforms: a dict ``label -> transform``.
        param_labels: a function ``params -> tree of string labels`` shaped like the
            parameters or a prefix of them.
    """
    return make_partition(transforms, param_labels, "gradtx.partition")
