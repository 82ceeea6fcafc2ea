"""Reach into optimizer state by name: read, change, flatten to a dict and rebuild.

Every node of a state has a path: the names of the containers above it, joined by "/". A
chained state's entries are named by position ("0", "1"), a NamedTuple's by field ("mu"), a
dict's by key (a ``named_chain`` name, a hyperparameter, a parameter name), a list's by index.
So the first moment of ``params["layers"][0]["w"]`` in ``chain(scale_by_adam(), ...)`` is
``"0/mu/layers/0/w"``.

A *name* given to ``tree_get``/``tree_set`` is such a path or any suffix of one
(``"learning_rate"``, ``"1/learning_rate"``, ``"adam/mu"``); it must pick exactly one node.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core import checks as _checks


def _key_name(key) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _children(node):
    """One level of a pytree: ``([(name, child), ...], treedef)``, or None for a leaf."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    if jax.tree_util.treedef_is_leaf(treedef):
        return None
    return [(_key_name(path[0]), child) for path, child in flat], treedef


def _walk(node, path=()):
    """Yield ``(path, node)`` for every node, the root included, parents before children."""
    yield path, node
    kids = _children(node)
    if kids is not None:
        for name, child in kids[0]:
            yield from _walk(child, path + (name,))


def _join(path) -> str:
    return "/".join(path)


def find_paths(state, name: str) -> list[tuple[str, ...]]:
    """The paths of every node of ``state`` that ``name`` (a path suffix) could mean."""
    want = tuple(p for p in name.split("/") if p)
    if not want:
        raise ValueError("gradtx.tree_get: the name is empty; pass a field name.")
    paths = [p for p, _ in _walk(state) if p[-len(want) :] == want and len(p) >= len(want)]
    exact = [p for p in paths if p == want]
    return exact or paths


def _resolve(state, name: str, where: str) -> tuple[str, ...]:
    paths = find_paths(state, name)
    if len(paths) == 1:
        return paths[0]
    if not paths:
        names = sorted({p[-1] for p, _ in _walk(state) if p and not p[-1].isdigit()})
        shown = ", ".join(names[:40]) + (", ..." if len(names) > 40 else "")
        raise KeyError(f"{where}: no field named {name!r} in the state. Names present: {shown}.")
    listed = "\n".join(f"  {_join(p)}" for p in paths)
    raise KeyError(
        f"{where}: the name {name!r} is ambiguous; it matches {len(paths)} places:\n{listed}\n"
        "Qualify it with the part of the path above it, e.g. "
        f"{_join(paths[0][-len(name.split('/')) - 1 :])!r}."
    )


def _get(node, path):
    for part in path:
        node = dict(_children(node)[0])[part]
    return node


_NO_DEFAULT = object()


def tree_get(state, name: str, default=_NO_DEFAULT):
    """The value in ``state`` at ``name``: a field, key or path suffix, e.g. ``"learning_rate"``.

    Raises KeyError listing the candidate paths when ``name`` is ambiguous. When ``name``
    matches nothing, returns ``default`` if one is given (as optax's ``tree_get``), else raises
    KeyError listing the names present.

    Example:
        >>> import gradtx
        >>> tx = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=0.1)
        >>> float(gradtx.tree_get(tx.init({"w": 1.0}), "learning_rate"))
        0.1...
    """
    if default is not _NO_DEFAULT and not find_paths(state, name):
        return default
    return _get(state, _resolve(state, name, "gradtx.tree_get"))


def _cast_like(old, new, where, path):
    """``new`` as an array with ``old``'s shape and dtype (so a jitted step is not retraced)."""
    if old is None:
        raise ValueError(f"{where}: {_join(path)!r} is None (masked); there is nothing to set.")
    dtype, shape = jnp.result_type(old), jnp.shape(old)
    if jnp.shape(new) != shape:
        raise ValueError(
            f"{where}: {_join(path)!r} has shape {shape}, the new value has shape "
            f"{jnp.shape(new)}. Pass a value of the same shape."
        )
    if jnp.issubdtype(dtype, jnp.integer) and not jnp.issubdtype(jnp.result_type(new), jnp.integer):
        if isinstance(new, float) and not new.is_integer():
            raise ValueError(
                f"{where}: {_join(path)!r} holds {dtype} values; {new!r} would be truncated. "
                "Build the state with a float value (e.g. 1.0, not 1) to store floats."
            )
    return jnp.asarray(new, dtype)


def _set(node, path, value, where, full):
    if not path:
        old_tree = jax.tree.structure(node, is_leaf=lambda x: x is None)
        if old_tree.num_leaves == 1 and jax.tree_util.treedef_is_leaf(old_tree):
            return _cast_like(node, value, where, full)
        new_tree = jax.tree.structure(value, is_leaf=lambda x: x is None)
        if new_tree != old_tree:
            raise ValueError(
                f"{where}: {_join(full)!r} is a tree {old_tree}; the new value is {new_tree}. "
                "Pass a tree of the same structure."
            )
        return jax.tree.map(
            lambda o, n: _cast_like(o, n, where, full), node, value, is_leaf=lambda x: x is None
        )
    kids, treedef = _children(node)
    new = [_set(c, path[1:], value, where, full) if n == path[0] else c for n, c in kids]
    return treedef.unflatten(new)


def tree_set(state, values: dict[str, Any] | None = None, /, **kwargs):
    """A copy of ``state`` with the named values replaced, each keeping its shape and dtype.

    ``tree_set(state, learning_rate=3e-4)``; a qualified name goes in a dict:
    ``tree_set(state, {"1/learning_rate": 3e-4})``. Values are cast to the stored dtype, so a
    jitted step taking the state is not retraced. A name may also pick a subtree (``"mu"``),
    whose new value must be a tree of the same structure.

    A hyperparameter of ``inject_hyperparams`` gets the range checks its factory ran when the
    transform was built (``b2=1.0`` or a negative learning rate raise a ValueError), applied to
    the value as stored (a bfloat16 array holding 0.999 is 1.0, and is refused). Python, NumPy
    and concrete JAX values are checked; tracers (inside jit or vmap) pass unchecked.
    """
    where = "gradtx.tree_set"
    for name, value in {**(values or {}), **kwargs}.items():
        path = _resolve(state, name, where)
        node = _get(state, path)
        parent = _get(state, path[:-1]) if path else None
        if callable(getattr(parent, "check_value", None)):
            checked = {path[-1]: value}
        elif callable(getattr(node, "check_value", None)) and isinstance(value, dict):
            parent, checked = node, value
        else:
            checked = {}
        for key, v in checked.items():
            if isinstance(v, jax.core.Tracer) or key not in parent:
                continue
            stored = np.asarray(_cast_like(parent[key], v, where, path))
            if stored.ndim == 0 and not isinstance(v, bool):
                if _checks.concrete_number(v) is not None:  # as the user wrote it
                    parent.check_value(key, v, where)
                parent.check_value(key, stored.item(), where)  # and as the optimizer sees it
        state = _set(state, path, value, where, path)
    return state


def _flat(tree) -> dict[str, Any]:
    """``{path: leaf}`` over the non-None leaves of ``tree``, in flattening order."""
    out: dict[str, Any] = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        key = _join(_key_name(k) for k in path)
        if key in out:
            raise ValueError(
                f"gradtx.state_dict: two leaves share the key {key!r} (a dict key contains '/'). "
                "Rename the key."
            )
        out[key] = leaf
    return out


def state_dict(state) -> dict[str, np.ndarray]:
    """Flatten a state (any pytree of arrays) into ``{path: numpy array}``.

    Keys are the "/"-joined paths described in this module's docstring, e.g.
    ``"0/mu/layers/0/w"``, ``"hyperparams/learning_rate"``; None leaves are skipped. The keys
    depend only on the tree's structure, so they are stable across runs and processes.
    """
    return {k: np.asarray(v) for k, v in _flat(state).items()}


class StateDictDiff(NamedTuple):
    """How a state dict differs from a state shaped like ``like``."""

    missing: list[str]  # keys ``like`` has and the dict lacks (new parameters)
    unexpected: list[str]  # keys the dict has and ``like`` lacks (dropped parameters)
    mismatched: list[str]  # "key: shape/dtype in dict vs like", one line each


def _spec(x):
    """A leaf's shape and dtype as ``like`` has it: the dtype JAX will give the loaded array."""
    return tuple(jnp.shape(x)), np.dtype(jnp.result_type(x))


def _saved_spec(x):
    """A saved value's shape and dtype as saved: not canonicalised, so with x64 off an int64
    entry stays int64 (and does not fit an int32 leaf) instead of silently becoming int32."""
    if hasattr(x, "dtype") and hasattr(x, "shape"):
        return tuple(x.shape), np.dtype(x.dtype)
    return tuple(np.shape(x)), np.dtype(jnp.result_type(x))


def _compare(like, specs: dict):
    """``(want, missing, unexpected, shape_mismatches, dtype_mismatches)``; specs: key ->
    (shape, dtype) as saved. A mismatch is ``(key, line)``."""
    want = _flat(like)
    missing = [k for k in want if k not in specs]
    unexpected = sorted(k for k in specs if k not in want)
    shapes, dtypes = [], []
    for k, leaf in want.items():
        if k in specs:
            (s_want, t_want), (s_got, t_got) = _spec(leaf), specs[k]
            line = f"{k}: saved {t_got}{list(s_got)}, expected {t_want}{list(s_want)}"
            if tuple(s_want) != tuple(s_got):
                shapes.append((k, line))
            elif t_want != t_got:
                dtypes.append((k, line))
    return want, missing, unexpected, shapes, dtypes


