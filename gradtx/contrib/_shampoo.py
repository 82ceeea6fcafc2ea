"""Shampoo: Kronecker-factored preconditioning of matrices (Gupta et al. 2018), blocked.

Each matrix leaf of shape (m, n) is cut into blocks of at most ``block_size`` rows and columns
(the edge blocks are zero-padded to the full block and the padding cut off again). Every
block keeps two statistics, L (rows x rows) and R (cols x cols); every
``precondition_frequency`` steps their inverse fourth roots are recomputed from an
eigendecomposition, with the eigenvalues clamped from below at ``eps`` (the initial value of
L and R is eps * I, so only rounding is clamped away; this keeps float32 stable). The
preconditioned step takes its size from a grafted Adam step on the whole leaf (layer-wise
grafting, Agarwal et al. 2020). Leaves that are not matrices get the grafted Adam step alone.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._aliases._common import maximizing
from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, chain
from gradtx._core.fused import tree_update_moment
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    safe_increment,
    tree_bias_correction,
    tree_map_none,
    tree_zeros_like,
)
from gradtx.transforms._scaling import scale_by_learning_rate


def _blocking(shape, block_size):
    """(rows per block, number of row blocks, cols per block, number of col blocks)."""
    m, n = shape
    br, bc = min(m, block_size), min(n, block_size)
    return br, -(-m // br), bc, -(-n // bc)


def _to_blocks(g, block_size):
    """(m, n) -> (nr, nc, br, bc), zero-padded."""
    br, nr, bc, nc = _blocking(g.shape, block_size)
    g = jnp.pad(g, ((0, nr * br - g.shape[0]), (0, nc * bc - g.shape[1])))
    return g.reshape(nr, br, nc, bc).transpose(0, 2, 1, 3)


def _from_blocks(b, shape):
    nr, nc, br, bc = b.shape
    return b.transpose(0, 2, 1, 3).reshape(nr * br, nc * bc)[: shape[0], : shape[1]]


def _inverse_root(s, p, eps):
    """s ** (-1 / p) for a batch of symmetric matrices: eigh, eigenvalues clamped at eps."""
    w, q = jnp.linalg.eigh(s)
    w = jnp.maximum(w, as_dtype(eps, w.dtype)) ** as_dtype(-1.0 / p, w.dtype)
    return (q * w[..., None, :]) @ jnp.swapaxes(q, -1, -2)


class ShampooLeaf(NamedTuple):
    """One matrix's blocks: statistics and their inverse fourth roots."""

    stat_l: jax.Array  # (nr, nc, br, br): sum of G G^T per block, from eps * I
    stat_r: jax.Array  # (nr, nc, bc, bc): sum of G^T G per block, from eps * I
    root_l: jax.Array  # (nr, nc, br, br): stat_l ** (-1/4) at the last refresh
    root_r: jax.Array  # (nr, nc, bc, bc): stat_r ** (-1/4) at the last refresh


class ShampooState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken
    blocks: Any  # per leaf: ShampooLeaf for matrices, None otherwise
    mu: Any  # the grafted Adam's first moment, like the params
    nu: Any  # the grafted Adam's second moment, like the params


def scale_by_shampoo(
    block_size=128,
    precondition_frequency=1,
    beta2=1.0,
    eps=1e-6,
    graft_b1=0.9,
    graft_b2=0.999,
    graft_eps=1e-8,
) -> GradientTransformation:
    """Blocked Shampoo directions with the step size of a grafted Adam step.

    Per block G of a matrix leaf (Gupta et al. 2018, Algorithm 1, with blocking, Sec. 5):
    stat_l = beta2 * stat_l + G @ G.T          (stat_l starts at eps * I)
    stat_r = beta2 * stat_r + G.T @ G
    every precondition_frequency steps (from step 1):
        root_l = stat_l ** (-1/4), root_r = stat_r ** (-1/4)   (eigh, eigenvalues >= eps)
    P = root_l @ G @ root_r
    Per leaf (layer-wise grafting): A = adam step of the leaf (mu_hat / (sqrt(nu_hat) +
    graft_eps)); updates = |A| / |P| * P for matrices (Frobenius norms, P = 0 gives 0), A for
    every other leaf.

    Args:
        block_size: the largest block side (a Python int).
        precondition_frequency: steps between refreshes of the inverse roots (a Python int).
        beta2: decay of the statistics (1 for the paper's sums).
        eps: the statistics' initial eps * I and the eigenvalue floor.
        graft_b1, graft_b2, graft_eps: the grafted Adam's hyperparameters.

    References:
        Gupta, Koren and Singer, Shampoo: Preconditioned Stochastic Tensor Optimization,
        ICML 2018, Algorithm 1.
        Agarwal et al., Disentangling Adaptive Gradient Methods from Learning Rates, 2020
        (grafting).
    """
    where = "gradtx.contrib.scale_by_shampoo"
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
        raise ValueError(
            f"{where}: block_size={block_size!r}; expected a positive Python int (a shape)."
        )
    _checks.check_number(
        where, "precondition_frequency", precondition_frequency, low=1
    )  # may be an array: only count % precondition_frequency
    _checks.check_number(where, "beta2", beta2, low=0.0, high=1.0)
    _checks.check_number(where, "eps", eps, low=0.0, low_open=True)
    _checks.check_number(where, "graft_b1", graft_b1, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "graft_b2", graft_b2, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "graft_eps", graft_eps, low=0.0)

    def leaf_init(p):
        if jnp.ndim(p) != 2:
            return None
        br, nr, bc, nc = _blocking(p.shape, block_size)
        dt = acc_dtype(p.dtype)

        def eye(b):
            return jnp.broadcast_to(jnp.eye(b, dtype=dt), (nr, nc, b, b))

        return ShampooLeaf(
            eye(br) * as_dtype(eps, dt),
            eye(bc) * as_dtype(eps, dt),
            eye(br) * as_dtype(eps, dt) ** as_dtype(-0.25, dt),
            eye(bc) * as_dtype(eps, dt) ** as_dtype(-0.25, dt),
        )

    def init(params):
        blocks = jax.tree.map(leaf_init, params)
        return ShampooState(
            jnp.zeros((), jnp.int32), blocks, tree_zeros_like(params), tree_zeros_like(params)
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.mu, where, "updates", "state.mu")
        count = safe_increment(state.count)
        refresh = (state.count % precondition_frequency) == 0
        mu = tree_update_moment(updates, state.mu, graft_b1, 1)
        nu = tree_update_moment(updates, state.nu, graft_b2, 2)
        mu_hat = tree_bias_correction(mu, graft_b1, count)
        nu_hat = tree_bias_correction(nu, graft_b2, count)

        def adam_step(m, v):
            dt = acc_dtype(m.dtype)
            return m.astype(dt) / (jnp.sqrt(v.astype(dt)) + as_dtype(graft_eps, dt))

        graft = tree_map_none(adam_step, mu_hat, nu_hat)

        def leaf(g, blk, a):
            if blk is None:
                return a.astype(g.dtype), None
            dt = blk.stat_l.dtype
            gb = _to_blocks(g.astype(dt), block_size)
            gt = jnp.swapaxes(gb, -1, -2)
            b2 = as_dtype(beta2, dt)
            stat_l = b2 * blk.stat_l + gb @ gt
            stat_r = b2 * blk.stat_r + gt @ gb
            root_l, root_r = jax.lax.cond(
                refresh,
                lambda: (_inverse_root(stat_l, 4, eps), _inverse_root(stat_r, 4, eps)),
                lambda: (blk.root_l, blk.root_r),
            )
            pre = _from_blocks(root_l @ gb @ root_r, g.shape)
            p_norm = jnp.sqrt(jnp.sum(pre * pre))
            a_norm = jnp.sqrt(jnp.sum(a * a))
            scale = jnp.where(p_norm > 0, a_norm / jnp.where(p_norm > 0, p_norm, 1), 0)
            return (scale * pre).astype(g.dtype), ShampooLeaf(stat_l, stat_r, root_l, root_r)

        g_leaves, treedef = jax.tree.flatten(updates)
        b_leaves = treedef.flatten_up_to(state.blocks)
        a_leaves = treedef.flatten_up_to(graft)
        pairs = [leaf(g, b, a) for g, b, a in zip(g_leaves, b_leaves, a_leaves)]
        new = treedef.unflatten([u for u, _ in pairs])
        blocks = treedef.unflatten([b for _, b in pairs])
        return new, ShampooState(count, blocks, mu, nu)

    return GradientTransformation(init, update)


def shampoo(
    learning_rate=1e-3,
    block_size=128,
    precondition_frequency=1,
    beta2=1.0,
    eps=1e-6,
    graft_b1=0.9,
    graft_b2=0.999,
    graft_eps=1e-8,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """Blocked Shampoo with Adam grafting: chain(scale_by_shampoo(...),
    scale_by_learning_rate(learning_rate)). See ``scale_by_shampoo`` for the update rule.

    References:
        Gupta, Koren and Singer, Shampoo: Preconditioned Stochastic Tensor Optimization,
        ICML 2018, Algorithm 1.
    """
    return maximizing(
        chain(
            scale_by_shampoo(
                block_size,
                precondition_frequency,
                beta2,
                eps,
                graft_b1,
                graft_b2,
                graft_eps,
            ),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )
