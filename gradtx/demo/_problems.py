"""The CS231n spiral data set and a small MLP classifier, in pure JAX."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gradtx import losses


def spiral_data(points_per_class: int = 100, num_classes: int = 3, seed: int = 0):
    """The CS231n spiral: ``num_classes`` interleaved arms of noisy points in 2-D.

    For class j and i in [0, points_per_class): r = i / (N - 1),
    theta = 4 * j + 4 * r + 0.2 * noise, x = (r * sin(theta), r * cos(theta)).

    Returns:
        (inputs float32 [N*K, 2], labels int32 [N*K]).
    """
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for j in range(num_classes):
        r = np.linspace(0.0, 1.0, points_per_class)
        theta = np.linspace(j * 4.0, (j + 1) * 4.0, points_per_class)
        theta = theta + rng.standard_normal(points_per_class) * 0.2
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1))
        ys.append(np.full(points_per_class, j))
    return jnp.asarray(np.concatenate(xs), jnp.float32), jnp.asarray(np.concatenate(ys), jnp.int32)


def mlp_init(key, sizes: Sequence[int] = (2, 100, 3), dtype=jnp.float32):
    """He-initialised weights and zero biases: ``[{'w': [m, n], 'b': [n]}, ...]``."""
    params = []
    for k, (m, n) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        w = jax.random.normal(k, (m, n), dtype) * jnp.asarray(np.sqrt(2.0 / m), dtype)
        params.append({"w": w, "b": jnp.zeros((n,), dtype)})
    return params


def mlp_logits(params, inputs):
    """The MLP's logits [B, K] for a batch of inputs [B, d] (ReLU between layers)."""
    h = inputs
    for layer in params[:-1]:
        h = jax.nn.relu(h @ layer["w"] + layer["b"][None, :])
    return h @ params[-1]["w"] + params[-1]["b"][None, :]


def mlp_loss(params, inputs, labels):
    """Mean softmax cross-entropy. ``labels`` are class indices [B] or probabilities [B, K]."""
    logits = mlp_logits(params, inputs)
    if labels.ndim == 1:
        return jnp.mean(losses.softmax_cross_entropy_with_integer_labels(logits, labels))
    return jnp.mean(losses.softmax_cross_entropy(logits, labels))


def mlp_accuracy(params, inputs, labels):
    """Fraction of points whose arg-max logit is the label."""
    return jnp.mean((jnp.argmax(mlp_logits(params, inputs), -1) == labels).astype(jnp.float32))
