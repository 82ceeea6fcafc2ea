"""Sign-based optimizers: signSGD, Signum and Lion, each a chain of the small transforms.

The math is in ``gradtx/transforms/_sign.py`` (``scale_by_sign``, ``scale_by_lion``).
"""

from __future__ import annotations

from gradtx._aliases._common import maximizing
from gradtx._aliases.trust_ratio import as_mask_fn
from gradtx._core.base import GradientTransformation, chain
from gradtx.transforms._decay import add_decayed_weights
from gradtx.transforms._momentum import ema
from gradtx.transforms._scaling import scale_by_learning_rate
from gradtx.transforms._sign import scale_by_lion, scale_by_sign


def sign_sgd(learning_rate, *, maximize: bool = False) -> GradientTransformation:
    """signSGD: chain(scale_by_sign(), scale_by_learning_rate(learning_rate)).

    x = x - learning_rate * sign(g)   (Bernstein et al. 2018, the signSGD algorithm box).
    """
    return maximizing(chain(scale_by_sign(), scale_by_learning_rate(learning_rate)), maximize)


def signum(
    learning_rate, beta=0.9, accumulator_dtype=None, *, maximize: bool = False
) -> GradientTransformation:
    """Signum, signSGD with momentum: the sign of a moving average of the gradients.

    chain(ema(beta, debias=False), scale_by_sign(), scale_by_learning_rate(learning_rate)):
    m = beta * m + (1 - beta) * g;  x = x - learning_rate * sign(m)
    (Bernstein et al. 2018, the Signum algorithm box; no debiasing: it cannot change a sign).
    """
    return maximizing(
        chain(
            ema(beta, debias=False, accumulator_dtype=accumulator_dtype),
            scale_by_sign(),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def lion(
    learning_rate,
    b1=0.9,
    b2=0.99,
    mu_dtype=None,
    weight_decay=1e-3,
    mask=None,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """Lion: the sign of interpolated momentum, with decoupled weight decay.

    chain(scale_by_lion(b1, b2), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate)), i.e. Algorithm 2 of Chen et al. 2023:
    c = b1 * m + (1 - b1) * g;  x = x - learning_rate * (sign(c) + weight_decay * x);
    m = b2 * m + (1 - b2) * g.

    Args:
        learning_rate: the step (the paper suggests 3-10x smaller than AdamW's).
        b1, b2: the interpolation weight and the momentum decay (the paper's 0.9, 0.99).
        mu_dtype: dtype of the momentum.
        weight_decay: the decoupled decay, multiplied by the learning rate as in the paper.
        mask: which leaves are decayed: a function ``params -> tree of bool`` or such a tree.
    """
    return maximizing(
        chain(
            scale_by_lion(b1, b2, mu_dtype),
            add_decayed_weights(weight_decay, as_mask_fn(mask)),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )
