"""Wrappers that guard an inner transform: skip non-finite steps, zero NaNs, flatten the tree."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, call_update
from gradtx._core.trees import acc_dtype, as_dtype, safe_increment, tree_map_none, tree_sum_squares

_NONE_LEAF = lambda x: x is None  # noqa: E731


def _check_inner(where: str, inner) -> None:
    if not (callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))):
        raise TypeError(
            f"{where}: inner is {inner!r}, which is not a gradient transformation (an object "
            "with init and update). Did you pass a factory without calling it, e.g. "
            "gradtx.sgd instead of gradtx.sgd(0.1)?"
        )


def _count_not_finite(tree, axis_name: Any = None) -> jax.Array:
    """Number of NaN or infinite entries over every leaf (summed over ``axis_name`` if given)."""
    leaves = [x for x in jax.tree.leaves(tree) if x is not None]
    bad = sum((jnp.sum(~jnp.isfinite(x), dtype=jnp.int32) for x in leaves), jnp.int32(0))
    return bad if axis_name is None else jax.lax.psum(bad, axis_name)


class ApplyIfFiniteState(NamedTuple):
    notfinite_count: jax.Array  # int32 scalar: non-finite steps in a row (0 after a finite one)
    last_finite: jax.Array  # bool scalar: whether the last step's updates were all finite
    total_notfinite: jax.Array  # int32 scalar: non-finite steps since init, never reset
    inner_state: Any  # the inner transform's state, left as it was on a skipped step


def apply_if_finite(
    inner, max_consecutive_errors, *, axis_name: Any = None
) -> GradientTransformation:
    """Skip the steps whose incoming updates hold a NaN or an infinity.

    finite = all(isfinite(updates))
    notfinite_count = 0 if finite else notfinite_count + 1
    apply = finite or notfinite_count > max_consecutive_errors
    updates, inner_state = inner.update(updates, inner_state) if apply else (0, inner_state)

    After ``max_consecutive_errors`` skipped steps in a row it gives up and passes the
    non-finite updates through the inner transform, as optax does.

    Args:
        inner: the transform to guard.
        max_consecutive_errors: how many non-finite steps in a row are skipped (number or array).
        axis_name: inside ``shard_map``, the mesh axis (or axes) the updates are sharded over,
            so every device agrees on whether the step is finite.

    Example:
        >>> import jax.numpy as jnp, gradtx
        >>> tx = gradtx.apply_if_finite(gradtx.sgd(0.1), max_consecutive_errors=2)
        >>> state = tx.init({"w": jnp.zeros(2)})
        >>> updates, state = tx.update({"w": jnp.array([1.0, jnp.nan])}, state)
        >>> updates["w"].tolist(), int(state.notfinite_count), bool(state.last_finite)
        ([0.0, 0.0], 1, False)
    """
    where = "gradtx.apply_if_finite"
    _check_inner(where, inner)
    _checks.check_number(where, "max_consecutive_errors", max_consecutive_errors, low=0.0)

    def init(params):
        zero = jnp.zeros((), jnp.int32)
        return ApplyIfFiniteState(zero, jnp.array(True), zero, inner.init(params))

    def update(updates, state, params=None, **extra_args):
        finite = _count_not_finite(updates, axis_name) == 0
        notfinite_count = jnp.where(finite, 0, safe_increment(state.notfinite_count))
        apply = finite | (notfinite_count > as_dtype(max_consecutive_errors, jnp.int32))
        new_updates, new_inner = call_update(inner, updates, state.inner_state, params, extra_args)
        new_updates = tree_map_none(lambda u: jnp.where(apply, u, jnp.zeros_like(u)), new_updates)
        inner_state = jax.tree.map(
            lambda n, o: jnp.where(apply, n, o), new_inner, state.inner_state
        )
        total = jnp.where(finite, state.total_notfinite, safe_increment(state.total_notfinite))
        return new_updates, ApplyIfFiniteState(notfinite_count, finite, total, inner_state)

    return GradientTransformation(init, update)


class ZeroNansState(NamedTuple):
    found_nan: Any  # like params, one bool scalar per leaf: a NaN was zeroed at the last step


def zero_nans() -> GradientTransformation:
    """Replace every NaN in the updates by zero, and record per leaf whether one was found.

    found_nan = any(isnan(updates))           (per leaf)
    updates = where(isnan(updates), 0, updates)
    """

    def init(params):
        return ZeroNansState(tree_map_none(lambda p: jnp.array(False), params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(
            updates, state.found_nan, "gradtx.zero_nans", "updates", "state"
        )
        found = tree_map_none(lambda u: jnp.any(jnp.isnan(u)), updates)
        zeroed = tree_map_none(lambda u: jnp.where(jnp.isnan(u), jnp.zeros_like(u), u), updates)
        return zeroed, ZeroNansState(found)

    return GradientTransformation(init, update)


def skip_not_finite(updates, gradient_step, params, *, axis_name: Any = None):
    """A ``should_skip_update_fn`` for ``MultiSteps``: skip when an update is NaN or infinite.

    num_not_finite = number of NaN or infinite entries over the whole tree
    should_skip = num_not_finite > 0

    Returns:
        ``(should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite})``.
    """
    del gradient_step, params
    num_not_finite = _count_not_finite(updates, axis_name)
    should_skip = num_not_finite > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": num_not_finite}


def skip_large_updates(updates, gradient_step, params, max_squared_norm, *, axis_name: Any = None):
    """A ``should_skip_update_fn`` for ``MultiSteps``: skip when the squared norm is too large.

    norm_squared = sum over leaves of sum(updates ** 2)
    should_skip = not (norm_squared < max_squared_norm)     (so a NaN norm is skipped too)

    Bind ``max_squared_norm`` with ``functools.partial`` before passing it to ``MultiSteps``.

    Returns:
        ``(should_skip, {"should_skip": should_skip, "norm_squared": norm_squared})``.
    """
    del gradient_step, params
    norm_squared = tree_sum_squares(updates)
    if axis_name is not None:
        norm_squared = jax.lax.psum(norm_squared, axis_name)
    limit = jnp.asarray(max_squared_norm).astype(norm_squared.dtype)
    should_skip = jnp.logical_not(norm_squared < limit)
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_squared}


def _flat_dtype(leaves):
    if not leaves:
        return jnp.dtype(jnp.float32)
    dtypes = {jnp.dtype(x.dtype) for x in leaves}
    if len(dtypes) == 1:
        return dtypes.pop()
    return max((acc_dtype(d) for d in dtypes), key=lambda d: d.itemsize)


def _ravel(tree):
    leaves = [x for x in jax.tree.leaves(tree) if x is not None]
    dtype = _flat_dtype(leaves)
    if not leaves:
        return jnp.zeros((0,), dtype)
    return jnp.concatenate([jnp.ravel(x).astype(dtype) for x in leaves])


def _unravel(like, flat):
    leaves, treedef = jax.tree.flatten(like, is_leaf=_NONE_LEAF)
    sizes = [0 if x is None else int(np.size(x)) for x in leaves]
    pieces = jnp.split(flat, np.cumsum(sizes)[:-1].tolist()) if leaves else []
    out = [
        None if x is None else piece.reshape(jnp.shape(x)).astype(x.dtype)
        for x, piece in zip(leaves, pieces)
    ]
    return jax.tree.unflatten(treedef, out)


def flatten(inner) -> GradientTransformation:
    """Run ``inner`` on one vector: every leaf raveled and concatenated, then split back.

    flat_updates, state = inner.update(concat(ravel(updates)), state, concat(ravel(params)))
    updates = split flat_updates into the leaves' shapes and dtypes

    Many small leaves become one array, which cuts per-leaf overhead. The leaves share one
    dtype in the vector (the common dtype, or the widest float of mixed ones); None leaves are
    left out and come back as None.

    Args:
        inner: the transform to run on the flat vector.
    """
    _check_inner("gradtx.flatten", inner)

    def init(params):
        return inner.init(_ravel(params))

    def update(updates, state, params=None, **extra_args):
        flat_params = None if params is None else _ravel(params)
        flat, state = call_update(inner, _ravel(updates), state, flat_params, extra_args)
        return _unravel(updates, flat), state

    return GradientTransformation(init, update)
