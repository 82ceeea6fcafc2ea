"""Euclidean projections of a pytree onto convex sets (and two spheres).

Each function returns argmin_p ||x - p||^2 over its set, where x is the whole tree read as one
vector (the norms, inner products and the simplex are over all leaves together, as in optax).
Arithmetic runs in at least float32 (float64 if any leaf is float64); each leaf of the result
keeps its input dtype.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradtx._core.trees import acc_dtype
from gradtx.projections._simplex import simplex_last_axis


def _wide_dtype(*trees) -> jnp.dtype:
    dt = jnp.dtype(jnp.float32)
    for tree in trees:
        for leaf in jax.tree.leaves(tree):
            leaf_dt = acc_dtype(jnp.result_type(leaf))
            dt = leaf_dt if leaf_dt.itemsize > dt.itemsize else dt
    return dt


def _flat(tree, dt):
    """All leaves as one vector of dtype ``dt``, and the function that splits a vector back
    into the tree (each leaf in its own shape and dtype)."""
    leaves, treedef = jax.tree.flatten(tree)
    arrays = [jnp.asarray(x) for x in leaves]
    vec = jnp.concatenate([jnp.ravel(x).astype(dt) for x in arrays]) if arrays else jnp.zeros(0, dt)
    sizes = [x.size for x in arrays]

    def unflat(v):
        out, start = [], 0
        for x, n in zip(arrays, sizes):
            out.append(v[start : start + n].reshape(x.shape).astype(x.dtype))
            start += n
        return jax.tree.unflatten(treedef, out)

    return vec, unflat


def _vdot(a, b, dt):
    """<a, b> over all leaves, in dtype ``dt``."""
    parts = [
        jnp.sum(jnp.asarray(x).astype(dt) * jnp.asarray(y).astype(dt))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    ]
    return sum(parts, jnp.zeros((), dt))


def _scaled(tree, factor):
    """factor * tree, leaf by leaf, each leaf computed in its wide dtype and cast back."""

    def one(x):
        x = jnp.asarray(x)
        dt = acc_dtype(x.dtype)
        return (x.astype(dt) * jnp.asarray(factor).astype(dt)).astype(x.dtype)

    return jax.tree.map(one, tree)


def _add_scaled(x_tree, factor, a_tree, keep_x: bool = True):
    """x + factor * a (or factor * a alone), leaf by leaf, each in the dtype of x's leaf."""

    def one(x, a):
        x = jnp.asarray(x)
        dt = acc_dtype(x.dtype)
        step = jnp.asarray(factor).astype(dt) * jnp.asarray(a).astype(dt)
        return (x.astype(dt) + step if keep_x else step).astype(x.dtype)

    return jax.tree.map(one, x_tree, a_tree)


def _bound_tree(tree, bound, name: str):
    """``bound`` per leaf of ``tree``: a tree of tree's structure, or one value for all."""
    if jax.tree.structure(bound) == jax.tree.structure(tree):
        return bound
    if len(jax.tree.leaves(bound)) == 1 and jax.tree.structure(bound).num_nodes == 1:
        return jax.tree.map(lambda _: bound, tree)
    raise ValueError(
        f"gradtx.projections: {name} must be a number, an array, or a tree with the structure "
        f"of the tree being projected; got a tree of structure {jax.tree.structure(bound)} "
        f"for a tree of structure {jax.tree.structure(tree)}."
    )


def projection_non_negative(tree: Any) -> Any:
    """Projection onto the non-negative orthant: p = max(x, 0), leaf by leaf.

    Args:
        tree: the tree to project.

    Returns:
        The projected tree, with the structure and dtypes of ``tree``.
    """
    return jax.tree.map(lambda x: jax.nn.relu(jnp.asarray(x)), tree)


def projection_box(tree: Any, lower: Any, upper: Any) -> Any:
    """Projection onto the box lower <= p <= upper: p = clip(x, lower, upper), leaf by leaf.

    Args:
        tree: the tree to project.
        lower: lower bound: a number or array for every leaf, or a tree like ``tree``.
        upper: upper bound: a number or array for every leaf, or a tree like ``tree``.

    Returns:
        The projected tree, with the structure and dtypes of ``tree``.
    """
    lower = _bound_tree(tree, lower, "lower")
    upper = _bound_tree(tree, upper, "upper")

    def one(x, lo, hi):
        x = jnp.asarray(x)
        return jnp.clip(x, jnp.asarray(lo).astype(x.dtype), jnp.asarray(hi).astype(x.dtype))

    return jax.tree.map(one, tree, lower, upper)


