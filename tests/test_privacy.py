"""DP-SGD (gradtx.contrib.dpsgd, differentially_private_aggregate) against NumPy float64.

The reference is Abadi et al. 2016, Algorithm 1, written for a list of leaves: per example i,
g_i = g_t(x_i); clip, g_i / max(1, |g_i| / C) with |g_i| the norm over all leaves; add noise,
(sum_i clipped_i + N(0, sigma^2 C^2 I)) / L; descend, theta -= eta g (with heavy-ball or
Nesterov momentum as optax's dpsgd has it). The exact part runs with noise_multiplier=0; the
noisy part reproduces the key stream (one split into n + 1 keys per step, as optax 0.2.8) with
jax.random and does the arithmetic in NumPy; a statistical check tests the noise's scale.
Every trajectory runs 24 steps on the registry's nested tree (mixed shapes, a scalar leaf)
with four examples per step.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import gradtx.contrib as gc
from tests.registry import example_grads, example_params

STEPS, BATCH = 24, 4
SCALES = (0.05, 0.4, 1.0, 2.5)  # examples inside and outside a clipping bound of 1.5


def _per_example(step, dtype):
    """Per-example gradients of step ``step``: a leading axis of BATCH examples on each leaf."""
    examples = [
        jax.tree.map(lambda g, s=s: s * g, example_grads(BATCH * step + i, dtype))
        for i, s in enumerate(SCALES)
    ]
    return jax.tree.map(lambda *g: jnp.stack(g), *examples)


def _stream(seed, params):
    """NumPy per-example gradients for every step (stacked over steps; example i scaled by
    SCALES[i]) and the noise of the key stream: per step, key, k_1..k_n = split(key, n + 1)
    and leaf j draws normal(k_j, its shape) in its dtype."""
    rng = np.random.default_rng(seed)
    scales = np.asarray(SCALES)

    def leaf(p):
        g = rng.standard_normal((STEPS, BATCH) + p.shape)
        return (g * scales.reshape((1, BATCH) + (1,) * p.ndim)).astype(p.dtype)

    grads = jax.tree.map(leaf, params)
    leaves = jax.tree.leaves(params)

    @jax.jit
    def draw(key):
        key, *keys = jax.random.split(key, len(leaves) + 1)
        return key, [jax.random.normal(k, p.shape, p.dtype) for k, p in zip(keys, leaves)]

    key, noise = jax.random.key(seed), []
    for _ in range(STEPS):
        key, z = draw(key)
        noise.append([np.asarray(x, np.float64) for x in z])
    return grads, noise


def np_dpsgd(params, grads, lr, clip, sigma, noise, momentum=None, nesterov=False):
    """Algorithm 1 of Abadi et al. 2016 in float64 on lists of leaves; returns each step's
    parameters. ``grads[t][j]`` has shape (L, *leaf_shape); ``noise[t][j]`` is N(0, I)."""
    x = [np.asarray(p, np.float64) for p in params]
    v = [np.zeros_like(p) for p in x]
    out = []
    for t, g in enumerate(grads):
        g = [np.asarray(a, np.float64) for a in g]
        lot = g[0].shape[0]
        norms = np.sqrt(sum((a.reshape(lot, -1) ** 2).sum(axis=1) for a in g))
        factor = 1.0 / np.maximum(1.0, norms / clip)
        mean = [
            (np.tensordot(factor, a, axes=1) + sigma * clip * z) / lot for a, z in zip(g, noise[t])
        ]
        if momentum is None:
            direction = mean
        else:
            v = [m + momentum * vv for m, vv in zip(mean, v)]
            direction = [m + momentum * vv for m, vv in zip(mean, v)] if nesterov else v
        x = [p - lr * d for p, d in zip(x, direction)]
        out.append(x)
    return out


CASES = [
    # (kwargs of dpsgd, reference's momentum, nesterov)
    ({"noise_multiplier": 0.0}, None, False),
    ({"noise_multiplier": 1.3, "momentum": 0.8, "nesterov": True}, 0.8, True),
]


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_dpsgd_matches_algorithm_1(dtype):
    lr, clip, seed = 0.05, 1.5, 11
    with jax.enable_x64(dtype == jnp.float64):
        params0 = example_params(dtype)
        grads, np_noise = _stream(seed, params0)
        cases = CASES if dtype == jnp.float64 else CASES[-1:]  # float32: the noisy case
        txs = [gc.dpsgd(lr, clip, seed=seed, **kwargs) for kwargs, _, _ in cases]

        @jax.jit
        def trajectories(grads):  # every case in one program: one compilation per dtype
            def run(tx):
                def body(carry, g):
                    p, s = carry
                    u, s = tx.update(g, s, p)
                    p = gradtx.apply_updates(p, u)
                    return (p, s), p

                return jax.lax.scan(body, (params0, tx.init(params0)), grads)[1]

            return [run(tx) for tx in txs]

        got_all = jax.tree.map(np.asarray, trajectories(grads))
        np_grads = [[a[t].astype(np.float64) for a in jax.tree.leaves(grads)] for t in range(STEPS)]
        leaves0 = jax.tree.leaves(params0)
        worst = 0.0
        for (kwargs, momentum, nesterov), got in zip(cases, got_all):
            sigma = kwargs["noise_multiplier"]
            want = np_dpsgd(leaves0, np_grads, lr, clip, sigma, np_noise, momentum, nesterov)
            for t in range(STEPS):
                for g, w in zip(jax.tree.leaves(got), want[t]):
                    g = g[t].astype(np.float64)
                    if dtype == jnp.float64:
                        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
                    else:  # float32: to 1e-5 of the parameters' scale (about 1)
                        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
                    worst = max(worst, float(np.max(np.abs(g - w)) / np.max(np.abs(w))))
        print(f"dpsgd {jnp.dtype(dtype).name}: largest error / largest parameter {worst:.2e}")


def test_noise_has_the_documented_scale():
    """Zero gradients: each update is noise of mean 0 and std l2_norm_clip * sigma / B."""
    clip, sigma, batch = 2.0, 1.5, 8
    tx = gc.differentially_private_aggregate(clip, sigma, key=jax.random.key(2))
    zeros = {"a": jnp.zeros((batch, 3, 2)), "b": jnp.zeros((batch, 15000))}
    state = tx.init(None)
    draws = []
    for _ in range(2):
        updates, state = tx.update(zeros, state)
        draws.append(np.asarray(updates["b"], np.float64).ravel())
    draws = np.concatenate(draws)  # 30000 draws: the std is known to about 0.4%
    want = clip * sigma / batch
    assert abs(draws.mean()) < 4 * want / np.sqrt(draws.size)
    np.testing.assert_allclose(draws.std(), want, rtol=0.02)
    assert np.abs(np.corrcoef(draws[:15000], draws[15000:])[0, 1]) < 0.05  # a fresh key per step


def test_matches_optax_contrib():
    """optax 0.2.8's dpsgd and differentially_private_aggregate give the same noise and means
    (the same key stream); optax runs with standard promotion and its seed warning silenced."""
    optax = pytest.importorskip("optax")
    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    rng = np.random.default_rng(2)
    grads = [
        {
            "w": jnp.asarray(rng.standard_normal((4, 3, 2)), jnp.float32),
            "b": jnp.asarray(rng.standard_normal((4, 2)), jnp.float32),
        }
        for _ in range(2)
    ]
    pairs = [
        (gc.dpsgd(0.1, 1.5, 0.9, 7, 0.9, True), "dpsgd", (0.1, 1.5, 0.9, 7, 0.9, True)),
        (
            gc.differentially_private_aggregate(1.5, 0.9, key=jax.random.key(4)),
            "differentially_private_aggregate",
            (1.5, 0.9, jax.random.key(4)),
        ),
    ]
    for ours, name, args in pairs:
        with jax.numpy_dtype_promotion("standard"), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            theirs = getattr(optax.contrib, name)(*args)
            s_theirs = theirs.init(params)
            want = []
            for g in grads:
                u, s_theirs = theirs.update(g, s_theirs, params)
                want.append(u)
        s_ours = ours.init(params)
        for g, w in zip(grads, want):
            u, s_ours = ours.update(g, s_ours, params)
            for a, b in zip(jax.tree.leaves(u), jax.tree.leaves(w)):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-6, atol=1e-7)


def test_vmap_over_clip_and_noise_multiplier_and_bfloat16():
    """A vmapped sweep over (l2_norm_clip, noise_multiplier) equals building with each value;
    bf16 per-example gradients give bf16 updates, and the key is uint32 key data."""
    params = {"w": jnp.ones((3, 2))}
    grads = {"w": jnp.asarray(np.random.default_rng(1).standard_normal((2, 4, 3, 2)), jnp.float32)}

    def run(clip, sigma):
        tx = gc.dpsgd(0.1, clip, sigma, seed=3, momentum=0.5)

        def body(carry, g):
            p, s = carry
            u, s = tx.update(g, s, p)
            return (gradtx.apply_updates(p, u), s), None

        return jax.lax.scan(body, (params, tx.init(params)), grads)[0][0]["w"]

    clips, sigmas = jnp.asarray([0.5, 1.0, 4.0]), jnp.asarray([0.0, 0.3, 2.0])
    swept = jax.jit(jax.vmap(run))(clips, sigmas)
    reference = jax.jit(run)  # traced values, one compilation: the Python-number path is the
    for i in range(3):  # contract test's (its entries are built with numbers)
        want = reference(clips[i], sigmas[i])
        np.testing.assert_allclose(np.asarray(swept[i]), np.asarray(want), rtol=1e-5, atol=1e-6)

    tx = gc.dpsgd(0.1, 1.0, 1.0, seed=3)
    state = tx.init(None)
    updates, state = tx.update(jax.tree.map(lambda g: g[0].astype(jnp.bfloat16), grads), state)
    assert updates["w"].dtype == jnp.bfloat16 and updates["w"].shape == (3, 2)
    assert bool(jnp.all(jnp.isfinite(updates["w"].astype(jnp.float32))))
    assert state[0].rng_key.dtype == jnp.uint32


def test_bad_input_is_explained():
    tx = gc.differentially_private_aggregate(1.0, 1.0, key=0)
    ragged = {"w": jnp.ones((4, 3)), "b": jnp.ones((2,))}
    with pytest.raises(ValueError, match="same leading batch axis"):
        tx.update(ragged, tx.init(None))
    with pytest.raises(ValueError, match="both key=1 and seed=2"):
        gc.differentially_private_aggregate(1.0, 1.0, key=1, seed=2)
    with pytest.raises(ValueError, match="noise_multiplier"):
        gc.dpsgd(0.1, 1.0, -1.0, seed=0)
    with pytest.warns(UserWarning, match="no key given"):
        gc.differentially_private_aggregate(1.0, 1.0)
    with pytest.raises(TypeError, match="is not a random key"):
        gc.dpsgd(0.1, 1.0, 1.0, seed="zero")


def test_per_example_layer_norm_clip_matches_numpy_and_optax():
    """McMahan et al. 2018, section 3: leaf i clipped per example to C / sqrt(K) (uniform) or
    C * sqrt(D_i / D), then summed; the counts are the examples clipped per leaf."""
    rng = np.random.default_rng(4)
    grads = {"a": rng.standard_normal((5, 3, 2)), "b": rng.standard_normal((5, 4)) * 0.3}
    clip = 1.2
    leaves = [grads["a"], grads["b"]]
    sizes = [6, 4]
    for uniform in (True, False):
        bounds = [clip / np.sqrt(2)] * 2 if uniform else [clip * np.sqrt(n / 10) for n in sizes]
        want, counts = [], []
        for g, c in zip(leaves, bounds):
            norms = np.sqrt((g.reshape(5, -1) ** 2).sum(axis=1))
            factor = np.minimum(1.0, c / norms)
            want.append(np.tensordot(factor, g, axes=1))
            counts.append(int((factor < 1).sum()))
        with jax.enable_x64(True):
            total, n = gradtx.per_example_layer_norm_clip(
                jax.tree.map(jnp.asarray, grads), clip, uniform=uniform
            )
            for key, w, k in zip(("a", "b"), want, counts):
                np.testing.assert_allclose(np.asarray(total[key]), w, rtol=1e-12)
                assert int(n[key]) == k
        optax = pytest.importorskip("optax")
        g32 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), grads)
        with jax.numpy_dtype_promotion("standard"):
            theirs, their_n = optax.per_example_layer_norm_clip(g32, clip, uniform=uniform)
        ours, our_n = gradtx.per_example_layer_norm_clip(g32, clip, uniform=uniform)
        for key in ("a", "b"):
            np.testing.assert_allclose(np.asarray(ours[key]), np.asarray(theirs[key]), rtol=1e-6)
            assert int(our_n[key]) == int(their_n[key])
