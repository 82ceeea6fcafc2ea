"""Classification losses: cross-entropies, focal and poly losses, margins, sparsemax, KL.

Each loss returns one value per example (the reduced axes removed), computed in at least
float32 and returned in the dtype of its scores, with optax's names and arguments.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradtx.losses import _common as c
from gradtx.projections._simplex import simplex_last_axis

# ----------------------------------------------------------------------------- cross-entropies


def _ce_terms(labels, log_probs):
    """labels * log_probs, with 0 * (-inf) = 0 (a class of probability 0 that the target does
    not use); the gradient in ``labels`` is log_probs wherever log_probs is finite."""
    unused = (labels == 0) & jnp.isneginf(log_probs)
    return labels * jnp.where(unused, jnp.zeros_like(log_probs), log_probs)


def softmax_cross_entropy(logits, labels, axis=-1, where=None):
    """Cross-entropy between softmax(logits) and target distributions ``labels``.

    log_probs = logits - logsumexp(logits, axis)     (over the entries ``where`` selects)
    loss = -sum(labels * log_probs, axis)            (0 * log 0 counted as 0)

    Args:
        logits: unnormalized log-probabilities, shape [..., num_classes].
        labels: target probabilities (one-hot or soft), the shape of ``logits``.
        axis: the class axis or axes (None: all axes).
        where: boolean mask of the classes to include, the shape of ``logits`` or of the batch
            (then ``axis`` is inserted); a slice with nothing selected has loss 0.

    Returns:
        The loss per example, shape [...] (``logits`` without ``axis``).

    References:
        Goodfellow, Bengio and Courville, Deep Learning, 2016, section 6.2.2.3.
    """
    where_ = "gradtx.losses.softmax_cross_entropy"
    logits = c.check_floating(where_, "logits", logits)
    dt = c.compute_dtype(logits)
    x, y = c.up(logits, dt), c.up(labels, dt)
    mask = c.mask_like(where, x, axis)
    log_probs = c.log_softmax(x, axis, mask)
    loss = -jnp.sum(_ce_terms(y, log_probs), axis=axis, where=mask)
    return loss.astype(logits.dtype)


def safe_softmax_cross_entropy(logits, labels):
    """Softmax cross-entropy over the last axis, with 0 * log 0 = 0 where a logit is -inf.

    In gradtx ``softmax_cross_entropy`` already treats labels * log_probs as 0 when the label
    is 0 and the logit is -inf, so this is ``softmax_cross_entropy(logits, labels)``; the name
    is kept for optax programs.

    Args:
        logits: unnormalized log-probabilities, shape [..., num_classes].
        labels: target probabilities, the shape of ``logits``.

    Returns:
        The loss per example, shape [...].
    """
    return softmax_cross_entropy(logits, labels)


def _flatten_class_axes(x, mask, axes):
    """Move ``axes`` to the end and merge them into one class axis (in their order)."""
    batch = tuple(a for a in range(x.ndim) if a not in axes)
    perm = batch + axes
    x = jnp.transpose(x, perm).reshape(tuple(x.shape[a] for a in batch) + (-1,))
    if mask is not None:
        mask = jnp.transpose(mask, perm).reshape(x.shape)
    return x, mask


def softmax_cross_entropy_with_integer_labels(logits, labels, axis=-1, where=None):
    """Softmax cross-entropy with the target class given as an integer index.

    loss = logsumexp(logits, axis) - logits[label]     (over the entries ``where`` selects)

    Args:
        logits: unnormalized log-probabilities, shape [..., num_classes].
        labels: integer class indices in [0, num_classes), shape [...]. For a tuple ``axis``
            a label is a flat (row-major) index into the slice over those axes.
        axis: the class axis (an int) or axes (a tuple).
        where: boolean mask of the classes to include, the shape of ``logits`` or of the batch;
            a slice with nothing selected has loss 0.

    Returns:
        The loss per example, shape [...] (the shape of ``labels``).

    References:
        Goodfellow, Bengio and Courville, Deep Learning, 2016, section 6.2.2.3.
    """
    where_ = "gradtx.losses.softmax_cross_entropy_with_integer_labels"
    logits = c.check_floating(where_, "logits", logits)
    labels = c.check_integer(where_, "labels", labels)
    if not isinstance(axis, (int, tuple)):
        raise TypeError(f"{where_}: axis must be an int or a tuple of ints, got {axis!r}.")
    dt = c.compute_dtype(logits)
    x = c.up(logits, dt)
    mask = c.mask_like(where, x, axis)
    axes = c.normalize_axes(axis, x.ndim, where_)
    if isinstance(axis, tuple):
        x, mask = _flatten_class_axes(x, mask, axes)
        class_axis = x.ndim - 1
    else:
        class_axis = axes[0]
    batch_shape = tuple(n for i, n in enumerate(x.shape) if i != class_axis)
    if labels.shape != batch_shape:
        raise ValueError(
            f"{where_}: labels has shape {labels.shape}, expected {batch_shape} (the shape of "
            f"logits {jnp.shape(logits)} without axis {axis})."
        )
    picked = jnp.take_along_axis(x, jnp.expand_dims(labels, class_axis), axis=class_axis)
    loss = c.logsumexp(x, class_axis, mask) - jnp.squeeze(picked, class_axis)
    if mask is not None:
        loss = jnp.where(jnp.any(mask, axis=class_axis), loss, jnp.zeros_like(loss))
    return loss.astype(logits.dtype)


def poly_loss_cross_entropy(logits, labels, *, epsilon=2.0, axis=-1, where=None):
    """Poly-1 loss: cross-entropy plus epsilon times the first polynomial term (1 - p_t).

    probs = softmax(logits, axis)
    loss = softmax_cross_entropy(logits, labels) + epsilon * sum(labels * (1 - probs), axis)

    Args:
        logits: unnormalized log-probabilities, shape [..., num_classes].
        labels: target probabilities, the shape of ``logits``.
        epsilon: coefficient of the first polynomial term (the paper uses 2 for ImageNet
            classification, -1 for detection).
        axis: the class axis or axes.
        where: boolean mask of the classes to include.

    Returns:
        The loss per example, shape [...].

    References:
        Leng et al., PolyLoss: A Polynomial Expansion Perspective of Classification Loss
        Functions, ICLR 2022, equation 3 (Poly-1).
    """
    where_ = "gradtx.losses.poly_loss_cross_entropy"
    logits = c.check_floating(where_, "logits", logits)
    labels = c.check_floating(where_, "labels", labels)
    dt = c.compute_dtype(logits)
    x, y = c.up(logits, dt), c.up(labels, dt)
    mask = c.mask_like(where, x, axis)
    log_probs = c.log_softmax(x, axis, mask)
    ce = -jnp.sum(_ce_terms(y, log_probs), axis=axis, where=mask)
    one_minus_pt = jnp.sum(y * (1 - jnp.exp(log_probs)), axis=axis, where=mask)
    return (ce + c.up(epsilon, dt) * one_minus_pt).astype(logits.dtype)


# ----------------------------------------------------------------------------- sigmoid losses


def sigmoid_binary_cross_entropy(logits, labels):
    """Elementwise cross-entropy between sigmoid(logits) and binary or soft ``labels``.

    loss = labels * softplus(-logits) + (1 - labels) * softplus(logits)
         = -labels * log(sigmoid(logits)) - (1 - labels) * log(1 - sigmoid(logits))

    Args:
        logits: logits of the positive class, any shape.
        labels: targets in [0, 1] (binary or probabilities), the shape of ``logits``.

    Returns:
        The loss per element, the shape of ``logits``.

    References:
        Goodfellow, Bengio and Courville, Deep Learning, 2016, section 6.2.2.2.
    """
    where_ = "gradtx.losses.sigmoid_binary_cross_entropy"
    logits = c.check_floating(where_, "logits", logits)
    dt = c.compute_dtype(logits)
    x, y = c.up(logits, dt), c.up(labels, dt)
    loss = y * jax.nn.softplus(-x) + (1 - y) * jax.nn.softplus(x)
    return loss.astype(logits.dtype)


def _log_mix(log_a, weight_a, log_b, weight_b):
    """log(weight_a * exp(log_a) + weight_b * exp(log_b)) for weights >= 0, computed without
    overflow and with finite gradients when a weight is exactly 0."""
    on_a, on_b = weight_a > 0, weight_b > 0
    neg_inf = jnp.full_like(log_a, -jnp.inf)
    m = jnp.maximum(jnp.where(on_a, log_a, neg_inf), jnp.where(on_b, log_b, neg_inf))
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m)))
    zero = jnp.zeros_like(log_a)
    s = jnp.where(on_a, weight_a * jnp.exp(jnp.where(on_a, log_a, m) - m), zero) + jnp.where(
        on_b, weight_b * jnp.exp(jnp.where(on_b, log_b, m) - m), zero
    )
    return jnp.log(s) + m


def sigmoid_focal_loss(logits, labels, *, alpha=None, gamma=2.0):
    """Focal loss: the sigmoid cross-entropy scaled by (1 - p_t) ** gamma.

    p = sigmoid(logits)
    1 - p_t = (1 - labels) * p + labels * (1 - p)
    loss = sigmoid_binary_cross_entropy(logits, labels) * (1 - p_t) ** gamma
    with alpha:  loss *= alpha * labels + (1 - alpha) * (1 - labels)

    (1 - p_t) ** gamma is computed as exp(gamma * log(1 - p_t)) from log-sigmoids, so it is
    exact for logits of any size and its gradient stays finite for gamma < 1.

    Args:
        logits: logits of the positive class, any shape.
        labels: targets in [0, 1] (binary or soft), the shape of ``logits``.
        alpha: weight of the positive class in (0, 1), or None for no weighting.
        gamma: focusing exponent (0 gives the cross-entropy).

    Returns:
        The loss per element, the shape of ``logits``.

    References:
        Lin et al., Focal Loss for Dense Object Detection, ICCV 2017, equations 4 and 5.
    """
    where_ = "gradtx.losses.sigmoid_focal_loss"
    logits = c.check_floating(where_, "logits", logits)
    dt = c.compute_dtype(logits)
    x, y = c.up(logits, dt), c.up(labels, dt)
    ce = y * jax.nn.softplus(-x) + (1 - y) * jax.nn.softplus(x)
    log_p, log_not_p = -jax.nn.softplus(-x), -jax.nn.softplus(x)
    log_one_minus_pt = _log_mix(log_p, 1 - y, log_not_p, y)
    loss = ce * jnp.exp(c.up(gamma, dt) * log_one_minus_pt)
    if alpha is not None:
        a = c.up(alpha, dt)
        loss = (a * y + (1 - a) * (1 - y)) * loss
    return loss.astype(logits.dtype)


# ----------------------------------------------------------------------------- margin losses


def _scores_and_targets(scores, targets):
    """Both in the compute dtype of the scores (float if the scores are integers), and the
    dtype of the result (that of floating scores)."""
    scores = jnp.asarray(scores)
    floating = jnp.issubdtype(scores.dtype, jnp.floating)
    dt = c.compute_dtype(scores) if floating else jnp.result_type(float)
    return c.up(scores, dt), c.up(targets, dt), (scores.dtype if floating else dt)


def hinge_loss(predictor_outputs, targets):
    """Binary hinge loss: max(0, 1 - predictor_outputs * targets), elementwise.

    Args:
        predictor_outputs: scores of the decision function.
        targets: labels in {-1, 1}, the shape of ``predictor_outputs``.

    Returns:
        The loss per element.

    References:
        Cortes and Vapnik, Support-Vector Networks, Machine Learning 1995.
    """
    s, t, out = _scores_and_targets(predictor_outputs, targets)
    return jnp.maximum(0, 1 - s * t).astype(out)


def perceptron_loss(predictor_outputs, targets):
    """Binary perceptron loss: max(0, -predictor_outputs * targets), elementwise.

    Args:
        predictor_outputs: scores of the model.
        targets: labels in {-1, 1}, the shape of ``predictor_outputs`` (checked).

    Returns:
        The loss per element.

    References:
        Rosenblatt, The Perceptron, Psychological Review 1958.
    """
    where_ = "gradtx.losses.perceptron_loss"
    c.check_same_shape(where_, "predictor_outputs", predictor_outputs, "targets", targets)
    s, t, out = _scores_and_targets(predictor_outputs, targets)
    return jnp.maximum(0, -s * t).astype(out)


def sparsemax_loss(logits, labels):
    """Binary sparsemax loss: sparse_plus(-logits) for label 1, sparse_plus(logits) for 0.

    sparse_plus(z) = 0 for z <= -1, (z + 1) ** 2 / 4 for -1 < z < 1, z for z >= 1.
    The loss is 0 exactly when sparse_sigmoid(logits) equals the label.

    Args:
        logits: scores of the model.
        labels: labels in {0, 1}, the shape of ``logits``.

    Returns:
        The loss per element.

    References:
        Blondel, Martins and Niculae, Learning with Fenchel-Young Losses, JMLR 2020,
        section 4.4.
    """
    where_ = "gradtx.losses.sparsemax_loss"
    logits = c.check_floating(where_, "logits", logits)
    x = c.up(logits, c.compute_dtype(logits))
    z = jnp.where(jnp.asarray(labels) != 0, -x, x)
    zero = jnp.zeros_like(z)
    loss = jnp.where(z <= -1, zero, jnp.where(z >= 1, z, (z + 1) ** 2 / 4))
    return loss.astype(logits.dtype)


def _one_hot_score(s, labels):
    """scores[..., label] as a dot with the one-hot label (0 for a label out of range)."""
    one_hot = jax.nn.one_hot(labels, s.shape[-1], dtype=s.dtype)
    return one_hot, jnp.sum(s * one_hot, axis=-1)


def multiclass_hinge_loss(scores, labels):
    """Multiclass hinge loss: max_k(scores_k + 1 - [k == label]) - scores_label.

    Args:
        scores: scores of the model, shape [..., num_classes].
        labels: integer class indices, shape [...].

    Returns:
        The loss per example, shape [...].

    References:
        Crammer and Singer, On the Algorithmic Implementation of Multiclass Kernel-based
        Vector Machines, JMLR 2001.
    """
    scores = jnp.asarray(scores)
    s = c.up(scores, c.compute_dtype(scores))
    one_hot, picked = _one_hot_score(s, labels)
    return (jnp.max(s + 1 - one_hot, axis=-1) - picked).astype(scores.dtype)


def multiclass_perceptron_loss(scores, labels):
    """Multiclass perceptron loss: max_k(scores_k) - scores_label.

    Args:
        scores: scores of the model, shape [..., num_classes].
        labels: integer class indices, shape [...].

    Returns:
        The loss per example, shape [...].

    References:
        Collins, Discriminative Training Methods for Hidden Markov Models, EMNLP 2002.
    """
    scores = jnp.asarray(scores)
    s = c.up(scores, c.compute_dtype(scores))
    _, picked = _one_hot_score(s, labels)
    return (jnp.max(s, axis=-1) - picked).astype(scores.dtype)


def multiclass_sparsemax_loss(scores, labels):
    """Multiclass sparsemax loss: the Fenchel-Young loss of the Gini entropy.

    p = sparsemax(scores) (the Euclidean projection of scores onto the simplex)
    loss = sum(p * (scores - scores_label)) + (1 - sum(p ** 2)) / 2
    Its gradient in scores is p - one_hot(label).

    Args:
        scores: scores of the model, shape [..., num_classes].
        labels: integer class indices, shape [...].

    Returns:
        The loss per example, shape [...].

    References:
        Martins and Astudillo, From Softmax to Sparsemax: A Sparse Model of Attention and
        Multi-Label Classification, ICML 2016, equation 16.
    """
    scores = jnp.asarray(scores)
    s = c.up(scores, c.compute_dtype(scores))
    labels = jnp.asarray(labels)
    p = simplex_last_axis(s, jnp.ones((), s.dtype))
    s_label = jnp.take_along_axis(s, labels[..., None], axis=-1, mode="clip")
    shifted = jnp.where(p > 0, s - s_label, jnp.zeros_like(s))
    loss = jnp.sum(p * shifted, axis=-1) + (1 - jnp.sum(p * p, axis=-1)) / 2
    return loss.astype(scores.dtype)


# ----------------------------------------------------------------------------- divergences


def _kl_inputs(where_, log_predictions, targets, targets_name):
    log_predictions = c.check_floating(where_, "log_predictions", log_predictions)
    targets = c.check_floating(where_, targets_name, targets)
    dt = c.wider(c.compute_dtype(log_predictions), c.compute_dtype(targets))
    return c.up(log_predictions, dt), c.up(targets, dt), log_predictions.dtype


def kl_divergence(log_predictions, targets, axis=-1, where=None):
    """Kullback-Leibler divergence KL(targets || predictions), predictions given as logs.

    loss = sum(targets * (log(targets) - log_predictions), axis), with 0 * log 0 = 0 and
    terms of target 0 counted as 0 (also where log_predictions is -inf).

    Args:
        log_predictions: log-probabilities of the predicted distribution, shape [..., dim].
        targets: probabilities of the target distribution, the same shape.
        axis: axis or axes of the distribution.
        where: boolean mask of the entries to include.

    Returns:
        The divergence per example, shape [...].

    References:
        Kullback and Leibler, On Information and Sufficiency, Ann. Math. Stat. 1951.
    """
    lp, t, out = _kl_inputs("gradtx.losses.kl_divergence", log_predictions, targets, "targets")
    zero = t == 0
    terms = jnp.where(zero, jnp.zeros_like(t), t * (c.safe_log(t) - lp))
    return jnp.sum(terms, axis=axis, where=where).astype(out)


def kl_divergence_with_log_targets(log_predictions, log_targets, axis=-1, where=None):
    """Kullback-Leibler divergence KL(targets || predictions), both given as logs.

    loss = sum(exp(log_targets) * (log_targets - log_predictions), axis), with terms of
    log_target -inf (probability 0) counted as 0.

    Args:
        log_predictions: log-probabilities of the predicted distribution, shape [..., dim].
        log_targets: log-probabilities of the target distribution, the same shape.
        axis: axis or axes of the distribution.
        where: boolean mask of the entries to include.

    Returns:
        The divergence per example, shape [...].

    References:
        Kullback and Leibler, On Information and Sufficiency, Ann. Math. Stat. 1951.
    """
    lp, lt, out = _kl_inputs(
        "gradtx.losses.kl_divergence_with_log_targets", log_predictions, log_targets, "log_targets"
    )
    zero = jnp.isneginf(lt)
    lt_safe = jnp.where(zero, jnp.zeros_like(lt), lt)
    terms = jnp.where(zero, jnp.zeros_like(lt), jnp.exp(lt_safe) * (lt_safe - lp))
    return jnp.sum(terms, axis=axis, where=where).astype(out)


def generalized_kl_divergence(log_predictions, targets, axis=-1, where=None):
    """Generalized KL divergence between unnormalized positive measures.

    loss = sum(targets * (log(targets) - log_predictions) + exp(log_predictions) - targets)
    (the Bregman divergence of f(x) = x log x - x; equals kl_divergence for distributions).

    Args:
        log_predictions: logs of the predicted measure, shape [..., dim].
        targets: the target measure (non-negative), the same shape.
        axis: axis or axes to sum over.
        where: boolean mask of the entries to include.

    Returns:
        The divergence per example, shape [...].

    References:
        Boyd and Vandenberghe, Convex Optimization, 2004, p. 90.
    """
    where_ = "gradtx.losses.generalized_kl_divergence"
    lp, t, out = _kl_inputs(where_, log_predictions, targets, "targets")
    kl = kl_divergence(lp, t, axis=axis, where=where)
    return (kl + jnp.sum(jnp.exp(lp) - t, axis=axis, where=where)).astype(out)


def convex_kl_divergence(log_predictions, targets, axis=-1, where=None):
    """The older name of ``generalized_kl_divergence`` (same arguments and result).

    Args:
        log_predictions: logs of the predicted measure, shape [..., dim].
        targets: the target measure (non-negative), the same shape.
        axis: axis or axes to sum over.
        where: boolean mask of the entries to include.

    Returns:
        The divergence per example, shape [...].
    """
    return generalized_kl_divergence(log_predictions, targets, axis=axis, where=where)
