"""optax.contrib's Adam-like and utility optimizers against NumPy float64 references.

Each reference is written from the paper's algorithm box (cited in its docstring) for one leaf,
independently of gradtx's code, as ``step(x, g, t, s) -> update`` with t counted from 1 and
``s`` a dict of that leaf's state. Every case runs 25 steps on the registry's nested tree of
mixed shapes with a scalar leaf (``tests.registry.example_params`` / ``example_grads``),
applying the updates to the parameters, in float64 (1e-10 relative per element) and float32
(1e-5 relative to the tree's largest update at each step, against a float64 reference from
the same float32 draws); the update is jitted once per case and dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import gradtx.contrib as gc
from tests.registry import example_grads, example_params

STEPS = 25


# ---- references ------------------------------------------------------------------------------


def ref_adopt(lr, b1, b2, eps, clip=True, nesterov=False):
    """ADOPT (Taniguchi et al. 2024, Algorithm 1; Algorithm 2 with clip=True): v0 = g0 ** 2;
    for t >= 1, m_t = b1 m_{t-1} + (1 - b1) Clip(g_t / max(sqrt(v_{t-1}), eps), t ** (1/4)),
    theta_t = theta_{t-1} - lr m_t, v_t = b2 v_{t-1} + (1 - b2) g_t ** 2. The first gradient
    (g0) only starts v: its step is 0. nesterov: the step uses b1 m_t + (1 - b1) scaled."""

    def step(x, g, t, s):
        if t == 1:  # the paper's g0
            s["v"], s["m"] = g * g, np.zeros_like(g)
            return np.zeros_like(g)
        k = t - 1  # the paper's t
        scaled = g / np.maximum(np.sqrt(s["v"]), eps)
        if clip:
            scaled = np.clip(scaled, -(k**0.25), k**0.25)
        s["m"] = b1 * s["m"] + (1 - b1) * scaled
        s["v"] = b2 * s["v"] + (1 - b2) * g * g
        m = b1 * s["m"] + (1 - b1) * scaled if nesterov else s["m"]
        return -lr * m

    return step


def ref_ademamix(lr, b1, b2, b3, alpha, eps, wd=0.0):
    """AdEMAMix (Pagliardini et al. 2024, Algorithm 1): m1 = b1 m1 + (1 - b1) g,
    m2 = b3_t m2 + (1 - b3_t) g, nu = b2 nu + (1 - b2) g ** 2, m1_hat = m1 / (1 - b1 ** t),
    nu_hat = nu / (1 - b2 ** t), theta -= lr ((m1_hat + alpha_t m2) / (sqrt(nu_hat) + eps)
    + wd theta). ``b3`` and ``alpha`` are numbers or functions of the 0-based step t - 1."""

    def step(x, g, t, s):
        at = alpha(t - 1) if callable(alpha) else alpha
        bt = b3(t - 1) if callable(b3) else b3
        s["m1"] = b1 * s.get("m1", 0.0) + (1 - b1) * g
        s["m2"] = bt * s.get("m2", 0.0) + (1 - bt) * g
        s["nu"] = b2 * s.get("nu", 0.0) + (1 - b2) * g * g
        m1_hat = s["m1"] / (1 - b1**t)
        nu_hat = s["nu"] / (1 - b2**t)
        return -lr * ((m1_hat + at * s["m2"]) / (np.sqrt(nu_hat) + eps) + wd * x)

    return step


def alpha_warmup(alpha, t_alpha):
    """The paper's alpha scheduler (Pagliardini et al. 2024, eq. for f_alpha):
    alpha_t = min(t alpha / T_alpha, alpha)."""
    return lambda t: min(t * alpha / t_alpha, alpha)


def b3_warmup(b_start, b3, t_b3):
    """The paper's beta3 scheduler f_beta3: exp(log(b_start) log(b3) / ((1 - t / T) log(b3)
    + (t / T) log(b_start))), capped at b3."""

    def f(t):
        r = t / t_b3
        lb, ls = np.log(b3), np.log(b_start)
        return min(np.exp(ls * lb / ((1 - r) * lb + r * ls)), b3)

    return f


def ref_simplified_ademamix(lr, b1, b2, alpha, eps, wd=0.0):
    """Simplified AdEMAMix (Morwani et al. 2025, Simplified-AdEMAMix; as optax, with Adam's bias
    correction of the second moment): m = b1 m + g, n = b2 n + (1 - b2) g ** 2,
    n_hat = n / (1 - b2 ** t), theta -= lr ((m + alpha g) / (sqrt(n_hat) + eps) + wd theta)."""

    def step(x, g, t, s):
        s["m"] = b1 * s.get("m", 0.0) + g
        s["n"] = b2 * s.get("n", 0.0) + (1 - b2) * g * g
        n_hat = s["n"] / (1 - b2**t)
        return -lr * ((s["m"] + alpha * g) / (np.sqrt(n_hat) + eps) + wd * x)

    return step


def ref_madgrad(lr, momentum, eps, wd=0.0, eps_in_lr=False):
    """MADGRAD (Defazio and Jelassi 2021, Algorithm 1), k from 0: lambda_k = gamma sqrt(k + 1),
    s_{k+1} = s_k + lambda_k g_k, nu_{k+1} = nu_k + lambda_k g_k ** 2,
    z_{k+1} = x_0 - s_{k+1} / (cbrt(nu_{k+1}) + eps), x_{k+1} = (1 - c) x_k + c z_{k+1} with
    c = 1 - momentum; g_k includes wd x_k. eps_in_lr: gamma + eps (the authors' code)."""

    def step(x, g, t, s):
        s.setdefault("x0", x.copy())
        g = g + wd * x
        lam = (lr + (eps if eps_in_lr else 0.0)) * np.sqrt(t)
        s["s"] = s.get("s", 0.0) + lam * g
        s["nu"] = s.get("nu", 0.0) + lam * g * g
        z = s["x0"] - s["s"] / (np.cbrt(s["nu"]) + eps)
        c = 1 - momentum
        return (1 - c) * x + c * z - x

    return step


def ref_acprop(lr, b1, b2, eps, eps_root, wd=0.0, previous_mu=False):
    """ACProp (Zhuang et al. 2021, Algorithm 2): m_t = b1 m_{t-1} + (1 - b1) g_t,
    s_t = b2 s_{t-1} + (1 - b2) (g_t - m_t) ** 2 + eps_root, and the step uses the previous
    step's s: theta -= lr (g_t / (sqrt(s_{t-1} / (1 - b2 ** (t - 1))) + eps) + wd theta); the
    first step has no s_0 and takes g_1 / (1 + eps) (the authors' code, optax).
    previous_mu: the residual g_t - m_{t-1} (optax 0.2.8's code)."""

    def step(x, g, t, s):
        m_old = s.get("m", np.zeros_like(g))
        s["m"] = b1 * m_old + (1 - b1) * g
        r = g - (m_old if previous_mu else s["m"])
        v_old = s.get("s", np.zeros_like(g))
        s["s"] = b2 * v_old + (1 - b2) * r * r + eps_root
        v_hat = np.ones_like(g) if t == 1 else v_old / (1 - b2 ** (t - 1))
        return -lr * (g / (np.sqrt(v_hat) + eps) + wd * x)

    return step


def _exact_diag_hessian(x, cos=np.cos):
    """The Hessian diagonal of sum(0.75 x ** 2 + cos(x)) at x: 1.5 - cos(x)."""
    return 1.5 - cos(x)


def ref_sophia(lr, b1, b2, eps, gamma, clip, k, wd):
    """Sophia (Liu et al. 2023, Algorithm 3): m_t = b1 m_{t-1} + (1 - b1) g_t; if t mod k = 1,
    h_t = b2 h_{t-k} + (1 - b2) h_hat_t (here the exact diagonal at theta_t), else h_t = h_{t-1};
    theta -= lr wd theta; theta -= lr clip(m_t / max(gamma h_t, eps), 1) (bound ``clip``)."""

    def step(x, g, t, s):
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        if t % k == 1 % k:
            s["h"] = b2 * s.get("h", 0.0) + (1 - b2) * _exact_diag_hessian(x)
        u = np.clip(s["m"] / np.maximum(gamma * s["h"], eps), -clip, clip)
        return -lr * (u + wd * x)

    return step


def _exact_hessian_fn():
    return gradtx.stateless(lambda u, p: jax.tree.map(lambda x: _exact_diag_hessian(x, jnp.cos), p))


# ---- the table ---------------------------------------------------------------------------------

_b3s = b3_warmup(0.9, 0.999, 15)
_al = alpha_warmup(4.0, 10)


def _jnp_b3(t):
    r = jnp.asarray(t).astype(jnp.result_type(float)) / 15
    lb, ls = np.log(0.999), np.log(0.9)
    return jnp.minimum(jnp.exp(ls * lb / ((1 - r) * lb + r * ls)), 0.999)


def _jnp_alpha(t):
    return jnp.minimum(jnp.asarray(t).astype(jnp.result_type(float)) * 4.0 / 10, 4.0)


CASES = {
    "sophia": (
        # gamma=0.05, not the default 0.01: m / (gamma h) multiplies float32's rounding of m by
        # 1 / gamma, which at 0.01 reaches 2e-5 of the step; the float64 check is unaffected
        lambda: gc.sophia(
            0.01, hessian_diagonal_fn=_exact_hessian_fn(), update_interval=3, gamma=0.05
        ),
        ref_sophia(0.01, 0.965, 0.99, 1e-8, 0.05, 1.0, 3, 1e-4),
    ),
    "scale_by_sophia[gamma=1]": (
        lambda: gc.scale_by_sophia(0.9, 0.9, 1e-8, 1.0, 0.5, 1, _exact_hessian_fn()),
        ref_sophia(-1.0, 0.9, 0.9, 1e-8, 1.0, 0.5, 1, 0.0),
    ),
    "scale_by_acprop": (
        lambda: gc.scale_by_acprop(0.8, 0.95, 1e-8, 1e-12),
        ref_acprop(-1.0, 0.8, 0.95, 1e-8, 1e-12),
    ),
    "acprop[previous_mu]": (
        lambda: gc.acprop(0.01, weight_decay=0.1, residual_of_previous_mu=True),
        ref_acprop(0.01, 0.9, 0.999, 1e-16, 1e-16, wd=0.1, previous_mu=True),
    ),
    "scale_by_adopt": (lambda: gc.scale_by_adopt(0.8, 0.95), ref_adopt(-1.0, 0.8, 0.95, 1e-6)),
    "adopt[noclip]": (
        lambda: gc.adopt(0.1, 0.9, 0.99, 1e-6, use_clipping=False),
        ref_adopt(0.1, 0.9, 0.99, 1e-6, clip=False),
    ),
    "adopt[nesterov]": (
        lambda: gc.adopt(0.1, 0.9, 0.9999, nesterov=True),
        ref_adopt(0.1, 0.9, 0.9999, 1e-6, nesterov=True),
    ),
    "scale_by_ademamix": (
        lambda: gc.scale_by_ademamix(0.9, 0.99, 0.995, 3.0, 1e-8),
        ref_ademamix(-1.0, 0.9, 0.99, 0.995, 3.0, 1e-8),
    ),
    "ademamix[schedules]": (
        lambda: gc.ademamix(0.01, b3=_jnp_b3, alpha=_jnp_alpha, weight_decay=0.1),
        ref_ademamix(0.01, 0.9, 0.999, _b3s, _al, 1e-8, wd=0.1),
        # the float32 run's schedule returns float32: b3 rounded, and 1 - b3 is 1e-3 to 0.1
        ref_ademamix(0.01, 0.9, 0.999, lambda t: float(np.float32(_b3s(t))), _al, 1e-8, wd=0.1),
    ),
    "simplified_ademamix": (
        lambda: gc.simplified_ademamix(0.01, 0.9, 0.95, 2.0, weight_decay=0.05),
        ref_simplified_ademamix(0.01, 0.9, 0.95, 2.0, 1e-8, wd=0.05),
    ),
    "madgrad": (
        lambda: gc.madgrad(0.01, 0.9, 0.01),
        ref_madgrad(0.01, 0.9, 1e-6, wd=0.01),
    ),
    "scale_by_madgrad[eps_in_lr]": (
        lambda: gc.scale_by_madgrad(0.05, 0.5, 1e-3, eps_in_lr=True),
        ref_madgrad(0.05, 0.5, 1e-3, eps_in_lr=True),
    ),
}


def _reference(ref, dtype):
    """The reference in float64 from the example tree drawn in ``dtype`` (the draws differ)."""
    leaves = [np.asarray(a, np.float64) for a in jax.tree.leaves(example_params(dtype))]
    states = [{} for _ in leaves]
    out = []
    for t in range(1, STEPS + 1):
        gs = jax.tree.leaves(example_grads(t - 1, dtype))
        us = [ref(xl, np.asarray(g, np.float64), t, s) for xl, g, s in zip(leaves, gs, states)]
        leaves = [xl + u for xl, u in zip(leaves, us)]
        out.append(us)
    return out


def _gradtx(build, dtype):
    tx = build()
    params = example_params(dtype)
    state = tx.init(params)
    step = jax.jit(tx.update)
    out = []
    for t in range(STEPS):
        u, state = step(example_grads(t, dtype), state, params)
        params = gradtx.apply_updates(params, u)
        out.append([np.asarray(a, np.float64) for a in jax.tree.leaves(u)])
    return out


def _max_rel(got, want, floor=None):
    """Elementwise relative error (``floor``: the smallest magnitude divided by); floor=None:
    relative to the largest update of the whole tree at that step (float32 rounds the
    parameters and the scalar leaf's update may cancel to near 0: not the method's error)."""
    worst = 0.0
    for gs, ws in zip(got, want):
        scale = max(float(np.max(np.abs(w))) for w in ws) or 1.0  # 1: an all-zero step
        for g, w in zip(gs, ws):
            den = np.maximum(np.abs(w), floor) if floor else scale
            worst = max(worst, float(np.max(np.abs(g - w) / den)))
    return worst


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_paper_reference(name):
    build, ref, *ref32 = CASES[name]
    with jax.enable_x64(True):
        want = _reference(ref, jnp.float64)
        got = _gradtx(build, jnp.float64)
        err64 = _max_rel(got, want, 1e-12)
    got32 = _gradtx(build, jnp.float32)
    err32 = _max_rel(got32, _reference((ref32 or [ref])[0], jnp.float32))
    print(f"{name}: float64 max rel err {err64:.2e}, float32 {err32:.2e}")
    assert err64 < 1e-10, (name, err64)
    assert err32 < 1e-5, (name, err32)


# ---- SAM: two steps against a hand-computed ascent then descent -----------------------------


def _loss_grad(w, cos=np.cos):
    """The gradient of sum(0.75 w ** 2 + sin(w)) over a leaf: 1.5 w + cos(w)."""
    return 1.5 * w + cos(w)


def _sam_reference(leaves, lr, rho, cycles):
    """SAM (Foret et al. 2021, Algorithm 1 with eq. 2, p = 2): g = grad L(w),
    eps_hat = rho g / ||g||_2 over the whole tree, w = w - lr grad L(w + eps_hat).
    Returns the parameters after each of the 2 * cycles steps (ascent point, then new w)."""
    out = []
    w = [x.copy() for x in leaves]
    for _ in range(cycles):
        g = [_loss_grad(x) for x in w]
        norm = np.sqrt(sum(np.sum(x * x) for x in g))
        w_adv = [x + rho * gx / norm for x, gx in zip(w, g)]
        out.append(w_adv)
        w = [x - lr * _loss_grad(xa) for x, xa in zip(w, w_adv)]
        out.append(w)
    return out


@pytest.mark.parametrize("opaque", [False, True], ids=["transparent", "opaque"])
def test_sam_ascent_then_descent(opaque):
    lr, rho, cycles = 0.1, 0.05, 12

    def grads_at(p):
        return jax.tree.map(lambda x: _loss_grad(x, jnp.cos), p)

    for dtype, tol in ((jnp.float64, 1e-10), (jnp.float32, 1e-5)):
        with jax.enable_x64(dtype == jnp.float64):
            params = example_params(dtype)
            want = _sam_reference(
                [np.asarray(x, np.float64) for x in jax.tree.leaves(params)], lr, rho, cycles
            )
            adv = gradtx.chain(gc.normalize(), gradtx.sgd(rho))
            tx = gc.sam(gradtx.sgd(lr), adv, opaque_mode=opaque)
            state = tx.init(params)
            step = jax.jit(tx.update, static_argnames=("grad_fn",) if opaque else ())
            got = []
            kw = {"grad_fn": lambda p, i: grads_at(p)} if opaque else {}  # one fn: one trace
            for _ in range(cycles * (1 if opaque else 2)):
                u, state = step(grads_at(params), state, params, **kw)
                params = gradtx.apply_updates(params, u)
                got.append([np.asarray(x, np.float64) for x in jax.tree.leaves(params)])
            want = want[1::2] if opaque else want  # opaque: only the new w is returned
            for g_step, w_step in zip(got, want, strict=True):
                for g, w in zip(g_step, w_step):
                    np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


def test_normalize_and_split_real_and_imaginary():
    """normalize: g / ||g||_2 over the tree (Foret et al. 2021, eq. 2). split_real_and_imaginary:
    Adam (Kingma and Ba 2015, Algorithm 1) on the real and imaginary parts as two real arrays."""
    with jax.enable_x64(True):
        g = example_grads(0, jnp.float64)
        leaves = [np.asarray(x) for x in jax.tree.leaves(g)]
        norm = np.sqrt(sum(np.sum(x * x) for x in leaves))
        got, _ = gc.normalize().update(g, gc.normalize().init(g))
        for a, b in zip(jax.tree.leaves(got), leaves):
            np.testing.assert_allclose(np.asarray(a), b / norm, rtol=1e-12)

        rng = np.random.default_rng(0)
        z = rng.standard_normal((20, 3)) + 1j * rng.standard_normal((20, 3))
        params = {"z": jnp.zeros(3, jnp.complex128), "r": jnp.zeros((), jnp.float64)}
        tx = gc.split_real_and_imaginary(gradtx.adam(0.1, 0.9, 0.99, 1e-8))
        state = tx.init(params)
        update = jax.jit(tx.update)
        m = {k: np.zeros(3) for k in ("re", "im")}
        v = {k: np.zeros(3) for k in ("re", "im")}
        for t in range(1, 21):
            grads = {"z": jnp.asarray(z[t - 1]), "r": jnp.asarray(z[t - 1, 0].real)}
            u, state = update(grads, state, params)
            parts = {}
            for k, x in (("re", z[t - 1].real), ("im", z[t - 1].imag)):
                m[k] = 0.9 * m[k] + 0.1 * x
                v[k] = 0.99 * v[k] + 0.01 * x * x
                mh, vh = m[k] / (1 - 0.9**t), v[k] / (1 - 0.99**t)
                parts[k] = -0.1 * mh / (np.sqrt(vh) + 1e-8)
            assert u["z"].dtype == jnp.complex128
            np.testing.assert_allclose(np.asarray(u["z"]), parts["re"] + 1j * parts["im"], 1e-10)
            np.testing.assert_allclose(float(u["r"]), parts["re"][0], rtol=1e-10)


def test_hutchinson_estimator_is_unbiased():
    """Hutchinson (1989): E[u * (H u)] = diag(H) for Rademacher u. On the quadratic
    0.5 v^T A v of the whole tree flattened (v), the mean over 400 keys of the estimate is
    within 3 standard errors of diag(A) at every coordinate."""
    with jax.enable_x64(True):
        params = example_params(jnp.float64)
        n = sum(x.size for x in jax.tree.leaves(params))
        b = np.random.default_rng(0).standard_normal((n, n))
        a = jnp.asarray((b + b.T) / 2)

        def obj(p):
            v = jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(p)])
            return 0.5 * v @ a @ v

        def estimate(key):
            tx = gc.hutchinson_estimator_diag_hessian(key)
            out, _ = tx.update(params, tx.init(params), params, obj_fn=obj)
            return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(out)])

        samples = np.asarray(
            jax.jit(jax.vmap(estimate))(jax.random.split(jax.random.PRNGKey(7), 400))
        )
        mean, se = samples.mean(0), samples.std(0, ddof=1) / np.sqrt(len(samples))
        assert np.all(np.abs(mean - np.diag(np.asarray(a))) < 3 * se), (mean, np.diag(a), se)
        assert np.all(np.abs(samples) > 0)  # not a degenerate zero estimate


def test_sophia_keeps_bfloat16():
    """bf16 params: bf16 updates and bf16 slots; only Hutchinson's key is not a float."""
    params = example_params(jnp.bfloat16)
    tx = gc.sophia(0.01, update_interval=2)

    def obj(p):
        return sum(jnp.sum(0.5 * x.astype(jnp.float32) ** 2) for x in jax.tree.leaves(p))

    state = tx.init(params)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p, obj_fn=obj))
    for t in range(3):
        u, state = step(example_grads(t, jnp.bfloat16), state, params)
        params = gradtx.apply_updates(params, u)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves((u, params)))
    sophia_state = state[0]
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves((sophia_state.mu, sophia_state.nu)))
    assert sophia_state.hessian_fn_state.key.dtype == jnp.uint32
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(u))


SHARDING_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import gradtx, gradtx.contrib as gc
mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))
specs = {"w": P("data", "model"), "b": P("model"), "s": P()}
shapes = {"w": (8, 12), "b": (12,), "s": ()}
params = {k: jax.device_put(jnp.linspace(-1.0, 1.0, int(np.prod(v))).reshape(v),
                            NamedSharding(mesh, specs[k])) for k, v in shapes.items()}
grads = jax.tree.map(lambda p: 0.5 * p + 0.1, params)
def loss(p):
    return sum(jnp.sum(x ** 2) for x in jax.tree.leaves(p))
