"""Arithmetic, reductions and moments over whole pytrees, with optax's ``optax.tree`` names.

Every function maps over the leaves (None leaves, from masked transforms, stay None where the
result is a tree) and reduces in at least float32, so a bfloat16 tree's norm does not lose
its digits. Complex leaves are handled as complex numbers: ``vdot`` conjugates its first
argument and ``norm`` sums ``|x|**2``.
"""

from __future__ import annotations

import builtins
import functools
import operator

import jax
import jax.numpy as jnp

from gradtx._core.fused import tree_update_moment as _update_moment
from gradtx._core.trees import acc_dtype, bias_correction_factor, tree_map_none


def add(tree_x, tree_y, *other_trees):
    """Leafwise sum: ``x + y (+ ...)``."""
    return tree_map_none(
        lambda x, *ys: functools.reduce(operator.add, ys, x), tree_x, tree_y, *other_trees
    )


def sub(tree_x, tree_y):
    """Leafwise difference: ``x - y``."""
    return tree_map_none(operator.sub, tree_x, tree_y)


def mul(tree_x, tree_y):
    """Leafwise product: ``x * y``."""
    return tree_map_none(operator.mul, tree_x, tree_y)


def div(tree_x, tree_y):
    """Leafwise quotient: ``x / y``."""
    return tree_map_none(operator.truediv, tree_x, tree_y)


def scale(scalar, tree):
    """Every leaf times a scalar: ``scalar * x``."""
    return tree_map_none(lambda x: scalar * x, tree)


def add_scale(tree_x, scalar, tree_y):
    """``x + scalar * y``, leafwise."""
    return tree_map_none(lambda x, y: x + scalar * y, tree_x, tree_y)


def _leaves(tree):
    return [x for x in jax.tree.leaves(tree) if x is not None]


def _acc(x):
    x = jnp.asarray(x)
    return x.astype(acc_dtype(x.dtype)) if jnp.issubdtype(x.dtype, jnp.inexact) else x


def vdot(tree_x, tree_y):
    """Inner product of two trees: sum over leaves of sum(conj(x) * y)."""
    dots = [
        jnp.vdot(_acc(x), _acc(y), precision=jax.lax.Precision.HIGHEST)
        for x, y in zip(_leaves(tree_x), _leaves(tree_y))
    ]
    return functools.reduce(operator.add, dots) if dots else jnp.zeros((), jnp.float32)


def sum(tree, associative_reduction: bool = False):  # noqa: A001 - optax's name
    """Sum of every element of every leaf (0 for an empty tree).

    ``associative_reduction`` is accepted for optax compatibility; the sums are added in leaf
    order either way.
    """
    del associative_reduction
    sums = [jnp.sum(x) for x in _leaves(tree)]
    return functools.reduce(operator.add, sums) if sums else jnp.zeros((), jnp.int32)


def max(tree):  # noqa: A001 - optax's name
    """Largest element over the tree (-inf for an empty tree)."""
    found = [jnp.max(x) for x in _leaves(tree) if jnp.size(x)]
    return functools.reduce(jnp.maximum, found, jnp.asarray(-jnp.inf))


def min(tree):  # noqa: A001 - optax's name
    """Smallest element over the tree (inf for an empty tree)."""
    found = [jnp.min(x) for x in _leaves(tree) if jnp.size(x)]
    return functools.reduce(jnp.minimum, found, jnp.asarray(jnp.inf))


def size(tree) -> int:
    """Total number of elements of the tree's leaves."""
    return int(builtins.sum(jnp.size(x) for x in _leaves(tree)))


def conj(tree):
    """Complex conjugate of every leaf."""
    return tree_map_none(jnp.conj, tree)


def real(tree):
    """Real part of every leaf."""
    return tree_map_none(jnp.real, tree)


def _abs_sq(x):
    x = _acc(x)
    return jnp.square(x.real) + jnp.square(x.imag) if jnp.iscomplexobj(x) else jnp.square(x)


