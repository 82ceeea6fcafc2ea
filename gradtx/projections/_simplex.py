"""Euclidean projection onto the simplex along the last axis, with its sparse Jacobian."""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.custom_jvp
def _unit_simplex(x):
    """argmin_p ||x - p|| subject to p >= 0, sum(p) = 1, for each row x[..., :].

    u = x sorted in decreasing order, css = cumsum(u), k = 1..n
    rho = the number of k with u_k - (css_k - 1) / k > 0
    tau = (css_rho - 1) / rho
    p = max(x - tau, 0)
    (Held, Wolfe and Crowder 1974; Duchi et al. 2008, Figure 1.)
    """
    n = x.shape[-1]
    u = -jnp.sort(-x, axis=-1)
    css = jnp.cumsum(u, axis=-1)
    k = jnp.arange(1, n + 1, dtype=x.dtype).reshape((1,) * (x.ndim - 1) + (n,))
    rho = jnp.sum(u - (css - 1) / k > 0, axis=-1, keepdims=True)
    css_rho = jnp.take_along_axis(css, rho - 1, axis=-1)
    tau = (css_rho - 1) / rho.astype(x.dtype)
    return jnp.maximum(x - tau, 0)


@_unit_simplex.defjvp
def _unit_simplex_jvp(primals, tangents):
    """On the support S of p the projection is x - tau with tau the mean offset over S, so
    dp = 1_S * (dx - sum_S(dx) / |S|) (Martins and Astudillo 2016, Proposition 2)."""
    (x,), (dx,) = primals, tangents
    p = _unit_simplex(x)
    support = (p > 0).astype(x.dtype)
    size = jnp.sum(support, axis=-1, keepdims=True)
    dp = support * (dx - jnp.sum(support * dx, axis=-1, keepdims=True) / size)
    return p, dp


def simplex_last_axis(x, scale):
    """Project each row x[..., :] onto {p >= 0, sum(p) = scale}: scale * unit(x / scale)."""
    return scale * _unit_simplex(x / scale)
