"""Pure tree helpers shared by the transforms: moments, bias correction, step counts, norms.

Each is written for one array and lifted to pytrees once. Hyperparameters may be Python
numbers, arrays or tracers; they are cast to each leaf's dtype where used, and the precision-
sensitive parts (``1 - decay``, bias correction) are computed in at least float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

_NONE_LEAF = lambda x: x is None  # noqa: E731


def acc_dtype(dtype) -> jnp.dtype:
    """The dtype arithmetic on a leaf of ``dtype`` is carried out in: at least float32."""
    dtype = jnp.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating) or (
        jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize >= 4
    ):
        return dtype
    return jnp.dtype(jnp.float32)


def value_at(hyperparam, count):
    """A hyperparameter's value at step ``count``: calls it if it is a schedule."""
    return hyperparam(count) if callable(hyperparam) else hyperparam


def as_dtype(x, dtype):
    """Cast a hyperparameter (number, array or tracer) to ``dtype``."""
    return jnp.asarray(x).astype(dtype)


def tree_map_none(fn: Callable, tree, *rest):
    """``jax.tree.map`` that passes None leaves (masked-out parameters) through untouched."""
    return jax.tree.map(
        lambda x, *r: None if x is None else fn(x, *r), tree, *rest, is_leaf=_NONE_LEAF
    )


def tree_zeros_like(tree, dtype=None):
    """Zeros shaped like ``tree``; each keeps its leaf's sharding (``zeros_like``).

    The dtype is always explicit, so a weakly typed scalar leaf gets a strongly typed slot and
    the state's type does not change after the first update (which would retrace a jitted step).
    """
    return tree_map_none(lambda x: jnp.zeros_like(x, dtype=dtype or jnp.result_type(x)), tree)


def tree_full_like(tree, fill_value, dtype=None):
    """A tree of arrays filled with ``fill_value``, shaped (and sharded) like ``tree``."""

    def full(x):
        dt = jnp.dtype(dtype or x.dtype)
        return jnp.full_like(x, as_dtype(fill_value, dt), dtype=dt)

    return tree_map_none(full, tree)


def tree_cast(tree, dtype):
    """Cast every leaf to ``dtype``; ``dtype=None`` returns the tree unchanged."""
    if dtype is None:
        return tree
    return tree_map_none(lambda x: x.astype(dtype), tree)


def safe_increment(count):
    """``count + 1``, saturating at the largest value of its integer dtype instead of wrapping."""
    count = jnp.asarray(count)
    big = jnp.iinfo(count.dtype).max
    return jnp.where(count < big, count + 1, count).astype(count.dtype)


def schedule_count(*hyperparams):
    """The initial clock of a transform whose only use of a step count is its schedules.

    An int32 zero if any of ``hyperparams`` is a schedule, else ``()``: constant hyperparameters
    need no clock, and keeping none saves a buffer and a kernel per step. The choice is made on
    the hyperparameters' types (callable or not), fixed when the transform is built.
    """
    return jnp.zeros((), jnp.int32) if any(callable(h) for h in hyperparams) else ()


def schedule_clock(count, *hyperparams):
    """The next value of a ``schedule_count`` clock: ``count + 1``, or ``()`` without schedules."""
    return safe_increment(count) if any(callable(h) for h in hyperparams) else count


def bias_correction_factor(decay, count, dtype=jnp.float32):
    """``1 - decay ** count``, computed as ``-expm1(count * log1p(-(1 - decay)))``.

    The log form keeps full relative precision in float32 when ``decay`` is close to 1.
    """
    dtype = acc_dtype(dtype)
    one_minus = as_dtype(1 - decay, dtype)
    return -jnp.expm1(jnp.asarray(count).astype(dtype) * jnp.log1p(-one_minus))


