"""SOAP: Adam in the eigenbasis of Shampoo's preconditioner (Vyas et al. 2024), blocked.

Each matrix leaf is cut into blocks of at most ``block_size`` rows and columns, as in
``scale_by_shampoo``. Each block keeps Shampoo's statistics L and R and their eigenvectors
Q_L and Q_R (refreshed every ``precondition_frequency`` steps with ``eigh``: only the
eigenvectors are used, so no inverse root and no clamping is needed; float32 is stable).
Adam's second moment lives in the rotated coordinates. Leaves that are not matrices get Adam.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._aliases._common import maximizing
from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, chain
from gradtx._core.trees import acc_dtype, as_dtype, bias_correction_factor, safe_increment
from gradtx.contrib._shampoo import _blocking, _from_blocks, _to_blocks
from gradtx.transforms._decay import add_decayed_weights
from gradtx.transforms._scaling import scale_by_learning_rate


class SoapLeaf(NamedTuple):
    """One leaf's SOAP slots; matrices in blocks (nr, nc, br, bc), other leaves whole."""

    mu: jax.Array  # first moment, in the original coordinates
    nu: jax.Array  # second moment, in the rotated coordinates (whole leaves: original)
    stat_l: jax.Array  # (nr, nc, br, br): EMA of G G^T ((0,) for non-matrices)
    stat_r: jax.Array  # (nr, nc, bc, bc): EMA of G^T G
    q_l: jax.Array  # (nr, nc, br, br): eigenvectors of stat_l (identity before the first)
    q_r: jax.Array  # (nr, nc, bc, bc): eigenvectors of stat_r


class SoapState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken
    leaves: Any  # a SoapLeaf per parameter


def _eigenvectors(s):
    return jnp.linalg.eigh(s)[1]


