"""Optimizers with per-layer or per-axis second moments: NovoGrad and SM3.

The math is in ``gradtx/transforms/_layerwise.py``.
"""

from __future__ import annotations

from gradtx._aliases._common import maximizing
from gradtx._core.base import GradientTransformation, chain
from gradtx.transforms._layerwise import scale_by_novograd, scale_by_sm3
from gradtx.transforms._scaling import scale_by_learning_rate


def novograd(
    learning_rate,
    b1=0.9,
    b2=0.25,
    eps=1e-6,
    eps_root=0.0,
    weight_decay=0.0,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """NovoGrad: chain(scale_by_novograd(b1, b2, eps, eps_root, weight_decay),
    scale_by_learning_rate(learning_rate)), i.e. Algorithm 1 of Ginsburg et al. 2019:
    v = b2 * v + (1 - b2) * ||g|| ** 2 (per layer; v = ||g|| ** 2 at t = 1);
    m = b1 * m + g / (sqrt(v) + eps) + weight_decay * w;  w = w - learning_rate * m.
    """
    return maximizing(
        chain(
            scale_by_novograd(b1, b2, eps, eps_root, weight_decay),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def sm3(learning_rate, momentum=0.9, *, maximize: bool = False) -> GradientTransformation:
    """SM3: chain(scale_by_sm3(b1=momentum), scale_by_learning_rate(learning_rate)).

    The paper's SM3-II step (Anil et al. 2019) w = w - learning_rate * g / sqrt(nu), nu from
    one accumulator per axis, fed through a moving average with decay ``momentum``.
    """
    return maximizing(
        chain(scale_by_sm3(momentum), scale_by_learning_rate(learning_rate)), maximize
    )
