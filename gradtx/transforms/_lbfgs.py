"""L-BFGS: the updates multiplied by a limited-memory inverse-Hessian estimate."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.trees import acc_dtype, global_norm, safe_increment, tree_zeros_like
from gradtx.transforms._linesearch import _scalar_dtype, _tree_vdot


def _slot(tree, i):
    return jax.tree.map(lambda m: m[i], tree)


def _axpy(a, x, y):
    """y + a * x, leaf by leaf in at least float32, in y's dtype."""
    return jax.tree.map(
        lambda xi, yi: (
            yi.astype(acc_dtype(yi.dtype))
            + a.astype(acc_dtype(yi.dtype)) * xi.astype(acc_dtype(yi.dtype))
        ).astype(yi.dtype),
        x,
        y,
    )


def _two_loop(q, dparams, dupdates, rho, gamma, newest):
    """r = H q by Nocedal and Wright's two-loop recursion (Algorithm 7.4), newest pair first.

    alpha_i = rho_i <s_i, q>;  q = q - alpha_i y_i        (i from newest to oldest)
    r = gamma * q
    beta_i = rho_i <y_i, r>;   r = r + (alpha_i - beta_i) s_i  (i from oldest to newest)
    A slot with rho_i = 0 (empty, or a pair skipped for non-positive curvature) does nothing.
    """
    m = rho.shape[0]
    dt = rho.dtype
    newest_first = (newest - jnp.arange(m, dtype=jnp.int32)) % m

    def backward(q, i):
        alpha = rho[i] * _tree_vdot(_slot(dparams, i), q, dt)
        return _axpy(-alpha, _slot(dupdates, i), q), alpha

    q, alphas = jax.lax.scan(backward, q, newest_first)
    r = jax.tree.map(
        lambda x: (gamma.astype(acc_dtype(x.dtype)) * x.astype(acc_dtype(x.dtype))).astype(x.dtype),
        q,
    )

    def forward(r, i_alpha):
        i, alpha = i_alpha
        beta = rho[i] * _tree_vdot(_slot(dupdates, i), r, dt)
        return _axpy(alpha - beta, _slot(dparams, i), r), None

    r, _ = jax.lax.scan(forward, r, (newest_first[::-1], alphas[::-1]))
    return r


class ScaleByLBFGSState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken
    params: object  # like params: the params of the previous step
    updates: object  # like params: the updates (gradient) of the previous step
    diff_params_memory: object  # like params, leading axis memory_size: s_i = w_{i+1} - w_i
    diff_updates_memory: object  # like params, leading axis memory_size: y_i = g_{i+1} - g_i


def scale_by_lbfgs(
    memory_size: int = 10,
    scale_init_precond: bool = True,
    *,
    skip_nonpositive_curvature: bool = True,
    first_step_norm: str = "l2",
) -> GradientTransformation:
    """L-BFGS's scaling: the updates times an inverse-Hessian estimate from the last pairs.

    s = params - previous params,  y = updates - previous updates   (stored from step 2 on,
    in a ring of memory_size slots)
    rho_i = 1 / <s_i, y_i>   (0 if <s_i, y_i> <= 0 when skip_nonpositive_curvature, else 0
    only if it is exactly 0)
    gamma = <s, y> / <y, y> for the newest pair (scale_init_precond), else 1;
    at the first step gamma = min(1, 1 / ||updates||) (a first step of length at most 1;
    ||.|| the global 2-norm, or with first_step_norm="l1" the sum of |updates|, torch's)
    updates = H updates, by the two-loop recursion with H_0 = gamma * I

    The result is the quasi-Newton direction before its sign: chain a negative scale (or a
    learning rate) and a line search after it, as ``gradtx.lbfgs`` does. rho is recomputed
    from the stored pairs at each step rather than stored (so every slot is like params).

    Args:
        memory_size: the number of (s, y) pairs kept (static: it fixes the state's shapes).
        scale_init_precond: scale H_0 by gamma (Nocedal and Wright, eq. 7.20).
        skip_nonpositive_curvature: give pairs with <s, y> <= 0 no weight, which keeps H
            positive definite when the line search could not ensure the curvature
            condition (optax uses 1 / <s, y> whatever its sign: set False for optax's rule).
        first_step_norm: "l2" (the default) or "l1" (torch.optim.LBFGS's first step
            lr * min(1, 1 / sum|g|)), the norm in the first step's gamma (static).

    References:
        Liu and Nocedal, On the limited memory BFGS method for large scale optimization
        (Math. Programming, 1989); Nocedal and Wright, Numerical Optimization (2006),
        Algorithm 7.4 (two-loop recursion), Algorithm 7.5 and eq. 7.20 (gamma).
    """
    where = "gradtx.scale_by_lbfgs"
    if not isinstance(memory_size, int) or isinstance(memory_size, bool) or memory_size < 1:
        raise ValueError(
            f"{where}: memory_size={memory_size!r}; expected a Python int >= 1 (it fixes the "
            "shapes of the state)."
        )
    if first_step_norm not in ("l2", "l1"):
        raise ValueError(
            f"{where}: first_step_norm={first_step_norm!r}; expected 'l2' or 'l1' (torch's)."
        )

    def init(params):
        stacked = jax.tree.map(
            lambda p: jnp.zeros((memory_size, *jnp.shape(p)), jnp.result_type(p)), params
        )
        return ScaleByLBFGSState(
            count=jnp.zeros((), jnp.int32),
            params=tree_zeros_like(params),
            updates=tree_zeros_like(params),
            diff_params_memory=stacked,
            diff_updates_memory=stacked,
        )

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, state.updates, where, "updates", "state.updates")
        dt = _scalar_dtype(params)
        started = state.count > 0
        newest = (state.count - 1) % memory_size
        s = jax.tree.map(
            lambda p, q: jnp.where(started, p - q.astype(p.dtype), 0).astype(p.dtype),
            params,
            state.params,
        )
        y = jax.tree.map(
            lambda u, v: jnp.where(started, u - v.astype(u.dtype), 0).astype(u.dtype),
            updates,
            state.updates,
        )
        dparams, dupdates = jax.tree.map(
            lambda mem, x: mem.at[newest].set(x.astype(mem.dtype)),
            (state.diff_params_memory, state.diff_updates_memory),
            (s, y),
        )
        sy = jax.vmap(lambda a, b: _tree_vdot(a, b, dt))(dparams, dupdates)
        usable = sy > 0 if skip_nonpositive_curvature else sy != 0
        rho = jnp.where(usable, 1 / jnp.where(usable, sy, 1), 0)

        if scale_init_precond:
            yy = _tree_vdot(y, y, dt)
            ok = (yy > 0) & (usable[newest] if skip_nonpositive_curvature else True)
            gamma = jnp.where(ok, sy[newest] / jnp.where(yy > 0, yy, 1), 1)
            g = jax.lax.stop_gradient(updates)
            if first_step_norm == "l1":
                norm = sum(jnp.sum(jnp.abs(x).astype(dt)) for x in jax.tree.leaves(g))
            else:
                norm = global_norm(g).astype(dt)
            first = jnp.minimum(1, 1 / norm)
            gamma = jnp.where(started, gamma, first).astype(dt)
        else:
            gamma = jnp.ones((), dt)
        direction = _two_loop(updates, dparams, dupdates, rho, gamma, newest)
        new_state = ScaleByLBFGSState(
            safe_increment(state.count), params, updates, dparams, dupdates
        )
        return direction, new_state

    return GradientTransformation(init, update)
