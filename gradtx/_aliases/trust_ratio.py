"""Trust-ratio optimizers: LARS, LAMB and Fromage, each a chain of the small transforms.

The math is in ``gradtx/transforms/_trust_ratio.py``; a "layer" is one leaf of the tree.
"""

from __future__ import annotations

import jax

from gradtx._aliases._common import maximizing
from gradtx._core.base import GradientTransformation, chain
from gradtx.transforms._adaptive import scale_by_adam
from gradtx.transforms._combine import mask_flags, masked
from gradtx.transforms._decay import add_decayed_weights
from gradtx.transforms._momentum import trace
from gradtx.transforms._scaling import scale_by_learning_rate
from gradtx.transforms._trust_ratio import scale_by_trust_ratio

_NONE = lambda x: x is None  # noqa: E731


def as_mask_fn(mask):
    """A mask given as a function ``params -> tree of bool`` or as such a tree (or a bool for
    every leaf), as a function; decided by ``callable(mask)`` alone. None stays None."""
    if mask is None or callable(mask):
        return mask
    return lambda params: mask


def _both(first, second, keep_first: bool, keep_second: bool):
    """The mask of the leaves where first(params) is keep_first and second(params) is
    keep_second (each mask a function giving a tree of bools, or a prefix of one)."""
    where = "gradtx.lars"

    def fn(params):
        a = mask_flags(first, params, where, "weight_decay_mask")
        b = mask_flags(second, params, where, "trust_ratio_mask")
        treedef = jax.tree.structure(params, is_leaf=_NONE)
        return treedef.unflatten(
            [x is not None and x == keep_first and y == keep_second for x, y in zip(a, b)]
        )

    return fn


def lars(
    learning_rate,
    weight_decay=0.0,
    weight_decay_mask=True,
    trust_coefficient=0.001,
    eps=0.0,
    trust_ratio_mask=True,
    momentum=0.9,
    nesterov: bool = False,
    *,
    ratio_of_decayed_update: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """LARS: heavy-ball momentum on layer-wise trust-ratio-scaled, decayed gradients.

    ratio = trust_coefficient * ||w|| / (||g|| + weight_decay * ||w|| + eps)    (per leaf)
    v = momentum * v + learning_rate * ratio * (g + weight_decay * w);  w = w - v
    (You et al. 2017, eq. 6 and Algorithm 1): chain(masked(scale_by_trust_ratio(
    trust_coefficient, eps, weight_decay)), scale_by_learning_rate, trace(momentum, nesterov)),
    with plain decay where trust_ratio_mask is False and a plain ratio where weight_decay_mask
    is False.

    Args:
        learning_rate: the global rate gamma (number, array or schedule).
        weight_decay: beta, decay added to the gradient (and, in the paper, to the ratio's
            denominator).
        weight_decay_mask: which leaves are decayed: a function ``params -> tree of bool``,
            such a tree, or True for all.
        trust_coefficient: eta.
        eps: added to the ratio's denominator.
        trust_ratio_mask: which leaves get the trust ratio (a function, a tree or True).
        momentum: the momentum m.
        nesterov: Nesterov's form of the momentum.
        ratio_of_decayed_update: use optax's ratio trust_coefficient * ||w|| /
            (||g + weight_decay * w|| + eps) instead of the paper's.
    """
    wd_mask, tr_mask = as_mask_fn(weight_decay_mask), as_mask_fn(trust_ratio_mask)
    if ratio_of_decayed_update:
        scaled = (
            masked(add_decayed_weights(weight_decay), wd_mask),
            masked(scale_by_trust_ratio(0.0, trust_coefficient, eps), tr_mask),
        )
    else:
        scaled = (
            masked(add_decayed_weights(weight_decay), _both(wd_mask, tr_mask, True, False)),
            masked(
                scale_by_trust_ratio(0.0, trust_coefficient, eps, weight_decay=weight_decay),
                _both(wd_mask, tr_mask, True, True),
            ),
            masked(
                scale_by_trust_ratio(0.0, trust_coefficient, eps),
                _both(wd_mask, tr_mask, False, True),
            ),
        )
    return maximizing(
        chain(*scaled, scale_by_learning_rate(learning_rate), trace(momentum, nesterov)),
        maximize,
    )


def lamb(
    learning_rate,
    b1=0.9,
    b2=0.999,
    eps=1e-6,
    eps_root=0.0,
    weight_decay=0.0,
    mask=None,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """LAMB: Adam's direction plus decoupled decay, scaled per layer by its trust ratio.

    chain(scale_by_adam(b1, b2, eps, eps_root), add_decayed_weights(weight_decay, mask),
    scale_by_trust_ratio(), scale_by_learning_rate(learning_rate)), i.e. Algorithm 2 of You
    et al. 2020 with phi the identity: r = m_hat / (sqrt(v_hat) + eps);
    x = x - learning_rate * ||x|| / ||r + weight_decay * x|| * (r + weight_decay * x).

    Args:
        learning_rate: the rate eta (number, array or schedule).
        b1, b2, eps, eps_root: Adam's (see ``scale_by_adam``).
        weight_decay: lambda, decoupled decay inside the trust ratio.
        mask: which leaves are decayed: a function ``params -> tree of bool`` or such a tree.
    """
    return maximizing(
        chain(
            scale_by_adam(b1, b2, eps, eps_root),
            add_decayed_weights(weight_decay, as_mask_fn(mask)),
            scale_by_trust_ratio(),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def _fromage_shrink(learning_rate):
    """The schedule count -> 1 / sqrt(1 + lr(count) ** 2) (a constant lr gives a constant)."""
    if callable(learning_rate):
        return lambda count: (1 + learning_rate(count) ** 2) ** -0.5
    return lambda count: (1 + learning_rate**2) ** -0.5


def fromage(learning_rate, min_norm=1e-6, *, maximize: bool = False) -> GradientTransformation:
    """Fromage: a step of relative size learning_rate per layer, then a shrink of the layer.

    w = (w - learning_rate * ||w|| / ||g|| * g) / sqrt(1 + learning_rate ** 2)   (per leaf)
    (Bernstein et al. 2020, Algorithm 1), as chain(scale_by_trust_ratio(min_norm),
    scale_by_learning_rate(learning_rate * shrink), add_decayed_weights(shrink - 1)) with
    shrink = 1 / sqrt(1 + learning_rate ** 2): the decay is negative, so it is passed as a
    schedule of the count (a constant one when learning_rate is a number).

    Args:
        learning_rate: the relative step (the paper uses 0.01; number, array or schedule).
        min_norm: the floor of the norms in the trust ratio.
    """
    shrink = _fromage_shrink(learning_rate)
    lr = learning_rate
    return maximizing(
        chain(
            scale_by_trust_ratio(min_norm),
            scale_by_learning_rate(
                lambda count: (lr(count) if callable(lr) else lr) * shrink(count)
            ),
            add_decayed_weights(lambda count: shrink(count) - 1),
        ),
        maximize,
    )
