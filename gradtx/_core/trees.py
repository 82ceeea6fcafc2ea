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
import numpy as np

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
    """A hyperparameter's value at step ``count``: calls it if it is a schedule.

    A schedule must return a scalar (checked at trace time: shapes are static).
    """
    if not callable(hyperparam):
        return hyperparam
    value = hyperparam(count)
    if jnp.shape(value) != ():
        raise ValueError(
            f"gradtx: the schedule {hyperparam!r} returned a value of shape {jnp.shape(value)} "
            f"at count {count!r}; a schedule must return a scalar (it would broadcast into "
            "the updates and the state)."
        )
    return value


def as_dtype(x, dtype):
    """Cast a hyperparameter (number, array or tracer) to ``dtype``; it must be a scalar.

    A non-scalar would broadcast into the updates and the state and silently reshape them.
    """
    x = jnp.asarray(x)
    if x.ndim:
        raise ValueError(
            f"gradtx: a hyperparameter has shape {x.shape}; hyperparameters (and schedule "
            "values) are scalars, the same for every leaf. Use gradtx.partition or "
            "gradtx.param_groups for values that differ between parameters."
        )
    return x.astype(dtype)


def _float0_error(tree):
    for path, x in jax.tree_util.tree_flatten_with_path(tree, is_leaf=_NONE_LEAF)[0]:
        if x is not None and getattr(x, "dtype", None) == jax.dtypes.float0:
            return TypeError(
                f"gradtx: the updates hold a float0 leaf at {jax.tree_util.keystr(path)} (what "
                "jax.grad(..., allow_int=True) gives for an integer parameter). gradtx does not "
                "optimize integer parameters: keep them out of the tree you differentiate, or "
                "replace their float0 gradients (e.g. by None) before the update."
            )
    return None


def tree_map_none(fn: Callable, tree, *rest):
    """``jax.tree.map`` that passes None leaves (masked-out parameters) through untouched.

    A float0 leaf (the gradient of an integer input) raises a TypeError naming its path.
    """

    def leaf(x, *r):
        if x is None:
            return None
        if getattr(x, "dtype", None) == jax.dtypes.float0:
            raise _float0_error(tree)
        return fn(x, *r)

    return jax.tree.map(leaf, tree, *rest, is_leaf=_NONE_LEAF)


def check_float_leaves(tree, where: str = "gradtx") -> None:
    """Raise a TypeError naming the first leaf that is not a float or complex array.

    Slots are made like the parameters, and an integer (or bool) parameter would silently get
    zero updates (torch.optim rejects such tensors too).
    """
    for path, x in jax.tree_util.tree_flatten_with_path(tree, is_leaf=_NONE_LEAF)[0]:
        if x is None:
            continue
        dt = jnp.result_type(x)
        if not jnp.issubdtype(dt, jnp.inexact):
            raise TypeError(
                f"{where}: the parameter at {jax.tree_util.keystr(path) or 'the root'} has dtype "
                f"{np.dtype(dt).name}; gradtx optimizes floating-point and complex parameters "
                "only (an integer parameter would get zero updates). Keep integer values out of "
                "the parameter tree, or leave them out of the optimizer with gradtx.masked or "
                "gradtx.partition (e.g. gradtx.set_to_zero for them)."
            )


def tree_zeros_like(tree, dtype=None):
    """Zeros shaped like ``tree``; each keeps its leaf's sharding (``zeros_like``).

    The dtype is always explicit, so a weakly typed scalar leaf gets a strongly typed slot and
    the state's type does not change after the first update (which would retrace a jitted step).
    Without ``dtype`` the leaves are parameters and must be float or complex.
    """
    if dtype is None:
        check_float_leaves(tree)
    return tree_map_none(lambda x: jnp.zeros_like(x, dtype=dtype or jnp.result_type(x)), tree)


def tree_full_like(tree, fill_value, dtype=None):
    """A tree of arrays filled with ``fill_value``, shaped (and sharded) like ``tree``."""
    if dtype is None:
        check_float_leaves(tree)

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


def real_dtype(dtype) -> jnp.dtype:
    """The real dtype of the same precision: float32 for complex64, else ``dtype`` itself."""
    dtype = jnp.dtype(dtype)
    return jnp.finfo(dtype).dtype if jnp.issubdtype(dtype, jnp.complexfloating) else dtype


def one_minus_decay(decay):
    """``1 - decay``, in at least float32 when ``decay`` is a narrower float array.

    A Python float stays a Python float (full precision); a bfloat16 array is widened first.
    Note that a bfloat16 array holding 0.999 already *is* 1.0: pass hyperparameter arrays in
    float32.
    """
    if hasattr(decay, "dtype") and jnp.issubdtype(decay.dtype, jnp.floating):
        decay = decay.astype(acc_dtype(decay.dtype))
    return 1 - decay


def bias_correction_factor(decay, count, dtype=jnp.float32):
    """``1 - decay ** count``, computed as ``-expm1(count * log1p(-(1 - decay)))``.

    The log form keeps full relative precision in float32 when ``decay`` is close to 1.
    """
    dtype = real_dtype(acc_dtype(dtype))
    one_minus = as_dtype(one_minus_decay(decay), dtype)
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
        return (m.astype(dt) / factors[dt].astype(dt)).astype(m.dtype)

    return tree_map_none(leaf, moments)


def abs_sq(x):
    """``|x| ** 2`` elementwise, real: ``x * x`` for reals, ``re ** 2 + im ** 2`` for complex."""
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        return jnp.square(jnp.real(x)) + jnp.square(jnp.imag(x))
    return jnp.square(x)


def tree_sum_squares(tree):
    """Sum of squared magnitudes over every leaf (real, also for complex leaves), >= float32."""
    leaves = [x for x in jax.tree.leaves(tree) if x is not None]
    if not leaves:
        return jnp.zeros((), jnp.float32)
    return sum(jnp.sum(abs_sq(x.astype(acc_dtype(x.dtype)))) for x in leaves)


def safe_sqrt(x):
    """``sqrt(x)`` for x >= 0 whose gradient at 0 is 0 instead of inf (so hypergradients
    through a norm of all-zero gradients stay finite)."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, 1)), 0).astype(x.dtype)


def global_norm(updates, axis_name: Any = None):
    """The L2 norm of the whole tree: sqrt(sum over leaves of sum(|x| ** 2)), a real scalar.

    Inside ``shard_map`` each device holds only its shard; give ``axis_name`` (a mesh axis name
    or a tuple of them) to sum the squares over those axes and get the true global norm. Its
    gradient at an all-zero tree is zero (not NaN).
    """
    sq = tree_sum_squares(updates)
    if axis_name is not None:
        sq = jax.lax.psum(sq, axis_name)
    return safe_sqrt(sq)


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


def tree_unzip(like, tree, n: int):
    """The ``n`` trees held by a tree of ``n``-tuples.

    ``tree`` has ``like``'s structure with each array leaf replaced by an ``n``-tuple (what
    ``tree_map_none`` returns for a function returning a tuple); None leaves stay None. The
    tuples are found by ``like``'s structure, never by type, so tuples and NamedTuples in the
    user's tree are containers, not results.
    """
    return tuple(jax.tree.map(lambda _, t, i=i: t[i], like, tree) for i in range(n))
