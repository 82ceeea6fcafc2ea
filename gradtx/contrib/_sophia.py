"""Sophia: momentum over a clipped diagonal-Hessian preconditioner, and Hutchinson's estimator."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._aliases._common import maximizing
from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, call_update, chain
from gradtx._core.fused import tree_moment
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    safe_increment,
    tree_bias_correction,
    tree_map_none,
    tree_zeros_like,
)
from gradtx.transforms._decay import add_decayed_weights
from gradtx.transforms._scaling import scale_by_learning_rate


class HutchinsonState(NamedTuple):
    key: jax.Array  # the PRNG key of the next probe


def hutchinson_estimator_diag_hessian(random_seed=None) -> GradientTransformation:
    """Hutchinson's estimate of the Hessian's diagonal: u * (H u) for a Rademacher probe u.

    u = random signs (+1 or -1, each with probability 1/2), one per parameter entry
    updates = u * hvp(obj_fn, params, u)         (E[u * H u] = diag(H))

    ``update`` needs ``params`` and the extra argument ``obj_fn`` (the loss as a function of
    the params); the incoming updates are ignored.

    Args:
        random_seed: the initial PRNG key (jax.random.PRNGKey(0) when None).

    References:
        Hutchinson, A stochastic estimator of the trace of the influence matrix for Laplacian
        smoothing splines, 1989; Liu et al., Sophia, ICLR 2024 (arXiv:2305.14342), Section 2.3.
    """
    where = "gradtx.contrib.hutchinson_estimator_diag_hessian"

    def init(params):
        del params
        return HutchinsonState(jax.random.PRNGKey(0) if random_seed is None else random_seed)

    def update(updates, state, params=None, *, obj_fn=None, **extra_args):
        del updates, extra_args
        _checks.require_params(params, where)
        if obj_fn is None:
            raise ValueError(
                f"{where}: update needs the extra argument obj_fn, the loss as a function of "
                "the params: update(updates, state, params, obj_fn=loss)."
            )
        key, sub = jax.random.split(state.key)
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.random.split(sub, max(len(leaves), 1))
        signs = jax.tree.unflatten(
            treedef,
            [jax.random.rademacher(k, x.shape, jnp.result_type(x)) for k, x in zip(keys, leaves)],
        )
        hvp = jax.jvp(jax.grad(obj_fn), (params,), (signs,))[1]
        return jax.tree.map(lambda h, u: (h * u).astype(u.dtype), hvp, signs), HutchinsonState(key)

    return GradientTransformation(init, update)


class SophiaState(NamedTuple):
    count: jax.Array  # int32 scalar: the step t, from 1 after the first update
    mu: object  # like params (mu_dtype if given): momentum m
    nu: object  # like params: the moving average h of the Hessian-diagonal estimates
    hessian_fn_state: object  # the state of hessian_diagonal_fn


def scale_by_sophia(
    b1=0.965,
    b2=0.99,
    eps=1e-8,
    gamma=0.01,
    clip_threshold=1.0,
    update_interval=10,
    hessian_diagonal_fn=None,
    mu_dtype=None,
    verbose: bool = False,
    print_win_rate_every_n_steps=0,
    *,
    bias_correction: bool = False,
    fresh_hessian: bool = True,
) -> GradientTransformation:
    """Sophia's scaling: momentum over max(gamma * h, eps), clipped coordinate by coordinate.

    mu = b1 * mu + (1 - b1) * updates
    every update_interval steps, from the first (count % update_interval == 0):
        nu = b2 * nu + (1 - b2) * hessian_diagonal_fn(updates, params, **extra_args)
    updates = clip(mu / max(gamma * nu, eps), -clip_threshold, clip_threshold)

    bias_correction=True divides mu by (1 - b1 ** t) (optax); fresh_hessian=False uses the nu
    of before this step's estimate (optax), so the first update is clip(mu / eps).

    Args:
        b1: decay of the momentum, in [0, 1).
        b2: decay of the Hessian average, in [0, 1).
        eps: floor of the denominator.
        gamma: the scale of the Hessian in the denominator (rho of Algorithm 3's clip(., rho)
            after rescaling; the paper's gamma).
        clip_threshold: the clipping bound (1 in the paper), or None for no clipping.
        update_interval: k, the steps between Hessian estimates.
        hessian_diagonal_fn: a transform returning the diagonal estimate (default Hutchinson's,
            which needs update(..., obj_fn=loss)).
        mu_dtype: dtype of the momentum; defaults to each parameter's dtype.
        verbose: print the fraction of unclipped coordinates every
            print_win_rate_every_n_steps steps.
        print_win_rate_every_n_steps: see verbose.
        bias_correction: bias-correct the momentum (optax; not in Algorithm 3).
        fresh_hessian: divide by the h of this step (Algorithm 3) rather than the previous one.

    References:
        Liu, Li, Hall, Liang and Ma, Sophia: A Scalable Stochastic Second-order Optimizer for
        Language Model Pre-training, ICLR 2024 (arXiv:2305.14342), Algorithm 3.
    """
    where = "gradtx.contrib.scale_by_sophia"
    _checks.check_number(where, "b1", b1, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "b2", b2, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "gamma", gamma, low=0.0)
    _checks.check_number(where, "clip_threshold", clip_threshold, low=0.0, none_ok=True)
    _checks.check_number(where, "update_interval", update_interval, low=1)
    hess = (
        hutchinson_estimator_diag_hessian() if hessian_diagonal_fn is None else hessian_diagonal_fn
    )

    def init(params):
        return SophiaState(
            jnp.zeros((), jnp.int32),
            tree_zeros_like(params, mu_dtype),
            tree_zeros_like(params),
            hess.init(params),
        )

    def update(updates, state, params=None, **extra_args):
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, state.mu, where, "updates", "state.mu")
        count = safe_increment(state.count)
        mu, mu_read = tree_moment(updates, state.mu, b1, 1)
        m = tree_bias_correction(mu_read, b1, count) if bias_correction else mu_read

        def estimate(hess_state, nu):
            diag, hess_state = call_update(hess, updates, hess_state, params, extra_args)
            return hess_state, tree_moment(diag, nu, b2, 1)[0]

        due = state.count % jnp.asarray(update_interval).astype(jnp.int32) == 0
        hess_state, nu = jax.lax.cond(
            due, estimate, lambda h, n: (h, n), state.hessian_fn_state, state.nu
        )
        h = nu if fresh_hessian else state.nu

        def leaf(g, mm, hh):
            dt = acc_dtype(g.dtype)
            den = jnp.maximum(as_dtype(gamma, dt) * hh.astype(dt), as_dtype(eps, dt))
            u = mm.astype(dt) / den
            if clip_threshold is not None:
                c = as_dtype(clip_threshold, dt)
                u = jnp.clip(u, -c, c)
            return u.astype(g.dtype)

        out = tree_map_none(leaf, updates, m, h)
        if verbose and clip_threshold is not None:
            inside = sum(jnp.sum(jnp.abs(u) < clip_threshold) for u in jax.tree.leaves(out))
            total = sum(u.size for u in jax.tree.leaves(out))
            every = jnp.maximum(jnp.asarray(print_win_rate_every_n_steps).astype(jnp.int32), 1)
            jax.lax.cond(
                count % every == 0,
                lambda: jax.debug.print("Sophia optimizer win rate: {}", inside / total),
                lambda: None,
            )
        return out, SophiaState(count, mu, nu, hess_state)

    return GradientTransformation(init, update)


def sophia(
    learning_rate,
    b1=0.965,
    b2=0.99,
    eps=1e-8,
    weight_decay=1e-4,
    weight_decay_mask=None,
    gamma=0.01,
    clip_threshold=1.0,
    update_interval=10,
    hessian_diagonal_fn=None,
    mu_dtype=None,
    verbose: bool = False,
    print_win_rate_every_n_steps=0,
    *,
    bias_correction: bool = False,
    fresh_hessian: bool = True,
    maximize: bool = False,
) -> GradientTransformation:
    """Sophia: chain(scale_by_sophia(...), add_decayed_weights(weight_decay, weight_decay_mask),
    scale_by_learning_rate(learning_rate)).

    The decay is decoupled (Algorithm 3: theta -= lr * wd * theta). The update rule is
    ``scale_by_sophia``'s; defaults are the paper's (and optax's).
    """
    return maximizing(
        chain(
            scale_by_sophia(
                b1,
                b2,
                eps,
                gamma,
                clip_threshold,
                update_interval,
                hessian_diagonal_fn,
                mu_dtype,
                verbose,
                print_win_rate_every_n_steps,
                bias_correction=bias_correction,
                fresh_hessian=fresh_hessian,
            ),
            add_decayed_weights(weight_decay, weight_decay_mask),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )
