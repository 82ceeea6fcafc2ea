"""mixup and cutmix: their statistics against closed forms and NumPy's Beta sampler."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

# Jitted once (alpha is traced), so the statistics tests do not pay for eager dispatch.
MIXUP = jax.jit(gradtx.mixup, static_argnames="num_classes")
CUTMIX = jax.jit(gradtx.cutmix, static_argnames="num_classes")


def _ks_two_sample(a, b):
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the two ECDFs."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return np.max(np.abs(cdf_a - cdf_b))


def _mixup_weights(alpha, batch=1000, seed=0):
    """Run mixup on one-hot labels of distinct classes and read back each row's weights."""
    inputs = jax.random.normal(jax.random.PRNGKey(seed + 100), (batch, 3), jnp.float32)
    labels = jnp.arange(batch, dtype=jnp.int32)
    mixed, soft = MIXUP(jax.random.PRNGKey(seed), inputs, labels, alpha, num_classes=batch)
    x, mixed, soft = np.asarray(inputs, np.float64), np.asarray(mixed), np.asarray(soft)
    own = soft[np.arange(batch), np.arange(batch)]
    others = soft.copy()
    others[np.arange(batch), np.arange(batch)] = -1.0
    partner = others.argmax(1)
    paired = partner != np.arange(batch)  # rows the permutation did not map to themselves
    paired &= others.max(1) > 0  # a weight of exactly 1 leaves no trace of the partner
    return x, mixed, soft, own, partner, paired


@pytest.mark.parametrize("alpha", [0.2, 1.0, 2.0])
def test_mixup_weights_follow_beta(alpha):
    _, _, soft, own, _, paired = _mixup_weights(alpha)
    np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-5)
    lam = own[paired]
    assert lam.size > 900
    # Moments of Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)).
    sd = np.sqrt(1 / (4 * (2 * alpha + 1)))
    assert abs(lam.mean() - 0.5) < 4 * sd / np.sqrt(lam.size)
    assert abs(lam.var() / sd**2 - 1) < 0.15
    reference = np.random.default_rng(1).beta(alpha, alpha, 20000)
    critical = 1.95 * np.sqrt(1 / lam.size + 1 / reference.size)  # 0.1% level
    assert _ks_two_sample(lam, reference) < critical


def test_mixup_mixes_inputs_and_labels_with_the_same_weights():
    x, mixed, soft, own, partner, paired = _mixup_weights(0.4, seed=3)
    i = np.nonzero(paired)[0]
    lam = own[i][:, None]
    np.testing.assert_allclose(mixed[i], lam * x[i] + (1 - lam) * x[partner[i]], atol=1e-5)
    np.testing.assert_allclose(soft[i, partner[i]], 1 - own[i], atol=1e-6)


def test_mixup_soft_labels_jit_and_traced_alpha():
    key = jax.random.PRNGKey(0)
    x = jnp.ones((8, 2, 2), jnp.bfloat16)
    y = jax.nn.one_hot(jnp.arange(8) % 3, 3)
    mixed, soft = MIXUP(key, x, y, jnp.asarray(0.5, jnp.float32))
    assert mixed.dtype == jnp.bfloat16 and mixed.shape == x.shape
    assert soft.shape == (8, 3) and soft.dtype == y.dtype
    np.testing.assert_allclose(np.asarray(soft).sum(1), 1.0, rtol=1e-6)


def test_mixup_and_cutmix_errors():
    key = jax.random.PRNGKey(0)
    x = jnp.zeros((4, 3, 3))
    with pytest.raises(
        ValueError, match=r"gradtx.mixup: labels are integer class ids.*num_classes"
    ):
        gradtx.mixup(key, x, jnp.arange(4), 0.2)
    with pytest.raises(ValueError, match=r"gradtx.mixup: alpha=0 .*"):
        gradtx.mixup(key, x, jnp.arange(4), 0, num_classes=4)
    with pytest.raises(TypeError, match=r"gradtx.cutmix: inputs have dtype int32"):
        gradtx.cutmix(key, jnp.zeros((4, 3, 3), jnp.int32), jnp.arange(4), num_classes=4)
    with pytest.raises(ValueError, match=r"floating labels must be probability rows"):
        gradtx.cutmix(key, x, jnp.zeros((4,)), 1.0)


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_cutmix_label_weight_is_the_pasted_area(alpha):
    batch, h, w = 400, 8, 6
    images = jnp.broadcast_to(
        jnp.arange(1, batch + 1, dtype=jnp.float32)[:, None, None, None], (batch, h, w, 2)
    )
    mixed, soft = CUTMIX(
        jax.random.PRNGKey(7), images, jnp.arange(batch, dtype=jnp.int32), alpha, num_classes=batch
    )
    mixed, soft = np.asarray(mixed), np.asarray(soft)
    assert mixed.shape == images.shape
    areas = []
    for i in range(batch):
        pasted = mixed[i, :, :, 0] != i + 1
        np.testing.assert_array_equal(pasted, mixed[i, :, :, 1] != i + 1)
        frac = pasted.mean()
        np.testing.assert_allclose(soft[i, i], 1 - frac, atol=1e-6)
        if frac > 0:
            values = mixed[i, :, :, 0][pasted]
            partner = int(values[0]) - 1
            assert np.all(values == partner + 1)  # one partner
            np.testing.assert_allclose(soft[i, partner], frac, atol=1e-6)
            rows, cols = np.nonzero(pasted)
            box = pasted[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            assert box.all(), "the pasted region is a rectangle"
        areas.append(frac)
    areas = np.asarray(areas)
    # Before clipping the box covers about 1 - lam of the image (E = 1/2); clipping only shrinks.
    assert 0.1 < areas.mean() < 0.5
    assert (areas > 0).mean() > 0.8
