"""Label smoothing."""

from __future__ import annotations

import math

import jax.numpy as jnp

from gradtx.losses import _common as c


def smooth_labels(labels, alpha, *, axis=-1, where=None):
    """Label smoothing: move a fraction alpha of the mass to the uniform distribution.

    smoothed = (1 - alpha) * labels + alpha / num_classes
    where num_classes is the size of ``axis`` (or, with ``where``, the number of selected
    classes in each slice; unselected entries are smoothed too, as in optax).

    Args:
        labels: one-hot or probability labels, shape [..., num_classes].
        alpha: the smoothing factor in [0, 1].
        axis: the class axis or axes.
        where: boolean mask of the classes that count.

    Returns:
        The smoothed labels, the shape and dtype of ``labels``.

    References:
        Szegedy et al., Rethinking the Inception Architecture for Computer Vision, CVPR 2016,
        section 7; Mueller, Kornblith and Hinton, When Does Label Smoothing Help?, 2019.
    """
    where_ = "gradtx.losses.smooth_labels"
    labels = c.check_floating(where_, "labels", labels)
    dt = c.compute_dtype(labels)
    if where is None:
        axes = c.normalize_axes(axis, labels.ndim, where_)
        count = jnp.asarray(math.prod(labels.shape[i] for i in axes), dt)
    else:
        count = jnp.sum(jnp.asarray(where), axis=axis, keepdims=True).astype(dt)
    a = c.up(alpha, dt)
    return ((1 - a) * c.up(labels, dt) + a / count).astype(labels.dtype)
