"""Muon against NumPy float64 references, torch.optim.Muon (fixture) and optax.

The reference follows Jordan et al. 2024 ("Muon: An optimizer for hidden layers in neural
networks", the quintic Newton-Schulz iteration with (a, b, c) = (3.4445, -4.7750, 2.0315))
and Liu et al. 2025 ("Muon is Scalable for LLM Training", Algorithm 1: momentum, Nesterov
look-ahead, orthogonalisation, shape scaling, decoupled weight decay), with AdamW (Loshchilov
and Hutter 2019, Algorithm 2) for the leaves that are not matrices.
"""

from __future__ import annotations

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.contrib import MuonDimensionNumbers as D
from gradtx.contrib import muon, scale_by_muon
from tests.registry import example_grads, example_params

COEFFS = (3.4445, -4.7750, 2.0315)
FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "muon.npz"


def ns_ref(x, rows, eps, clamp):
    """Newton-Schulz on one matrix (Jordan et al. 2024), float64."""
    t = x.shape[0] > x.shape[1]
    x = x.T if t else x
    n = np.sqrt(np.sum(x * x))
    x = x / (max(n, eps) if clamp else n + eps)
    for a, b, c in rows:
        g = x @ x.T
        x = a * x + (b * g + c * g @ g) @ x
    return x.T if t else x


def ortho_ref(x, spec, rows, eps, clamp):
    """Reshape by dimension numbers to (batch, fan_in, fan_out), orthogonalise, undo."""
    red = (spec[0],) if isinstance(spec[0], int) else tuple(spec[0])
    out = (spec[1],) if isinstance(spec[1], int) else tuple(spec[1])
    red, out = tuple(a % x.ndim for a in red), tuple(a % x.ndim for a in out)
    batch = tuple(a for a in range(x.ndim) if a not in red + out)
    order = batch + red + out
    y = np.transpose(x, order)
    shp = y.shape
    nb = math.prod(x.shape[a] for a in batch)
    fi, fo = math.prod(x.shape[a] for a in red), math.prod(x.shape[a] for a in out)
    y = y.reshape(nb, fi, fo)
    z = np.stack([ns_ref(m, rows, eps, clamp) for m in y]).reshape(shp)
    return np.transpose(z, np.argsort(order)), fi, fo


def muon_ref(
    params,
    grads,
    specs,
    *,
    lr,
    beta=0.95,
    eps=1e-7,
    wd=0.1,
    ns_steps=5,
    nesterov=True,
    bias_correction=False,
    clamp=True,
    adaptive=False,
    rms=None,
    b1=0.9,
    b2=0.999,
    adam_eps=1e-8,
    adam_nesterov=False,
):
    """Params after each step. ``specs``: name -> (reduction, output) or None (AdamW)."""
    rows = [COEFFS] * ns_steps
    p = {k: np.array(v, np.float64) for k, v in params.items()}
    mu = {k: np.zeros_like(v) for k, v in p.items()}
    nu = {k: np.zeros_like(v) for k, v in p.items()}
    traj = []
    for t, g in enumerate(grads, start=1):
        for k in p:
            gk = np.asarray(g[k], np.float64)
            if specs[k] is None:  # AdamW, decay 0
                mu[k] = b1 * mu[k] + (1 - b1) * gk
                nu[k] = b2 * nu[k] + (1 - b2) * gk**2
                if adam_nesterov:
                    m_hat = b1 * mu[k] / (1 - b1 ** (t + 1)) + (1 - b1) * gk / (1 - b1**t)
                else:
                    m_hat = mu[k] / (1 - b1**t)
                p[k] = p[k] - lr * m_hat / (np.sqrt(nu[k] / (1 - b2**t)) + adam_eps)
                continue
            mu[k] = beta * mu[k] + (1 - beta) * gk
            bm = 1 - beta ** (t + 1) if nesterov else 1 - beta**t
            m, gg = (mu[k] / bm, gk / (1 - beta**t)) if bias_correction else (mu[k], gk)
            m_hat = beta * m + (1 - beta) * gg if nesterov else m
            o, fi, fo = ortho_ref(m_hat, specs[k], rows, eps, clamp)
            if adaptive:
                o = np.sum(m_hat * o) * o
            scale = math.sqrt(max(1, fo / fi)) if rms is None else rms * math.sqrt(max(fi, fo))
            p[k] = p[k] - lr * (scale * o + wd * p[k])
        traj.append({k: v.copy() for k, v in p.items()})
    return traj


