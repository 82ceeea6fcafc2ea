"""Shared pieces of the losses: dtype handling, input checks, masked log-sum-exp.

Every loss computes in at least float32 (``acc_dtype``) and returns its result in the dtype of
its main floating input, as optax does. Masked reductions never produce NaN, neither in the
value nor in the gradient, when a ``where`` mask selects nothing: the masked log-sum-exp below
feeds ``exp`` and ``log`` only finite, selected values.
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp

from gradtx._core.trees import acc_dtype


def check_floating(where: str, name: str, x) -> jax.Array:
    """``x`` as an array, or a TypeError naming the argument if its dtype is not floating."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{where}: {name} has dtype {x.dtype}; expected a floating dtype. "
            f"Pass {name}.astype(jnp.float32) (or the dtype of your model)."
        )
    return x


def check_integer(where: str, name: str, x) -> jax.Array:
    """``x`` as an array, or a TypeError naming the argument if its dtype is not integer."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(
            f"{where}: {name} has dtype {x.dtype}; expected integer class indices. "
            f"For one-hot or probability labels use the function without _with_integer_labels."
        )
    return x


def check_same_shape(where: str, name_a: str, a, name_b: str, b):
    if jnp.shape(a) != jnp.shape(b):
        raise ValueError(
            f"{where}: {name_a} has shape {jnp.shape(a)} but {name_b} has shape {jnp.shape(b)}; "
            "they must be equal (no implicit broadcasting). Reshape one of them."
        )


def compute_dtype(x) -> jnp.dtype:
    """The dtype a loss on input ``x`` computes in: at least float32."""
    return acc_dtype(jnp.result_type(x))


def wider(a, b) -> jnp.dtype:
    """The wider of two floating dtypes (an explicit choice; strict promotion forbids the
    implicit one)."""
    a, b = jnp.dtype(a), jnp.dtype(b)
    return a if a.itemsize >= b.itemsize else b


def up(x, dtype) -> jax.Array:
    """``x`` (array or number) cast to the compute dtype."""
    return jnp.asarray(x).astype(dtype)


def normalize_axes(axis, ndim: int, where: str) -> tuple[int, ...]:
    """``axis`` (int, tuple of ints, or None for all axes) as a sorted tuple of non-negative
    axes, or a ValueError saying which axis is out of range."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if not isinstance(axis, tuple) else axis
    out = []
    for a in axes:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"{where}: axis {a} is out of range for an input of rank {ndim}.")
        out.append(a % ndim)
    return tuple(out)


def mask_like(mask, x, axis) -> jax.Array | None:
    """A ``where`` mask broadcast to ``x.shape``: a mask of lower rank (the batch shape) gets
    ``axis`` inserted, as optax does."""
    if mask is None:
        return None
    mask = jnp.asarray(mask)
    if mask.ndim != x.ndim:
        mask = jnp.expand_dims(mask, axis)
    return jnp.broadcast_to(mask.astype(bool), x.shape)


def log_softmax(x, axis, mask=None):
    """Log-softmax along ``axis`` over the entries selected by ``mask``, finite everywhere.

    log_probs = (x - m) - log(sum over selected of exp(x - m)), m the selected maximum
    (held constant for the gradient). Unselected entries get 0; a slice with nothing selected
    gets 0 throughout, with a zero gradient.
    """
    if mask is None:
        m = jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))
        m = jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))
        z = x - m
        return z - jnp.log(jnp.sum(jnp.exp(z), axis=axis, keepdims=True))
    neg_inf = jnp.full_like(x, -jnp.inf)
    m = jax.lax.stop_gradient(jnp.max(jnp.where(mask, x, neg_inf), axis=axis, keepdims=True))
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))
    z = jnp.where(mask, x - m, neg_inf)
    s = jnp.sum(jnp.exp(z), axis=axis, keepdims=True)
    lse = jnp.log(jnp.where(s > 0, s, jnp.ones_like(s)))
    return jnp.where(mask, z - lse, jnp.zeros_like(x))


def logsumexp(x, axis, mask=None, keepdims: bool = False):
    """log(sum over the entries selected by ``mask`` of exp(x)) along ``axis``; 0 (not -inf)
    for a slice with nothing selected, with a zero gradient."""
    neg_inf = jnp.full_like(x, -jnp.inf)
    sel = x if mask is None else jnp.where(mask, x, neg_inf)
    m = jax.lax.stop_gradient(jnp.max(sel, axis=axis, keepdims=True))
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))
    s = jnp.sum(jnp.exp(sel - m), axis=axis, keepdims=True)
    out = jnp.log(jnp.where(s > 0, s, jnp.ones_like(s))) + m
    return out if keepdims else jnp.squeeze(out, axis=axis)


def xlogy_safe(a, log_b):
    """a * log_b with 0 * log_b = 0 for every log_b (including -inf), gradient finite."""
    zero = a == 0
    return jnp.where(zero, jnp.zeros_like(a), a * jnp.where(zero, jnp.zeros_like(log_b), log_b))


def safe_log(x):
    """log(x), with log(0) replaced by 0 so that a where() around it keeps gradients finite."""
    return jnp.log(jnp.where(x == 0, jnp.ones_like(x), x))