def tree_bias_correction(moments, decay, count, *, hoist: bool = False):
    """Bias-corrected moments: moment_hat = moment / (1 - decay ** count), count from 1.

    hoist=True computes the factor once per dtype instead of once per leaf: a program smaller
    by a dozen operations per leaf, which compiles faster on trees of many leaves (XLA may
    then round the division differently in the last bit).
    """
    factors = {}

    def leaf(m):
        dt = acc_dtype(m.dtype)
        if dt not in factors or not hoist:
            factors[dt] = bias_correction_factor(decay, count, dt)
        return (m.astype(dt) / factors[dt]).astype(m.dtype)

    return tree_map_none(leaf, moments)


def tree_sum_squares(tree):
    """Sum of squares over every leaf, in float32 at least."""
    leaves = [x for x in jax.tree.leaves(tree) if x is not None]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    return sum(jnp.sum(jnp.square(x.astype(acc_dtype(x.dtype)))) for x in leaves)


def global_norm(updates, axis_name: Any = None):
    """The L2 norm of the whole tree: sqrt(sum over leaves of sum(x ** 2)).

    Inside ``shard_map`` each device holds only its shard; give ``axis_name`` (a mesh axis name
    or a tuple of them) to sum the squares over those axes and get the true global norm.
    """
    sq = tree_sum_squares(updates)
    if axis_name is not None:
        sq = jax.lax.psum(sq, axis_name)
    return jnp.sqrt(sq)


def tree_scalar_dtype(tree) -> jnp.dtype:
    """The dtype of a transform's scalar state over ``tree``: float64 if any leaf computes in
    float64 (``acc_dtype``), else float32. Reads only dtypes, so it works on abstract trees."""
    dtypes = [jnp.result_type(x) for x in jax.tree.leaves(tree)]
    wide = any(jnp.issubdtype(d, jnp.inexact) and jnp.finfo(acc_dtype(d)).bits > 32 for d in dtypes)
    return jnp.dtype(jnp.float64 if wide else jnp.float32)


def tree_vdot(a, b, dtype=jnp.float32):
    """sum over leaves of sum(a * b), each leaf product computed in ``acc_dtype`` and the total
    returned in ``dtype`` (the real part for complex leaves, as a distance estimate needs)."""
    total = jnp.zeros((), dtype)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        dt = max(acc_dtype(x.dtype), acc_dtype(y.dtype), key=lambda d: d.itemsize)
        total = total + jnp.real(jnp.vdot(x.astype(dt), y.astype(dt))).astype(dtype)
    return total


def tree_l1_norm(tree, dtype=jnp.float32):
    """sum over leaves of sum(abs(x)), each leaf in ``acc_dtype``, returned in ``dtype``."""
    total = jnp.zeros((), dtype)
    for x in jax.tree.leaves(tree):
        total = total + jnp.sum(jnp.abs(x.astype(acc_dtype(x.dtype)))).astype(dtype)
    return total


def tree_copy(tree):
    """A copy of every leaf in its own buffer (so params and a state slot holding their start
    may both be donated to a jitted step), keeping dtypes and shardings."""
    return tree_map_none(lambda p: jnp.asarray(p).astype(jnp.result_type(p), copy=True), tree)


def squares_dtype(dtype) -> jnp.dtype:
    """The storage dtype of a slot of squared gradients for a parameter of ``dtype``.

    float16 parameters get float32: a gradient near 1e-3 squares to 1e-6, and ``(1 - b2) * g**2``
    (1e-9) is below float16's smallest subnormal (6e-8), so a float16 second moment would be 0
    and the first step would divide by ``eps`` alone (an infinite update in float16). Every other
    dtype keeps its own: bfloat16 has float32's exponent range.
    """
    dtype = jnp.dtype(dtype)
    return jnp.dtype(jnp.float32) if dtype == jnp.float16 else dtype


def tree_squares_like(tree, fill_value=0.0):
    """A slot of squared gradients shaped like ``tree``, each leaf in ``squares_dtype``."""

    def full(x):
        dt = squares_dtype(jnp.result_type(x))
        return jnp.full_like(x, as_dtype(fill_value, dt), dtype=dt)

    return tree_map_none(full, tree)