def projection_hypercube(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the hypercube 0 <= p <= scale: ``projection_box(tree, 0, scale)``.

    Args:
        tree: the tree to project.
        scale: side of the hypercube: a number or array, or a tree like ``tree``.

    Returns:
        The projected tree.
    """
    return projection_box(tree, lower=0, upper=scale)


def projection_simplex(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the simplex {p >= 0, sum(p) = scale} (all leaves together).

    u = the entries of x sorted in decreasing order, css = cumsum(u), k = 1..n
    rho = the number of k with u_k - (css_k - scale) / k > 0
    tau = (css_rho - scale) / rho
    p = max(x - tau, 0)
    Its Jacobian is 1_S (I - 1 1^T / |S|) 1_S on the support S of p.

    Args:
        tree: the tree to project.
        scale: the sum of the result (positive).

    Returns:
        The projected tree, with the structure and dtypes of ``tree``.

    References:
        Held, Wolfe and Crowder, Validation of Subgradient Optimization, Math. Programming
        1974; Duchi et al., Efficient Projections onto the l1-Ball for Learning in High
        Dimensions, ICML 2008, Figure 1.
    """
    dt = _wide_dtype(tree, scale)
    vec, unflat = _flat(tree, dt)
    return unflat(simplex_last_axis(vec, jnp.asarray(scale).astype(dt)))


def _signs(vec):
    """sign(x) with sign(0) = +1, so that zero entries may receive mass on the l1 sphere."""
    return jnp.where(vec >= 0, jnp.ones_like(vec), -jnp.ones_like(vec))


def projection_l1_sphere(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the l1 sphere ||p||_1 = scale: sign(x) * simplex(|x|, scale).

    Zero entries take the sign +1 (every choice is equally close), so the result lies on the
    sphere also when x has zeros.

    Args:
        tree: the tree to project.
        scale: the radius (positive).

    Returns:
        The projected tree, with the structure and dtypes of ``tree``.

    References:
        Duchi et al., Efficient Projections onto the l1-Ball for Learning in High Dimensions,
        ICML 2008, section 4.
    """
    dt = _wide_dtype(tree, scale)
    vec, unflat = _flat(tree, dt)
    proj = simplex_last_axis(jnp.abs(vec), jnp.asarray(scale).astype(dt))
    return unflat(_signs(vec) * proj)


def projection_l1_ball(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the l1 ball ||p||_1 <= scale: x if inside, else the l1-sphere projection.

    Args:
        tree: the tree to project.
        scale: the radius (positive).

    Returns:
        The projected tree, with the structure and dtypes of ``tree``.

    References:
        Duchi et al., Efficient Projections onto the l1-Ball for Learning in High Dimensions,
        ICML 2008, section 4.
    """
    dt = _wide_dtype(tree, scale)
    vec, unflat = _flat(tree, dt)
    s = jnp.asarray(scale).astype(dt)
    inside = jnp.sum(jnp.abs(vec)) <= s
    proj = jax.lax.cond(
        inside, lambda v: v, lambda v: _signs(v) * simplex_last_axis(jnp.abs(v), s), vec
    )
    return unflat(proj)


def projection_l2_sphere(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the l2 sphere ||p||_2 = scale: p = scale * x / ||x||_2.

    For x = 0 every point of the sphere is equally close; the result is then the point with
    all entries equal to scale / sqrt(n).

    Args:
        tree: the tree to project.
        scale: the radius.

    Returns:
        The projected tree, with the structure and dtypes of ``tree``.
    """
    dt = _wide_dtype(tree, scale)
    vec, unflat = _flat(tree, dt)
    s = jnp.asarray(scale).astype(dt)
    sq = jnp.sum(vec * vec)
    positive = sq > 0
    factor = s / jnp.sqrt(jnp.where(positive, sq, jnp.ones_like(sq)))
    uniform = jnp.full_like(vec, s / jnp.sqrt(jnp.asarray(max(vec.size, 1), dt)))
    return unflat(jnp.where(positive, factor * vec, uniform))


def projection_l2_ball(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the l2 ball ||p||_2 <= scale: p = x * scale / max(||x||_2, scale).

    Args:
        tree: the tree to project.
        scale: the radius (positive).

    Returns:
        The projected tree, with the structure and dtypes of ``tree``.
    """
    dt = _wide_dtype(tree, scale)
    s = jnp.asarray(scale).astype(dt)
    sq = _vdot(tree, tree, dt)
    return _scaled(tree, s / jnp.sqrt(jnp.maximum(sq, s * s)))


def projection_linf_ball(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the l-infinity ball ||p||_inf <= scale: p = clip(x, -scale, scale).

    Args:
        tree: the tree to project.
        scale: the radius: a number or array, or a tree like ``tree``.

    Returns:
        The projected tree, with the structure and dtypes of ``tree``.
    """
    scale = _bound_tree(tree, scale, "scale")
    return projection_box(tree, jax.tree.map(jnp.negative, scale), scale)


def projection_vector(x: Any, a: Any) -> Any:
    """Projection of x onto the line spanned by a: p = (<x, a> / <a, a>) * a.

    Args:
        x: the tree to project.
        a: the direction, a tree with the structure of ``x``.

    Returns:
        The projected tree, with the structure and dtypes of ``x``.
    """
    dt = _wide_dtype(x, a)
    factor = _vdot(x, a, dt) / _vdot(a, a, dt)
    return _add_scaled(x, factor, a, keep_x=False)


def projection_hyperplane(x: Any, a: Any, b: Any) -> Any:
    """Projection onto the hyperplane <a, p> = b: p = x + ((b - <a, x>) / <a, a>) * a.

    Args:
        x: the tree to project.
        a: the normal of the hyperplane, a tree with the structure of ``x``.
        b: the offset, a scalar.

    Returns:
        The projected tree, with the structure and dtypes of ``x``.
    """
    dt = _wide_dtype(x, a, b)
    factor = (jnp.asarray(b).astype(dt) - _vdot(x, a, dt)) / _vdot(a, a, dt)
    return _add_scaled(x, factor, a)


def projection_halfspace(x: Any, a: Any, b: Any) -> Any:
    """Projection onto the halfspace <a, p> <= b: p = x + min((b - <a, x>) / <a, a>, 0) * a.

    Args:
        x: the tree to project.
        a: the normal of the halfspace, a tree with the structure of ``x``.
        b: the offset, a scalar.

    Returns:
        The projected tree, with the structure and dtypes of ``x``.
    """
    dt = _wide_dtype(x, a, b)
    factor = (jnp.asarray(b).astype(dt) - _vdot(x, a, dt)) / _vdot(a, a, dt)
    return _add_scaled(x, jnp.minimum(factor, 0), a)
