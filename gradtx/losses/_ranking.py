"""Ranking losses: they score a list of items along the last axis (leading axes are batch)."""

from __future__ import annotations

import jax.numpy as jnp

from gradtx.losses import _common as c


def _reduce(loss, valid, reduce_fn):
    """Reduce per-list losses over the valid lists; a mean over no valid list is 0."""
    if reduce_fn is None:
        return loss if valid is None else jnp.where(valid, loss, jnp.zeros_like(loss))
    if reduce_fn is jnp.mean:
        if valid is None:
            return jnp.mean(loss)
        total = jnp.sum(jnp.where(valid, loss, jnp.zeros_like(loss)))
        count = jnp.sum(valid).astype(loss.dtype)
        return total / jnp.maximum(count, 1)
    return reduce_fn(loss, where=valid)


def ranking_softmax_loss(logits, labels, *, where=None, weights=None, reduce_fn=jnp.mean):
    """Listwise softmax loss: the cross-entropy of softmax(logits) against the relevances.

    log_probs = log_softmax(logits) over the valid items of each list
    loss = -sum(labels * weights * log_probs)                  (one value per list)
    then ``reduce_fn`` over the lists that have a valid item.

    Args:
        logits: scores of the items, shape [..., list_size].
        labels: relevance of each item, the same shape.
        where: boolean mask of the valid items (the same shape), or None for all.
        weights: weight of each item (the same shape), or None.
        reduce_fn: jnp.mean (lists without a valid item do not count; 0 if there is none),
            jnp.sum, None for one loss per list (0 for lists without a valid item), or a
            function taking ``where=``.

    Returns:
        The reduced loss, or the loss per list with ``reduce_fn=None``.

    References:
        Cao et al., Learning to Rank: From Pairwise Approach to Listwise Approach, ICML 2007;
        Bruch et al., An Analysis of the Softmax Cross Entropy Loss for Learning-to-Rank with
        Binary Relevance, ICTIR 2019.
    """
    where_ = "gradtx.losses.ranking_softmax_loss"
    logits = c.check_floating(where_, "logits", logits)
    dt = c.compute_dtype(logits)
    x, y = c.up(logits, dt), c.up(labels, dt)
    mask = None if where is None else jnp.broadcast_to(jnp.asarray(where, bool), x.shape)
    if mask is not None:
        y = jnp.where(mask, y, jnp.zeros_like(y))
    if weights is not None:
        y = y * c.up(weights, dt)
    log_probs = c.log_softmax(x, -1, mask)
    loss = -jnp.sum(y * log_probs, axis=-1, where=mask)
    valid = None if mask is None else jnp.any(mask, axis=-1)
    return _reduce(loss, valid, reduce_fn).astype(logits.dtype)
