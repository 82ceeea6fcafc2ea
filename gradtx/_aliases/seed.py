"""The seven optimizers of the CS231n lecture, each a chain of the small transforms.

With default options each reproduces the update rule of the CS231n notes exactly (see
``docs/reference/update-rules.md``); the transforms named in each chain hold the math.
"""

from __future__ import annotations

from gradtx._aliases._common import maximizing
from gradtx._core.base import GradientTransformation, chain, identity
from gradtx.transforms._adam_variants import scale_by_amsgrad
from gradtx.transforms._adaptive import scale_by_adam, scale_by_rms, scale_by_rss
from gradtx.transforms._decay import add_decayed_weights
from gradtx.transforms._momentum import trace
from gradtx.transforms._scaling import scale_by_learning_rate


def sgd(
    learning_rate,
    momentum=None,
    nesterov: bool = False,
    *,
    dampening=0.0,
    accumulator_dtype=None,
    maximize: bool = False,
) -> GradientTransformation:
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    chain(trace(momentum, nesterov, dampening=dampening), scale_by_learning_rate(learning_rate));
    without momentum, just the learning rate: ``x -= learning_rate * dx`` (dampening then has
    no effect, as in torch). ``dampening`` is torch.optim.SGD's, applied from the second step.
    """
    return maximizing(
        chain(
            identity()
            if momentum is None
            else trace(
                momentum, nesterov, dampening=dampening, accumulator_dtype=accumulator_dtype
            ),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def adagrad(
    learning_rate,
    initial_accumulator_value=0.0,
    eps=1e-10,
    *,
    eps_in_sqrt: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """AdaGrad: chain(scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate).

    Defaults are the CS231n notes' and PyTorch's (accumulator from 0, eps outside the root, 1e-10).
    """
    return maximizing(
        chain(
            scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt=eps_in_sqrt),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def rmsprop(
    learning_rate,
    decay=0.99,
    eps=1e-8,
    initial_scale=0.0,
    eps_in_sqrt: bool = False,
    centered: bool = False,
    momentum=None,
    nesterov: bool = False,
    bias_correction: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """RMSProp: chain(scale_by_rms(...), trace(momentum) if given, scale_by_learning_rate).

    Defaults are the CS231n notes' and PyTorch's (decay 0.99, eps outside the root, nu from 0).
    """
    return maximizing(
        chain(
            scale_by_rms(
                decay,
                eps,
                initial_scale,
                eps_in_sqrt=eps_in_sqrt,
                centered=centered,
                bias_correction=bias_correction,
            ),
            identity() if momentum is None else trace(momentum, nesterov),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def _adam_core(b1, b2, eps, eps_root, mu_dtype, nesterov: bool, amsgrad: bool):
    """scale_by_adam, or scale_by_amsgrad (torch's amsgrad=True, which has no Nesterov form)."""
    if not isinstance(amsgrad, bool):
        raise TypeError(f"amsgrad={amsgrad!r} must be a Python bool (True or False).")
    if not amsgrad:
        return scale_by_adam(b1, b2, eps, eps_root, mu_dtype=mu_dtype, nesterov=nesterov)
    if nesterov:
        raise ValueError(
            "amsgrad=True with nesterov=True: AMSGrad has no Nesterov form here (nor in torch). "
            "Pass one of them."
        )
    return scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype)


def adam(
    learning_rate=1e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    *,
    mu_dtype=None,
    nesterov: bool = False,
    amsgrad: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """Adam: chain(scale_by_adam(b1, b2, eps, eps_root), scale_by_learning_rate).

    Defaults are the CS231n notes' (1e-3, 0.9, 0.999, 1e-8), bias correction from t = 1.
    ``amsgrad=True`` is torch.optim.Adam(amsgrad=True): ``scale_by_amsgrad`` in place of
    ``scale_by_adam``.
    """
    return maximizing(
        chain(
            _adam_core(b1, b2, eps, eps_root, mu_dtype, nesterov, amsgrad),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def adamw(
    learning_rate=1e-3,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    weight_decay=1e-2,
    *,
    mu_dtype=None,
    nesterov: bool = False,
    mask=None,
    amsgrad: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """AdamW: Adam with decay decoupled from the moments and multiplied by the learning rate.

    chain(scale_by_adam(b1, b2, eps, eps_root), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate)), i.e.
    W -= learning_rate * (mu_hat / (sqrt(nu_hat) + eps) + weight_decay * W).
    weight_decay defaults to PyTorch's 1e-2 (optax: 1e-4). ``amsgrad=True`` is
    torch.optim.AdamW(amsgrad=True): ``scale_by_amsgrad`` in place of ``scale_by_adam``.
    """
    return maximizing(
        chain(
            _adam_core(b1, b2, eps, eps_root, mu_dtype, nesterov, amsgrad),
            add_decayed_weights(weight_decay, mask),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )
