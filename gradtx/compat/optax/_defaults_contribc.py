"""optax 0.2.8's defaults for the contrib Adam-like optimizers (contribc).

Only madgrad differs: optax adds eps to the learning rate (as facebookresearch/madgrad does),
Algorithm 1 of the paper does not. See ``docs/guide/contribc.md``.
"""

from __future__ import annotations

from gradtx.contrib._madgrad import madgrad as _madgrad
from gradtx.contrib._madgrad import scale_by_madgrad as _scale_by_madgrad


def scale_by_madgrad(learning_rate, momentum=0.9, eps=1e-6):
    """optax.contrib.scale_by_madgrad: lamb = (learning_rate + eps) * sqrt(k + 1)."""
    return _scale_by_madgrad(learning_rate, momentum, eps, eps_in_lr=True)


def madgrad(learning_rate, momentum=0.9, weight_decay=0.0, eps=1e-6):
    """optax.contrib.madgrad: lamb = (learning_rate + eps) * sqrt(k + 1)."""
    return _madgrad(learning_rate, momentum, weight_decay, eps, eps_in_lr=True)


OVERRIDES = {
    "contrib": {
        "madgrad": madgrad,
        "scale_by_madgrad": scale_by_madgrad,
    },
}
