"""Input validation with messages that name the argument or leaf path, the value, and the fix.

Only Python numbers are range-checked: arrays and tracers pass unchecked, so hyperparameter
sweeps under ``vmap`` and ``grad`` work.
"""

from __future__ import annotations

import contextlib
import numbers

import jax
import numpy as np


def describe(x) -> str:
    """A short description of a value for an error message."""
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        return f"a tuple of length {len(x)}"
    return f"type {type(x).__name__}"


def is_python_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and not hasattr(x, "shape")


def concrete_number(x):
    """``x`` as a Python float if it is a Python or NumPy real number (or 0-d NumPy array).

    None for anything else: JAX arrays and tracers are never read here (they may be traced).
    """
    if is_python_number(x):
        return x
    if isinstance(x, np.generic | np.ndarray) and np.ndim(x) == 0:
        if np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating):
            return x.item()
    return None


_recording: list[list] = []  # open recording() blocks; check_number appends its specs to each


@contextlib.contextmanager
def recording():
    """Collect the ``(where, name, value, spec)`` of every check_number call in this block.

    ``spec`` is the keyword arguments of the check, so the same check can be run again later
    on a new value (``tree_set`` does this for injected hyperparameters).
    """
    calls: list = []
    _recording.append(calls)
    try:
        yield calls
    finally:
        del _recording[next(i for i, c in enumerate(_recording) if c is calls)]


def check_number(
    where: str,
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    schedule_ok: bool = False,
    none_ok: bool = False,
    hint: str = "",
):
    """Check a hyperparameter given as a Python number against its range.

    ``where`` is the public name of the transform being built, ``name`` the argument's name.
    Python numbers and NumPy scalars (or 0-d NumPy arrays) are checked; JAX arrays and tracers
    pass unchecked; a callable passes when ``schedule_ok``, None only when ``none_ok``.
    """
    spec = dict(low=low, high=high, low_open=low_open, high_open=high_open, hint=hint)
    for calls in _recording:
        calls.append((where, name, value, spec))
    if value is None:
        if none_ok:
            return
        raise TypeError(
            f"{where}: {name}=None; expected a number"
            + (", an array or a schedule." if schedule_ok else " or an array.")
            + (f" {hint}" if hint else "")
        )
    if callable(value):
        if schedule_ok:
            return
        raise TypeError(
            f"{where}: {name} is the callable {value!r}, but {name} does not accept a schedule. "
            f"Pass a number or an array."
        )
    if isinstance(value, bool):
        raise TypeError(f"{where}: {name}={value!r} is a bool; expected a number.")
    if isinstance(value, np.bool_ | np.ndarray) and np.asarray(value).dtype == np.bool_:
        raise TypeError(f"{where}: {name}={value!r} is a bool; expected a number.")
    shown, value = value, concrete_number(value)
    if value is None:
        return
    lo_ok = low is None or (value > low if low_open else value >= low)
    hi_ok = high is None or (value < high if high_open else value <= high)
    if value != value:  # NaN
        lo_ok = False
    if lo_ok and hi_ok:
        return
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    raise ValueError(
        f"{where}: {name}={shown!r} is out of range; expected {name} in {left}{lo}, {hi}{right}."
        + (f" {hint}" if hint else "")
    )


def _structure_diff(a, b, name_a: str, name_b: str) -> str:
    none_leaf = lambda x: x is None  # noqa: E731
    paths_a = {
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(a, none_leaf)
    }
    paths_b = {
        jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(b, none_leaf)
    }
    only_a = sorted(paths_a - paths_b)[:5]
    only_b = sorted(paths_b - paths_a)[:5]
    lines = []
    if only_a:
        lines.append(f"  leaves only in {name_a}: {', '.join(only_a)}")
    if only_b:
        lines.append(f"  leaves only in {name_b}: {', '.join(only_b)}")
    if not lines:
        lines.append(
            f"  {name_a}: {jax.tree.structure(a, is_leaf=none_leaf)}\n"
            f"  {name_b}: {jax.tree.structure(b, is_leaf=none_leaf)}"
        )
    return "\n".join(lines)


def check_same_structure(a, b, where: str, name_a: str, name_b: str, fix: str = ""):
    """Raise a ValueError naming the differing leaf paths if ``a`` and ``b`` differ in structure.

    None leaves count as leaves, so masked updates match their parameters.
    """
    none_leaf = lambda x: x is None  # noqa: E731
    if jax.tree.structure(a, is_leaf=none_leaf) == jax.tree.structure(b, is_leaf=none_leaf):
        return
    raise ValueError(
        f"{where}: the tree structure of {name_a} differs from that of {name_b}.\n"
        + _structure_diff(a, b, name_a, name_b)
        + "\n"
        + (
            fix
            or f"Pass {name_a} with the structure of the parameters given to init (use "
            "gradtx.masked or gradtx.partition to treat parameter groups differently)."
        )
    )


def require_params(params, where: str):
    """Raise if a transform that needs the parameters was called without them."""
    if params is None:
        raise ValueError(
            f"{where}: this transform needs the current parameters, but update was called with "
            "params=None. Call tx.update(updates, state, params)."
        )


def _leaf_paths(tree):
    none_leaf = lambda x: x is None  # noqa: E731
    return jax.tree_util.tree_flatten_with_path(tree, is_leaf=none_leaf)[0]


def check_same_shapes(a, b, where: str, name_a: str, name_b: str, fix: str = ""):
    """``check_same_structure``, then every pair of leaves must have the same shape.

    Shapes are static, so this costs nothing at run time (under jit it runs once, at trace
    time). The error names the first mismatched leaf path.
    """
    check_same_structure(a, b, where, name_a, name_b, fix)
    for (path, x), (_, y) in zip(_leaf_paths(a), _leaf_paths(b)):
        if x is None or y is None:
            continue
        sx, sy = np.shape(x), np.shape(y)
        if sx != sy:
            raise ValueError(
                f"{where}: {name_a}{jax.tree_util.keystr(path)} has shape {sx}, but "
                f"{name_b}{jax.tree_util.keystr(path)} has shape {sy}.\n"
                + (
                    fix
                    or "The state was made by init for parameters of other shapes (or the "
                    "updates are not shaped like the parameters). Call tx.init(params) with "
                    "the parameters you update."
                )
            )


def check_scalar(where: str, name: str, value):
    """Raise unless ``value`` (a hyperparameter's value, after any schedule) is a scalar."""
    shape = np.shape(value)
    if shape != ():
        raise ValueError(
            f"{where}: {name} has shape {shape}; a hyperparameter (or a schedule's value) must "
            "be a scalar, the same for every leaf, or it would broadcast into the updates and "
            "the state. Use gradtx.partition or gradtx.param_groups for per-group values."
        )
