"""Clipping of update values, of per-leaf, unit-wise, per-example and global norms; centring."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import EmptyState, GradientTransformation
from gradtx._core.trees import abs_sq, acc_dtype, as_dtype, global_norm, tree_map_none


def _scaled(u, factor):
    """``u * factor`` (factor a real scalar) computed in at least float32, cast back to u's
    dtype: a float16 leaf times a factor of 1e6 must not overflow before the product is
    formed (0 * inf = NaN)."""
    dt = acc_dtype(u.dtype)
    return (u.astype(dt) * factor.astype(dt)).astype(u.dtype)


def _reject_complex(where: str, updates, why: str) -> None:
    for path, u in jax.tree_util.tree_flatten_with_path(updates)[0]:
        if jnp.issubdtype(jnp.result_type(u), jnp.complexfloating):
            raise TypeError(
                f"{where}: the updates at {jax.tree_util.keystr(path) or 'the root'} are "
                f"complex ({jnp.result_type(u)}); {why}"
            )


def clip(max_delta) -> GradientTransformation:
    """Clip every coordinate of the updates to [-max_delta, max_delta].

    updates = clip(updates, -max_delta, max_delta)

    Complex updates are rejected: clipping by value has no meaning for them (clip by the
    global norm or by block RMS instead).
    """
    _checks.check_number("gradtx.clip", "max_delta", max_delta, low=0.0)

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _reject_complex(
            "gradtx.clip",
            updates,
            "clipping each coordinate to [-max_delta, max_delta] is not defined for complex "
            "numbers. Use gradtx.clip_by_global_norm or gradtx.clip_by_block_rms.",
        )

        def leaf(u):
            d = as_dtype(max_delta, u.dtype)
            return jnp.clip(u, -d, d)

        return tree_map_none(leaf, updates), state

    return GradientTransformation(init, update)


def clip_by_global_norm(max_norm, *, axis_name: Any = None) -> GradientTransformation:
    """Rescale the updates so their global L2 norm is at most ``max_norm``.

    norm = sqrt(sum over leaves of sum(|updates| ** 2))
    updates = updates * min(1, max_norm / norm)

    Args:
        max_norm: the largest allowed global norm (number or array).
        axis_name: inside ``shard_map``, the mesh axis (or axes) the updates are sharded
            over; the squared norms are summed over them so the norm is the true global one.
    """
    _checks.check_number("gradtx.clip_by_global_norm", "max_norm", max_norm, low=0.0)

    def init(params):
        del params
        return EmptyState()

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        norm = global_norm(updates, axis_name)
        limit = as_dtype(max_norm, norm.dtype)
        factor = jnp.where(norm <= limit, 1.0, limit / jnp.where(norm > 0, norm, 1.0))
        return tree_map_none(lambda u: _scaled(u, factor), updates), state

    return GradientTransformation(init, update)


def _empty_init(params):
    del params
    return EmptyState()


def clip_by_block_rms(threshold) -> GradientTransformation:
    """Scale each leaf down so its root mean square is at most ``threshold``.

    rms = sqrt(mean(updates ** 2))                      (per leaf: a vector, matrix, kernel)
    updates = updates / max(1, rms / threshold)
    """
    _checks.check_number("gradtx.clip_by_block_rms", "threshold", threshold, low=0.0)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args

        def leaf(u):
            dt = acc_dtype(u.dtype)
            rms = jnp.sqrt(jnp.mean(jnp.square(jnp.abs(u.astype(dt)))))
            denom = jnp.maximum(1.0, rms / as_dtype(threshold, dt))
            return (u.astype(dt) / denom).astype(u.dtype)

        return tree_map_none(leaf, updates), state

    return GradientTransformation(_empty_init, update)


def _unit_axes(x, axis):
    """The axes a unit-wise norm sums over: optax's layer conventions unless ``axis`` is given."""
    if axis is not None:
        return axis
    if jnp.squeeze(x).ndim <= 1:
        return None
    if x.ndim in (2, 3):
        return 0
    if x.ndim in (4, 5):
        return tuple(range(x.ndim - 1))
    raise ValueError(
        f"gradtx.adaptive_grad_clip: a leaf has shape {x.shape}, and there is no default "
        "unit for rank > 5. Pass axis=... (the axes a unit's norm sums over)."
    )


def _unitwise_norm(x, axis):
    """Each unit's L2 norm, broadcast back to ``x``'s shape, in at least float32."""
    x = x.astype(acc_dtype(x.dtype))
    sq = jnp.sum(jnp.square(jnp.abs(x)), axis=_unit_axes(x, axis), keepdims=True)
    return jnp.broadcast_to(jnp.sqrt(sq), x.shape)


def adaptive_grad_clip(clipping, eps=1e-3, *, axis=None) -> GradientTransformation:
    """Adaptive gradient clipping (AGC): bound each unit's update by its weights' norm.

    max_norm = clipping * max(unit_norm(params), eps)
    updates = updates * max_norm / max(unit_norm(updates), 1e-6) where unit_norm(updates)
              >= max_norm, else updates

    A unit is a whole vector (rank <= 1), a column over axis 0 (rank 2 or 3: one output unit
    of a linear layer), or an output channel over all but the last axis (rank 4 or 5 kernels).

    Args:
        clipping: the largest allowed ratio of update norm to parameter norm.
        eps: the smallest parameter norm used, so zero-initialised weights can still move.
        axis: the axes a unit's norm sums over, instead of the conventions above.

    References:
        Brock et al., High-Performance Large-Scale Image Recognition Without Normalization, 2021.
    """
    where = "gradtx.adaptive_grad_clip"
    _checks.check_number(where, "clipping", clipping, low=0.0)
    _checks.check_number(where, "eps", eps, low=0.0)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)

        def leaf(g, p):
            g_norm, p_norm = _unitwise_norm(g, axis), _unitwise_norm(p, axis)
            dt = g_norm.dtype
            max_norm = as_dtype(clipping, dt) * jnp.maximum(p_norm, as_dtype(eps, dt))
            clipped = g.astype(dt) * (max_norm / jnp.maximum(g_norm, 1e-6))
            return jnp.where(g_norm < max_norm, g.astype(dt), clipped).astype(g.dtype)

        return tree_map_none(leaf, updates, params), state

    return GradientTransformation(_empty_init, update)


def per_example_global_norm_clip(grads, l2_norm_clip):
    """Clip each example's gradient to global norm ``l2_norm_clip``, then sum over examples.

    norm_i = sqrt(sum over leaves of sum(grads[i] ** 2))     (grads have a leading batch axis)
    factor_i = min(1, l2_norm_clip / norm_i)                  (1 where that is 0 / 0)
    returns (sum over i of factor_i * grads[i], number of i with factor_i < 1)

    Example:
        >>> import jax.numpy as jnp, gradtx
        >>> g = [jnp.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])]
        >>> total, n_clipped = gradtx.per_example_global_norm_clip(g, 5.0)
        >>> total[0].tolist(), int(n_clipped)
        ([6.0, 8.0], 1)

    References:
        Abadi et al., Deep Learning with Differential Privacy, 2016.
    """
    where = "gradtx.per_example_global_norm_clip"
    _checks.check_number(where, "l2_norm_clip", l2_norm_clip, low=0.0)
    leaves = [g for g in jax.tree.leaves(grads) if g is not None]
    shapes = [jnp.shape(g) for g in leaves]
    if not leaves or any(len(s) < 1 or s[0] != shapes[0][0] for s in shapes):
        raise ValueError(
            f"{where}: every leaf of grads needs the same leading "
            f"batch axis (one gradient per example); got shapes {shapes}. Compute per-example "
            "gradients with jax.vmap(jax.grad(loss), in_axes=(None, 0))."
        )
    per_leaf = [
        jnp.sum(abs_sq(g.astype(acc_dtype(g.dtype))), axis=tuple(range(1, g.ndim))) for g in leaves
    ]
    norms = jnp.sqrt(sum(per_leaf))
    factors = jnp.nan_to_num(jnp.minimum(as_dtype(l2_norm_clip, norms.dtype) / norms, 1.0), nan=1.0)
    num_clipped = jnp.sum(factors < 1.0, dtype=jnp.int32)

    def leaf(g):
        dt = acc_dtype(g.dtype)
        total = jnp.tensordot(factors.astype(dt), g.astype(dt), axes=1)
        return total.astype(g.dtype if jnp.issubdtype(g.dtype, jnp.floating) else dt)

    return tree_map_none(leaf, grads), num_clipped


def per_example_layer_norm_clip(grads, global_l2_norm_clip, uniform: bool = True):
    """Clip each example's gradient layer by layer (one bound per leaf), then sum over examples.

    K leaves, leaf i with D_i numbers per example, D = sum of D_i:
    clip_i = global_l2_norm_clip / sqrt(K)              (uniform=True)
    clip_i = global_l2_norm_clip * sqrt(D_i / D)        (uniform=False)
    leaf i: per_example_global_norm_clip(grads_i, clip_i) on that leaf alone
    returns (tree of the clipped sums, tree of how many examples each leaf clipped)

    With one leaf this is ``per_example_global_norm_clip``. The bounds satisfy
    sum of clip_i ** 2 = global_l2_norm_clip ** 2, so the whole clipped gradient has norm at
    most global_l2_norm_clip.

    Example:
        >>> import jax.numpy as jnp, gradtx
        >>> g = {"a": jnp.array([[3.0, 4.0]]), "b": jnp.array([[0.0, 0.1]])}
        >>> total, n_clipped = gradtx.per_example_layer_norm_clip(g, jnp.sqrt(2.0) * 2.5)
        >>> total["a"].tolist(), int(n_clipped["a"]), int(n_clipped["b"])
        ([1.5, 2.0], 1, 0)

    References:
        McMahan et al., Learning Differentially Private Recurrent Language Models, 2018
        (ICLR), section 3 (per-layer clipping).
    """
    where = "gradtx.per_example_layer_norm_clip"
    _checks.check_number(where, "global_l2_norm_clip", global_l2_norm_clip, low=0.0)
    leaves, treedef = jax.tree.flatten(grads)
    if not leaves or any(jnp.ndim(g) < 1 for g in leaves):
        raise ValueError(
            f"{where}: every leaf of grads needs a leading batch axis (one gradient per "
            f"example); got shapes {[jnp.shape(g) for g in leaves]}. Compute per-example "
            "gradients with jax.vmap(jax.grad(loss), in_axes=(None, 0))."
        )
    sizes = [math.prod(jnp.shape(g)[1:]) for g in leaves]
    if uniform:
        fractions = [1.0 / len(leaves)] * len(leaves)
    else:
        fractions = [n / sum(sizes) for n in sizes]
    pairs = [
        per_example_global_norm_clip([g], global_l2_norm_clip * f**0.5)
        for g, f in zip(leaves, fractions)
    ]
    return (
        treedef.unflatten([total[0] for total, _ in pairs]),
        treedef.unflatten([n for _, n in pairs]),
    )


def centralize() -> GradientTransformation:
    """Gradient centralization: remove from each leaf of rank >= 2 its mean over all but axis 0.

    updates = updates - mean(updates, axis=(1, ..., ndim - 1))     (rank >= 2; else unchanged)

    References:
        Yong et al., Gradient Centralization: A New Optimization Technique for Deep Neural
        Networks, 2020.
    """

    def update(updates, state, params=None, **extra_args):
        del params, extra_args

        def leaf(u):
            if u.ndim < 2:
                return u
            dt = acc_dtype(u.dtype)
            m = jnp.mean(u.astype(dt), axis=tuple(range(1, u.ndim)), keepdims=True)
            return (u.astype(dt) - m).astype(u.dtype)

        return tree_map_none(leaf, updates), state

    return GradientTransformation(_empty_init, update)


def normalize_by_update_norm(
    scale_factor=1.0, eps=1e-6, *, axis_name: Any = None
) -> GradientTransformation:
    """Divide the updates by their global norm (a step of fixed length ``scale_factor``).

    norm = sqrt(sum over leaves of sum(|updates| ** 2))
    updates = updates * scale_factor / (norm + eps)      (in at least float32)

    Args:
        scale_factor: the length of the resulting step (negative to descend with raw grads).
        eps: added to the norm, so zero updates stay zero.
        axis_name: inside ``shard_map``, the mesh axis (or axes) the updates are sharded over.
    """
    where = "gradtx.normalize_by_update_norm"
    _checks.check_number(where, "scale_factor", scale_factor)
    _checks.check_number(where, "eps", eps, low=0.0)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        norm = global_norm(updates, axis_name)
        factor = as_dtype(scale_factor, norm.dtype) / (norm + as_dtype(eps, norm.dtype))
        return tree_map_none(lambda u: _scaled(u, factor), updates), state

    return GradientTransformation(_empty_init, update)
