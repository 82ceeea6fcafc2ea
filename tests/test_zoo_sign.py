"""Sign, trust-ratio, layer-wise and factored optimizers against NumPy float64 references.

Each reference below is written from the paper's algorithm box (cited in its docstring), one
leaf (one "layer") at a time, independently of gradtx's code. Every case runs 25 steps on a
nested tree of mixed shapes with a scalar leaf, in float64 (1e-10 relative) and float32 (1e-5
relative to the float64 reference); the update is jitted once per dtype. torch.optim.Adafactor
is checked through the committed fixture ``tests/fixtures/zoo_sign.npz``
(``tests/fixtures/make_zoo_sign.py``).
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

STEPS = 25
SHAPES = {"w": (3, 4), "b": (4,), "block": {"s": (), "k": (2, 3, 2)}}


def _tree(rng, lead=()):
    return jax.tree.map(
        lambda s: rng.standard_normal(lead + s), SHAPES, is_leaf=lambda x: isinstance(x, tuple)
    )


RNG = np.random.default_rng(0)
PARAMS0 = _tree(RNG)
GRADS = _tree(RNG, (STEPS,))  # leaf [t] is the gradient of step t + 1


def norm(x):
    return np.sqrt(np.sum(np.square(x)))


def rms(x):
    return np.sqrt(np.mean(np.square(x)))


# ---- references: step(x, g, t, state) -> new x, state is a dict kept per leaf ----------------


def ref_sign_sgd(lr):
    """signSGD (Bernstein et al. 2018, the signSGD algorithm box): x = x - lr * sign(g)."""
    return lambda x, g, t, s: x - lr * np.sign(g)


def ref_signum(lr, beta):
    """Signum (Bernstein et al. 2018, the Signum box): m = beta m + (1 - beta) g;
    x = x - lr * sign(m)."""

    def step(x, g, t, s):
        s["m"] = beta * s.get("m", 0.0) + (1 - beta) * g
        return x - lr * np.sign(s["m"])

    return step


def ref_lion(lr, b1, b2, wd):
    """Lion (Chen et al. 2023, Algorithm 2): c = b1 m + (1 - b1) g;
    x = x - lr * (sign(c) + wd * x); m = b2 m + (1 - b2) g."""

    def step(x, g, t, s):
        m = s.get("m", np.zeros_like(g))
        c = b1 * m + (1 - b1) * g
        s["m"] = b2 * m + (1 - b2) * g
        return x - lr * (np.sign(c) + wd * x)

    return step


def ref_lamb(lr, b1, b2, eps, wd):
    """LAMB (You et al. 2020, Algorithm 2, phi = identity): Adam's r_t = m_hat / (sqrt(v_hat)
    + eps); x = x - lr * ||x|| / ||r + wd x|| * (r + wd x) (ratio 1 if a norm is 0)."""

    def step(x, g, t, s):
        s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g * g
        r = (s["m"] / (1 - b1**t)) / (np.sqrt(s["v"] / (1 - b2**t)) + eps)
        u = r + wd * x
        ratio = norm(x) / norm(u) if norm(x) > 0 and norm(u) > 0 else 1.0
        return x - lr * ratio * u

    return step


def ref_lars(lr, wd, eta, momentum, of_decayed=False):
    """LARS (You et al. 2017, eq. 6 and Algorithm 1): local_lr = eta ||w|| / (||g|| + wd ||w||);
    v = m v + lr * local_lr * (g + wd w); w = w - v. of_decayed: optax's eta ||w|| / ||g + wd w||.
    """

    def step(x, g, t, s):
        u = g + wd * x
        denom = norm(u) if of_decayed else norm(g) + wd * norm(x)
        ratio = eta * norm(x) / denom if norm(x) > 0 and denom > 0 else 1.0
        s["v"] = momentum * s.get("v", 0.0) + lr * ratio * u
        return x - s["v"]

    return step


def ref_fromage(lr, min_norm):
    """Fromage (Bernstein et al. 2020, Algorithm 1): x = (x - lr ||x|| / ||g|| g) /
    sqrt(1 + lr ** 2), the norms floored at min_norm."""

    def step(x, g, t, s):
        ratio = max(norm(x), min_norm) / max(norm(g), min_norm)
        return (x - lr * ratio * g) / np.sqrt(1 + lr**2)

    return step


def ref_novograd(lr, b1, b2, eps, wd):
    """NovoGrad (Ginsburg et al. 2019, Algorithm 1), per layer: v_1 = ||g_1||^2, then
    v = b2 v + (1 - b2) ||g||^2; m = b1 m + g / (sqrt(v) + eps) + wd w; w = w - lr m
    (m_1 = g_1 / (sqrt(v_1) + eps) + wd w_1: the box has no eps at t = 1; gradtx keeps it)."""

    def step(x, g, t, s):
        n = np.sum(g * g)
        s["v"] = n if t == 1 else b2 * s["v"] + (1 - b2) * n
        s["m"] = b1 * s.get("m", 0.0) + g / (np.sqrt(s["v"]) + eps) + wd * x
        return x - lr * s["m"]

    return step


def ref_sm3(lr, momentum, eps):
    """SM3-II (Anil et al. 2019, Algorithm SM3-II) with one cover set per axis slice (a full
    accumulator for rank < 2), nu(i) = min over the sets r holding i of mu(r) + g(i)^2,
    mu(r) = max over i in r of nu(i); step g / sqrt(nu) (0 where nu is 0), here with eps inside
    the root and averaged with decay `momentum` (the authors' momentum), times lr."""

    def step(x, g, t, s):
        if g.ndim < 2:
            nu = s.get("acc", np.zeros_like(g)) + g * g
            s["acc"] = nu
        else:
            accs = s.get("accs", [np.zeros(n) for n in g.shape])
            low = np.full(g.shape, np.inf)
            for i in np.ndindex(*g.shape):
                low[i] = min(accs[a][i[a]] for a in range(g.ndim))
            nu = low + g * g
            new = [np.zeros(n) for n in g.shape]
            for i in np.ndindex(*g.shape):
                for a in range(g.ndim):
                    new[a][i[a]] = max(new[a][i[a]], nu[i])
            s["accs"] = new
        scaled = np.where(nu > 0, g / np.sqrt(nu + eps), 0.0)
        s["m"] = momentum * s.get("m", 0.0) + (1 - momentum) * scaled
        return x - lr * s["m"]

    return step


def _adafactor_u(g, t, s, c, eps1):
    """Adafactor's U_t = G_t / sqrt(V_hat_t) (Algorithms 4 and 5), factoring the last two
    axes with row sums R = ... 1_m and column sums C = 1_n^T ...: V_hat = R C / (1_n^T R)."""
    beta = 1 - t ** (-c)
    g2 = g * g + eps1
    if g.ndim < 2:
        s["v"] = beta * s.get("v", 0.0) + (1 - beta) * g2
        return g / np.sqrt(s["v"])
    s["r"] = beta * s.get("r", 0.0) + (1 - beta) * g2.sum(axis=-1, keepdims=True)
    s["c"] = beta * s.get("c", 0.0) + (1 - beta) * g2.sum(axis=-2, keepdims=True)
    v_hat = s["r"] * s["c"] / s["r"].sum(axis=-2, keepdims=True)
    return g / np.sqrt(v_hat)


def ref_adafactor(rho_max=1e-2, c=0.8, eps1=1e-30, eps2=1e-3, d=1.0):
    """Adafactor (Shazeer and Stern 2018, Algorithms 4-5, Section 9's settings):
    rho_t = min(rho_max, 1 / sqrt(t)); alpha = max(eps2, RMS(X)) rho_t;
    U_hat = U / max(1, RMS(U) / d); X = X - alpha U_hat."""

    def step(x, g, t, s):
        u = _adafactor_u(g, t, s, c, eps1)
        alpha = max(eps2, rms(x)) * min(rho_max, 1 / np.sqrt(t))
        return x - alpha * u / max(1.0, rms(u) / d)

    return step


def ref_adafactor_constant(lr, momentum, wd, c=0.8, eps1=1e-30, eps2=1e-3, d=1.0):
    """Adafactor with a constant step lr in place of rho_t (optax's), a moving average of the
    steps (no debiasing) and decoupled decay: m = momentum m + (1 - momentum) alpha U_hat;
    X = X - m - wd X."""

    def step(x, g, t, s):
        u = _adafactor_u(g, t, s, c, eps1)
        step_ = max(eps2, rms(x)) * lr * u / max(1.0, rms(u) / d)
        s["m"] = momentum * s.get("m", 0.0) + (1 - momentum) * step_
        return x - s["m"] - wd * x

    return step


def ref_param_block_norm(lr, min_scale):
    """x = x - lr * max(||x||, min_scale) * g (one norm per leaf)."""
    return lambda x, g, t, s: x - lr * max(norm(x), min_scale) * g


def _block_norm_sgd():
    return gradtx.chain(gradtx.scale_by_param_block_norm(), gradtx.scale_by_learning_rate(0.1))


CASES = {
    "sign_sgd": (lambda: gradtx.sign_sgd(0.1), ref_sign_sgd(0.1)),
    "signum": (lambda: gradtx.signum(0.1, 0.8), ref_signum(0.1, 0.8)),
    "lion": (
        lambda: gradtx.lion(0.05, 0.9, 0.99, weight_decay=0.1),
        ref_lion(0.05, 0.9, 0.99, 0.1),
    ),
    "lamb": (
        lambda: gradtx.lamb(0.05, weight_decay=0.1),
        ref_lamb(0.05, 0.9, 0.999, 1e-6, 0.1),
    ),
    "lars": (
        lambda: gradtx.lars(0.5, weight_decay=0.1, trust_coefficient=0.01),
        ref_lars(0.5, 0.1, 0.01, 0.9),
    ),
    "lars_of_decayed": (
        lambda: gradtx.lars(
            0.5, weight_decay=0.1, trust_coefficient=0.01, ratio_of_decayed_update=True
        ),
        ref_lars(0.5, 0.1, 0.01, 0.9, of_decayed=True),
    ),
    "fromage": (lambda: gradtx.fromage(0.1), ref_fromage(0.1, 1e-6)),
    "novograd": (
        lambda: gradtx.novograd(0.05, 0.9, 0.5, weight_decay=0.01),
        ref_novograd(0.05, 0.9, 0.5, 1e-6, 0.01),
    ),
    "sm3": (lambda: gradtx.sm3(0.1, 0.5), ref_sm3(0.1, 0.5, 1e-8)),
    "adafactor": (lambda: gradtx.adafactor(), ref_adafactor()),
    "adafactor_constant_step": (
        lambda: gradtx.adafactor(
            0.05, momentum=0.9, dtype_momentum=None, weight_decay_rate=0.01, relative_step=False
        ),
        ref_adafactor_constant(0.05, 0.9, 0.01),
    ),
    "param_block_norm": (_block_norm_sgd, ref_param_block_norm(0.1, 1e-3)),
}


def _reference(ref_step, params0):
    """The NumPy trajectory: params after each step, leaf by leaf."""
    leaves, treedef = jax.tree.flatten(params0)
    grads = treedef.flatten_up_to(GRADS)
    out = []
    for x, g in zip(leaves, grads):
        x, state, traj = np.asarray(x, np.float64), {}, []
        for t in range(1, STEPS + 1):
            x = ref_step(x, g[t - 1], t, state)
            traj.append(x)
        out.append(np.stack(traj))
    return treedef.unflatten(out)


def _gradtx(build, dtype):
    tx = build()
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), PARAMS0)
    step = jax.jit(tx.update)
    state, traj = tx.init(params), []
    for t in range(STEPS):
        g = jax.tree.map(lambda x, t=t: jnp.asarray(x[t], dtype), GRADS)
        updates, state = step(g, state, params)
        params = gradtx.apply_updates(params, updates)
        traj.append(params)
    return jax.tree.map(lambda *x: np.stack([np.asarray(v, np.float64) for v in x]), *traj)


def _worst(got, want):
    """The largest error of any step, relative to the largest reference value of its leaf."""
    errs = jax.tree.map(
        lambda a, b: np.max(np.abs(a - b).reshape(STEPS, -1).max(1) / np.abs(b).max()),
        got,
        want,
    )
    return max(jax.tree.leaves(errs))


@pytest.mark.parametrize("name", list(CASES))
def test_trajectory_matches_the_papers_algorithm(name):
    build, ref_step = CASES[name]
    want64 = _reference(ref_step, PARAMS0)
    with jax.enable_x64(True):
        err64 = _worst(_gradtx(build, jnp.float64), want64)
    assert err64 < 1e-10, f"{name}: float64 relative error {err64:.2e}"
    p32 = jax.tree.map(lambda x: np.asarray(x, np.float32).astype(np.float64), PARAMS0)
    err32 = _worst(_gradtx(build, jnp.float32), _reference(ref_step, p32))
    assert err32 < 1e-5, f"{name}: float32 relative error {err32:.2e}"


FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "zoo_sign.npz"


@pytest.mark.parametrize("config", ["defaults", "options"])
def test_adafactor_configured_as_torch_matches_torch(config):
    """gradtx.adafactor with torch.optim.Adafactor's options reproduces its float64 run.

    torch's (lr, beta2_decay, eps=(eps1, eps2), d, weight_decay) map to (learning_rate,
    decay_rate=-beta2_decay, eps=eps1, eps_scale=eps2, clipping_threshold=d,
    weight_decay_rate=lr * weight_decay), with eps_clamp=True (torch's placement of eps1).
    """
    data = np.load(FIXTURE)
    lr, beta2_decay, eps1, eps2, d, wd = (float(v) for v in data[f"{config}/hyper"])
    keys = ("m", "t", "v", "s")
    with jax.enable_x64(True):
        tx = gradtx.adafactor(
            lr,
            decay_rate=-beta2_decay,
            clipping_threshold=d,
            weight_decay_rate=lr * wd if wd else None,
            eps=None if np.isnan(eps1) else eps1,
            eps_scale=eps2,
            eps_clamp=True,
        )
        params = {k: jnp.asarray(data[f"{config}/{k}/init"]) for k in keys}
        state, step = tx.init(params), jax.jit(tx.update)
        for t in range(STEPS):
            grads = {k: jnp.asarray(data[f"{config}/{k}/grads"][t]) for k in keys}
            updates, state = step(grads, state, params)
            params = gradtx.apply_updates(params, updates)
            for k in keys:
                want = data[f"{config}/{k}/params"][t]
                err = np.max(np.abs(np.asarray(params[k]) - want)) / np.max(np.abs(want))
                assert err < 1e-10, f"{config}, step {t + 1}, leaf {k}: relative error {err:.2e}"