def check(state, label):
    n = 0
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        key = jax.tree_util.keystr(path)
        for name, p in params.items():
            if key.endswith("['" + name + "']"):
                assert leaf.sharding.is_equivalent_to(p.sharding, p.ndim), (label, key)
                n += 1
    assert n >= 3, (label, n)
for name, tx in {
    "adopt": gc.adopt(0.1), "ademamix": gc.ademamix(0.1), "madgrad": gc.madgrad(0.1),
    "simplified_ademamix": gc.simplified_ademamix(0.1), "acprop": gc.acprop(0.1),
    "sam": gc.sam(gradtx.sgd(0.1), gradtx.chain(gc.normalize(), gradtx.sgd(0.05))),
    "sophia": gc.sophia(0.1, update_interval=1),
}.items():
    state = tx.init(params)
    check(state, name + " init")
    abstract = jax.eval_shape(tx.init, params)
    assert jax.tree.structure(abstract) == jax.tree.structure(state), name
    assert [(a.shape, a.dtype) for a in jax.tree.leaves(abstract)] == [
        (a.shape, a.dtype) for a in jax.tree.leaves(state)], name
    step = jax.jit(lambda p, s, g: tx.update(g, s, p, obj_fn=loss))
    p, s = params, state
    for _ in range(2):
        u, s = step(p, s, grads)
        p = gradtx.apply_updates(p, u)
    check(s, name + " after jit")
print("ok")
"""


def test_state_follows_parameter_sharding():
    """On 8 simulated CPU devices each slot takes its parameter's sharding (a fresh process:
    the device count is fixed when jax starts)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, "-c", SHARDING_SCRIPT], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]
