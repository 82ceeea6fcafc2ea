"""optax 0.2.8's defaults for the contrib Adam-like optimizers (contribc).

madgrad: optax adds eps to the learning rate (as facebookresearch/madgrad does), Algorithm 1
of the paper does not. acprop: optax 0.2.8's code centres the second moment on the previous
first moment, against its own docstring and the authors' code (optax PR #1716).
sophia: optax bias-corrects the momentum and divides by the Hessian average of before this
step's estimate; Algorithm 3 of the paper does neither. See ``docs/guide/contribc.md``.
"""

from __future__ import annotations

from gradtx.contrib._acprop import acprop as _acprop
from gradtx.contrib._acprop import scale_by_acprop as _scale_by_acprop
from gradtx.contrib._madgrad import madgrad as _madgrad
from gradtx.contrib._madgrad import scale_by_madgrad as _scale_by_madgrad
from gradtx.contrib._sophia import hutchinson_estimator_diag_hessian
from gradtx.contrib._sophia import sophia as _sophia


def scale_by_madgrad(learning_rate, momentum=0.9, eps=1e-6):
    """optax.contrib.scale_by_madgrad: lamb = (learning_rate + eps) * sqrt(k + 1)."""
    return _scale_by_madgrad(learning_rate, momentum, eps, eps_in_lr=True)


def madgrad(learning_rate, momentum=0.9, weight_decay=0.0, eps=1e-6):
    """optax.contrib.madgrad: lamb = (learning_rate + eps) * sqrt(k + 1)."""
    return _madgrad(learning_rate, momentum, weight_decay, eps, eps_in_lr=True)


def scale_by_acprop(b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16):
    """optax.contrib.scale_by_acprop: residual updates - mu of the previous step."""
    return _scale_by_acprop(b1, b2, eps, eps_root, residual_of_previous_mu=True)


def acprop(learning_rate, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, weight_decay=0.0, mask=None):
    """optax.contrib.acprop: residual updates - mu of the previous step."""
    return _acprop(
        learning_rate, b1, b2, eps, eps_root, weight_decay, mask, residual_of_previous_mu=True
    )


# optax's default estimator: one instance made at import, as optax's signature has it
_HUTCHINSON = hutchinson_estimator_diag_hessian()


def sophia(
    learning_rate,
    b1=0.965,
    b2=0.99,
    eps=1e-8,
    weight_decay=1e-4,
    weight_decay_mask=None,
    gamma=0.01,
    clip_threshold=1.0,
    update_interval=10,
    hessian_diagonal_fn=_HUTCHINSON,
    mu_dtype=None,
    verbose=False,
    print_win_rate_every_n_steps=0,
):
    """optax.contrib.sophia: bias-corrected momentum over the previous h."""
    return _sophia(
        learning_rate,
        b1,
        b2,
        eps,
        weight_decay,
        weight_decay_mask,
        gamma,
        clip_threshold,
        update_interval,
        hessian_diagonal_fn,
        mu_dtype,
        verbose,
        print_win_rate_every_n_steps,
        bias_correction=True,
        fresh_hessian=False,
    )


OVERRIDES = {
    "contrib": {
        "sophia": sophia,
        "acprop": acprop,
        "scale_by_acprop": scale_by_acprop,
        "madgrad": madgrad,
        "scale_by_madgrad": scale_by_madgrad,
    },
}
