"""Hessian-vector products and curvature diagonals of a loss ``loss(params, *args)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def _as_tree(v, params, where):
    """``v`` as a tree like params: a tree of that structure, or a flat vector of its size."""
    if jax.tree.structure(v) == jax.tree.structure(params) and all(
        jnp.shape(a) == jnp.shape(b) for a, b in zip(jax.tree.leaves(v), jax.tree.leaves(params))
    ):
        return v
    flat, unravel = ravel_pytree(params)
    v = jnp.asarray(v)
    if v.shape != flat.shape:
        raise ValueError(
            f"{where}: v has shape {v.shape}; expected a tree shaped like params or a flat "
            f"vector of shape {flat.shape} (jax.flatten_util.ravel_pytree(params)[0])."
        )
    return unravel(v.astype(flat.dtype))


def hvp(loss: Callable[..., jax.Array], v, params, *args, **kwargs) -> Any:
    """The Hessian of ``loss`` at ``params`` times ``v``, by forward-over-reverse AD.

    H v = d/dt grad loss(params + t v, *args) at t = 0 (jax.jvp of jax.grad): the cost of
    about two gradients, no Hessian formed. ``v`` is a tree like params or a flat vector of
    their total size (optax's form); the result is a tree like params. ``hvp(loss, v, params,
    inputs, targets)`` is optax's call.

    References:
        Pearlmutter, Fast exact multiplication by the Hessian (Neural Computation, 1994).
    """
    v = _as_tree(v, params, "gradtx.second_order.hvp")
    grad = jax.grad(lambda p: loss(p, *args, **kwargs))
    return jax.jvp(grad, (params,), (v,))[1]


def hessian_diag(
    loss: Callable[..., jax.Array], params, *args, ravel: bool = False, **kwargs
) -> Any:
    """The exact diagonal of the Hessian of ``loss`` at ``params``: H_ii = <e_i, H e_i>.

    One hvp per coordinate (vmapped over the basis vectors e_i), so for models of up to a
    few thousand parameters. Returns a tree like params, or with ``ravel=True`` a flat
    vector in ``ravel_pytree`` order (optax's form).
    """
    flat, unravel = ravel_pytree(params)
    eye = jnp.eye(flat.size, dtype=flat.dtype)
    grad = jax.grad(lambda p: loss(p, *args, **kwargs))

    def one(e):
        return jnp.vdot(e, ravel_pytree(jax.jvp(grad, (params,), (unravel(e),))[1])[0])

    diag = jax.vmap(one)(eye)
    return diag if ravel else unravel(diag)


def fisher_diag(
    negative_log_likelihood: Callable[..., jax.Array],
    params,
    inputs,
    targets,
    *,
    per_example: bool = True,
    ravel: bool = False,
) -> Any:
    """The diagonal of the empirical Fisher: the mean over examples of the squared gradient.

    F_ii = mean over n of (d/dw_i nll(params, inputs[n:n+1], targets[n:n+1])) ** 2, the
    per-example gradients taken by vmap over the leading axis of inputs and targets (nll
    should be the batch mean). per_example=False squares the gradient of the whole batch
    instead, (d/dw_i nll(params, inputs, targets)) ** 2, which is optax's definition (the
    two agree for a batch of one). Returns a tree like params, or a flat vector with
    ``ravel=True``.

    References:
        Martens, New insights and perspectives on the natural gradient method (JMLR, 2020),
        section 11 (the empirical Fisher).
    """
    grad = jax.grad(negative_log_likelihood)
    if per_example:
        per = jax.vmap(lambda x, y: grad(params, x[None], y[None]))(inputs, targets)
        diag = jax.tree.map(lambda g: jnp.mean(jnp.square(g), axis=0), per)
    else:
        diag = jax.tree.map(jnp.square, grad(params, inputs, targets))
    return ravel_pytree(diag)[0] if ravel else diag
