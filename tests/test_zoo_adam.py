"""The Adam family against NumPy float64 references written from each paper's algorithm box,
and against torch.optim trajectories (``fixtures/zoo_adam.npz``, ``fixtures/make_zoo_adam.py``).

Every optimizer here is elementwise, so each reference runs on the tree's leaves concatenated
into one vector. Each reference's keyword defaults are the defaults gradtx claims (torch's,
else the paper's), so a case with no arguments also checks the defaults.
"""

from __future__ import annotations

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.registry import example_params

STEPS = 25
FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "zoo_adam.npz"


def _grads(dtype):
    """STEPS gradients shaped like example_params: normals times a per-step scale in [0.2, 2]
    (so that second moments fall as well as rise), a quarter of the entries scaled by 1e-4
    (so that the placement of eps shows)."""
    rng = np.random.default_rng(11)
    shapes = [x.shape for x in jax.tree.leaves(example_params())]
    out = []
    for _ in range(STEPS):
        scale = rng.uniform(0.2, 2.0)
        leaves = []
        for shape in shapes:
            g = rng.standard_normal(shape) * scale
            leaves.append(np.where(rng.random(shape) < 0.25, g * 1e-4, g))
        out.append(leaves)
    treedef = jax.tree.structure(example_params())
    return [jax.tree.unflatten(treedef, [jnp.asarray(x, dtype) for x in g]) for g in out]


def _flat(tree):
    return np.concatenate([np.asarray(x, np.float64).ravel() for x in jax.tree.leaves(tree)])


def _trajectory(tx, params, grads):
    """The updates (STEPS, N) of ``len(grads)`` steps of ``tx`` from ``params``.

    Run eagerly: on this small tree the per-operation kernels, cached across cases, cost less
    than compiling one program per case.
    """
    state, out = tx.init(params), []
    for g in grads:
        u, state = tx.update(g, state, params)
        params = gradtx.apply_updates(params, u)
        out.append(_flat(u))
    return np.stack(out)


def _rel_error(got, want):
    """max |got - want| / max |want|, per step (updates of one step share a scale)."""
    scale = np.max(np.abs(want), axis=1, keepdims=True)
    return float(np.max(np.abs(got - want) / scale))


# ----------------------------------------------------------------------------- references
# Each takes the initial parameters p (N,) and the gradients G (T, N) and returns the updates
# (T, N) that are added to the parameters. wd with decoupled=False is torch's coupled L2 term
# (g += wd * p before the moments); decoupled=True is AdamW's (step += lr * wd * p).


def _decay(g, p, wd, decoupled):
    return g + wd * p if (wd and not decoupled) else g


def ref_adamax(p, G, lr=2e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False):
    """Kingma and Ba 2015, Algorithm 2 (AdaMax), eps inside the max as torch.optim.Adamax:
    m = b1 m + (1 - b1) g; u = max(b2 u, |g| + eps); x -= lr / (1 - b1^t) * m / u."""
    p, m, u, out = p.copy(), 0 * p, 0 * p, []
    for t, g in enumerate(G, 1):
        g = _decay(g, p, wd, decoupled)
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        step = -(lr / (1 - b1**t)) * m / u - (lr * wd * p if decoupled else 0)
        p, out = p + step, out + [step]
    return np.stack(out)


