"""Second moments kept per layer or per axis: NovoGrad's layer norm and SM3's cover sets.

Both keep far less state than Adam: NovoGrad one scalar per leaf, SM3 one vector per axis.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.fused import tree_moment
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    safe_increment,
    squares_dtype,
    tree_map_none,
    tree_zeros_like,
)


class ScaleByNovogradState(NamedTuple):
    count: jax.Array  # int32 scalar: the step t, from 1 after the first update
    mu: object  # like params (mu_dtype if given): the first moment m
    nu: object  # one scalar per leaf (at least float32): the layer's second moment v


def scale_by_novograd(
    b1=0.9, b2=0.25, eps=1e-8, eps_root=0.0, weight_decay=0.0, mu_dtype=None
) -> GradientTransformation:
    """NovoGrad's scaling: the gradient over the root of its layer's averaged squared norm.

    n = ||updates|| ** 2                                   (one number per leaf)
    nu = n if t == 1 else b2 * nu + (1 - b2) * n
    mu = b1 * mu + updates / (sqrt(nu + eps_root) + eps) + weight_decay * params
    updates = mu                                           (mu starts at 0, so mu_1 has no b1)

    Args:
        b1: the momentum of the first moment (no (1 - b1) factor, as in the paper).
        b2: the decay of the per-layer second moment.
        eps: added to the root in the denominator (the paper adds none at t = 1; it is used
            at every step here, as in optax, so a zero first gradient gives 0, not NaN).
        eps_root: added inside the root.
        weight_decay: the paper's d, weight decay added inside the moment.
        mu_dtype: dtype of ``mu``; defaults to each parameter's dtype.

    References:
        Ginsburg et al., Stochastic Gradient Methods with Layer-wise Adaptive Moments for
        Training of Deep Networks, 2019, Algorithm 1.
    """
    where = "gradtx.scale_by_novograd"
    _checks.check_number(where, "b1", b1, low=0.0, high=1.0)
    _checks.check_number(where, "b2", b2, low=0.0, high=1.0)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "eps_root", eps_root, low=0.0)
    _checks.check_number(where, "weight_decay", weight_decay, low=0.0)

    def init(params):
        nu = tree_map_none(lambda p: jnp.zeros((), acc_dtype(p.dtype)), params)
        return ScaleByNovogradState(jnp.zeros((), jnp.int32), tree_zeros_like(params, mu_dtype), nu)

    def second(g, v, first):
        dt = v.dtype
        n = jnp.sum(jnp.square(g.astype(dt)))
        return jnp.where(first, n, as_dtype(b2, dt) * v + as_dtype(1 - b2, dt) * n)

    def first_moment(g, m, v, p):
        dt = acc_dtype(m.dtype)
        root = jnp.sqrt(v.astype(dt) + as_dtype(eps_root, dt)) + as_dtype(eps, dt)
        scaled = g.astype(dt) / root
        decayed = scaled + as_dtype(weight_decay, dt) * p.astype(dt)
        return (as_dtype(b1, dt) * m.astype(dt) + decayed).astype(m.dtype)

    def update(updates, state, params=None, **extra_args):
        del extra_args
        _checks.require_params(params, where)
        _checks.check_same_structure(updates, state.mu, where, "updates", "state.mu")
        count = safe_increment(state.count)
        nu = tree_map_none(lambda g, v: second(g, v, count == 1), updates, state.nu)
        mu = tree_map_none(first_moment, updates, state.mu, nu, params)
        out = tree_map_none(lambda m, g: m.astype(g.dtype), mu, updates)
        return out, ScaleByNovogradState(count, mu, nu)

    return GradientTransformation(init, update)


_NONE = lambda x: x is None  # noqa: E731


def _other_axes(ndim):
    """For each axis a, the axes SM3 reduces over to get a's accumulator: all but a."""
    return [tuple(j for j in range(ndim) if j != i) for i in range(ndim)]


class ScaleBySM3State(NamedTuple):
    mu: object  # per leaf, a list of accumulators, one per axis (the paper's mu'), like params
    momentum: object  # like params: the moving average of the scaled updates


def scale_by_sm3(b1=0.9, b2=1.0, eps=1e-8) -> GradientTransformation:
    """SM3-II: AdaGrad with a second moment held by one vector per axis, then momentum.

    c = 1 if b2 == 1 else 1 - b2                     (b2=1: the paper's running sum)
    nu[i] = b2 * min over the axes a of mu[a][i] + c * updates[i] ** 2
    mu[a] = max of nu over every axis but a           (kept with broadcastable shape)
    scaled = updates / sqrt(nu + eps)   (0 where nu is 0, the paper's 0/0 = 0)
    momentum = b1 * momentum + (1 - b1) * scaled;  updates = momentum

    Leaves of rank 0 or 1 keep a full accumulator (their cover is the singletons). With b2=1
    and b1=0 this is the paper's SM3-II exactly; b1 is the authors' momentum.

    Args:
        b1: the momentum's decay (0 for none).
        b2: the decay of the accumulator (1: the paper's running sum).
        eps: added inside the root.

    References:
        Anil et al., Memory-Efficient Adaptive Optimization, NeurIPS 2019, Algorithm SM3-II.
    """
    where = "gradtx.scale_by_sm3"
    _checks.check_number(where, "b1", b1, low=0.0, high=1.0)
    _checks.check_number(where, "b2", b2, low=0.0, high=1.0)
    _checks.check_number(where, "eps", eps, low=0.0)

    def init_leaf(p):
        if jnp.iscomplexobj(p):
            raise TypeError(f"{where}: complex parameters are not supported (dtype {p.dtype}).")
        sq = squares_dtype(p.dtype)  # float32 for float16 params (squares underflow)
        if p.ndim < 2:  # the cover of a scalar or a vector is its singletons: AdaGrad
            return [jnp.zeros_like(p, dtype=sq)]
        # jax.eval_shape keeps each accumulator's sharding, as zeros_like does.
        shapes = [
            jax.eval_shape(lambda x, ax=ax: jnp.max(x, axis=ax, keepdims=True), p)
            for ax in _other_axes(p.ndim)
        ]
        return [jnp.zeros_like(s, dtype=sq) for s in shapes]

    def init(params):
        return ScaleBySM3State(tree_map_none(init_leaf, params), tree_zeros_like(params))

    def leaf(g, accs):
        dt = acc_dtype(g.dtype)
        g = g.astype(dt)
        keep = as_dtype(b2, dt)
        add = jnp.where(keep == 1, jnp.ones_like(keep), as_dtype(1 - b2, dt))
        low = accs[0].astype(dt)
        for a in accs[1:]:
            low = jnp.minimum(low, a.astype(dt))
        nu = keep * low + add * jnp.square(g)
        root = jnp.sqrt(jnp.where(nu > 0, nu, jnp.ones_like(nu)) + as_dtype(eps, dt))
        scaled = jnp.where(nu > 0, g / root, jnp.zeros_like(g))
        if g.ndim < 2:
            new = [nu]
        else:
            new = [jnp.max(nu, axis=ax, keepdims=True) for ax in _other_axes(g.ndim)]
        return scaled, [n.astype(a.dtype) for n, a in zip(new, accs)]

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.momentum, where, "updates", "momentum")
        g_leaves, treedef = jax.tree.flatten(updates, is_leaf=_NONE)
        accs = treedef.flatten_up_to(state.mu)
        done = [None if g is None else leaf(g, a) for g, a in zip(g_leaves, accs)]
        scaled = treedef.unflatten([None if r is None else r[0] for r in done])
        mu = treedef.unflatten([None if r is None else r[1] for r in done])
        momentum, _ = tree_moment(scaled, state.momentum, b1, 1)
        out = tree_map_none(lambda m, g: m.astype(g.dtype), momentum, updates)
        return out, ScaleBySM3State(mu, momentum)

    return GradientTransformation(init, update)
