"""GaLore against a NumPy float64 reference of Zhao et al. 2024, Algorithm 2.

Every T steps P = U[:, :r] of the gradient's SVD (or V[:, :r] for wide matrices); the Adam
moments (Kingma and Ba 2015, Algorithm 1) live on R = P^T G; the update is alpha * P @ N.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.contrib import GaLoreDimensionNumbers as D
from gradtx.contrib import galore


def galore_ref(params, grads, specs, *, lr, rank, gap, alpha, wd, b1=0.9, b2=0.999, eps=1e-8):
    p = {k: np.array(v, np.float64) for k, v in params.items()}
    proj, mu, nu = {}, {}, {}
    traj = []
    for t, g in enumerate(grads, start=1):
        for k in p:
            gk = np.asarray(g[k], np.float64)
            spec = specs[k]
            if spec is not None:
                red, out = spec
                shape = gk.shape
                g2 = np.transpose(gk, red + out).reshape(int(np.prod([shape[a] for a in red])), -1)
                m, n = g2.shape
                r = min(rank, m, n)
                if (t - 1) % gap == 0:
                    u, _, vh = np.linalg.svd(g2, full_matrices=False)
                    proj[k] = u[:, :r] if m >= n else vh[:r].T
                x = proj[k].T @ g2 if m >= n else g2 @ proj[k]
            else:
                x = gk
            mu[k] = b1 * mu.get(k, 0) + (1 - b1) * x
            nu[k] = b2 * nu.get(k, 0) + (1 - b2) * x**2
            n_ = (mu[k] / (1 - b1**t)) / (np.sqrt(nu[k] / (1 - b2**t)) + eps)
            if spec is not None:
                full = proj[k] @ n_ if m >= n else n_ @ proj[k].T
                tshape = [shape[a] for a in red + out]
                n_ = alpha * np.transpose(full.reshape(tshape), np.argsort(red + out))
            p[k] = p[k] - lr * (n_ + wd * p[k])
        traj.append({k: v.copy() for k, v in p.items()})
    return traj


def tree_and_grads(dtype, steps):
    k = jax.random.split(jax.random.PRNGKey(6), 4)
    params = {
        "tall": jax.random.normal(k[0], (6, 3), dtype),
        "wide": jax.random.normal(k[1], (2, 5), dtype),
        "t3": jax.random.normal(k[2], (2, 3, 4), dtype),
        "b": jax.random.normal(k[3], (4,), dtype),
    }
    grads = [
        jax.tree.map(lambda x, t=t: jnp.sin(2.5 * x + 0.3 * t) + 0.05 * t, params)
        for t in range(steps)
    ]
    return params, grads


@pytest.mark.parametrize("dtype,tol", [(jnp.float64, 1e-10), (jnp.float32, 1e-5)])
def test_galore_matches_numpy_reference(dtype, tol):
    dims = {"tall": D(), "wide": D(), "t3": D((0, 1), 2), "b": None}
    with jax.enable_x64(dtype == jnp.float64):
        params, grads = tree_and_grads(dtype, 20)
        tx = galore(
            0.05, rank=2, update_proj_gap=4, weight_decay=0.01, weight_dimension_numbers=dims
        )
        step = jax.jit(lambda g, s, p: tx.update(g, s, p))
        state, p, got = tx.init(params), params, []
        for g in grads:
            u, state = step(g, state, p)
            p = gradtx.apply_updates(p, u)
            got.append(p)
        want = galore_ref(
            {k: np.asarray(v) for k, v in params.items()},
            [{k: np.asarray(v) for k, v in g.items()} for g in grads],
            {"tall": ((0,), (1,)), "wide": ((0,), (1,)), "t3": ((0, 1), (2,)), "b": None},
            lr=0.05,
            rank=2,
            gap=4,
            alpha=0.25,
            wd=0.01,
        )
    err = max(
        float(np.max(np.abs(np.asarray(a[k], np.float64) - b[k])) / np.max(np.abs(b[k])))
        for a, b in zip(got, want)
        for k in b
    )
    assert err < tol, err


def test_galore_state_is_low_rank_and_abstract_init():
    params, _ = tree_and_grads(jnp.float32, 1)
    tx = galore(rank=2)
    abstract = jax.eval_shape(tx.init, params)
    st = abstract[0]
    assert st.projector["tall"].shape == (6, 2) and st.projector["wide"].shape == (5, 2)
    assert st.base_optimizer_state.mu["tall"].shape == (2, 3)
    assert st.projector["t3"].shape == (0, 0)  # 3-D: not projected by default


def test_bad_rank():
    with pytest.raises(ValueError, match="rank=0"):
        galore(rank=0)
