"""Blocked Shampoo against a NumPy float64 reference of Gupta et al. 2018, Algorithm 1.

Per block G: L += G G^T, R += G^T G (from eps * I), P = L^(-1/4) G R^(-1/4); the blocks of a
matrix are cut at ``block_size`` (Sec. 5 of the paper: "we partition large tensors into
blocks"); the step size is grafted from Adam (Kingma and Ba 2015, Algorithm 1) per leaf.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.contrib import shampoo


def inv_root(s, p, eps):
    w, q = np.linalg.eigh(s)
    return (q * np.maximum(w, eps) ** (-1.0 / p)) @ q.T


def shampoo_ref(params, grads, *, lr, block, freq, beta2, eps, b1=0.9, b2=0.999, geps=1e-8):
    p = {k: np.array(v, np.float64) for k, v in params.items()}
    mu = {k: np.zeros_like(v) for k, v in p.items()}
    nu = {k: np.zeros_like(v) for k, v in p.items()}
    stats = {}
    for k, v in p.items():
        if v.ndim == 2:
            rows = [(i, min(i + block, v.shape[0])) for i in range(0, v.shape[0], block)]
            cols = [(j, min(j + block, v.shape[1])) for j in range(0, v.shape[1], block)]
            br, bc = min(block, v.shape[0]), min(block, v.shape[1])
            stats[k] = {
                (r, c): [eps * np.eye(br), eps * np.eye(bc), None, None] for r in rows for c in cols
            }
    traj = []
    for t, g in enumerate(grads, start=1):
        for k in p:
            gk = np.asarray(g[k], np.float64)
            mu[k] = b1 * mu[k] + (1 - b1) * gk
            nu[k] = b2 * nu[k] + (1 - b2) * gk**2
            a = (mu[k] / (1 - b1**t)) / (np.sqrt(nu[k] / (1 - b2**t)) + geps)
            if k not in stats:
                p[k] = p[k] - lr * a
                continue
            pre = np.zeros_like(gk)
            for ((r0, r1), (c0, c1)), st in stats[k].items():
                blk = np.zeros_like(st[0][:, :1] @ st[1][:1, :])  # padded block
                blk[: r1 - r0, : c1 - c0] = gk[r0:r1, c0:c1]
                st[0] = beta2 * st[0] + blk @ blk.T
                st[1] = beta2 * st[1] + blk.T @ blk
                if (t - 1) % freq == 0:
                    st[2], st[3] = inv_root(st[0], 4, eps), inv_root(st[1], 4, eps)
                pre[r0:r1, c0:c1] = (st[2] @ blk @ st[3])[: r1 - r0, : c1 - c0]
            p[k] = p[k] - lr * np.linalg.norm(a) / np.linalg.norm(pre) * pre
        traj.append({k: v.copy() for k, v in p.items()})
    return traj


def tree_and_grads(dtype, steps):
    k = jax.random.split(jax.random.PRNGKey(4), 3)
    params = {
        "w": jax.random.normal(k[0], (5, 7), dtype),  # 2 x 3 blocks of 3 x 3 (padded)
        "v": jax.random.normal(k[1], (3, 2), dtype),  # one block
        "b": jax.random.normal(k[2], (4,), dtype),  # Adam only
        "s": jnp.asarray(0.5, dtype),
    }
    grads = [
        jax.tree.map(lambda x, t=t: jnp.sin(2.0 * x + 0.4 * t) + 0.1 * t, params)
        for t in range(steps)
    ]
    return params, grads


@pytest.mark.parametrize("dtype,tol", [(jnp.float64, 1e-10), (jnp.float32, 1e-5)])
def test_shampoo_matches_numpy_reference(dtype, tol):
    cfg = dict(block=3, freq=3, beta2=0.99, eps=1e-3)
    with jax.enable_x64(dtype == jnp.float64):
        params, grads = tree_and_grads(dtype, 20)
        tx = shampoo(0.05, block_size=3, precondition_frequency=3, beta2=0.99, eps=1e-3)
        step = jax.jit(lambda g, s, p: tx.update(g, s, p))
        state, p, got = tx.init(params), params, []
        for g in grads:
            u, state = step(g, state, p)
            p = gradtx.apply_updates(p, u)
            got.append(p)
        want = shampoo_ref(
            {k: np.asarray(v) for k, v in params.items()},
            [{k: np.asarray(v) for k, v in g.items()} for g in grads],
            lr=0.05,
            **cfg,
        )
    err = max(
        float(np.max(np.abs(np.asarray(a[k], np.float64) - b[k])) / np.max(np.abs(b[k])))
        for a, b in zip(got, want)
        for k in b
    )
    assert err < tol, err


def test_abstract_init_and_blocks():
    params, _ = tree_and_grads(jnp.float32, 1)
    tx = shampoo(block_size=3)
    abstract = jax.eval_shape(tx.init, params)
    st = abstract[0].blocks["w"]
    assert st.stat_l.shape == (2, 3, 3, 3) and st.stat_r.shape == (2, 3, 3, 3)
    assert abstract[0].blocks["b"] is None


def test_bad_block_size():
    with pytest.raises(ValueError, match="block_size=0"):
        shampoo(block_size=0)