def _flat(tree):
    return {
        "/".join(str(getattr(q, "key", q)) for q in path): x
        for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def run(tx, params, grads):
    step = jax.jit(lambda g, s, p: tx.update(g, s, p))
    state = tx.init(params)
    traj = []
    for g in grads:
        u, state = step(g, state, params)
        params = gradtx.apply_updates(params, u)
        traj.append(_flat(params))
    return traj


def max_rel(got, want):
    err = 0.0
    for a, b in zip(got, want):
        for k in b:
            x, y = np.asarray(a[k], np.float64), b[k]
            err = max(err, float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1e-300)))
    return err


STEPS = 22
K_SPEC = {"w": D(), "b": None, "block": {"s": None, "k": D(1, 2)}}  # k: 2 slices of 3 x 2

CASES = {
    # torch's defaults: only the (3, 4) matrix is Muon's; k, b, s go to AdamW
    "torch-defaults": (dict(learning_rate=0.02), dict(lr=0.02), None),
    # optax's rules through options, k as two matrices with a batch axis
    "options": (
        dict(
            learning_rate=0.05,
            beta=0.9,
            eps=1e-8,
            weight_decay=0.01,
            bias_correction=True,
            eps_clamp=False,
            adaptive=True,
            consistent_rms=0.2,
            adam_nesterov=True,
            adam_eps=1e-8,
            muon_weight_dimension_numbers=K_SPEC,
        ),
        dict(
            lr=0.05,
            beta=0.9,
            eps=1e-8,
            wd=0.01,
            bias_correction=True,
            clamp=False,
            adaptive=True,
            rms=0.2,
            adam_nesterov=True,
        ),
        K_SPEC,
    ),
    "no-nesterov": (
        dict(learning_rate=0.03, nesterov=False, ns_steps=3, batch_same_shape=True),
        dict(lr=0.03, nesterov=False, ns_steps=3),
        None,
    ),
}


def _ref_specs(spec):
    if spec is None:
        return {"w": (0, 1), "b": None, "block/s": None, "block/k": None}
    return {"w": (0, 1), "b": None, "block/s": None, "block/k": (1, 2)}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype,tol", [(jnp.float64, 1e-10), (jnp.float32, 1e-5)])
def test_muon_matches_numpy_reference(case, dtype, tol):
    """Jordan et al. 2024 / Liu et al. 2025 Algorithm 1 (+ AdamW fallback), 22 steps."""
    kwargs, ref_kwargs, spec = CASES[case]
    with jax.enable_x64(dtype == jnp.float64):
        params = example_params(dtype)
        grads = [example_grads(i, dtype) for i in range(STEPS)]
        got = run(muon(**kwargs), params, grads)
        want = muon_ref(_flat(params), [_flat(g) for g in grads], _ref_specs(spec), **ref_kwargs)
    assert max_rel(got, want) < tol


@pytest.mark.parametrize("config", ["default", "plain"])
def test_muon_matches_torch_fixture(config):
    """torch.optim.Muon (torch 2.13), Newton-Schulz in float64, 25 steps, three matrices in
    torch's (out, in) layout: MuonDimensionNumbers(1, 0) reads them as (fan_in, fan_out)."""
    data = np.load(FIXTURE)
    names = ("a", "b", "c")
    kw = {
        "default": dict(learning_rate=0.02),
        "plain": dict(
            learning_rate=0.05,
            weight_decay=0.01,
            beta=0.9,
            nesterov=False,
            consistent_rms=0.2,
            ns_steps=4,
        ),
    }[config]
    with jax.enable_x64(True):
        params = {k: jnp.asarray(data[f"params0/{k}"]) for k in names}
        steps = data["grads/a"].shape[0]
        grads = [{k: jnp.asarray(data[f"grads/{k}"][t]) for k in names} for t in range(steps)]
        tx = muon(**kw, muon_weight_dimension_numbers=D(1, 0))
        got = run(tx, params, grads)
    want = [{k: data[f"{config}/{k}"][t] for k in names} for t in range(steps)]
    assert max_rel(got, want) < 1e-10


def test_scale_by_muon_matches_optax_on_matrices():
    """optax's tree for its parity test has vectors, which optax.scale_by_muon rejects."""
    optax = pytest.importorskip("optax")
    import gradtx.compat.optax as dialect

    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        k = jax.random.split(jax.random.PRNGKey(5), 2)
        params = {
            "w": jax.random.normal(k[0], (3, 5), jnp.float64),
            "v": jax.random.normal(k[1], (6, 2), jnp.float64),
        }
        # optax 0.2.8's scale_by_muon needs the dimension numbers given (None fails in its
        # tree.map); both get the same tree
        dims = {"w": D(), "v": D()}
        odims = {
            "w": optax.contrib.MuonDimensionNumbers(),
            "v": optax.contrib.MuonDimensionNumbers(),
        }
        ours = dialect.contrib.scale_by_muon(weight_dimension_numbers=dims)
        theirs = optax.contrib.scale_by_muon(weight_dimension_numbers=odims)
        so, st = ours.init(params), theirs.init(params)
        for i in range(12):
            g = jax.tree.map(lambda x, i=i: jnp.sin(3 * x + 0.7 * i), params)
            uo, so = ours.update(g, so)
            ut, st = theirs.update(g, st)
            for a, b in zip(jax.tree.leaves(uo), jax.tree.leaves(ut)):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_vector_as_row_matrix_is_normalised_momentum():
    """A vector read as a 1 x n matrix (empty reduction axes): NS of v / |v| keeps the
    direction, with every singular value mapped through the same quintic."""
    v = jnp.asarray([3.0, -4.0, 0.0, 12.0])
    tx = scale_by_muon(beta=0.0, nesterov=False, weight_dimension_numbers=D((), 0))
    u, _ = tx.update(v, tx.init(v))
    s = 1.0
    for _ in range(5):
        s = COEFFS[0] * s + COEFFS[1] * s**3 + COEFFS[2] * s**5
    np.testing.assert_allclose(u, s * np.asarray(v) / 13.0, rtol=1e-6)


def test_batched_newton_schulz_matches_unbatched():
    """Stacking same-shape matrices into one call changes only the rounding: a batched matmul
    may take another kernel, so entries of size 0.6 differ by a few float32 ulps after five
    iterations (6e-7 on an AMD EPYC; within 1e-7 on the machines before it)."""
    k = jax.random.split(jax.random.PRNGKey(2), 3)
    params = {
        "a": jax.random.normal(k[0], (8, 16)),
        "b": jax.random.normal(k[1], (8, 16)),
        "c": jax.random.normal(k[2], (16, 8)),
    }
    grads = jax.tree.map(lambda x: jnp.cos(x), params)
    outs = []
    for batch in (False, True):
        tx = scale_by_muon(batch_same_shape=batch)
        outs.append(jax.jit(tx.update)(grads, tx.init(params))[0])
    for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1])):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=2e-6)  # 32 ulps of the largest entry


def test_abstract_init_and_state_layout():
    params = example_params()
    tx = muon(0.02, muon_weight_dimension_numbers=K_SPEC)
    abstract = jax.eval_shape(tx.init, params)
    concrete = tx.init(params)
    assert jax.tree.structure(abstract) == jax.tree.structure(concrete)
    state = concrete.inner_states["muon"][0]
    assert state.mu["w"].shape == (3, 4) and state.mu["block"]["k"].shape == (2, 3, 2)
    assert state.mu["b"] is None


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: scale_by_muon(ns_coeffs=(1.0, 2.0)), "ns_coeffs has shape"),
        (lambda: scale_by_muon(ns_steps=0), "ns_steps=0"),
        (lambda: scale_by_muon(beta=1.0), "beta=1.0"),
        (lambda: scale_by_muon(preconditioning="aol"), "preconditioning='aol'"),
        (lambda: scale_by_muon(shard_policy="owner"), "needs mesh="),
        (lambda: muon(ns_coeffs="polar"), "not a preset"),
    ],
)
def test_build_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_leaf_errors_name_the_leaf():
    params = example_params()
    with pytest.raises(ValueError, match="'b' has shape \\(4,\\)"):
        scale_by_muon().init(params)
    with pytest.raises(ValueError, match="leaf .block/(s|k)."):
        muon(muon_weight_dimension_numbers={"w": D(), "b": None, "block": D(0, 3)}).init(params)
    with pytest.raises(ValueError, match="not shaped like the parameters"):
        muon(muon_weight_dimension_numbers={"w": D(), "x": None}).init(params)