def ref_amsgrad(p, G, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, optax_max=False):
    """Reddi et al. 2018, Algorithm 2 (v_hat = max(v_hat, v)) with Adam's bias corrections
    applied after the maximum, as torch.optim.Adam(amsgrad=True); optax_max=True keeps the
    maximum of the corrected v instead (optax 0.2.8). wd is decoupled (AdamW)."""
    p, m, v, vmax, out = p.copy(), 0 * p, 0 * p, 0 * p, []
    for t, g in enumerate(G, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if optax_max:
            vmax = np.maximum(vmax, v / (1 - b2**t))
            denom = np.sqrt(vmax) + eps
        else:
            vmax = np.maximum(vmax, v)
            denom = np.sqrt(vmax / (1 - b2**t)) + eps
        step = -lr * (m / (1 - b1**t)) / denom - lr * wd * p
        p, out = p + step, out + [step]
    return np.stack(out)


def ref_nadam(p, G, lr=2e-3, b1=0.9, b2=0.999, eps=1e-8, psi=4e-3, wd=0.0, decoupled=False):
    """Dozat 2016, Algorithm 2 with the momentum schedule mu_t = b1 (1 - 0.5 * 0.96^(t psi))
    (torch.optim.NAdam's documented algorithm); psi = inf is constant momentum b1."""
    p, m, v, prod, out = p.copy(), 0 * p, 0 * p, 1.0, []
    for t, g in enumerate(G, 1):
        g = _decay(g, p, wd, decoupled)
        mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        prod *= mu
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = (1 - mu) / (1 - prod) * g + mu_next / (1 - prod * mu_next) * m
        step = -lr * m_hat / (np.sqrt(v / (1 - b2**t)) + eps) - (lr * wd * p if decoupled else 0)
        p, out = p + step, out + [step]
    return np.stack(out)


def ref_radam(
    p, G, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, threshold=5.0, wd=0.0, decoupled=False,
    optax_eps=False, nesterov=False,
):  # fmt: skip
    """Liu et al. 2020, Algorithm 2: rho_t = rho_inf - 2 t b2^t / (1 - b2^t); when rho_t >
    threshold the step is r_t * m_hat * l_t with l_t = sqrt(1 - b2^t) / (sqrt(v) + eps) (eps as
    in torch and the authors' code; optax_eps: 1 / (sqrt(v / (1 - b2^t)) + eps)), else m_hat."""
    p, m, v, out = p.copy(), 0 * p, 0 * p, []
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(G, 1):
        g = _decay(g, p, wd, decoupled)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if nesterov:
            m_hat = b1 * m / (1 - b1 ** (t + 1)) + (1 - b1) * g / (1 - b1**t)
        else:
            m_hat = m / (1 - b1**t)
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho > threshold:
            r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            if optax_eps:
                adaptive = 1 / (np.sqrt(v / (1 - b2**t)) + eps)
            else:
                adaptive = math.sqrt(1 - b2**t) / (np.sqrt(v) + eps)
            step = -lr * r * m_hat * adaptive
        else:
            step = -lr * m_hat
        step = step - (lr * wd * p if decoupled else 0)
        p, out = p + step, out + [step]
    return np.stack(out)


def ref_adabelief(p, G, lr=1e-3, b1=0.9, b2=0.999, eps=1e-16):
    """Zhuang et al. 2020, Algorithm 2: s = b2 s + (1 - b2) (g - m)^2 + eps;
    x -= lr * (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps)."""
    p, m, s, out = p.copy(), 0 * p, 0 * p, []
    for t, g in enumerate(G, 1):
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * (g - m) ** 2 + eps
        step = -lr * (m / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps)
        p, out = p + step, out + [step]
    return np.stack(out)


def ref_yogi(p, G, lr=1e-2, b1=0.9, b2=0.999, eps=1e-3, v0=1e-6, m0=0.0):
    """Zaheer et al. 2018, Algorithm 2: v = v - (1 - b2) sign(v - g^2) g^2, m_0 = 0, v_0 the
    authors' 1e-6, with Adam's bias corrections; m0 = v0 is optax 0.2.8's start."""
    p, m, v, out = p.copy(), m0 + 0 * p, v0 + 0 * p, []
    for t, g in enumerate(G, 1):
        m = b1 * m + (1 - b1) * g
        v = v - (1 - b2) * np.sign(v - g * g) * g * g
        step = -lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        p, out = p + step, out + [step]
    return np.stack(out)


def ref_adan(p, G, lr=1e-3, beta1=0.02, beta2=0.08, beta3=0.01, eps=1e-8, wd=0.0, weight=None):
    """Xie et al. 2022, Algorithm 1 in the paper's betas: m = (1 - beta1) m + beta1 g,
    v = (1 - beta2) v + beta2 (g - g_prev), n = (1 - beta3) n + beta3 (g + (1 - beta2)
    (g - g_prev))^2, step (m + (1 - beta2) v) / (sqrt(n) + eps), with the authors' bias
    corrections and g_prev = g at the first step; wd decoupled (authors' no_prox=True).
    weight replaces (1 - beta2) as the difference's weight (optax 0.2.8 uses beta2)."""
    w = 1 - beta2 if weight is None else weight
    p, m, v, n, prev, out = p.copy(), 0 * p, 0 * p, 0 * p, None, []
    for k, g in enumerate(G, 1):
        d = 0 * g if prev is None else g - prev
        m = (1 - beta1) * m + beta1 * g
        v = (1 - beta2) * v + beta2 * d
        n = (1 - beta3) * n + beta3 * (g + w * d) ** 2
        mh, vh = m / (1 - (1 - beta1) ** k), v / (1 - (1 - beta2) ** k)
        nh = n / (1 - (1 - beta3) ** k)
        step = -lr * (mh + w * vh) / (np.sqrt(nh) + eps) - lr * wd * p
        p, prev, out = p + step, g, out + [step]
    return np.stack(out)


INF = float("inf")
# (factory, gradtx kwargs, reference, reference kwargs)
CASES = [
    (gradtx.adamax, {}, ref_adamax, {}),
    (
        gradtx.adamax,
        {"learning_rate": 0.05, "weight_decay": 0.1},
        ref_adamax,
        {"lr": 0.05, "wd": 0.1},
    ),
    (gradtx.adamaxw, {"weight_decay": 0.1}, ref_adamax, {"wd": 0.1, "decoupled": True}),
    (gradtx.amsgrad, {}, ref_amsgrad, {}),
    (gradtx.amsgrad, {"correct_before_max": True}, ref_amsgrad, {"optax_max": True}),
    (gradtx.adamw, {"amsgrad": True, "learning_rate": 0.05}, ref_amsgrad, {"lr": 0.05, "wd": 1e-2}),
    (gradtx.nadam, {}, ref_nadam, {}),
    (gradtx.nadam, {"momentum_decay": INF}, ref_nadam, {"psi": INF}),
    (
        gradtx.nadam,
        {"weight_decay": 0.1, "learning_rate": 0.05},
        ref_nadam,
        {"wd": 0.1, "lr": 0.05},
    ),
    (gradtx.nadamw, {}, ref_nadam, {"wd": 1e-2, "decoupled": True}),
    (gradtx.radam, {}, ref_radam, {}),
    (
        gradtx.radam,
        {"eps_on_corrected": True, "nesterov": True},
        ref_radam,
        {"optax_eps": True, "nesterov": True},
    ),
    (gradtx.radam, {"threshold": 8.0, "b2": 0.99}, ref_radam, {"threshold": 8.0, "b2": 0.99}),
    (
        gradtx.radam,
        {"weight_decay": 0.1, "decoupled_weight_decay": True, "learning_rate": 0.05},
        ref_radam,
        {"wd": 0.1, "decoupled": True, "lr": 0.05},
    ),
    (gradtx.adabelief, {}, ref_adabelief, {}),
    (gradtx.adabelief, {"eps": 1e-8, "eps_root": 1e-8}, ref_adabelief, {"eps": 1e-8}),
    (gradtx.yogi, {}, ref_yogi, {}),
    (gradtx.yogi, {"mu_starts_at_accumulator": True}, ref_yogi, {"m0": 1e-6}),
    (gradtx.adan, {}, ref_adan, {}),
    (
        gradtx.adan,
        {"weight_decay": 0.02, "learning_rate": 0.05},
        ref_adan,
        {"wd": 0.02, "lr": 0.05},
    ),
    (gradtx.adan, {"diff_weight": 1 - 0.92}, ref_adan, {"weight": 0.08}),
]
IDS = [
    f"{f.__name__}-{','.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
    for f, kw, _, _ in CASES
]


# RAdam's rho_t = rho_inf - 2 t b2^t / (1 - b2^t) is a difference of two numbers near
# rho_inf = 1999 that leaves about t: in float32 it carries an absolute error of about
# 1999 * 2**-24 = 1.2e-4 (optax computes it the same way; torch in Python float64), which
# reaches the rectified step as about 4e-5.
F32_TOL = {gradtx.radam: 1e-4}


def _params_for(cases):
    """Each case in float64 to 1e-10; the first case of each factory also in float32 to 1e-5."""
    seen, out = set(), []
    for case, case_id in zip(cases, IDS):
        out.append(pytest.param(*case, "float64", 1e-10, id=f"{case_id}-float64"))
        if case[0] not in seen:
            seen.add(case[0])
            tol = F32_TOL.get(case[0], 1e-5)
            out.append(pytest.param(*case, "float32", tol, id=f"{case_id}-float32"))
    return out


@pytest.mark.parametrize("factory,kwargs,reference,ref_kwargs,dtype,tol", _params_for(CASES))
def test_matches_paper_reference(factory, kwargs, reference, ref_kwargs, dtype, tol):
    """The update of each of STEPS steps on the nested example tree equals the reference's."""
    with jax.enable_x64(dtype == "float64"):
        dt = jnp.dtype(dtype)
        params = example_params(dt)
        grads = _grads(dt)
        got = _trajectory(factory(**kwargs), params, grads)
        want = reference(_flat(params), np.stack([_flat(g) for g in grads]), **ref_kwargs)
    err = _rel_error(got, want)
    assert err < tol, f"max relative error {err:.3g} (tolerance {tol:g})"


# ----------------------------------------------------------------------------- torch fixtures
# fixture case -> (gradtx factory, kwargs): torch's defaults are gradtx's, so only the
# arguments the fixture script sets are given.
TORCH_CASES = {
    "adamax": (gradtx.adamax, {}),
    "adamax_wd": (gradtx.adamax, {"weight_decay": 0.1}),
    "nadam": (gradtx.nadam, {}),
    "nadam_wd": (gradtx.nadam, {"weight_decay": 0.1}),
    "nadam_decoupled": (gradtx.nadam, {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    "nadam_decoupled:nadamw": (gradtx.nadamw, {"weight_decay": 0.1}),
    "radam": (gradtx.radam, {}),
    "radam_wd": (gradtx.radam, {"weight_decay": 0.1}),
    "radam_decoupled": (gradtx.radam, {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    "adam_amsgrad": (gradtx.adam, {"amsgrad": True}),
    "adam_amsgrad:amsgrad": (gradtx.amsgrad, {}),
    "adamw_amsgrad": (gradtx.adamw, {"amsgrad": True, "weight_decay": 0.1}),
    "adam_maximize": (gradtx.adam, {"maximize": True}),
}


def _fixture_tree(data, prefix):
    """The fixture's leaves ``prefix/<leaf>`` as the nested tree {w, b, block: {s, k}}."""

    def leaf(name):
        return data[f"{prefix}/{name}"]

    return {"w": leaf("w"), "b": leaf("b"), "block": {"s": leaf("s"), "k": leaf("k")}}


@pytest.mark.parametrize("case", list(TORCH_CASES))
def test_matches_torch(case):
    """25 float64 steps equal torch.optim's (the fixture's parameter changes) to 1e-10."""
    factory, kwargs = TORCH_CASES[case]
    data = np.load(FIXTURE)
    name = case.split(":")[0]
    with jax.enable_x64(True):
        params = jax.tree.map(jnp.asarray, _fixture_tree(data, "p0"))
        stacked = _fixture_tree(data, "g")
        steps = stacked["w"].shape[0]
        grads = [jax.tree.map(lambda x, i=i: jnp.asarray(x[i]), stacked) for i in range(steps)]
        got = _trajectory(factory(**kwargs), params, grads)
    leaves = jax.tree.leaves(_fixture_tree(data, name))
    want = np.concatenate([x.reshape(steps, -1) for x in leaves], axis=1)
    err = _rel_error(got, want)
    assert err < 1e-10, f"max relative error against torch {err:.3g}"


# ----------------------------------------------------------------------------- options


def test_amsgrad_flag_keeps_adam_unchanged():
    """amsgrad=False builds the chain of before (scale_by_adam and its state); True swaps in
    scale_by_amsgrad; AMSGrad has no Nesterov form."""
    params = example_params()
    state = gradtx.adam(amsgrad=False).init(params)
    assert type(state[0]) is gradtx.ScaleByAdamState
    assert type(gradtx.adamw(amsgrad=True).init(params)[0]) is gradtx.ScaleByAmsgradState
    with pytest.raises(ValueError, match="nesterov"):
        gradtx.adam(amsgrad=True, nesterov=True)


def test_bad_hyperparameters_name_the_argument():
    with pytest.raises(ValueError, match="scale_by_radam: b2=1.0"):
        gradtx.radam(b2=1.0)
    with pytest.raises(ValueError, match="momentum_decay=-1"):
        gradtx.nadam(momentum_decay=-1)
    with pytest.raises(TypeError, match="decoupled_weight_decay"):
        gradtx.nadam(weight_decay=0.1, decoupled_weight_decay="yes")


@pytest.mark.parametrize(
    "make",
    [
        lambda eps: gradtx.adam(0.1, eps=eps),
        lambda eps: gradtx.rmsprop(0.1, eps=eps),
        lambda eps: gradtx.adagrad(0.1, eps=eps),
    ],
    ids=["adam", "rmsprop", "adagrad"],
)
def test_a_concrete_eps_drops_the_zero_guard_without_changing_a_bit(make):
    """A Python eps >= the smallest normal skips the 0/0 guard (the denominator is >= eps);
    an array eps keeps it. Both must give the same bits, zero gradients and tiny moments
    included, over several jitted steps."""
    rng = np.random.default_rng(3)
    params = {"w": jnp.zeros(6, jnp.float32)}
    outs = []
    for eps in (1e-8, jnp.asarray(1e-8, jnp.float32)):
        tx = make(eps)
        state, step, got = tx.init(params), jax.jit(tx.update), []
        for t in range(4):
            g = rng.standard_normal(6).astype(np.float32) * np.float32(10.0 ** -(10 * t))
            g[::2] = 0
            u, state = step({"w": jnp.asarray(g)}, state)
            got.append(np.asarray(u["w"]))
        rng = np.random.default_rng(3)
        outs.append(np.stack(got))
    np.testing.assert_array_equal(outs[0], outs[1])