def scale_by_soap(
    b1=0.95,
    b2=0.95,
    shampoo_beta=0.95,
    eps=1e-8,
    precondition_frequency=10,
    block_size=10000,
) -> GradientTransformation:
    """SOAP's scaling (Vyas et al. 2024, Algorithm 1), per block G of a matrix leaf:

    g_rot = q_l.T @ G @ q_r
    mu = b1 * mu + (1 - b1) * G
    nu = b2 * nu + (1 - b2) * g_rot ** 2
    n_rot = (q_l.T @ mu @ q_r) / (1 - b1 ** t) / (sqrt(nu / (1 - b2 ** t)) + eps)
    updates = q_l @ n_rot @ q_r.T
    stat_l = shampoo_beta * stat_l + (1 - shampoo_beta) * G @ G.T
    stat_r = shampoo_beta * stat_r + (1 - shampoo_beta) * G.T @ G
    if t % precondition_frequency == 0: q_l, q_r = eigenvectors of stat_l, stat_r (eigh)

    q_l and q_r start as the identity, so the first precondition_frequency steps are Adam's.
    Other leaves get Adam: mu / (1 - b1 ** t) / (sqrt(nu / (1 - b2 ** t)) + eps).

    Args:
        b1, b2: Adam's decays; shampoo_beta: the statistics' decay.
        eps: Adam's denominator term.
        precondition_frequency: steps between eigenvector refreshes (a Python int).
        block_size: the largest block side (a Python int).

    References:
        Vyas et al., SOAP: Improving and Stabilizing Shampoo using Adam, 2024
        (arXiv:2409.11321), Algorithm 1.
    """
    where = "gradtx.contrib.scale_by_soap"
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
        raise ValueError(
            f"{where}: block_size={block_size!r}; expected a positive Python int (a shape)."
        )
    _checks.check_number(
        where, "precondition_frequency", precondition_frequency, low=1
    )  # may be an array: only count % precondition_frequency
    for name, v in (("b1", b1), ("b2", b2), ("shampoo_beta", shampoo_beta)):
        _checks.check_number(where, name, v, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "eps", eps, low=0.0)

    def leaf_init(p):
        dt = acc_dtype(p.dtype)
        if jnp.ndim(p) != 2:
            empty = jnp.zeros((0,), dt)
            return SoapLeaf(jnp.zeros_like(p), jnp.zeros_like(p), empty, empty, empty, empty)
        br, nr, bc, nc = _blocking(p.shape, block_size)
        eye = lambda b: jnp.broadcast_to(jnp.eye(b, dtype=dt), (nr, nc, b, b))  # noqa: E731
        zeros = jnp.zeros((nr, nc, br, bc), p.dtype)
        return SoapLeaf(zeros, zeros, 0 * eye(br), 0 * eye(bc), eye(br), eye(bc))

    def init(params):
        return SoapState(jnp.zeros((), jnp.int32), jax.tree.map(leaf_init, params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        refresh = (count % precondition_frequency) == 0

        def leaf(g, s):
            dt = acc_dtype(g.dtype)
            c1, c2 = bias_correction_factor(b1, count, dt), bias_correction_factor(b2, count, dt)
            beta1, beta2 = as_dtype(b1, dt), as_dtype(b2, dt)
            om1, om2 = as_dtype(1 - b1, dt), as_dtype(1 - b2, dt)
            if g.ndim != 2:
                gg = g.astype(dt)
                mu = beta1 * s.mu.astype(dt) + om1 * gg
                nu = beta2 * s.nu.astype(dt) + om2 * gg * gg
                out = (mu / c1) / (jnp.sqrt(nu / c2) + as_dtype(eps, dt))
                return out.astype(g.dtype), s._replace(
                    mu=mu.astype(s.mu.dtype), nu=nu.astype(s.nu.dtype)
                )
            gb = _to_blocks(g.astype(dt), block_size)
            t = lambda x: jnp.swapaxes(x, -1, -2)  # noqa: E731
            ql, qr = s.q_l, s.q_r
            g_rot = t(ql) @ gb @ qr
            mu = beta1 * s.mu.astype(dt) + om1 * gb
            nu = beta2 * s.nu.astype(dt) + om2 * g_rot * g_rot
            n_rot = (t(ql) @ mu @ qr / c1) / (jnp.sqrt(nu / c2) + as_dtype(eps, dt))
            out = _from_blocks(ql @ n_rot @ t(qr), g.shape)
            sb = as_dtype(shampoo_beta, dt)
            osb = as_dtype(1 - shampoo_beta, dt)
            stat_l = sb * s.stat_l + osb * gb @ t(gb)
            stat_r = sb * s.stat_r + osb * t(gb) @ gb
            ql, qr = jax.lax.cond(
                refresh,
                lambda: (_eigenvectors(stat_l), _eigenvectors(stat_r)),
                lambda: (ql, qr),
            )
            new = SoapLeaf(mu.astype(s.mu.dtype), nu.astype(s.nu.dtype), stat_l, stat_r, ql, qr)
            return out.astype(g.dtype), new

        g_leaves, treedef = jax.tree.flatten(updates)
        s_leaves = treedef.flatten_up_to(state.leaves)
        pairs = [leaf(g, s) for g, s in zip(g_leaves, s_leaves)]
        return treedef.unflatten([u for u, _ in pairs]), SoapState(
            count, treedef.unflatten([s for _, s in pairs])
        )

    return GradientTransformation(init, update)


def soap(
    learning_rate=3e-3,
    b1=0.95,
    b2=0.95,
    shampoo_beta=0.95,
    eps=1e-8,
    weight_decay=0.01,
    precondition_frequency=10,
    block_size=10000,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """SOAP: chain(scale_by_soap(b1, b2, shampoo_beta, eps, precondition_frequency,
    block_size), add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate)).
    Defaults are the paper's code's (lr 3e-3, betas 0.95, weight decay 0.01, frequency 10).

    References:
        Vyas et al., SOAP: Improving and Stabilizing Shampoo using Adam, 2024, Algorithm 1.
    """
    return maximizing(
        chain(
            scale_by_soap(b1, b2, shampoo_beta, eps, precondition_frequency, block_size),
            add_decayed_weights(weight_decay),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )
