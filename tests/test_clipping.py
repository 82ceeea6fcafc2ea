"""clip_by_block_rms, adaptive_grad_clip, per_example_global_norm_clip, centralize,
normalize_by_update_norm: against NumPy float64 references of the papers' formulas."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

RNG = np.random.default_rng(0)


def _tree(*shapes, scale=1.0):
    return {f"l{i}": RNG.normal(size=s) * scale for i, s in enumerate(shapes)}


def _apply(tx, grads, params=None):
    with jax.enable_x64(True):
        g = jax.tree.map(jnp.asarray, grads)
        p = None if params is None else jax.tree.map(jnp.asarray, params)
        out, _ = tx.update(g, tx.init(g), p)
        return jax.tree.map(np.asarray, out)


def test_clip_by_block_rms():
    grads = _tree((3, 4), (5,), (), scale=2.0)
    for threshold in (0.1, 1.0, 100.0):
        out = _apply(gradtx.clip_by_block_rms(threshold), grads)
        for k, g in grads.items():
            rms = np.sqrt(np.mean(g**2))
            np.testing.assert_allclose(out[k], g / max(1.0, rms / threshold), rtol=1e-12)


def _np_unit_norm(x):
    """NFNets' unit-wise norm: over the fan-in axes, one norm per output unit."""
    if np.squeeze(x).ndim <= 1:
        return np.full_like(x, np.linalg.norm(x))
    axes = 0 if x.ndim in (2, 3) else tuple(range(x.ndim - 1))
    return np.broadcast_to(np.sqrt(np.sum(x**2, axis=axes, keepdims=True)), x.shape)


def test_adaptive_grad_clip():
    clipping, eps = 0.05, 1e-3
    params = _tree((4, 3), (3,), (2, 2, 3, 5))
    params["zero"] = np.zeros((2, 3))  # zero-initialised: eps keeps it movable
    grads = jax.tree.map(lambda p: RNG.normal(size=p.shape) * 0.1, params)
    out = _apply(gradtx.adaptive_grad_clip(clipping, eps), grads, params)
    clipped_some = False
    for k, g in grads.items():
        max_norm = clipping * np.maximum(_np_unit_norm(params[k]), eps)
        gn = _np_unit_norm(g)
        want = np.where(gn < max_norm, g, g * max_norm / np.maximum(gn, 1e-6))
        np.testing.assert_allclose(out[k], want, rtol=1e-12)
        clipped_some |= bool((gn >= max_norm).any())
        assert np.all(_np_unit_norm(out[k]) <= max_norm * (1 + 1e-12))
    assert clipped_some


def test_adaptive_grad_clip_axis_and_errors():
    p, g = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4)) * 10
    out = _apply(gradtx.adaptive_grad_clip(0.1, axis=1), {"a": g}, {"a": p})["a"]
    pn = np.linalg.norm(p, axis=1, keepdims=True)
    gn = np.linalg.norm(g, axis=1, keepdims=True)
    np.testing.assert_allclose(out, np.where(gn < 0.1 * pn, g, g * 0.1 * pn / gn), rtol=1e-12)
    tx = gradtx.adaptive_grad_clip(0.1)
    big = {"a": jnp.ones((1, 2, 1, 2, 1, 2))}
    with pytest.raises(ValueError, match=r"shape \(1, 2, 1, 2, 1, 2\).*Pass axis="):
        tx.update(big, tx.init(big), big)
    with pytest.raises(ValueError, match="params=None"):
        tx.update({"a": jnp.ones(2)}, tx.init({"a": jnp.ones(2)}))


def test_per_example_global_norm_clip():
    grads = {"w": RNG.normal(size=(6, 3, 2)), "b": RNG.normal(size=(6, 4)), "n": None}
    grads["w"][0], grads["b"][0] = 0.0, 0.0  # a zero example stays zero and is not clipped
    for clip in (0.0, 0.5, 2.0, 1e9):
        with jax.enable_x64(True):
            out, n = gradtx.per_example_global_norm_clip(
                {k: None if v is None else jnp.asarray(v) for k, v in grads.items()}, clip
            )
        norms = np.sqrt((grads["w"] ** 2).sum(axis=(1, 2)) + (grads["b"] ** 2).sum(axis=1))
        factor = np.where(norms > 0, np.minimum(1.0, clip / np.where(norms > 0, norms, 1)), 1.0)
        for k in ("w", "b"):
            want = np.tensordot(factor, grads[k], axes=1)
            np.testing.assert_allclose(np.asarray(out[k]), want, rtol=1e-12, atol=1e-15)
        assert int(n) == int((factor < 1).sum()) and out["n"] is None
    rows = [jnp.array([[0, 0, 0], [0, 3, 4], [4, 0, 3], [3, 4, 0]])]  # optax's docstring case
    total, n = gradtx.per_example_global_norm_clip(rows, 1.25)
    np.testing.assert_allclose(np.asarray(total[0]), [1.75, 1.75, 1.75])
    assert int(n) == 3


def test_per_example_global_norm_clip_needs_batch_axis():
    with pytest.raises(ValueError, match=r"same leading batch axis.*\[\(3, 2\), \(4,\)\]"):
        gradtx.per_example_global_norm_clip([jnp.ones((3, 2)), jnp.ones(4)], 1.0)


def test_centralize():
    grads = _tree((3, 4), (2, 3, 5), (7,), ())
    out = _apply(gradtx.centralize(), grads)
    for k, g in grads.items():
        want = g - g.mean(axis=tuple(range(1, g.ndim)), keepdims=True) if g.ndim > 1 else g
        np.testing.assert_allclose(out[k], want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out["l0"].sum(axis=1), 0.0, atol=1e-12)


def test_normalize_by_update_norm():
    grads = _tree((3, 4), (5,))
    norm = np.sqrt(sum(np.sum(g**2) for g in grads.values()))
    for scale, eps in [(1.0, 1e-6), (-0.5, 0.0), (3.0, 1.0)]:
        out = _apply(gradtx.normalize_by_update_norm(scale, eps), grads)
        for k, g in grads.items():
            np.testing.assert_allclose(out[k], g * scale / (norm + eps), rtol=1e-12)
    zero = _apply(gradtx.normalize_by_update_norm(), {"a": np.zeros(3)})
    np.testing.assert_array_equal(zero["a"], 0.0)


def test_normalize_by_update_norm_sums_over_axis_name():
    # a vmap axis stands in for a mesh axis: two shards of one vector get the global norm
    tx = gradtx.normalize_by_update_norm(1.0, 0.0, axis_name="d")
    shards = jnp.array([[3.0, 0.0], [0.0, 4.0]])
    out = jax.vmap(lambda g: tx.update(g, tx.init(g))[0], axis_name="d")(shards)
    np.testing.assert_allclose(np.asarray(out), [[0.6, 0.0], [0.0, 0.8]], rtol=1e-6)


@pytest.mark.parametrize(
    "factory,kwargs,name",
    [
        (gradtx.clip_by_block_rms, {"threshold": -1.0}, "threshold"),
        (gradtx.adaptive_grad_clip, {"clipping": -0.1}, "clipping"),
        (gradtx.normalize_by_update_norm, {"eps": -1.0}, "eps"),
    ],
)
def test_bad_hyperparameters_are_named(factory, kwargs, name):
    with pytest.raises(ValueError, match=rf"gradtx.{factory.__name__}: {name}=-"):
        factory(**kwargs)
