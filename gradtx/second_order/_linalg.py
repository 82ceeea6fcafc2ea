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


def nnls(A, b, iters, unroll=1, L=None):  # noqa: N803 (optax's argument names)
    """Non-negative least squares: minimise ||A x - b|| subject to x >= 0 (fast projected
    gradient).

    Q = A^T A;  q = A^T b;  L = an upper bound on Q's spectral radius (None: the smaller of
    its Frobenius norm and its largest column sum; 0 is taken as 1)
    x = p = 0;  c = 0
    repeated iters times:
        c_next = (1 + sqrt(1 + 4 c ** 2)) / 2
        x_next = max(0, p - (Q p - q) / L)              (a projected gradient step from p)
        p = x_next + (c - 1) / c_next * (x_next - x)    (Nesterov's extrapolation)
        x, c = x_next, c_next

    Args:
        A: an (M, N) matrix.
        b: an (M,) vector or an (M, K) matrix (K problems at once).
        iters: the number of iterations (a Python int: the length of a ``lax.scan``).
        unroll: ``lax.scan``'s unroll.
        L: an upper bound on the largest eigenvalue of A^T A.

    Returns:
        x, of shape (N,) or (N, K).

    Example:
        >>> import jax.numpy as jnp, gradtx
        >>> x = gradtx.nnls(jnp.array([[1.0, 2.0], [3.0, 4.0]]), jnp.array([5.0, 6.0]), 1000)
        >>> [round(float(v), 2) for v in x]
        [0.0, 1.7]

    References:
        Polyak, Projected gradient method for non-negative least square, Contemporary
        Mathematics 636, 2015 (the fast projected gradient method).
    """
    where = "gradtx.nnls"
    A, b = jnp.asarray(A), jnp.asarray(b)
    if A.ndim != 2 or b.ndim not in (1, 2) or b.shape[0] != A.shape[0]:
        raise ValueError(
            f"{where}: A has shape {A.shape} and b {b.shape}; expected A (M, N) and b (M,) or "
            "(M, K) with the same M."
        )
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
        raise ValueError(f"{where}: iters={iters!r}; expected a non-negative Python int.")
    Q = A.T @ A  # noqa: N806
    q = A.T @ b
    if L is None:
        fro = jnp.sqrt(jnp.sum(Q * Q))
        L = jnp.minimum(fro, jnp.max(jnp.sum(jnp.abs(Q), axis=0))) if Q.size else fro
    L = jnp.asarray(L, Q.dtype)  # noqa: N806
    L = jnp.where(L == 0, jnp.ones_like(L), L)  # noqa: N806

    def body(carry, _):
        x, p, c = carry
        c_next = (1 + jnp.sqrt(1 + 4 * c * c)) / 2
        x_next = jnp.maximum(p - (Q @ p - q) / L, 0)
        p = x_next + ((c - 1) / c_next) * (x_next - x)
        return (x_next, p, c_next), None

    x = jnp.zeros(A.shape[1:] + b.shape[1:], jnp.result_type(A, b))
    carry = (x, x, jnp.zeros((), Q.dtype))
    return jax.lax.scan(body, carry, None, length=iters, unroll=unroll)[0][0]
