"""optax 0.2.8's signatures for the Adam family, each one call of the gradtx definition.

Where optax's formula differs from the paper and torch.optim, gradtx's default is the paper's
and the call passes the gradtx option that reproduces optax:
- amsgrad: optax keeps the maximum of the bias-corrected second moments
  (``correct_before_max=True``; google-deepmind/optax#1389, pytorch/pytorch#142323);
- nadam/nadamw: optax has no momentum schedule: its nadam is ``adam(nesterov=True)``;
- radam: optax adds eps to the corrected second moment (``eps_on_corrected=True``);
- yogi: optax starts the first moment at initial_accumulator_value
  (``mu_starts_at_accumulator=True``);
- adan: optax weights the gradient difference by 1 - b2 (``diff_weight=1 - b2``;
  google-deepmind/optax#1715), and its alias defaults to eps_root=1e-8.
Names whose optax defaults and formula are gradtx's (adamax, adabelief and their transforms)
are not overridden.
"""

from __future__ import annotations

import gradtx


def adamaxw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4, mask=None):
    return gradtx.adamaxw(learning_rate, b1, b2, eps, weight_decay, mask)


def amsgrad(
    learning_rate,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    mu_dtype=None,
    bias_correction_mu=True,
    bias_correction_nu=True,
):
    return gradtx.amsgrad(
        learning_rate,
        b1,
        b2,
        eps,
        eps_root,
        mu_dtype,
        bias_correction_mu,
        bias_correction_nu,
        correct_before_max=True,
    )


def scale_by_amsgrad(
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    mu_dtype=None,
    bias_correction_mu=True,
    bias_correction_nu=True,
):
    return gradtx.scale_by_amsgrad(
        b1,
        b2,
        eps,
        eps_root,
        mu_dtype,
        bias_correction_mu,
        bias_correction_nu,
        correct_before_max=True,
    )


def nadam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *, nesterov=True):
    return gradtx.adam(learning_rate, b1, b2, eps, eps_root, mu_dtype=mu_dtype, nesterov=nesterov)


def nadamw(
    learning_rate,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    mu_dtype=None,
    weight_decay=1e-4,
    mask=None,
    *,
    nesterov=True,
):
    return gradtx.adamw(
        learning_rate,
        b1,
        b2,
        eps,
        eps_root,
        weight_decay,
        mu_dtype=mu_dtype,
        nesterov=nesterov,
        mask=mask,
    )


def radam(
    learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, threshold=5.0, *, nesterov=False
):
    return gradtx.radam(
        learning_rate, b1, b2, eps, eps_root, threshold, nesterov=nesterov, eps_on_corrected=True
    )


def scale_by_radam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, threshold=5.0, *, nesterov=False):
    return gradtx.scale_by_radam(
        b1, b2, eps, eps_root, threshold, nesterov=nesterov, eps_on_corrected=True
    )


def yogi(learning_rate, b1=0.9, b2=0.999, eps=1e-3):
    return gradtx.yogi(learning_rate, b1, b2, eps, mu_starts_at_accumulator=True)


def scale_by_yogi(b1=0.9, b2=0.999, eps=1e-3, eps_root=0.0, initial_accumulator_value=1e-6):
    return gradtx.scale_by_yogi(
        b1, b2, eps, eps_root, initial_accumulator_value, mu_starts_at_accumulator=True
    )


def adan(
    learning_rate,
    b1=0.98,
    b2=0.92,
    b3=0.99,
    eps=1e-8,
    eps_root=1e-8,
    weight_decay=0.0,
    mask=None,
):
    return gradtx.adan(
        learning_rate, b1, b2, b3, eps, eps_root, weight_decay, mask, diff_weight=1 - b2
    )


def scale_by_adan(b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=0.0):
    return gradtx.scale_by_adan(b1, b2, b3, eps, eps_root, diff_weight=1 - b2)


OVERRIDES = {
    "": {
        "adamaxw": adamaxw,
        "adan": adan,
        "amsgrad": amsgrad,
        "nadam": nadam,
        "nadamw": nadamw,
        "radam": radam,
        "scale_by_adan": scale_by_adan,
        "scale_by_amsgrad": scale_by_amsgrad,
        "scale_by_radam": scale_by_radam,
        "scale_by_yogi": scale_by_yogi,
        "yogi": yogi,
    },
}
