"""A harder, image-like task generated in code: noisy 8x8 pictures of ten simple shapes."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

SHAPES = ("hline", "vline", "diagonal", "antidiagonal", "box", "square", "plus", "cross", "L", "T")


def _draw(img, label, r, c, s):
    i = np.arange(s)
    if label in (0, 6):  # hline, plus
        img[r + s // 2, c : c + s] = 1
    if label in (1, 6):  # vline, plus
        img[r : r + s, c + s // 2] = 1
    if label in (2, 7):  # diagonal, cross
        img[r + i, c + i] = 1
    if label in (3, 7):  # antidiagonal, cross
        img[r + i, c + s - 1 - i] = 1
    if label == 4:  # box outline
        img[r, c : c + s] = img[r + s - 1, c : c + s] = 1
        img[r : r + s, c] = img[r : r + s, c + s - 1] = 1
    if label == 5:  # filled square
        img[r : r + s, c : c + s] = 1
    if label == 8:  # L
        img[r : r + s, c] = img[r + s - 1, c : c + s] = 1
    if label == 9:  # T
        img[r, c : c + s] = img[r : r + s, c + s // 2] = 1


def shapes_data(num_examples: int = 2000, seed: int = 0, noise: float = 0.3):
    """Noisy 8x8 images of the ten ``SHAPES``, each at a random size (4 to 6) and place.

    Every image is drawn with a random brightness in [0.5, 1] and gets Gaussian pixel noise of
    standard deviation ``noise``, so the classes overlap and a linear model is not enough.

    Returns:
        (images float32 [N, 8, 8], labels int32 [N]), labels balanced over the ten classes.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(num_examples) % len(SHAPES)
    rng.shuffle(labels)
    images = np.zeros((num_examples, 8, 8))
    for img, label in zip(images, labels):
        s = int(rng.integers(4, 7))
        r, c = (int(v) for v in rng.integers(0, 8 - s + 1, size=2))
        _draw(img, int(label), r, c, s)
        img *= rng.uniform(0.5, 1.0)
    images += noise * rng.standard_normal(images.shape)
    return jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32)
