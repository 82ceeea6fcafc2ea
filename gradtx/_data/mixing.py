"""Data-side regularisation from the CS231n lecture: mixup and cutmix, as pure jittable functions.

Both pair every example with a partner drawn by a random permutation of the batch and draw one
mixing weight per example from Beta(alpha, alpha). Labels are either probabilities / one-hot
rows ``[B, K]`` (floating dtype, used as given) or integer class ids ``[B]`` together with
``num_classes`` (turned into one-hot rows first). The mixed labels are always ``[B, K]``
probabilities, ready for a cross-entropy against soft targets.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.trees import acc_dtype, as_dtype


def _soft_labels(labels, num_classes, dtype, where):
    """Labels as ``[B, K]`` floating rows: one-hot for integer ids, unchanged for floats."""
    labels = jnp.asarray(labels)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if num_classes is None:
            raise ValueError(
                f"{where}: labels are integer class ids of shape {labels.shape}, but "
                "num_classes=None. Pass num_classes=K, or pass one-hot/probability rows [B, K]."
            )
        if labels.ndim != 1:
            raise ValueError(f"{where}: integer labels must have shape [B], got {labels.shape}.")
        return jax.nn.one_hot(labels, num_classes, dtype=dtype)
    if labels.ndim != 2:
        raise ValueError(
            f"{where}: floating labels must be probability rows of shape [B, K], got "
            f"{labels.shape}. For class ids pass an integer array and num_classes."
        )
    return labels


def _check_inputs(inputs, where, min_ndim=1):
    inputs = jnp.asarray(inputs)
    if not jnp.issubdtype(inputs.dtype, jnp.floating) or inputs.ndim < min_ndim:
        raise TypeError(
            f"{where}: inputs have dtype {inputs.dtype} and shape {inputs.shape}; expected a "
            f"floating array with at least {min_ndim} dimensions (batch first). Cast images "
            "to float first, e.g. inputs.astype(jnp.float32) / 255."
        )
    return inputs


def _pair_and_weights(key, batch, alpha):
    """A random partner index and a Beta(alpha, alpha) weight for every example."""
    k_perm, k_beta = jax.random.split(key)
    partner = jax.random.permutation(k_perm, batch)
    a = as_dtype(alpha, jnp.float32)
    lam = jax.random.beta(k_beta, a, a, (batch,), jnp.float32)
    return partner, lam


def mixup(key, inputs, labels, alpha=0.2, *, num_classes: int | None = None):
    """Mixup: train on convex combinations of pairs of examples and of their labels.

    partner = permutation(batch);  lam_i ~ Beta(alpha, alpha), one per example
    inputs_i = lam_i * inputs_i + (1 - lam_i) * inputs_partner_i
    labels_i = lam_i * labels_i + (1 - lam_i) * labels_partner_i

    Args:
        key: a PRNG key.
        inputs: floating array ``[B, ...]``.
        labels: probability rows ``[B, K]`` or integer class ids ``[B]`` (then num_classes).
        alpha: the Beta distribution's parameter (> 0): a number, array or tracer.
        num_classes: K, needed when labels are integer ids.

    Returns:
        ``(mixed_inputs, mixed_labels)``: inputs' shape and dtype, and ``[B, K]`` labels.

    References:
        Zhang et al., mixup: Beyond Empirical Risk Minimization, 2018.
    """
    where = "gradtx.mixup"
    _checks.check_number(where, "alpha", alpha, low=0.0, low_open=True)
    inputs = _check_inputs(inputs, where)
    dt = acc_dtype(inputs.dtype)
    labels = _soft_labels(labels, num_classes, dt, where)
    partner, lam = _pair_and_weights(key, inputs.shape[0], alpha)
    lam_x = lam.astype(dt).reshape((-1,) + (1,) * (inputs.ndim - 1))
    x = inputs.astype(dt)
    mixed = (lam_x * x + (1 - lam_x) * x[partner]).astype(inputs.dtype)
    ldt = acc_dtype(labels.dtype)
    lam_y = lam.astype(ldt)[:, None]
    y = labels.astype(ldt)
    mixed_labels = (lam_y * y + (1 - lam_y) * y[partner]).astype(labels.dtype)
    return mixed, mixed_labels


def cutmix(key, inputs, labels, alpha=1.0, *, num_classes: int | None = None):
    """CutMix: paste a random box from a partner image; mix labels by the pasted area.

    partner = permutation(batch);  lam_i ~ Beta(alpha, alpha), one per example
    box: height floor(H * sqrt(1 - lam_i)), width floor(W * sqrt(1 - lam_i)), centre uniform
         over the image, clipped to its edges (so the pasted area may be smaller)
    inputs_i = inputs_partner_i inside the box, inputs_i outside it
    labels_i = (1 - area_i) * labels_i + area_i * labels_partner_i,  area_i = box area / (H * W)

    The label weight is the area actually pasted, after clipping (as in the paper's code).

    Args:
        key: a PRNG key.
        inputs: floating images ``[B, H, W, ...]`` (axes 1 and 2 are cut; channels may follow).
        labels: probability rows ``[B, K]`` or integer class ids ``[B]`` (then num_classes).
        alpha: the Beta distribution's parameter (> 0): a number, array or tracer.
        num_classes: K, needed when labels are integer ids.

    Returns:
        ``(mixed_inputs, mixed_labels)``: inputs' shape and dtype, and ``[B, K]`` labels.

    References:
        Yun et al., CutMix: Regularization Strategy to Train Strong Classifiers with
        Localizable Features, 2019.
    """
    where = "gradtx.cutmix"
    _checks.check_number(where, "alpha", alpha, low=0.0, low_open=True)
    inputs = _check_inputs(inputs, where, min_ndim=3)
    labels = _soft_labels(labels, num_classes, acc_dtype(inputs.dtype), where)
    batch, height, width = inputs.shape[:3]
    k_pair, k_y, k_x = jax.random.split(key, 3)
    partner, lam = _pair_and_weights(k_pair, batch, alpha)
    ratio = jnp.sqrt(1 - lam)
    cut_h = jnp.floor(height * ratio).astype(jnp.int32)
    cut_w = jnp.floor(width * ratio).astype(jnp.int32)
    cy = jax.random.randint(k_y, (batch,), 0, height, jnp.int32)
    cx = jax.random.randint(k_x, (batch,), 0, width, jnp.int32)
    y0, y1 = jnp.clip(cy - cut_h // 2, 0, height), jnp.clip(cy - cut_h // 2 + cut_h, 0, height)
    x0, x1 = jnp.clip(cx - cut_w // 2, 0, width), jnp.clip(cx - cut_w // 2 + cut_w, 0, width)
    rows, cols = jnp.arange(height, dtype=jnp.int32), jnp.arange(width, dtype=jnp.int32)
    in_rows = (rows[None, :] >= y0[:, None]) & (rows[None, :] < y1[:, None])
    in_cols = (cols[None, :] >= x0[:, None]) & (cols[None, :] < x1[:, None])
    box = in_rows[:, :, None] & in_cols[:, None, :]
    box_x = box.reshape(box.shape + (1,) * (inputs.ndim - 3))
    mixed = jnp.where(box_x, inputs[partner], inputs)
    ldt = acc_dtype(labels.dtype)
    area = ((y1 - y0) * (x1 - x0)).astype(ldt) / (height * width)
    y = labels.astype(ldt)
    mixed_labels = ((1 - area)[:, None] * y + area[:, None] * y[partner]).astype(labels.dtype)
    return mixed, mixed_labels
