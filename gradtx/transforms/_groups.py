"""Parameter groups: freezing, and declarative rules on parameter paths.

``freeze`` and ``selective_transform`` keep some parameters fixed. ``param_groups`` sets
per-group hyperparameters from rules on the parameter paths.

A rule matches a leaf by its path string ``"a/b/c"`` (a glob, a compiled regex, or a predicate
``(path, leaf) -> bool``). Every leaf must match exactly one rule, or fall to the default
group. ``param_groups`` then builds one optimizer per group from a factory and its
hyperparameters, with the group's learning-rate scale, weight decay and extra hyperparameters,
and combines them with ``partition``; frozen groups get ``set_to_zero`` and no state. All
decisions are made from static paths when tracing, so the result jits and vmaps.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core import checks as _checks
from gradtx._core.base import EmptyState, GradientTransformation
from gradtx._core.trees import tree_map_none
from gradtx.transforms._combine import (
    TreeOrFn,
    make_partition,
    mask_flags,
    masked,
    path_str,
    tree_or_fn,
)

_NONE = lambda x: x is None  # noqa: E731


def set_to_zero() -> GradientTransformation:
    """Replace every update by zeros: ``updates = 0 * updates`` (None leaves stay None)."""

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        return tree_map_none(jnp.zeros_like, updates), state

    return GradientTransformation(init, update)


def freeze(mask) -> GradientTransformation:
    """Zero the updates of the leaves where ``mask`` is True (they stay fixed).

    updates[leaf] = 0 if mask(params)[leaf] else updates[leaf]

    ``masked(set_to_zero(), mask)``: it holds no state. To keep an optimizer from holding
    state for the frozen leaves too, use ``selective_transform``.

    Args:
        mask: True freezes the leaf: a tree of Python bools shaped like the parameters (or a
            prefix of them; a bare ``True`` freezes everything), or a function
            ``params -> such a tree``.
    """
    tree_or_fn(mask, "gradtx.freeze", "mask")
    return masked(set_to_zero(), mask)


def selective_transform(optimizer, *, freeze_mask) -> GradientTransformation:
    """Run ``optimizer`` on the trainable leaves only; the frozen ones get zero updates.

    updates[leaf] = 0 if freeze_mask(params)[leaf] else optimizer(updates)[leaf]

    A ``partition`` into ``{"train": optimizer, "freeze": set_to_zero()}``: the optimizer
    keeps no state for frozen leaves. Either group may be empty.

    Args:
        optimizer: the transform for the trainable leaves.
        freeze_mask: True freezes the leaf: a tree of Python bools shaped like the parameters
            (or a prefix of them), or a function ``params -> such a tree``.
    """
    where = "gradtx.selective_transform"
    freeze_mask = tree_or_fn(freeze_mask, where, "freeze_mask")

    def labels(params):
        flags = mask_flags(freeze_mask, params, where, freeze_mask.what())
        treedef = jax.tree.structure(params, is_leaf=_NONE)
        return treedef.unflatten(
            [None if f is None else ("freeze" if f else "train") for f in flags]
        )

    # the labels need the params exactly when the mask does
    label_arg = TreeOrFn(labels, "freeze_mask", needs_params=freeze_mask.is_fn)
    return make_partition(
        {"train": optimizer, "freeze": set_to_zero()}, label_arg, where, ("train", "freeze")
    )


@dataclasses.dataclass(frozen=True)
class ParamGroup:
    """One group of parameters and its settings.

    Args:
        name: the group's name: its key in the optimizer state and in error messages.
        match: which leaves belong here: a glob on the path string ``"a/b/c"`` (``*`` also
            matches ``/``), a compiled ``re.Pattern`` that must match the whole path, or a
            predicate ``(path, leaf) -> bool`` on static properties. None only for the default.
            A path ending in ``/value`` (a Flax NNX variable) is matched with and without it.
        lr_scale: multiplies the optimizer's ``learning_rate`` (a number or an array).
        weight_decay: replaces the optimizer's ``weight_decay`` (0.0 turns it off); None
            keeps the optimizer's.
        frozen: the group is not trained: zero updates and no optimizer state.
        hyperparams: other keyword arguments of the optimizer for this group, e.g. {"b2": 0.95}.
    """

    name: str
    match: str | re.Pattern | Callable[[str, Any], bool] | None = None
    lr_scale: Any = 1.0
    weight_decay: Any = None
    frozen: bool = False
    hyperparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        where = f"gradtx.ParamGroup({self.name!r})"
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"gradtx.ParamGroup: name={self.name!r}; expected a non-empty string.")
        if not (self.match is None or isinstance(self.match, str | re.Pattern)):
            if not callable(self.match):
                raise TypeError(
                    f"{where}: match={self.match!r}; expected a glob string, a re.compile(...) "
                    "pattern or a predicate (path, leaf) -> bool."
                )
        _checks.check_number(where, "lr_scale", self.lr_scale, low=0.0)
        if self.weight_decay is not None:
            _checks.check_number(where, "weight_decay", self.weight_decay, low=0.0)
        if not isinstance(self.frozen, bool):
            raise TypeError(f"{where}: frozen={self.frozen!r}; expected True or False.")
        tuned = not _is_one(self.lr_scale) or self.weight_decay is not None or self.hyperparams
        if self.frozen and tuned:
            raise ValueError(
                f"{where}: a frozen group takes no lr_scale, weight_decay or hyperparams "
                "(its parameters are not trained). Drop them or set frozen=False."
            )

    def matches(self, path: str, leaf) -> bool:
        """Whether the leaf at ``path`` belongs to this group.

        A glob or a pattern also matches the path without a final ``/value``: Flax NNX states
        hold each parameter in a variable whose array is its ``value`` child, so
        ``conv1/bias/value`` is matched by ``"*/bias"``. A predicate sees the full path.
        """
        candidates = [path] + ([path[: -len("/value")]] if path.endswith("/value") else [])
        if isinstance(self.match, str):
            return any(fnmatch.fnmatchcase(p, self.match) for p in candidates)
        if isinstance(self.match, re.Pattern):
            return any(self.match.fullmatch(p) is not None for p in candidates)
        got = self.match(path, leaf)
        if not isinstance(got, bool | np.bool_):
            raise TypeError(
                f"gradtx.ParamGroup({self.name!r}): match returned {got!r} for '{path}'; a "
                "predicate must return a Python bool from static properties (path, shape, dtype)."
            )
        return bool(got)


def _is_one(x) -> bool:
    return _checks.is_python_number(x) and x == 1


def _check_groups(groups, default, where):
    if isinstance(groups, ParamGroup) or not all(isinstance(g, ParamGroup) for g in groups):
        raise TypeError(f"{where}: groups must be a list of gradtx.ParamGroup, got {groups!r}.")
    if default is not None and not isinstance(default, ParamGroup):
        raise TypeError(f"{where}: default={default!r}; expected a gradtx.ParamGroup or None.")
    for g in groups:
        if g.match is None:
            raise ValueError(f"{where}: group {g.name!r} has match=None; give it a match.")
    names = [g.name for g in groups] + ([default.name] if default is not None else [])
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{where}: the group names {dup} are used more than once.")


def param_group_labels(params, groups, default: ParamGroup | None = None):
    """The tree of group names for ``params``: each leaf's one matching group (or default).

    Raises a ValueError listing the paths that match no group (when there is no default) or
    several groups, and the groups that match no parameter. None leaves stay None.
    """
    where = "gradtx.param_group_labels"
    _check_groups(groups, default, where)
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(params, is_leaf=_NONE)
    labels, unmatched, several, used = [], [], [], set()
    for path, leaf in paths_leaves:
        if leaf is None:
            labels.append(None)
            continue
        p = path_str(path)
        hits = [g.name for g in groups if g.matches(p, leaf)]
        used.update(hits)
        if len(hits) > 1:
            several.append(f"'{p}' matches {hits}")
        elif not hits and default is None:
            unmatched.append(f"'{p}'")
        labels.append(hits[0] if hits else getattr(default, "name", None))
    unused = [g.name for g in groups if g.name not in used]
    if unmatched or several or unused:
        all_paths = [path_str(p) for p, x in paths_leaves if x is not None]
        msg = [f"{where}: every parameter must match exactly one group."]
        if several:
            msg.append("  in several groups: " + "; ".join(several[:10]))
        if unmatched:
            msg.append("  in no group (and no default): " + ", ".join(unmatched[:10]))
        if unused:
            msg.append(f"  groups that match no parameter: {unused}")
        msg.append(f"The parameter paths are: {all_paths[:20]}. Make the matches disjoint.")
        raise ValueError("\n".join(msg))
    return treedef.unflatten(labels)


def _scaled(lr, s):
    if callable(lr):
        return lambda count: lr(count) * s
    return lr * s


def _group_optimizer(optimizer, hyperparams, group, where):
    if group.frozen:
        return set_to_zero()
    kwargs = {**hyperparams, **group.hyperparams}
    if not _is_one(group.lr_scale):
        if "learning_rate" not in kwargs:
            raise ValueError(
                f"{where}: group {group.name!r} sets lr_scale but hyperparams has no "
                "'learning_rate' to scale. Add learning_rate to hyperparams."
            )
        kwargs["learning_rate"] = _scaled(kwargs["learning_rate"], group.lr_scale)
    if group.weight_decay is not None:
        kwargs["weight_decay"] = group.weight_decay
    try:
        return optimizer(**kwargs)
    except TypeError as e:
        raise TypeError(
            f"{where}: building the optimizer of group {group.name!r} as "
            f"{getattr(optimizer, '__name__', optimizer)}(**{kwargs}) failed: {e}"
        ) from e


def param_groups(
    optimizer: Callable[..., Any],
    hyperparams: Mapping[str, Any],
    groups,
    *,
    default: ParamGroup | None = ParamGroup("default"),
) -> GradientTransformation:
    """One optimizer per parameter group, each with its group's settings, as a partition.

    updates[leaf] = optimizer_g(updates)[leaf], g the group of leaf, where
        optimizer_g = optimizer(**{**hyperparams, **g.hyperparams,
                                   learning_rate: hyperparams["learning_rate"] * g.lr_scale,
                                   weight_decay: g.weight_decay (if set)})
    and frozen groups get zero updates.
    The state is ``PartitionState({group name: that group's state})``.

    Args:
        optimizer: a factory taking keyword hyperparameters, e.g. ``gradtx.adamw``.
        hyperparams: the keyword arguments every group starts from, e.g.
            ``{"learning_rate": 1e-3, "weight_decay": 0.05}``.
        groups: a list of ``ParamGroup`` rules; each leaf must match at most one.
        default: the group of the leaves no rule matches (base hyperparameters unless it
            sets its own); None makes an unmatched leaf an error.
    """
    where = "gradtx.param_groups"
    _check_groups(groups, default, where)
    if not callable(optimizer):
        raise TypeError(f"{where}: optimizer={optimizer!r}; expected a factory like gradtx.adamw.")
    everyone = list(groups) + ([default] if default is not None else [])
    transforms = {
        g.name: _group_optimizer(optimizer, dict(hyperparams), g, where) for g in everyone
    }

    def labels(params):
        return param_group_labels(params, groups, default)

    optional = (default.name,) if default is not None else ()
    return make_partition(transforms, labels, where, optional)
