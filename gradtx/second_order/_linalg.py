"""The dominant eigenpair of a matrix or a linear operator on trees (power iteration)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradtx._core.trees import global_norm
from gradtx.transforms._linesearch import _scalar_dtype, _tree_vdot


def _normalized(v):
    norm = global_norm(v)
    return jax.tree.map(lambda x: (x / norm.astype(x.dtype)).astype(x.dtype), v)


def power_iteration(
    matrix,
    *,
    v0=None,
    num_iters=100,
    error_tolerance=1e-6,
    precision=jax.lax.Precision.HIGHEST,
    key=None,
):
    """The dominant eigenvalue and its eigenvector, by power iteration (optax's arguments).

    v = v0 / ||v0||;  repeat: z = A v;  eig = <v, z>;  v = z / ||z||
    until ||z - eig v|| / |eig| < error_tolerance or num_iters products. ``matrix`` is a
    square array or a callable v -> A v on trees (then v0 is required), e.g.
    ``lambda v: gradtx.second_order.hvp(loss, v, params)`` for the Hessian's largest
    eigenvalue (the L of a 1 / L step size). Returns (eig, v).

    References:
        Golub and Van Loan, Matrix Computations (4th ed., 2013), section 7.3.1.
    """
    if callable(matrix):
        if v0 is None:
            raise ValueError(
                "gradtx.power_iteration: matrix is a callable, so v0 (a tree of the shape it "
                "takes) is required: pass v0=jax.tree.map(jnp.ones_like, params), say."
            )
        mvp = matrix
    else:
        matrix = jnp.asarray(matrix)
        mvp = lambda v: jnp.matmul(matrix, v, precision=precision)  # noqa: E731
        if v0 is None:
            key = jax.random.PRNGKey(0) if key is None else key
            v0 = jax.random.uniform(key, matrix.shape[-1:], matrix.dtype, -1.0, 1.0)
    v = _normalized(v0)
    dt = _scalar_dtype(v)

    def residual_ok(carry):
        v, z, eig, i = carry
        r = jax.tree.map(lambda a, b: a - eig.astype(a.dtype) * b, z, v)
        converged = global_norm(r).astype(dt) < error_tolerance * jnp.abs(eig)
        return ~converged & (i < num_iters)

    def body(carry):
        _, z, _, i = carry
        v = _normalized(z)
        z = mvp(v)
        return v, z, _tree_vdot(v, z, dt), i + 1

    z = mvp(v)
    carry = (v, z, _tree_vdot(v, z, dt), jnp.zeros((), jnp.int32))
    _, z, eig, _ = jax.lax.while_loop(residual_ok, body, carry)
    return eig, _normalized(z)