def _total(values):
    return functools.reduce(operator.add, values) if values else jnp.zeros((), jnp.float32)


def norm(tree, ord: int | str | float | None = None, squared: bool = False):  # noqa: A002
    """Vector norm of the whole tree, as if its leaves were one flat vector.

    ord None or 2: sqrt(sum |x|**2); ord 1: sum |x|; ord inf: max |x|. ``squared`` returns the
    square of the norm. Computed in at least float32.
    """
    leaves = _leaves(tree)
    if ord is None or ord == 2:
        sq = _total([jnp.sum(_abs_sq(x)) for x in leaves])
        return sq if squared else jnp.sqrt(sq)
    if ord == 1:
        out = _total([jnp.sum(jnp.abs(_acc(x))) for x in leaves])
    elif ord == jnp.inf or ord in ("inf", "infinity"):
        out = max([jnp.abs(_acc(x)) for x in leaves]) if leaves else jnp.zeros((), jnp.float32)
    else:
        raise ValueError(f"gradtx.tree.norm: ord={ord!r} is not supported; use None, 1, 2 or inf.")
    return jnp.square(out) if squared else out


def clip(tree, min_value=None, max_value=None):
    """Every leaf clipped to [min_value, max_value] (None: no bound on that side)."""
    return tree_map_none(lambda x: jnp.clip(x, min_value, max_value), tree)


def where(condition, tree_x, tree_y):
    """``tree_x`` where ``condition`` holds, else ``tree_y``, leafwise (jnp.where)."""
    return tree_map_none(lambda x, y: jnp.where(condition, x, y), tree_x, tree_y)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan: bool = False):
    """Whether two trees of one structure are elementwise close (a scalar bool array)."""
    oks = [
        jnp.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    ]
    if jax.tree.structure(a) != jax.tree.structure(b):
        raise ValueError("gradtx.tree.allclose: the two trees have different structures.")
    return functools.reduce(jnp.logical_and, oks, jnp.asarray(True))


def batch_shape(tree, shape: tuple[int, ...] = ()):
    """Every leaf broadcast to leading batch dimensions ``shape``."""
    return tree_map_none(lambda x: jnp.broadcast_to(x, (*shape, *jnp.shape(x))), tree)


def update_moment(updates, moments, decay, order):
    """Moving average of the ``order``-th power: decay * moments + (1 - decay) * updates**order.

    For complex updates and even ``order`` the power is of ``|updates|``, so the moment is real.
    """
    return _update_moment(updates, moments, decay, order)


def update_infinity_moment(updates, moments, decay, eps):
    """Exponentially weighted infinity norm: max(|updates| + eps, decay * moments)."""

    def leaf(g, t):
        dt = acc_dtype(t.dtype)
        new = jnp.maximum(jnp.abs(g).astype(dt) + eps, jnp.asarray(decay, dt) * t.astype(dt))
        return new.astype(t.dtype)

    return tree_map_none(leaf, updates, moments)


def update_moment_per_elem_norm(updates, moments, decay, order):
    """decay * moments + (1 - decay) * n ** order, n = |updates| for complex, updates for real.

    As optax: a real leaf is raised to the power as it is (signed for odd orders).
    """

    def leaf(g, t):
        dt = acc_dtype(t.dtype)
        mag = jnp.abs(_acc(g)).astype(dt) if jnp.iscomplexobj(g) else _acc(g).astype(dt)
        d = jnp.asarray(decay, dt)
        return (d * t.astype(dt) + (1 - d) * mag**order).astype(t.dtype)

    return tree_map_none(leaf, updates, moments)


def bias_correction(moment, decay, count):
    """moment / (1 - decay ** count), the factor computed in at least float32."""

    def leaf(m):
        dt = acc_dtype(m.dtype)
        return (m.astype(dt) / bias_correction_factor(decay, count, dt)).astype(m.dtype)

    return tree_map_none(leaf, moment)
