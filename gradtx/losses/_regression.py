"""Regression losses: squared error, Huber, log-cosh, cosine similarity and distance."""

from __future__ import annotations

import jax.numpy as jnp

from gradtx.losses import _common as c


def _errors(where_, predictions, targets, *, same_shape: bool):
    predictions = c.check_floating(where_, "predictions", predictions)
    dt = c.compute_dtype(predictions)
    e = c.up(predictions, dt)
    if targets is not None:
        if same_shape:
            c.check_same_shape(where_, "predictions", predictions, "targets", targets)
        e = e - c.up(targets, dt)
    return e, predictions.dtype


def squared_error(predictions, targets=None):
    """Elementwise squared error (predictions - targets) ** 2 (targets default to 0).

    Args:
        predictions: predictions, any shape.
        targets: targets of the same shape (checked; no broadcasting), or None for zeros.

    Returns:
        The squared errors, the shape of ``predictions``. Their mean is the MSE.
    """
    e, out = _errors("gradtx.losses.squared_error", predictions, targets, same_shape=True)
    return (e * e).astype(out)


def l2_loss(predictions, targets=None):
    """Half the squared error: 0.5 * (predictions - targets) ** 2, elementwise.

    Args:
        predictions: predictions, any shape.
        targets: targets of the same shape, or None for zeros.

    Returns:
        The losses, the shape of ``predictions``.

    References:
        Bishop, Pattern Recognition and Machine Learning, 2006, equation 1.2.
    """
    e, out = _errors("gradtx.losses.l2_loss", predictions, targets, same_shape=True)
    return (0.5 * (e * e)).astype(out)


def huber_loss(predictions, targets=None, *, delta=1.0):
    """Huber loss: quadratic for |error| <= delta, linear beyond.

    a = |predictions - targets|, q = min(a, delta)
    loss = 0.5 * q ** 2 + delta * (a - q)

    Args:
        predictions: predictions, any shape.
        targets: targets (broadcast as jnp does), or None for zeros.
        delta: where the loss turns from quadratic to linear (positive).

    Returns:
        The losses, the shape of ``predictions``.

    References:
        Huber, Robust Estimation of a Location Parameter, Ann. Math. Stat. 1964.
    """
    e, out = _errors("gradtx.losses.huber_loss", predictions, targets, same_shape=False)
    d = c.up(delta, e.dtype)
    a = jnp.abs(e)
    q = jnp.minimum(a, d)
    return (0.5 * q * q + d * (a - q)).astype(out)


def log_cosh(predictions, targets=None):
    """Log-cosh loss: log(cosh(predictions - targets)), elementwise.

    Computed as log1p(2 * sinh(e / 2) ** 2) for |e| < 1 (exact for tiny errors, where
    log(cosh(e)) ~ e ** 2 / 2) and as |e| + log1p(exp(-2 |e|)) - log(2) otherwise (no
    overflow for large errors, where it tends to |e| - log 2).

    Args:
        predictions: predictions, any shape.
        targets: targets (broadcast as jnp does), or None for zeros.

    Returns:
        The losses, the shape of ``predictions``.

    References:
        Chen et al., Log Hyperbolic Cosine Loss Improves Variational Auto-Encoder, 2019.
    """
    e, out = _errors("gradtx.losses.log_cosh", predictions, targets, same_shape=False)
    a = jnp.abs(e)
    small = a < 1
    e_small = jnp.where(small, e, jnp.zeros_like(e))
    a_large = jnp.where(small, jnp.ones_like(a), a)
    near = jnp.log1p(2 * jnp.sinh(e_small / 2) ** 2)
    far = a_large + jnp.log1p(jnp.exp(-2 * a_large)) - jnp.log(jnp.asarray(2, e.dtype))
    return jnp.where(small, near, far).astype(out)


def cosine_similarity(predictions, targets, *, epsilon=0.0, axis=-1, where=None):
    """Cosine of the angle between predictions and targets along ``axis``.

    a_unit = predictions / sqrt(max(sum(predictions ** 2, axis), epsilon))  (b_unit likewise)
    loss = sum(a_unit * b_unit, axis)
    ``epsilon`` bounds the squared norm from below, as in optax. A vector of norm 0 (with
    epsilon 0) has similarity 0 with everything, and a finite gradient.

    Args:
        predictions: vectors, shape [..., dim].
        targets: vectors, the same shape.
        epsilon: lower bound on each squared norm.
        axis: axis or axes of the vectors.
        where: boolean mask of the entries to include.

    Returns:
        The similarities, shape [...].
    """
    where_ = "gradtx.losses.cosine_similarity"
    predictions = c.check_floating(where_, "predictions", predictions)
    targets = c.check_floating(where_, "targets", targets)
    dt = c.wider(c.compute_dtype(predictions), c.compute_dtype(targets))
    eps = c.up(epsilon, dt)

    def unit(v):
        sq = jnp.maximum(jnp.sum(v * v, axis=axis, where=where, keepdims=True), eps)
        positive = sq > 0
        return jnp.where(positive, v / jnp.sqrt(jnp.where(positive, sq, jnp.ones_like(sq))), 0)

    a, b = unit(c.up(predictions, dt)), unit(c.up(targets, dt))
    return jnp.sum(a * b, axis=axis, where=where).astype(predictions.dtype)


def cosine_distance(predictions, targets, *, epsilon=0.0, axis=-1, where=None):
    """Cosine distance: 1 - cosine_similarity(predictions, targets).

    Args:
        predictions: vectors, shape [..., dim].
        targets: vectors, the same shape.
        epsilon: lower bound on each squared norm.
        axis: axis or axes of the vectors.
        where: boolean mask of the entries to include.

    Returns:
        The distances, shape [...].
    """
    sim = cosine_similarity(predictions, targets, epsilon=epsilon, axis=axis, where=where)
    return (1 - sim).astype(sim.dtype)
