"""Self-supervised (metric learning) losses: NT-Xent and the triplet margin loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradtx.losses import _common as c
from gradtx.losses._regression import cosine_similarity


def ntxent(embeddings, labels, temperature=0.07):
    """NT-Xent: the normalized temperature-scaled cross-entropy of contrastive learning.

    sim_ij = cos(embeddings_i, embeddings_j) / temperature
    for every positive pair (i, j): same label, i != j; negatives of i: other labels
    loss_ij = -log(exp(sim_ij) / (exp(sim_ij) + sum over negatives k of exp(sim_ik)))
            = softplus(logsumexp over negatives k of sim_ik - sim_ij)
    loss = mean of loss_ij over the positive pairs (0 if there is none)

    With two views per label (SimCLR's batches) this is equation 1 of Chen et al.; with more
    views per label the denominator holds the one positive and the negatives (as optax and
    pytorch-metric-learning).

    Args:
        embeddings: shape [batch, dim].
        labels: integer group labels, shape [batch]; equal labels form positive pairs.
        temperature: the temperature (positive).

    Returns:
        The scalar loss.

    References:
        Chen et al., A Simple Framework for Contrastive Learning of Visual Representations,
        ICML 2020, equation 1.
    """
    where_ = "gradtx.losses.ntxent"
    embeddings = c.check_floating(where_, "embeddings", embeddings)
    labels = jnp.asarray(labels)
    if labels.shape[:1] != embeddings.shape[:1]:
        raise ValueError(
            f"{where_}: labels has shape {labels.shape} and embeddings {embeddings.shape}; "
            "they must have the same leading (batch) dimension."
        )
    dt = c.compute_dtype(embeddings)
    e = c.up(embeddings, dt)
    eps = jnp.finfo(embeddings.dtype).eps
    sim = cosine_similarity(e[None, :, :], e[:, None, :], epsilon=eps) / c.up(temperature, dt)
    same = labels[:, None] == labels[None, :]
    positive = same & ~jnp.eye(labels.shape[0], dtype=bool)
    negative = ~same
    has_negative = jnp.any(negative, axis=1, keepdims=True)
    lse_negative = c.logsumexp(sim, 1, negative, keepdims=True)
    lse_negative = jnp.where(has_negative, lse_negative, jnp.full_like(lse_negative, -jnp.inf))
    pair_loss = jax.nn.softplus(lse_negative - jnp.where(positive, sim, jnp.zeros_like(sim)))
    total = jnp.sum(jnp.where(positive, pair_loss, jnp.zeros_like(pair_loss)))
    count = jnp.sum(positive).astype(dt)
    return (total / jnp.maximum(count, 1)).astype(embeddings.dtype)


def triplet_margin_loss(
    anchors, positives, negatives, axis=-1, norm_degree=2, margin=1.0, eps=1e-6
):
    """Triplet margin loss: max(d(anchor, positive) - d(anchor, negative) + margin, 0).

    d(x, y) = (sum(|x - y| ** norm_degree, axis) + eps) ** (1 / norm_degree)

    Args:
        anchors: shape [batch, dim].
        positives: the same shape.
        negatives: the same shape.
        axis: the axis of the embedding.
        norm_degree: the degree p of the l_p distance.
        margin: the margin.
        eps: added inside the root (keeps the gradient finite when x == y).

    Returns:
        The loss per triplet, shape [batch].

    References:
        Balntas et al., Learning Local Feature Descriptors with Triplets and Shallow
        Convolutional Neural Networks, BMVC 2016, equation 2.
    """
    where_ = "gradtx.losses.triplet_margin_loss"
    anchors = c.check_floating(where_, "anchors", anchors)
    positives = c.check_floating(where_, "positives", positives)
    negatives = c.check_floating(where_, "negatives", negatives)
    dt = c.compute_dtype(anchors)
    a, p, n = (c.up(v, dt) for v in (anchors, positives, negatives))
    if isinstance(norm_degree, int):
        deg, root = norm_degree, 1 / norm_degree
    else:
        deg = c.up(norm_degree, dt)
        root = 1 / deg

    def distance(x, y):
        return (jnp.sum(jnp.abs(x - y) ** deg, axis=axis) + c.up(eps, dt)) ** root

    loss = jnp.maximum(distance(a, p) - distance(a, n) + c.up(margin, dt), 0)
    return loss.astype(anchors.dtype)