def state_dict_diff(like, d: dict) -> StateDictDiff:
    """Compare ``d`` (from ``state_dict``) with a state shaped like ``like``.

    Dtypes are compared as saved (an int64 entry does not match an int32 leaf, whatever
    jax_enable_x64 says).
    """
    _, missing, unexpected, shapes, dtypes = _compare(
        like, {k: _saved_spec(v) for k, v in d.items()}
    )
    order = {k: i for i, k in enumerate(_flat(like))}
    mismatched = [line for _, line in sorted(shapes + dtypes, key=lambda m: order[m[0]])]
    return StateDictDiff(missing, unexpected, mismatched)


def _fit(like, specs: dict, strict: bool, where: str):
    """Check saved ``specs`` (key -> (shape, dtype)) against ``like`` before reading a value.

    Raises one ValueError listing every problem; warns about dropped keys (non-strict).
    Returns ``(want, cast)``: ``like``'s leaves by key, and the keys whose saved dtype differs
    from ``like``'s (non-strict only), with the dtype to cast them to.
    """
    want, missing, unexpected, shapes, dtypes = _compare(like, specs)
    problems = [f"  mismatched {line}" for _, line in shapes]
    if strict:
        problems += [f"  mismatched {line}" for _, line in dtypes]
        problems += [f"  missing {k}" for k in missing]
        problems += [f"  unexpected {k}" for k in unexpected]
    concrete = (jax.Array, np.ndarray, np.generic)
    if not strict:
        problems += [
            f"  missing {k} (`like` is abstract here, so there is no value to keep)"
            for k in missing
            if not isinstance(want[k], concrete)
        ]
    if problems:
        hint = ", or pass strict=False to allow added and removed parameters" if strict else ""
        if strict and dtypes:
            hint += " and to cast other dtypes (with a warning where a value changes)"
        raise ValueError(
            f"{where}: the state dict does not fit `like` ({len(problems)} "
            "problems):\n" + "\n".join(problems) + "\nLoad with the optimizer and parameters "
            "that saved it" + hint + "."
        )
    if unexpected:
        warnings.warn(
            f"{where}: dropped saved entries that the new state lacks: " + ", ".join(unexpected),
            stacklevel=3,
        )
    cast = {k: _spec(want[k])[1] for k, _ in dtypes} if not strict else {}
    return want, cast


def _cast_values(values: dict, cast: dict, where: str) -> dict:
    """``values`` with the keys of ``cast`` cast to their dtype, warning where one changes."""
    changed = []
    out = dict(values)
    for k, dtype in cast.items():
        v = np.asarray(values[k])
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            real = (
                np.real(v)
                if np.iscomplexobj(v) and not np.issubdtype(dtype, np.complexfloating)
                else v
            )
            new = real.astype(dtype)
            same = np.array_equal(new.astype(v.dtype), v, equal_nan=v.dtype.kind in "fc")
        out[k] = new
        if not same:
            changed.append(f"{k} ({v.dtype} -> {np.dtype(dtype).name})")
    if changed:
        warnings.warn(
            f"{where}: casting to the dtypes of `like` changed the values of "
            + ", ".join(changed)
            + " (out of range, rounded or truncated). Load into a state of the saved dtypes "
            "(e.g. inside jax.enable_x64(True) for 64-bit ones) to keep them exactly.",
            stacklevel=3,
        )
    return out


def _place(value, like_leaf):
    sharding = getattr(like_leaf, "sharding", None)
    if sharding is None:
        return jnp.asarray(value)
    return jax.device_put(np.asarray(value), sharding)


def load_state_dict(like, d: dict, *, strict: bool = True):
    """Rebuild a state shaped like ``like`` from ``d`` (a ``state_dict``).

    Strict (default): any missing key, unexpected key, or shape or dtype mismatch raises one
    ValueError listing every problem. Dtypes are compared as saved, not as JAX would convert
    them: with x64 off, an int64 or float64 entry does not fit an int32 or float32 leaf (2**40
    would load as 0, 1e300 as inf). ``strict=False`` lets the parameters change between save
    and load: keys missing from ``d`` keep ``like``'s value (so pass ``like = tx.init(
    new_params)``), keys of ``d`` that ``like`` lacks are dropped with a ``UserWarning`` naming
    them (``state_dict_diff`` returns the same lists without loading), and a differing dtype
    is cast to ``like``'s, with a ``UserWarning`` naming every entry whose values the cast
    changed. Shape mismatches are errors in both modes. Leaves are placed with ``like``'s
    sharding; ``like`` may be abstract (``jax.eval_shape(tx.init, params)``) when nothing is
    missing.
    """
    where = "gradtx.load_state_dict"
    want, cast = _fit(like, {k: _saved_spec(v) for k, v in d.items()}, strict, where)
    values = _cast_values({k: d[k] for k in want if k in d}, cast, where)
    new = [_place(values[k], leaf) if k in values else leaf for k, leaf in want.items()]
    return jax.tree.unflatten(jax.tree.structure(like), new)
