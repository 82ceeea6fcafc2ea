"""Rprop, Adadelta, gradient noise, optimistic methods, Polyak, DoG, ASGD and the smaller
transforms of the zoo_misc family, against NumPy float64 references written from the papers.

Each reference below is written from the paper's update rule (cited in its docstring) on
NumPy float64 arrays and shares nothing with gradtx. Each run takes 20 steps on a nested tree
with mixed shapes and a scalar leaf, where the gradient depends on the current parameters (so
an error compounds): to 1e-10 relative in float64 and 1e-5 in float32. torch.optim's own
trajectories (Rprop, Adadelta, ASGD, SGD with dampening and maximize) come from the fixture
``tests/fixtures/zoo_misc.npz`` written by ``tests/fixtures/make_zoo_misc.py``; optax 0.2.8 is
compared where its names are not in the dialect's parity cases.
"""

from __future__ import annotations

import json
import pathlib
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
import gradtx.compat.optax as gox
from tests.registry import example_grads, example_params

STEPS = 20
SHAPES = {"w": (4, 3), "b": (3,), "block": {"s": (), "k": (2, 2, 3)}}


def _tree_np(seed):
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: rng.standard_normal(s), SHAPES, is_leaf=lambda s: isinstance(s, tuple)
    )


PARAMS0 = _tree_np(7)
# a quarter of the noise entries scaled by 1e-4: tiny and ordinary gradients side by side
NOISE = [
    jax.tree.map(lambda a, m: np.where(m < 0.25, a * 1e-4, a), _tree_np(200 + i), _tree_np(300 + i))
    for i in range(STEPS)
]
TREEDEF = jax.tree.structure(PARAMS0)


def grad_np(x, noise):
    """The gradient of 0.65 * x ** 2 - cos(x) plus a fixed noise: depends on x."""
    return 1.3 * x + np.sin(x) + 0.3 * noise


def grad_jnp(x, noise):
    return x * jnp.asarray(1.3, x.dtype) + jnp.sin(x) + noise * jnp.asarray(0.3, x.dtype)


def value_np(xs):
    """A loss value for Polyak's step: 10 + sum(0.65 x ** 2 - cos x) over the tree."""
    return 10.0 + sum(float(np.sum(0.65 * x**2 - np.cos(x))) for x in xs)


def value_jnp(params):
    leaves = jax.tree.leaves(params)
    return 10.0 + sum(jnp.sum(0.65 * x**2 - jnp.cos(x)) for x in leaves)


def run_reference(rule, state):
    """Run ``rule(xs, gs, state, t) -> (xs, state)`` over the leaves for STEPS steps."""
    xs = jax.tree.leaves(PARAMS0)
    path = [list(xs)]
    for t in range(1, STEPS + 1):
        gs = [grad_np(x, n) for x, n in zip(xs, jax.tree.leaves(NOISE[t - 1]))]
        xs, state = rule(xs, gs, state, t)
        path.append(list(xs))
    return path


def run_gradtx(tx, dtype, with_value=False):
    params = jax.tree.map(lambda a: jnp.asarray(a, dtype), PARAMS0)
    noise = [jax.tree.map(lambda a: jnp.asarray(a, dtype), n) for n in NOISE]

    @jax.jit
    def step(params, state, noise):
        grads = jax.tree.map(grad_jnp, params, noise)
        extra = {"value": value_jnp(params)} if with_value else {}
        updates, state = tx.update(grads, state, params, **extra)
        return gradtx.apply_updates(params, updates), state

    state = tx.init(params)
    path = [jax.tree.leaves(params)]
    for t in range(STEPS):
        params, state = step(params, state, noise[t])
        path.append(jax.tree.leaves(params))
    return path, state


def _assert_path_close(got, want, rtol, atol):
    worst = 0.0
    for t, (g, w) in enumerate(zip(got, want)):
        for gl, wl in zip(g, w):
            gl = np.asarray(gl, np.float64)
            np.testing.assert_allclose(gl, wl, rtol=rtol, atol=atol, err_msg=f"step {t}")
            scale = np.maximum(np.abs(wl), atol / rtol)
            worst = max(worst, float(np.max(np.abs(gl - wl) / scale, initial=0.0)))
    return worst


TOL = {jnp.float64: (1e-10, 1e-12), jnp.float32: (1e-5, 1e-6)}


def _check(make, rule, state, dtype, with_value=False):
    want = run_reference(rule, state)
    rtol, atol = TOL[dtype]
    if dtype == jnp.float64:
        with jax.enable_x64(True):
            got, _ = run_gradtx(make(), dtype, with_value)
    else:
        got, _ = run_gradtx(make(), dtype, with_value)
    return _assert_path_close(got, want, rtol, atol)


DTYPES = pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32], ids=["f64", "f32"])


# ---- Rprop ---------------------------------------------------------------------------------


def ref_rprop(lr, eta_minus, eta_plus, lo, hi):
    """iRprop- (Igel and Huesken 2000, fig. 1; Riedmiller and Braun 1993, eq. 4-7): the step
    size grows by eta_plus while dE/dw keeps its sign, shrinks by eta_minus on a change, where
    the stored derivative is set to 0 and the weight does not move; w -= sign(dE/dw) * step."""

    def rule(xs, gs, state, t):
        steps, prevs = state
        out_x, out_s, out_p = [], [], []
        for x, g, step, prev in zip(xs, gs, steps, prevs):
            agree = g * prev
            step = np.where(agree > 0, np.minimum(step * eta_plus, hi), step)
            step = np.where(agree < 0, np.maximum(step * eta_minus, lo), step)
            g = np.where(agree < 0, 0.0, g)
            out_x.append(x - np.sign(g) * step)
            out_s.append(step)
            out_p.append(g)
        return out_x, (out_s, out_p)

    leaves = jax.tree.leaves(PARAMS0)
    return rule, ([np.full_like(x, lr) for x in leaves], [np.zeros_like(x) for x in leaves])


@DTYPES
def test_rprop_matches_irprop_minus(dtype):
    rule, state = ref_rprop(0.05, 0.4, 1.3, 1e-3, 0.2)
    _check(lambda: gradtx.rprop(0.05, 0.4, 1.3, 1e-3, 0.2), rule, state, dtype)


def test_rprop_defaults_are_torchs():
    rule, state = ref_rprop(0.01, 0.5, 1.2, 1e-6, 50.0)
    _check(gradtx.rprop, rule, state, jnp.float64)


def test_rprop_one_step_lag_returns_the_previous_update():
    """optax 0.2.8's lag (optax#1725): zeros first, then the last step's update, zeroed where
    the sign flips now."""
    lagged = gradtx.scale_by_rprop(0.1, one_step_lag=True)
    true = gradtx.scale_by_rprop(0.1)
    p = {"w": jnp.zeros(3)}
    s_lag, s_true = lagged.init(p), true.init(p)
    prev_true = None
    for g in ([1.0, -1.0, 2.0], [1.0, 1.0, 2.0], [-1.0, 1.0, 3.0], [1.0, 1.0, 1.0]):
        g = {"w": jnp.asarray(g)}
        u_lag, s_lag = lagged.update(g, s_lag)
        u_true, s_new = true.update(g, s_true)
        flip = np.asarray(g["w"]) * np.asarray(s_true.prev_updates["w"]) < 0
        want = np.zeros(3) if prev_true is None else np.where(flip, 0.0, prev_true)
        np.testing.assert_allclose(np.asarray(u_lag["w"]), want, rtol=1e-6)
        prev_true, s_true = np.asarray(u_true["w"]), s_new


# ---- Adadelta ------------------------------------------------------------------------------


def ref_adadelta(lr, rho, eps, weight_decay):
    """Zeiler 2012, Algorithm 1: E[g^2] = rho E[g^2] + (1 - rho) g^2; dx = -RMS[dx]_(t-1) /
    RMS[g]_t * g with RMS[y] = sqrt(E[y^2] + eps); E[dx^2] = rho E[dx^2] + (1 - rho) dx^2;
    x += lr * dx (torch's lr, and its weight decay added to g first)."""

    def rule(xs, gs, state, t):
        eg, ex = state
        out = ([], [], [])
        for x, g, a, b in zip(xs, gs, eg, ex):
            g = g + weight_decay * x
            a = rho * a + (1 - rho) * g * g
            dx = -np.sqrt(b + eps) / np.sqrt(a + eps) * g
            b = rho * b + (1 - rho) * dx * dx
            for lst, v in zip(out, (x + lr * dx, a, b)):
                lst.append(v)
        return out[0], (out[1], out[2])

    zeros = [np.zeros_like(x) for x in jax.tree.leaves(PARAMS0)]
    return rule, (zeros, list(zeros))


@DTYPES
def test_adadelta_matches_zeiler(dtype):
    rule, state = ref_adadelta(0.5, 0.8, 1e-5, 0.1)
    _check(lambda: gradtx.adadelta(0.5, 0.8, 1e-5, 0.1), rule, state, dtype)


def test_adadelta_defaults_are_torchs():
    rule, state = ref_adadelta(1.0, 0.9, 1e-6, 0.0)
    _check(gradtx.adadelta, rule, state, jnp.float64)


# ---- gradient noise ------------------------------------------------------------------------


def _noise_draws(seed, dtype):
    """The draws the docstring states: the key split in two, the second split per leaf."""
    leaves = jax.tree.leaves(PARAMS0)

    @jax.jit
    def draw(key):
        key, sample = jax.random.split(key)
        keys = jax.random.split(sample, len(leaves))
        return key, [jax.random.normal(k, x.shape, dtype) for k, x in zip(keys, leaves)]

    key, out = jax.random.key(seed), []
    for _ in range(STEPS):
        key, normals = draw(key)
        out.append([np.asarray(n) for n in normals])
    return out


def ref_noisy_sgd(lr, eta, gamma, draws):
    """Neelakantan et al. 2015, eq. (1): g_t + N(0, sigma_t ** 2) with sigma_t ** 2 =
    eta / (1 + t) ** gamma, t from 0; then x -= lr * (noisy g)."""

    def rule(xs, gs, state, t):
        sigma = np.sqrt(eta / t**gamma)
        return [x - lr * (g + sigma * n) for x, g, n in zip(xs, gs, draws[t - 1])], state

    return rule, None


@DTYPES
def test_noisy_sgd_matches_the_annealed_gaussian(dtype):
    with jax.enable_x64(dtype == jnp.float64):
        draws = _noise_draws(5, dtype)
    rule, state = ref_noisy_sgd(0.05, 0.3, 0.55, [[d.astype(np.float64) for d in s] for s in draws])
    _check(lambda: gradtx.noisy_sgd(0.05, 0.3, 0.55, key=5), rule, state, dtype)


def test_add_noise_draws_many_leaves_in_batches_with_the_per_leaf_bits(monkeypatch):
    """12 leaves of one shape, one of them float64 (so chunks of 4, 4 and 3 with the chunk
    size set to 4), two of another shape and a scalar: over two jitted steps, the noise is bit
    for bit the per-leaf draw of the docstring and optax's, and an rbg key (drawn leaf by leaf:
    vmap over rbg keys changes the bits) gives its own per-leaf draw. Fails if a batched draw
    took another leaf's key or the chunks were misaligned (checked)."""
    monkeypatch.setattr("gradtx.transforms._noise._DRAW_CHUNK", 4)
    with jax.enable_x64(True):
        g = [jnp.zeros((3, 4), jnp.float32) for _ in range(12)]
        g[5] = jnp.zeros((3, 4), jnp.float64)
        g += [jnp.zeros((5,), jnp.float32), jnp.zeros((5,), jnp.float32), jnp.zeros(())]

        def expected(key):
            key, sample = jax.random.split(key)
            keys = jax.random.split(sample, len(g))
            return key, [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, g)]

        for key in (jax.random.key(7), jax.random.key(7, impl="rbg")):
            tx = gradtx.add_noise(1.0, 0.0, key)
            step, state, want_key = jax.jit(tx.update), tx.init(g), key
            ox = optax.add_noise(1.0, 0.0, 7)
            ostate = ox.init(g)
            for _ in range(2):
                u, state = step(g, state)
                want_key, want = jax.jit(expected)(want_key)
                chex.assert_trees_all_equal(u, want)
                if jax.random.key_impl(key) == jax.random.key_impl(jax.random.key(0)):
                    with jax.numpy_dtype_promotion("standard"):  # optax: int count ** gamma
                        ou, ostate = jax.jit(ox.update)(g, ostate)
                    chex.assert_trees_all_equal(u, ou)


def test_add_noise_keys_and_bfloat16():
    """A seed, jax.random.key and jax.random.PRNGKey give the same key data (so the same
    noise); bfloat16 updates stay bfloat16, with noise of the asked size."""
    g = {"w": jnp.zeros((64, 2), jnp.bfloat16), "s": jnp.asarray(0.0, jnp.bfloat16)}
    states = [gradtx.add_noise(0.5, 0.55, k).init(g) for k in (3, jax.random.key(3))]
    states.append(gradtx.add_noise(0.5, 0.55, jax.random.PRNGKey(3)).init(g))
    chex.assert_trees_all_equal(*states)
    assert states[0].count.dtype == jnp.int32 and states[0].rng_key.dtype == jnp.uint32
    tx = gradtx.noisy_sgd(1.0, eta=0.5, key=3)
    u, _ = jax.jit(tx.update)(g, tx.init(g))
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(u))
    assert 0.5 < float(jnp.std(u["w"].astype(jnp.float32))) < 0.9  # sqrt(0.5) = 0.71


# ---- optimistic methods --------------------------------------------------------------------


def ref_ogd(lr, alpha, beta):
    """Mokhtari et al. 2020, eq. (6), generalized: x -= lr * ((alpha + beta) g_t -
    beta g_(t-1)), with g_0 standing in for g_(-1)."""

    def rule(xs, gs, prev, t):
        prev = gs if prev is None else prev
        xs = [x - lr * ((alpha + beta) * g - beta * p) for x, g, p in zip(xs, gs, prev)]
        return xs, gs

    return rule, None


@DTYPES
def test_optimistic_gradient_descent_matches_ogda(dtype):
    rule, state = ref_ogd(0.05, 0.7, 0.4)
    _check(lambda: gradtx.optimistic_gradient_descent(0.05, 0.7, 0.4), rule, state, dtype)


def ref_optimistic_adam(lr, optimism, b1, b2, eps):
    """Daskalakis et al. 2018, Algorithm 1 (Optimistic Adam), with Adam's bias correction:
    r_t = m_hat / (sqrt(v_hat) + eps); x -= lr * r_t + optimism * (r_t - r_(t-1)), r_0 = r_1."""

    def rule(xs, gs, state, t):
        ms, vs, rs = state
        new = ([], [], [], [])
        for i, (x, g) in enumerate(zip(xs, gs)):
            m = b1 * ms[i] + (1 - b1) * g
            v = b2 * vs[i] + (1 - b2) * g * g
            r = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
            r_prev = r if rs is None else rs[i]
            for lst, val in zip(new, (x - lr * r - optimism * (r - r_prev), m, v, r)):
                lst.append(val)
        return new[0], (new[1], new[2], new[3])

    zeros = [np.zeros_like(x) for x in jax.tree.leaves(PARAMS0)]
    return rule, (zeros, list(zeros), None)


@DTYPES
def test_optimistic_adam_matches_daskalakis(dtype):
    rule, state = ref_optimistic_adam(0.02, 0.02, 0.9, 0.999, 1e-8)
    _check(lambda: gradtx.optimistic_adam(0.02), rule, state, dtype)


def test_optimistic_adam_v2_matches_daskalakis():
    rule, state = ref_optimistic_adam(0.02, 0.02 * 0.5, 0.8, 0.99, 1e-8)
    _check(
        lambda: gradtx.optimistic_adam_v2(0.02, alpha=1.0, beta=0.5, b1=0.8, b2=0.99),
        rule,
        state,
        jnp.float64,
    )


# ---- Polyak, DoG, ASGD ---------------------------------------------------------------------


def ref_polyak(max_lr, scaling, f_min, eps, plus=False):
    """Loizou et al. 2021, eq. (7) (SPS_max, c = 1): gamma = min((f(x) - f*) / (||g||^2 +
    eps), gamma_b); x -= scaling * gamma * g (optax's documented formula)."""

    def rule(xs, gs, state, t):
        gap = value_np(xs) - f_min
        gap = max(gap, 0.0) if plus else gap
        gamma = min(gap / (sum(float(np.sum(g * g)) for g in gs) + eps), max_lr)
        return [x - scaling * gamma * g for x, g in zip(xs, gs)], state

    return rule, None


@DTYPES
def test_polyak_sgd_matches_sps_max(dtype):
    rule, state = ref_polyak(0.08, 0.7, 1.0, 1e-3)
    _check(lambda: gradtx.polyak_sgd(0.08, 0.7, 1.0, 1e-3), rule, state, dtype, with_value=True)


def test_polyak_sps_plus_and_optax_order():
    rule, state = ref_polyak(0.5, 1.0, 30.0, 0.0, plus=True)  # the gap is clipped at 0
    _check(
        lambda: gradtx.polyak_sgd(0.5, f_min=30.0, variant="sps+"),
        rule,
        state,
        jnp.float64,
        with_value=True,
    )
    # scale_before_step: the step sees ||scaling * g||, i.e. min(gap / (s^2 |g|^2), max) * s
    s = 0.5

    def rule_first(xs, gs, state, t):
        gamma = min((value_np(xs) - 0.0) / (s * s * sum(float(np.sum(g * g)) for g in gs)), 0.1)
        return [x - s * gamma * g for x, g in zip(xs, gs)], state

    _check(
        lambda: gradtx.polyak_sgd(0.1, s, scale_before_step=True),
        rule_first,
        None,
        jnp.float64,
        with_value=True,
    )


def ref_dog(reps_rel, eps):
    """Ivgi et al. 2023, Algorithm 1 per leaf (L-DoG, eq. 4): r_t = max(r_(t-1), ||x_t -
    x_0||), r_0 = reps_rel * (1 + ||x_0||); G_t = G_(t-1) + ||g_t||^2; x -= r_t /
    sqrt(G_t + eps) * g_t."""
    x0 = jax.tree.leaves(PARAMS0)

    def rule(xs, gs, state, t):
        rs, gsum = state
        rs = [max(r, float(np.linalg.norm((x - a).ravel()))) for r, x, a in zip(rs, xs, x0)]
        gsum = [s + float(np.sum(g * g)) for s, g in zip(gsum, gs)]
        return [x - r / np.sqrt(s + eps) * g for x, g, r, s in zip(xs, gs, rs, gsum)], (rs, gsum)

    return rule, ([reps_rel * (1 + float(np.linalg.norm(a.ravel()))) for a in x0], [0.0] * 4)


@DTYPES
def test_distance_over_gradients_matches_ldog(dtype):
    rule, state = ref_dog(1e-2, 1e-8)
    _check(
        lambda: gradtx.chain(
            gradtx.scale_by_distance_over_gradients(1e-2, 1e-8), gradtx.scale(-1.0)
        ),
        rule,
        state,
        dtype,
    )


def ref_asgd(lr, lambd, alpha, t0, weight_decay, axs):
    """torch.optim.ASGD's recursion (Bottou 2012, section 5.4; Polyak and Juditsky 1992):
    x = x (1 - lambd eta) - eta (g + wd x); ax = x if mu == 1 else ax + mu (x - ax); then
    eta = lr / (1 + lambd lr t) ** alpha and mu = 1 / max(1, t - t0) for the next step."""

    def rule(xs, gs, state, t):
        eta, mu, ax = state
        xs = [x * (1 - lambd * eta) - eta * (g + weight_decay * x) for x, g in zip(xs, gs)]
        ax = [x.copy() if mu == 1 else a + mu * (x - a) for x, a in zip(xs, ax)]
        axs.append(ax)
        return xs, (lr / (1 + lambd * lr * t) ** alpha, 1 / max(1, t - t0), ax)

    return rule, (lr, 1.0, [np.zeros_like(x) for x in jax.tree.leaves(PARAMS0)])


@DTYPES
def test_asgd_matches_torchs_recursion_and_keeps_the_average(dtype):
    axs = []
    rule, state = ref_asgd(0.05, 1e-2, 0.6, 4.0, 0.01, axs)
    want = run_reference(rule, state)
    rtol, atol = TOL[dtype]
    with jax.enable_x64(dtype == jnp.float64):
        got, final = run_gradtx(gradtx.asgd(0.05, 1e-2, 0.6, 4.0, 0.01), dtype)
        ax = jax.tree.leaves(gradtx.tree_get(final, "ax"))
    _assert_path_close(got, want, rtol, atol)
    _assert_path_close([ax], [axs[-1]], rtol, atol)
    # averaging has started: the average is not the last iterate
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(axs[-1], want[-1])) > 1e-3


# ---- centered RMS, dampening, schedule, constraints, masks --------------------------------


def ref_stddev(lr, decay, eps, eps_in_sqrt):
    """Graves 2013, eq. (38)-(41) without momentum: n = a n + (1 - a) g^2, gbar = a gbar +
    (1 - a) g, x -= lr * g / sqrt(n - gbar^2 + eps) (or eps outside the root, as torch)."""

    def rule(xs, gs, state, t):
        ns, ms = state
        ns = [decay * n + (1 - decay) * g * g for n, g in zip(ns, gs)]
        ms = [decay * m + (1 - decay) * g for m, g in zip(ms, gs)]
        var = [n - m * m for n, m in zip(ns, ms)]
        den = [np.sqrt(v + eps) if eps_in_sqrt else np.sqrt(v) + eps for v in var]
        return [x - lr * g / d for x, g, d in zip(xs, gs, den)], (ns, ms)

    zeros = [np.zeros_like(x) for x in jax.tree.leaves(PARAMS0)]
    return rule, (zeros, list(zeros))


@DTYPES
@pytest.mark.parametrize("eps_in_sqrt", [False, True])
def test_scale_by_stddev_matches_graves(dtype, eps_in_sqrt):
    rule, state = ref_stddev(0.01, 0.9, 1e-3, eps_in_sqrt)
    tx = lambda: gradtx.chain(  # noqa: E731
        gradtx.scale_by_stddev(0.9, 1e-3, eps_in_sqrt=eps_in_sqrt), gradtx.scale(-0.01)
    )
    _check(tx, rule, state, dtype)


def ref_sgd_dampening(lr, momentum, dampening):
    """torch.optim.SGD's buffer (Sutskever et al. 2013 with dampening): b = g at the first
    step, then b = momentum b + (1 - dampening) g; x -= lr * b."""

    def rule(xs, gs, bufs, t):
        bufs = (
            list(gs)
            if bufs is None
            else [momentum * b + (1 - dampening) * g for b, g in zip(bufs, gs)]
        )
        return [x - lr * b for x, b in zip(xs, bufs)], bufs

    return rule, None


@DTYPES
def test_sgd_dampening_matches_torchs_buffer(dtype):
    rule, state = ref_sgd_dampening(0.05, 0.9, 0.4)
    _check(lambda: gradtx.sgd(0.05, 0.9, dampening=0.4), rule, state, dtype)


def test_dampening_zero_keeps_the_state_and_numerics():
    """dampening=0 keeps the state without a count, and the array 0 (a count kept) changes
    nothing: the first step's undamped buffer equals the damped formula at 0."""
    params = example_params()
    plain, zero = gradtx.trace(0.9), gradtx.trace(0.9, dampening=0.0)
    assert jax.tree.structure(plain.init(params)) == jax.tree.structure(zero.init(params))
    assert zero.init(params).count == ()
    with jax.enable_x64(True):
        for tx in (gradtx.sgd(0.1, 0.9), gradtx.sgd(0.1, 0.9, dampening=jnp.asarray(0.0))):
            got, _ = run_gradtx(tx, jnp.float64)
            want = run_reference(ref_sgd_dampening(0.1, 0.9, 0.0)[0], None)
            _assert_path_close(got, want, 1e-10, 1e-12)


def test_schedule_nonnegative_and_mask():
    """scale_by_schedule: x += f(t) g; keep_params_nonnegative: x = max(x + u, 0) for x >= 0
    (and 0 where x + u < 0); conditionally_mask: no move on the masked steps."""

    def f(c):
        return -0.1 / (1 + c.astype(jnp.float32))

    def rule(xs, gs, state, t):
        lr = float(np.float32(-0.1) / np.float32(t))  # evaluated at count t - 1, in float32
        xs = [x + lr * g for x, g in zip(xs, gs)]
        return [np.where(x < 0, 0.0, x) for x in xs], state

    _check(
        lambda: gradtx.chain(gradtx.scale_by_schedule(f), gradtx.keep_params_nonnegative()),
        rule,
        None,
        jnp.float64,
    )

    def rule_mask(xs, gs, state, t):
        return ([x - 0.1 * g for x, g in zip(xs, gs)] if (t - 1) % 3 else list(xs)), state

    _check(
        lambda: gradtx.conditionally_mask(gradtx.sgd(0.1), lambda s: s % 3 != 0),
        rule_mask,
        None,
        jnp.float64,
    )


# ---- torch.optim fixtures ------------------------------------------------------------------

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "zoo_misc.npz"
LEAVES = ("w", "b", "block/s", "block/k")


def _from_torch(cls_name, kw):
    """The gradtx optimizer for a torch.optim class and its keyword arguments."""
    kw = dict(kw)
    lr = kw.pop("lr", None)
    maximize = kw.pop("maximize", False)
    if cls_name == "Rprop":
        etas, sizes = kw.pop("etas", (0.5, 1.2)), kw.pop("step_sizes", (1e-6, 50.0))
        return gradtx.rprop(0.01 if lr is None else lr, *etas, *sizes, maximize=maximize)
    if cls_name == "Adadelta":
        return gradtx.adadelta(1.0 if lr is None else lr, **kw, maximize=maximize)
    if cls_name == "ASGD":
        return gradtx.asgd(0.01 if lr is None else lr, **kw, maximize=maximize)
    if cls_name == "SGD":
        return gradtx.sgd(
            lr, kw.pop("momentum"), dampening=kw.pop("dampening", 0.0), maximize=maximize
        )
    raise AssertionError(cls_name)


with np.load(FIXTURE) as _z:
    TORCH = {k: _z[k] for k in _z.files}
TORCH_CASES = json.loads(str(TORCH["cases"]))


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_matches_torch_fixture(case):
    cls_name, kw = TORCH_CASES[case]
    tx = _from_torch(cls_name, kw)
    steps = TORCH[f"grads/{LEAVES[0]}"].shape[0]
    with jax.enable_x64(True):
        params = {
            "w": jnp.asarray(TORCH[f"{case}/params/w"][0]),
            "b": jnp.asarray(TORCH[f"{case}/params/b"][0]),
            "block": {
                "s": jnp.asarray(TORCH[f"{case}/params/block/s"][0]),
                "k": jnp.asarray(TORCH[f"{case}/params/block/k"][0]),
            },
        }
        names = {"w": "w", "b": "b", "block": {"s": "block/s", "k": "block/k"}}
        grads = jax.tree.map(lambda n: jnp.asarray(TORCH[f"grads/{n}"]), names)

        def body(carry, g):
            p, s = carry
            u, s = tx.update(g, s, p)
            p = gradtx.apply_updates(p, u)
            return (p, s), p

        (_, state), path = jax.jit(lambda p, g: jax.lax.scan(body, (p, tx.init(p)), g))(
            params, grads
        )
        for leaf, name in zip(jax.tree.leaves(path), jax.tree.leaves(names)):
            want = TORCH[f"{case}/params/{name}"][1:]
            assert leaf.shape == want.shape
            np.testing.assert_allclose(np.asarray(leaf), want, rtol=1e-10, atol=1e-13, err_msg=name)
        if cls_name == "ASGD":
            ax = gradtx.tree_get(state, "ax")
            for leaf, name in zip(jax.tree.leaves(ax), jax.tree.leaves(names)):
                want = TORCH[f"{case}/ax/{name}"][steps - 1]
                np.testing.assert_allclose(np.asarray(leaf), want, rtol=1e-10, atol=1e-13)


# ---- optax 0.2.8 ---------------------------------------------------------------------------


def _compare_with_optax(ours, theirs, extra=None, steps=10, rtol=1e-10, atol=1e-12):
    """Run both ``steps`` steps on the example tree in float64 (optax's side under standard
    promotion: some of its transforms fail under strict promotion) and compare the updates."""
    extra = extra or {}
    with jax.enable_x64(True):
        params = example_params(jnp.float64)
        grads = [example_grads(i, jnp.float64) for i in range(steps)]

        @jax.jit
        def step(params, s_ours, s_theirs, g):
            u_ours, s_ours = ours.update(g, s_ours, params, **extra)
            with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
                u_theirs, s_theirs = theirs.update(g, s_theirs, params, **extra)
            return gradtx.apply_updates(params, u_ours), s_ours, s_theirs, u_ours, u_theirs

        s_ours, s_theirs = ours.init(params), theirs.init(params)
        for g in grads:
            params, s_ours, s_theirs, u_ours, u_theirs = step(params, s_ours, s_theirs, g)
            for a, b in zip(jax.tree.leaves(u_ours), jax.tree.leaves(u_theirs)):
                np.testing.assert_allclose(
                    np.asarray(a), np.asarray(b).reshape(np.shape(a)), rtol=rtol, atol=atol
                )


def test_optax_names_outside_the_parity_cases():
    """The two optax names tests/test_compat_optax.py cannot run (see the registry)."""
    pairs = [
        (
            gox.scale_by_distance_over_gradients(1e-3),
            optax.scale_by_distance_over_gradients(1e-3),
        ),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pairs.append((gox.optimistic_adam(0.1), optax.optimistic_adam(0.1)))
    for ours, theirs in pairs:
        _compare_with_optax(ours, theirs, rtol=1e-9)


def test_dialect_rprop_lags_and_adadelta_descends():
    """optax 0.2.8's rprop emits zeros first (optax#1725); its adadelta(learning_rate=None)
    ascends (optax#1242), the dialect's descends with learning rate 1."""
    g = {"w": jnp.ones(2)}
    u, _ = gox.rprop(0.01).update(g, gox.rprop(0.01).init(g))
    assert float(jnp.max(jnp.abs(u["w"]))) == 0.0
    u, _ = gradtx.rprop(0.01).update(g, gradtx.rprop(0.01).init(g))
    np.testing.assert_allclose(np.asarray(u["w"]), -0.01)
    tx = gox.adadelta()
    u, _ = tx.update(g, tx.init(g), g)
    assert float(u["w"][0]) < 0


# ---- errors --------------------------------------------------------------------------------


def test_errors_name_the_argument_and_the_fix():
    with pytest.raises(ValueError, match="nesterov=True with dampening=0.5"):
        gradtx.sgd(0.1, 0.9, nesterov=True, dampening=0.5)
    with pytest.raises(ValueError, match="dampening=1.5 is out of range"):
        gradtx.trace(0.9, dampening=1.5)
    with pytest.raises(ValueError, match="min_step_size=1.0 exceeds max_step_size=0.5"):
        gradtx.rprop(0.01, min_step_size=1.0, max_step_size=0.5)
    with pytest.raises(ValueError, match="eta_minus=0.0 is out of range"):
        gradtx.scale_by_rprop(eta_minus=0.0)
    tx = gradtx.polyak_sgd()
    g = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match="value=loss"):
        tx.update(g, tx.init(g), g)
    with pytest.raises(ValueError, match="variant='sps2'"):
        gradtx.scale_by_polyak(variant="sps2")
    with pytest.raises(TypeError, match="key='a' is not a random key"):
        gradtx.add_noise(key="a")
    with pytest.raises(ValueError, match="both key=1 and seed=2"):
        gradtx.add_noise(key=1, seed=2)
    with pytest.raises(TypeError, match="optimistic_adam_v2"):
        gradtx.optimistic_adam(lambda c: 0.1)
    with pytest.raises(TypeError, match="step_size_fn=0.1 is not callable"):
        gradtx.scale_by_schedule(0.1)
    for tx in (gradtx.asgd(), gradtx.scale_by_distance_over_gradients()):
        with pytest.raises(ValueError, match="params=None"):
            tx.update(g, tx.init(g))
