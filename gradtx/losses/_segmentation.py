"""Segmentation losses: soft Dice (and Tversky), generalized Dice, binary Dice."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradtx.losses import _common as c

_REDUCTIONS = ("mean", "sum", "none")


def _check_probabilities(where_, probs):
    """With several classes, concrete probabilities must sum to 1 over the class axis (under
    jit the values are unknown, and nothing is checked)."""
    if probs.shape[-1] == 1 or isinstance(probs, jax.core.Tracer):
        return
    sums = jnp.sum(probs, axis=-1)
    if not bool(jnp.allclose(sums, 1.0, rtol=1e-5)):
        raise ValueError(
            f"{where_}: with apply_softmax=False the predictions must be probabilities that "
            f"sum to 1 over the last (class) axis; their sums range over "
            f"[{float(jnp.min(sums)):.6f}, {float(jnp.max(sums)):.6f}]. Pass logits with "
            "apply_softmax=True, or normalize the predictions."
        )


def dice_loss(
    predictions,
    targets,
    *,
    class_weights=None,
    smooth=1.0,
    alpha=0.5,
    beta=0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    ignore_background: bool = False,
    axis=None,
):
    """Soft Dice loss per class (Tversky loss for alpha != beta), reduced over the classes.

    probs = softmax(predictions) (sigmoid for one channel) if apply_softmax else predictions
    inter = sum(probs * targets, axis), P = sum(probs, axis), T = sum(targets, axis)
    dice_c = 1 - (inter + smooth) / (inter + alpha * (P - inter) + beta * (T - inter) + smooth)
    then times class_weights, without class 0 if ignore_background, and reduced over classes.

    Args:
        predictions: logits (or probabilities), shape [batch, ..., num_classes]; a binary
            input may omit the class axis.
        targets: one-hot (or binary) targets, the shape of ``predictions``.
        class_weights: weight of each class, shape [num_classes], or None.
        smooth: added to numerator and denominator.
        alpha: weight of the false positives P - inter (0.5: Dice).
        beta: weight of the false negatives T - inter (0.5: Dice).
        apply_softmax: whether ``predictions`` are logits.
        reduction: "mean" or "sum" over the classes, or "none" for one loss per class.
        ignore_background: leave out class 0 (when there are several classes).
        axis: the axes summed over; None for all but the first and the last.

    Returns:
        The loss per example, shape [batch] (with "none": [batch, num_classes]).

    References:
        Milletari, Navab and Ahmadi, V-Net, 3DV 2016, equation 1; Salehi, Erdogmus and
        Gholipour, Tversky Loss Function for Image Segmentation, MLMI 2017, equation 3.
    """
    where_ = "gradtx.losses.dice_loss"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{where_}: reduction={reduction!r}; expected one of {_REDUCTIONS}.")
    predictions = c.check_floating(where_, "predictions", predictions)
    targets = jnp.asarray(targets)
    if predictions.ndim == targets.ndim - 1:
        predictions = predictions[..., None]
    if targets.ndim == predictions.ndim - 1:
        targets = targets[..., None]
    c.check_same_shape(where_, "predictions", predictions, "targets", targets)
    dt = c.compute_dtype(predictions)
    x, t = c.up(predictions, dt), c.up(targets, dt)
    if apply_softmax:
        probs = jax.nn.sigmoid(x) if x.shape[-1] == 1 else jax.nn.softmax(x, axis=-1)
    else:
        _check_probabilities(where_, x)
        probs = x
    axis = tuple(range(1, probs.ndim - 1)) if axis is None else axis
    inter = jnp.sum(probs * t, axis=axis)
    p_sum, t_sum = jnp.sum(probs, axis=axis), jnp.sum(t, axis=axis)
    s = c.up(smooth, dt)
    denom = inter + c.up(alpha, dt) * (p_sum - inter) + c.up(beta, dt) * (t_sum - inter) + s
    loss = 1 - (inter + s) / denom
    if class_weights is not None:
        class_weights = jnp.asarray(class_weights)
        if class_weights.ndim != 1:
            raise ValueError(
                f"{where_}: class_weights has shape {class_weights.shape}; expected [num_classes]."
            )
        loss = loss * class_weights.astype(dt).reshape((1,) * (loss.ndim - 1) + (-1,))
    if ignore_background and probs.shape[-1] > 1:
        loss = loss[..., 1:]
    if reduction == "mean":
        loss = jnp.mean(loss, axis=-1)
    elif reduction == "sum":
        loss = jnp.sum(loss, axis=-1)
    return loss.astype(predictions.dtype)


def multiclass_generalized_dice_loss(
    predictions, targets, *, smooth=1.0, apply_softmax: bool = True, ignore_background=False
):
    """Dice loss with classes weighted by the inverse square of their frequency.

    freq_c = sum of targets of class c over the batch and pixels
    w_c = 1 / (freq_c ** 2 + 1e-7), rescaled so that the weights sum to num_classes
    loss = mean over examples and classes of w_c * dice_c (dice_c as in ``dice_loss``)

    Args:
        predictions: logits (or probabilities), shape [batch, ..., num_classes].
        targets: one-hot targets, the same shape.
        smooth: added to numerator and denominator.
        apply_softmax: whether ``predictions`` are logits.
        ignore_background: leave out class 0.

    Returns:
        The scalar loss.

    References:
        Sudre et al., Generalised Dice Overlap as a Deep Learning Loss Function for Highly
        Unbalanced Segmentations, DLMIA 2017 (the class weights of equation 2).
    """
    where_ = "gradtx.losses.multiclass_generalized_dice_loss"
    c.check_same_shape(where_, "predictions", predictions, "targets", targets)
    t = jnp.asarray(targets)
    dt = c.compute_dtype(jnp.asarray(predictions))
    freq = jnp.sum(t.astype(dt), axis=tuple(range(t.ndim - 1)))
    w = 1 / (freq**2 + 1e-7)
    w = w / jnp.sum(w) * w.shape[0]
    per_class = dice_loss(
        predictions,
        targets,
        class_weights=w,
        smooth=smooth,
        apply_softmax=apply_softmax,
        reduction="none",
        ignore_background=ignore_background,
    )
    return jnp.mean(per_class.astype(dt)).astype(per_class.dtype)


def binary_dice_loss(predictions, targets, *, smooth=1.0, apply_sigmoid: bool = True):
    """Dice loss of one foreground channel: ``dice_loss`` with sigmoid probabilities.

    Args:
        predictions: logits (or probabilities), shape [batch, ...] or [batch, ..., 1].
        targets: binary targets, the same shape.
        smooth: added to numerator and denominator.
        apply_sigmoid: whether ``predictions`` are logits.

    Returns:
        The loss per example, shape [batch].
    """
    predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
    if predictions.ndim == targets.ndim and predictions.shape[-1] != 1:
        predictions, targets = predictions[..., None], targets[..., None]
    return dice_loss(
        predictions, targets, smooth=smooth, apply_softmax=apply_sigmoid, reduction="mean"
    )
