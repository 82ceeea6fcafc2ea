"""Fenchel-Young losses built from a max function (a convex conjugate)."""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp


def make_fenchel_young_loss(max_fun: Callable):
    """The Fenchel-Young loss of a regularized max function ``max_fun``.

    loss(scores, targets) = max_fun(scores) - <targets, scores>     (over the last axis)
    where max_fun(theta) = Omega*(theta) is the conjugate of a regularizer Omega; the term
    Omega(targets) of the paper's definition is left out (it does not depend on the scores),
    so the gradient in the scores is grad max_fun(scores) - targets. max_fun = logsumexp
    gives the softmax cross-entropy up to that constant.

    Args:
        max_fun: a function of a vector [n] to a scalar (extra arguments of the loss are
            passed on to it); the loss applies it to every vector along the last axis.

    Returns:
        ``loss(scores, targets, *args, **kwargs)``, one value per vector, shape [...].

    References:
        Blondel, Martins and Niculae, Learning with Fenchel-Young Losses, JMLR 2020,
        Definition 2.
    """
    max_last = jnp.vectorize(max_fun, signature="(n)->()")

    def fenchel_young_loss(scores, targets, *args, **kwargs):
        scores = jnp.asarray(scores)
        value = max_last(scores, *args, **kwargs)
        return value - jnp.sum(jnp.asarray(targets).astype(scores.dtype) * scores, axis=-1)

    return fenchel_young_loss
