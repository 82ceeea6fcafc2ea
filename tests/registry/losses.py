"""Losses are not transforms: the loss names gradtx exports at its top level (as optax does).

The losses and projections are tested in tests/test_losses.py and tests/test_projections.py;
gradtx.losses and gradtx.projections hold the rest of them.
"""

from __future__ import annotations

import gradtx.losses

_TOP_LEVEL_LOSSES = (
    "convex_kl_divergence",
    "cosine_distance",
    "cosine_similarity",
    "ctc_loss",
    "ctc_loss_with_forward_probs",
    "generalized_kl_divergence",
    "hinge_loss",
    "huber_loss",
    "kl_divergence",
    "l2_loss",
    "log_cosh",
    "ntxent",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
    "smooth_labels",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "squared_error",
)

NOT_TRANSFORMS: dict[str, str] = {
    name: "loss function (gradtx.losses." + name + ", tests/test_losses.py)"
    for name in _TOP_LEVEL_LOSSES
    if name in gradtx.losses.__all__
}
