"""Optimizers built on the sign-of-change, Adadelta, noise, optimistic, Polyak and averaged-SGD
transforms; each a chain whose transforms hold the math."""

from __future__ import annotations

from collections.abc import Callable

from gradtx._aliases._common import maximizing
from gradtx._core.base import GradientTransformation, chain
from gradtx.transforms._adadelta import scale_by_adadelta
from gradtx.transforms._adaptive import scale_by_adam
from gradtx.transforms._decay import add_decayed_weights
from gradtx.transforms._noise import add_noise
from gradtx.transforms._optimistic import scale_by_optimistic_gradient
from gradtx.transforms._rprop import scale_by_rprop
from gradtx.transforms._scaling import scale, scale_by_learning_rate
from gradtx.transforms._stepsize import scale_by_asgd, scale_by_polyak


def rprop(
    learning_rate=0.01,
    eta_minus=0.5,
    eta_plus=1.2,
    min_step_size=1e-6,
    max_step_size=50.0,
    *,
    one_step_lag: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """Rprop: chain(scale_by_rprop(...), scale(-1)); torch.optim.Rprop's defaults.

    learning_rate is the initial step size of every coordinate; see ``scale_by_rprop``.
    """
    return maximizing(
        chain(
            scale_by_rprop(
                learning_rate,
                eta_minus,
                eta_plus,
                min_step_size,
                max_step_size,
                one_step_lag=one_step_lag,
            ),
            scale(-1.0),
        ),
        maximize,
    )


def adadelta(
    learning_rate=1.0,
    rho=0.9,
    eps=1e-6,
    weight_decay=0.0,
    *,
    mask: Callable | None = None,
    maximize: bool = False,
) -> GradientTransformation:
    """Adadelta: chain(add_decayed_weights(weight_decay, mask), scale_by_adadelta(rho, eps),
    scale_by_learning_rate(learning_rate)); torch.optim.Adadelta's defaults (lr 1.0).

    The weight decay is added to the gradient before the averages, as torch does.
    """
    return maximizing(
        chain(
            add_decayed_weights(weight_decay, mask),
            scale_by_adadelta(rho, eps),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def noisy_sgd(
    learning_rate,
    eta=0.01,
    gamma=0.55,
    key=None,
    *,
    seed=None,
    maximize: bool = False,
) -> GradientTransformation:
    """SGD on noisy gradients: chain(add_noise(eta, gamma, key), scale_by_learning_rate).

    x -= learning_rate * (dx + N(0, eta / count ** gamma)); see ``add_noise``.
    """
    return maximizing(
        chain(add_noise(eta, gamma, key, seed=seed), scale_by_learning_rate(learning_rate)),
        maximize,
    )


def optimistic_gradient_descent(
    learning_rate, alpha=1.0, beta=1.0, *, maximize: bool = False
) -> GradientTransformation:
    """Optimistic gradient descent: chain(scale_by_optimistic_gradient(alpha, beta),
    scale_by_learning_rate(learning_rate)).

    x -= learning_rate * ((alpha + beta) * g_t - beta * g_(t-1)); alpha = beta = 1 is OGDA.
    """
    return maximizing(
        chain(
            scale_by_optimistic_gradient(alpha, beta),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def optimistic_adam(
    learning_rate,
    optimism=None,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    *,
    mu_dtype=None,
    nesterov: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """Optimistic Adam (Daskalakis et al. 2018, Algorithm 1), with optax's first interface.

    chain(scale_by_adam(b1, b2, eps, eps_root), scale_by_optimistic_gradient(learning_rate,
    optimism), scale_by_learning_rate(1.0)): with r_t Adam's step,
    x -= learning_rate * r_t + optimism * (r_t - r_(t-1)); optimism defaults to learning_rate
    (the paper's x -= 2 lr r_t - lr r_(t-1)). learning_rate may not be a schedule here
    (``optimistic_adam_v2`` takes one). nesterov=False is the paper's; optax uses True.
    """
    if callable(learning_rate) or callable(optimism):
        raise TypeError(
            "gradtx.optimistic_adam: learning_rate and optimism must be numbers or arrays, not "
            "schedules; use gradtx.optimistic_adam_v2(learning_rate=schedule) instead."
        )
    return maximizing(
        chain(
            scale_by_adam(b1, b2, eps, eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
            scale_by_optimistic_gradient(
                learning_rate, learning_rate if optimism is None else optimism
            ),
            scale_by_learning_rate(1.0),
        ),
        maximize,
    )


def optimistic_adam_v2(
    learning_rate,
    *,
    alpha=1.0,
    beta=1.0,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    mu_dtype=None,
    nesterov: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """Optimistic Adam, optax's second interface: chain(scale_by_adam(b1, b2, eps, eps_root),
    scale_by_optimistic_gradient(alpha, beta), scale_by_learning_rate(learning_rate)).

    x -= learning_rate * ((alpha + beta) * r_t - beta * r_(t-1)), r_t Adam's step; alpha =
    beta = 1 is the paper's rule. nesterov=False is the paper's; optax uses True.
    """
    return maximizing(
        chain(
            scale_by_adam(b1, b2, eps, eps_root, mu_dtype=mu_dtype, nesterov=nesterov),
            scale_by_optimistic_gradient(alpha, beta),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


def polyak_sgd(
    max_learning_rate=1.0,
    scaling=1.0,
    f_min=0.0,
    eps=0.0,
    variant: str = "sps",
    *,
    scale_before_step: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """SGD with Polyak's step size: chain(scale_by_polyak(f_min, max_learning_rate, eps,
    variant), scale_by_learning_rate(scaling)).

    x -= scaling * min((value - f_min) / (||g|| ** 2 + eps), max_learning_rate) * g, with the
    loss passed as ``update(..., value=loss)``. scale_before_step=True puts the scaling first,
    so the step is computed from ||scaling * g|| (optax 0.2.8's order; the optax dialect).
    """
    polyak = scale_by_polyak(f_min, max_learning_rate, eps, variant)
    lr = scale_by_learning_rate(scaling)
    return maximizing(chain(lr, polyak) if scale_before_step else chain(polyak, lr), maximize)


def asgd(
    learning_rate=0.01,
    lambd=1e-4,
    alpha=0.75,
    t0=1e6,
    weight_decay=0.0,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """Averaged SGD (torch.optim.ASGD): chain(add_decayed_weights(weight_decay),
    scale_by_asgd(learning_rate, lambd, alpha, t0)).

    The averaged parameters are ``gradtx.tree_get(state, "ax")``; see ``scale_by_asgd``.
    """
    return maximizing(
        chain(
            add_decayed_weights(weight_decay),
            scale_by_asgd(learning_rate, lambd, alpha, t0),
        ),
        maximize,
    )
