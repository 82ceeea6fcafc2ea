"""Finding and replacing values in a state by name, with optax's ``optax.tree`` semantics.

``get``/``set`` here follow optax: ``set`` replaces every occurrence of a name (optionally
filtered), ``get`` returns ``default`` for a missing name and raises for several. gradtx's own
``gradtx.tree_get``/``gradtx.tree_set`` are stricter (a name must be unique; path suffixes
qualify it); ``get`` without ``filtering`` uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from gradtx._state import tools as _tools

KeyPath = tuple


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _children(node):
    """(key entry, child) pairs of a container node, or None for a leaf."""
    if _is_namedtuple(node):
        return [(jax.tree_util.GetAttrKey(f), getattr(node, f)) for f in node._fields]
    if isinstance(node, dict):
        return [(jax.tree_util.DictKey(k), v) for k, v in node.items()]
    if isinstance(node, list | tuple):
        return [(jax.tree_util.SequenceKey(i), v) for i, v in enumerate(node)]
    return None


def _key_name(entry):
    for attr in ("name", "key", "idx"):
        if hasattr(entry, attr):
            return getattr(entry, attr)
    return entry


def get_all_with_path(tree, key, filtering: Callable[[KeyPath, Any], bool] | None = None):
    """Every ``(path, value)`` whose dict key or NamedTuple field is ``key`` (or a NamedTuple
    of class name ``key``), in tree order; ``filtering(path, value)`` keeps only some."""
    found = []

    def walk(node, path):
        if _is_namedtuple(node) and type(node).__name__ == key:
            found.append((path, node))
        kids = _children(node)
        for entry, child in kids or ():
            here = (*path, entry)
            if _key_name(entry) == key and not isinstance(entry, jax.tree_util.SequenceKey):
                found.append((here, child))
            walk(child, here)

    walk(tree, ())
    if filtering is not None:
        found = [(p, v) for p, v in found if filtering(p, v)]
    return found


def get(tree, key, default=None, filtering: Callable[[KeyPath, Any], bool] | None = None):
    """The value at ``key`` in ``tree``; ``default`` if there is none; KeyError if several.

    Without ``filtering`` this is ``gradtx.tree_get`` (a key may also be a path suffix such as
    ``"1/learning_rate"``).
    """
    if filtering is None:
        return _tools.tree_get(tree, key, default)
    found = get_all_with_path(tree, key, filtering)
    if len(found) > 1:
        paths = ", ".join(jax.tree_util.keystr(p) for p, _ in found)
        raise KeyError(f"gradtx.tree.get: several values for {key!r}: {paths}.")
    return found[0][1] if found else default


def _replace(node, path, value):
    if not path:
        return value
    entry, rest = path[0], path[1:]
    name = _key_name(entry)
    if _is_namedtuple(node):
        return node._replace(**{name: _replace(getattr(node, name), rest, value)})
    if isinstance(node, dict):
        return {**node, name: _replace(node[name], rest, value)}
    items = list(node)
    items[name] = _replace(items[name], rest, value)
    return type(node)(items)


def set(tree, filtering: Callable[[KeyPath, Any], bool] | None = None, /, **kwargs):  # noqa: A001
    """``tree`` with every value at each keyword's key replaced (as optax's ``tree_set``).

    A value may be a function ``old -> new``. Each new value is cast to the old one's dtype
    and shape, so a jitted step is not recompiled. A key found nowhere raises KeyError.
    """
    for key, value in kwargs.items():
        found = get_all_with_path(tree, key, filtering)
        if not found:
            raise KeyError(f"gradtx.tree.set: no value named {key!r} in the tree.")
        for path, old in found:
            new = value(old) if callable(value) else value
            new = _tools._cast_like(old, new, "gradtx.tree.set", (jax.tree_util.keystr(path),))
            tree = _replace(tree, path, new)
    return tree


class _ParamsPlaceholder:
    """Stands for the parameters when ``map_params`` builds a state to see where they go."""


jax.tree_util.register_pytree_node(
    _ParamsPlaceholder, lambda p: ((), None), lambda aux, children: _ParamsPlaceholder()
)


def map_params(initable, f, state, /, *rest, transform_non_params=None, is_leaf=None):
    """Apply ``f`` to every copy of the parameter tree inside an optimizer state.

    ``initable`` is the transform (or its ``init``); the state is rebuilt from a placeholder to
    find which parts of ``state`` are shaped like the parameters. ``f`` maps each of those
    trees' leaves (with the matching leaves of ``rest``); ``transform_non_params`` maps every
    other leaf. Useful to derive partition specs of a state from those of the parameters.
    """
    init = initable.init if hasattr(initable, "init") else initable
    skeleton = init(_ParamsPlaceholder())

    def each(marker, value):
        if isinstance(marker, _ParamsPlaceholder):
            return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
        return value if transform_non_params is None else transform_non_params(value)

    return jax.tree.map(each, skeleton, state, is_leaf=lambda v: isinstance(v, _ParamsPlaceholder))
