"""The Adam-family optimizers, each a chain of the transforms in ``transforms/_adam_variants.py``.

Defaults are torch.optim's where torch has the optimizer (Adamax, NAdam, RAdam, AMSGrad as
``Adam(amsgrad=True)``), else the paper's. ``weight_decay=None`` means no decay term (torch's
0): the chain then needs no parameters. A number adds torch's coupled L2 term before the
moments, or, with ``decoupled_weight_decay=True``, the decoupled decay (AdamW's) after them.
"""

from __future__ import annotations

from gradtx._aliases._common import maximizing
from gradtx._core.base import GradientTransformation, chain, identity
from gradtx.transforms._adam_variants import (
    scale_by_adamax,
    scale_by_adan,
    scale_by_amsgrad,
    scale_by_belief,
    scale_by_nadam,
    scale_by_radam,
    scale_by_yogi,
)
from gradtx.transforms._decay import add_decayed_weights, add_l2_penalty
from gradtx.transforms._scaling import scale_by_learning_rate


def _l2(weight_decay, decoupled: bool = False):
    """torch's coupled weight decay (first in the chain): none when None or decoupled."""
    if not isinstance(decoupled, bool):
        raise TypeError(f"decoupled_weight_decay={decoupled!r} must be a Python bool.")
    return identity() if weight_decay is None or decoupled else add_l2_penalty(weight_decay)


def _decoupled(weight_decay, decoupled: bool = True, mask=None):
    """AdamW's decoupled decay (before the learning rate): none when None or not decoupled."""
    if weight_decay is None or not decoupled:
        return identity()
    return add_decayed_weights(weight_decay, mask)


def adamax(
    learning_rate=2e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    weight_decay=None,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """AdaMax, as torch.optim.Adamax: chain(add_l2_penalty if weight_decay, scale_by_adamax, lr).

    The math is in ``scale_by_adamax``; weight_decay is torch's coupled L2 term.
    """
    return maximizing(
        chain(
            _l2(weight_decay), scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate)
        ),
        maximize,
    )


def adamaxw(
    learning_rate=2e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    weight_decay=1e-2,
    mask=None,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """AdaMax with decoupled weight decay: chain(scale_by_adamax, add_decayed_weights, lr).

    weight_decay defaults to torch AdamW's 1e-2 (optax: 1e-4).
    """
    return maximizing(
        chain(
            scale_by_adamax(b1, b2, eps),
            _decoupled(weight_decay, mask=mask),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def amsgrad(
    learning_rate=1e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    mu_dtype=None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    correct_before_max: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """AMSGrad, as torch.optim.Adam(amsgrad=True): chain(scale_by_amsgrad, lr).

    ``correct_before_max=True`` is optax 0.2.8's variant (see ``scale_by_amsgrad``).
    """
    return maximizing(
        chain(
            scale_by_amsgrad(
                b1,
                b2,
                eps,
                eps_root,
                mu_dtype,
                bias_correction_mu,
                bias_correction_nu,
                correct_before_max=correct_before_max,
            ),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def nadam(
    learning_rate=2e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    mu_dtype=None,
    weight_decay=None,
    momentum_decay=4e-3,
    *,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """NAdam, as torch.optim.NAdam: chain(decay term, scale_by_nadam, lr).

    Dozat's momentum schedule with torch's ``momentum_decay=4e-3``; ``momentum_decay=inf`` is
    constant momentum b1 (optax's nadam). weight_decay is coupled L2 unless
    ``decoupled_weight_decay`` (torch's flag; then the decay is AdamW's).
    """
    return maximizing(
        chain(
            _l2(weight_decay, decoupled_weight_decay),
            scale_by_nadam(b1, b2, eps, eps_root, momentum_decay, mu_dtype=mu_dtype),
            _decoupled(weight_decay, decoupled_weight_decay),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def nadamw(
    learning_rate=2e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    mu_dtype=None,
    weight_decay=1e-2,
    mask=None,
    momentum_decay=4e-3,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """NAdam with decoupled weight decay: chain(scale_by_nadam, add_decayed_weights, lr).

    torch.optim.NAdam(decoupled_weight_decay=True); weight_decay defaults to torch AdamW's 1e-2.
    """
    return maximizing(
        chain(
            scale_by_nadam(b1, b2, eps, eps_root, momentum_decay, mu_dtype=mu_dtype),
            _decoupled(weight_decay, mask=mask),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def radam(
    learning_rate=1e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    threshold=5.0,
    weight_decay=None,
    *,
    nesterov: bool = False,
    decoupled_weight_decay: bool = False,
    eps_on_corrected: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """RAdam, as torch.optim.RAdam: chain(decay term, scale_by_radam, lr).

    weight_decay is coupled L2 unless ``decoupled_weight_decay`` (torch's flag).
    ``eps_on_corrected=True`` is optax's eps placement (see ``scale_by_radam``).
    """
    return maximizing(
        chain(
            _l2(weight_decay, decoupled_weight_decay),
            scale_by_radam(
                b1,
                b2,
                eps,
                eps_root,
                threshold,
                nesterov=nesterov,
                eps_on_corrected=eps_on_corrected,
            ),
            _decoupled(weight_decay, decoupled_weight_decay),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def adabelief(
    learning_rate=1e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-16,
    eps_root=1e-16,
    *,
    nesterov: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """AdaBelief: chain(scale_by_belief(b1, b2, eps, eps_root), lr); the authors' defaults."""
    return maximizing(
        chain(
            scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def yogi(
    learning_rate=1e-2,
    b1=0.9,
    b2=0.999,
    eps=1e-3,
    *,
    initial_accumulator_value=1e-6,
    mu_starts_at_accumulator: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """Yogi: chain(scale_by_yogi(b1, b2, eps), lr); the paper's defaults (lr 1e-2, eps 1e-3)."""
    return maximizing(
        chain(
            scale_by_yogi(
                b1,
                b2,
                eps,
                initial_accumulator_value=initial_accumulator_value,
                mu_starts_at_accumulator=mu_starts_at_accumulator,
            ),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def adan(
    learning_rate=1e-3,
    b1=0.98,
    b2=0.92,
    b3=0.99,
    eps=1e-8,
    eps_root=0.0,
    weight_decay=None,
    mask=None,
    *,
    diff_weight=None,
    maximize: bool = False,
) -> GradientTransformation:
    """Adan: chain(scale_by_adan, add_decayed_weights if weight_decay, lr).

    Defaults are the authors' (lr 1e-3, b's 0.98, 0.92, 0.99, eps 1e-8, no decay). The decay
    is decoupled and multiplied by the learning rate (the authors' ``no_prox=True``), not the
    paper's proximal ``(1 + lr * weight_decay) ** -1``.
    """
    return maximizing(
        chain(
            scale_by_adan(b1, b2, b3, eps, eps_root, diff_weight=diff_weight),
            _decoupled(weight_decay, mask=mask),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )
