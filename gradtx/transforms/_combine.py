"""Combinators: named chains, masks, and partitions of the parameters into groups.

A mask or a label tree is what optax accepts: a function ``params -> tree``, or the tree itself
(shaped like the parameters, or a prefix of them). The choice is made by ``callable(...)``
alone, never by looking at the tree, and the tree's structure is checked at ``init``. Either
way the values are static Python bools or strings, so every decision is made when tracing. A
masked-out leaf reaches the inner transform as None (gradtx transforms pass None through and
keep no state for it) and leaves it unchanged. A mask function is evaluated on the
parameters only: called without them, ``update`` raises rather than guess from the updates
(whose dtypes may differ in mixed precision).
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


class TreeOrFn(NamedTuple):
    """A mask or label argument: a function of the parameters, or a fixed tree."""

    value: Any
    name: str  # the argument's name, for messages
    needs_params: bool | None = None  # None: exactly when value is a function

    @property
    def is_fn(self) -> bool:
        return callable(self.value)

    def __call__(self, params):
        return self.value(params) if self.is_fn else self.value

    def what(self) -> str:
        return f"{self.name}(params)" if self.is_fn else self.name

    def tree_for(self, params, updates, where: str):
        """The tree to evaluate the mask on: the params; a fixed tree needs none."""
        needs = self.is_fn if self.needs_params is None else self.needs_params
        if params is None and needs:
            raise ValueError(
                f"{where}: {self.name} is a function of the parameters, but update was called "
                "with params=None. Call tx.update(updates, state, params), or pass "
                f"{self.name} as a tree (which needs no parameters)."
            )
        return updates if params is None else params


def tree_or_fn(value, where: str, name: str) -> TreeOrFn:
    """Accept ``value`` as a function ``params -> tree`` or as the tree itself."""
    if isinstance(value, TreeOrFn):
        return value
    if value is None or isinstance(value, GradientTransformation):
        raise TypeError(
            f"{where}: {name}={value!r}; expected a function params -> tree, or a tree shaped "
            f"like the parameters (or a prefix of them), e.g. {name}={{'w': True, 'b': False}}."
        )
    return TreeOrFn(value, name)


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
    if isinstance(prefix, bool | np.bool_ | str):  # one value for the whole tree
        return [
            None if leaf is None else check(prefix, path_str(path)) for path, leaf in paths_leaves
        ]
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
            f"{where}: {what} is not shaped like the parameters (nor a prefix of them): "
            f"{first_mismatch(prefix, tree)}.\n"
            f"  {what}: {jax.tree.structure(prefix, is_leaf=_NONE)}\n"
            f"  params: {treedef}\n"
            "Give a tree with the parameters' structure (a bool or label for a whole subtree "
            "is allowed), or a function building it, e.g. lambda p: jax.tree.map(lambda x: ..., p)."
        ) from err
    return [
        None if leaf is None else check(v, path_str(path))
        for (path, leaf), v in zip(paths_leaves, values)
    ]


def _children(node) -> dict:
    """The immediate children of a pytree node, keyed by path string ({} for a leaf)."""
    if node is None or isinstance(node, bool | np.bool_ | str):
        return {}
    kids = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)[0]
    return {path_str(k): v for k, v in kids if k}


def first_mismatch(prefix, tree, path: str = "") -> str:
    """Where ``prefix`` stops fitting ``tree`` as a prefix: the first differing path."""
    here = path or "the root"
    p_kids, t_kids = _children(prefix), _children(tree)
    if not p_kids:
        return f"nothing found at {here}"
    if type(prefix) is not type(tree) and not (
        isinstance(prefix, Mapping) and isinstance(tree, Mapping)
    ):
        return f"at {here} it is a {type(prefix).__name__}, the parameters a {type(tree).__name__}"
    extra, lack = sorted(set(p_kids) - set(t_kids)), sorted(set(t_kids) - set(p_kids))
    if extra or lack:
        return f"at {here} it has the keys {sorted(p_kids)}, the parameters {sorted(t_kids)}"
    for key, child in p_kids.items():
        found = first_mismatch(child, t_kids[key], f"{path}/{key}" if path else key)
        if not found.startswith("nothing found"):
            return found
    return f"nothing found at {here}"


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
    if not any(flags):  # nothing selected: the inner transform has nothing to do
        return updates, inner_state
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


def masked(inner, mask, *, mask_compatible_extra_args: bool = False) -> GradientTransformation:
    """Apply ``inner`` only to the leaves where ``mask(params)`` (or the tree ``mask``) is True.

    updates[leaf] = inner(updates)[leaf] if mask(params)[leaf] else updates[leaf]

    The inner transform sees the masked-out leaves (and their parameters) as None and keeps no
    state for them.

    Args:
        inner: the transform to apply to the selected leaves.
        mask: a tree of Python bools shaped like the parameters or a prefix of them (a bool for
            a whole subtree), or a function ``params -> such a tree`` decided from static
            properties (paths, shapes, dtypes). A function needs ``params`` in ``update``.
        mask_compatible_extra_args: accepted for optax compatibility; every extra argument
            reaches the inner transform, which takes what it needs.
    """
    del mask_compatible_extra_args
    where = "gradtx.masked"
    check_transform(inner, where, "inner")
    mask = tree_or_fn(mask, where, "mask")

    def init(params):
        return MaskedState(masked_init(inner, mask_flags(mask, params, where, mask.what()), params))

    def update(updates, state, params=None, **extra_args):
        tree = mask.tree_for(params, updates, where)
        flags = mask_flags(mask, tree, where, mask.what())
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
                f"{where}: {param_labels.what()} has {v!r} at '{path}'; expected a string label "
                "(a key of transforms)."
            )
        return v

    return leaf_values(param_labels, tree, where, param_labels.what(), check)


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
    param_labels = tree_or_fn(param_labels, where, "param_labels")

    def flags_for(labels, label):
        return [None if lb is None else lb == label for lb in labels]

    def init(params):
        labels = _checked_labels(transforms, param_labels, params, where, allow_unused)
        return PartitionState(
            {lb: masked_init(tx, flags_for(labels, lb), params) for lb, tx in transforms.items()}
        )

    def update(updates, state, params=None, **extra_args):
        tree = param_labels.tree_for(params, updates, where)
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


def partition(
    transforms: Mapping[str, Any], param_labels, *, mask_compatible_extra_args: bool = False
) -> GradientTransformation:
    """Apply a different transform to each group of parameters, chosen by a label function.

    updates[leaf] = transforms[label](updates restricted to that label's leaves)[leaf],
    with label = param_labels(params)[leaf]

    Each transform sees the other groups' leaves as None, so it keeps state only for its own.
    A label without a transform, or a transform whose label no parameter carries, is an error.

    Args:
        transforms: a dict ``label -> transform``.
        param_labels: a tree of string labels shaped like the parameters or a prefix of them,
            or a function ``params -> such a tree`` (which needs ``params`` in ``update``).
        mask_compatible_extra_args: accepted for optax compatibility; gradtx passes every
            extra argument to every inner transform, which takes what it needs.
    """
    del mask_compatible_extra_args
    return make_partition(transforms, param_labels, "gradtx.partition")


def multi_transform(
    transforms: Mapping[str, Any], param_labels, *, mask_compatible_extra_args: bool = False
) -> GradientTransformation:
    """optax's older name for ``partition``: the same transform.

    updates = partition(transforms, param_labels)(updates)
    """
    return partition(
        transforms, param_labels, mask_compatible_extra_args=mask_compatible_extra_args
    )