def test_adafactor_factors_only_what_it_should():
    """The last two axes by default (torch, the paper), the two largest with factor_largest
    (optax), nothing below min_dim_size_to_factor, and a full moment for vectors and scalars."""
    params = {"m": jnp.zeros((5, 3)), "t": jnp.zeros((4, 2, 3)), "v": jnp.zeros(4)}
    state = gradtx.scale_by_factored_rms().init(params)
    assert state.v_row["m"].shape == (5, 1) and state.v_col["m"].shape == (1, 3)
    assert state.v_row["t"].shape == (4, 2, 1) and state.v_col["t"].shape == (4, 1, 3)
    assert state.v["v"].shape == (4,) and state.v["m"] is None
    largest = gradtx.scale_by_factored_rms(factor_largest=True).init(params)
    # axes 2 (3) and 0 (4): the smaller of the two largest is the row axis
    assert largest.v_row["t"].shape == (1, 2, 3) and largest.v_col["t"].shape == (4, 2, 1)
    none = gradtx.scale_by_factored_rms(min_dim_size_to_factor=4).init(params)
    assert none.v["m"].shape == (5, 3) and none.v_row["m"] is None


def test_lars_masks_take_a_function_or_a_tree():
    """A leaf outside trust_ratio_mask gets plain decayed SGD with momentum; a leaf outside
    weight_decay_mask gets no decay; masks given as trees and as functions agree."""
    params = {"w": jnp.asarray([[3.0, 4.0]]), "b": jnp.asarray([1.0, -1.0])}
    grads = {"w": jnp.asarray([[1.0, 0.0]]), "b": jnp.asarray([0.5, 0.5])}
    as_tree = gradtx.lars(
        1.0,
        weight_decay=0.1,
        weight_decay_mask={"w": True, "b": False},
        trust_ratio_mask={"w": False, "b": True},
        trust_coefficient=0.5,
    )
    as_fn = gradtx.lars(
        1.0,
        weight_decay=0.1,
        weight_decay_mask=lambda p: {"w": True, "b": False},
        trust_ratio_mask=lambda p: jax.tree.map(lambda x: x.ndim == 1, p),
        trust_coefficient=0.5,
    )
    for tx in (as_tree, as_fn):
        u, _ = tx.update(grads, tx.init(params), params)
        np.testing.assert_allclose(u["w"], -(grads["w"] + 0.1 * params["w"]), rtol=1e-6)
        ratio = 0.5 * np.sqrt(2.0) / np.sqrt(0.5)  # eta ||b|| / ||g_b||, no decay on b
        np.testing.assert_allclose(u["b"], -ratio * grads["b"], rtol=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mode="):
        gradtx.scale_by_lion(mode="soft")
    with pytest.raises(ValueError, match="trust_coefficient=-1"):
        gradtx.scale_by_trust_ratio(trust_coefficient=-1.0)
    with pytest.raises(TypeError, match="min_dim_size_to_factor"):
        gradtx.scale_by_factored_rms(min_dim_size_to_factor=2.5)
    with pytest.raises(ValueError, match="b2=1.5"):
        gradtx.scale_by_sm3(b2=1.5)
    tx = gradtx.scale_by_factored_rms()
    state = tx.init({"a": jnp.zeros(2), "b": jnp.zeros(3)})
    with pytest.raises(ValueError, match="tree structure of updates"):
        tx.update({"a": jnp.zeros(2)}, state)


def test_lars_weight_decay_may_be_a_schedule():
    """A schedule weight decay (as optax allows) gives the run of its values."""
    params = {"w": jnp.asarray([[3.0, 4.0]]), "b": jnp.asarray([1.0, -1.0])}
    grads = {"w": jnp.asarray([[1.0, 0.0]]), "b": jnp.asarray([0.5, 0.5])}
    fixed, scheduled = gradtx.lars(0.1, 0.01), gradtx.lars(0.1, lambda count: 0.01)
    s1, s2 = fixed.init(params), scheduled.init(params)
    for _ in range(3):
        u1, s1 = fixed.update(grads, s1, params)
        u2, s2 = scheduled.update(grads, s2, params)
        np.testing.assert_allclose(u1["w"], u2["w"], rtol=1e-6)
        np.testing.assert_allclose(u1["b"], u2["b"], rtol=1e-6)
