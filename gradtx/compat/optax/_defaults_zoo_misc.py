"""optax 0.2.8's signatures and defaults for the zoo_misc optimizers (Rprop, Adadelta, noise,
optimistic methods, Polyak, DoG, the centered RMS).

Each function has optax's exact signature and one call of the gradtx definition. Where optax
0.2.8 computes something else than the paper, the call passes the gradtx option that
reproduces it:
- ``scale_by_rprop``/``rprop``: optax returns the previous step's update (zeros at the first
  step): ``one_step_lag=True`` (google-deepmind/optax#1725).
- ``polyak_sgd``: optax scales the gradient before computing the Polyak step, so the step sees
  ``||scaling * g||``: ``scale_before_step=True``.
``adadelta(learning_rate=None)`` is the one exception: optax 0.2.8 then skips the learning
rate and its sign flip, so its updates ascend (the fix for google-deepmind/optax#1242 made
``scale_by_learning_rate(None)`` the identity); the dialect descends with learning rate 1.
"""

from __future__ import annotations

import jax.numpy as jnp

import gradtx


def scale_by_rprop(
    learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0
):
    return gradtx.scale_by_rprop(
        learning_rate, eta_minus, eta_plus, min_step_size, max_step_size, one_step_lag=True
    )


def rprop(learning_rate, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0):
    return gradtx.rprop(
        learning_rate, eta_minus, eta_plus, min_step_size, max_step_size, one_step_lag=True
    )


def adadelta(learning_rate=None, rho=0.9, eps=1e-6, weight_decay=0.0, weight_decay_mask=None):
    return gradtx.adadelta(
        1.0 if learning_rate is None else learning_rate,
        rho,
        eps,
        weight_decay,
        mask=weight_decay_mask,
    )


def add_noise(eta, gamma, key=None, *, seed=None):
    return gradtx.add_noise(eta, gamma, key, seed=seed)


def optimistic_adam(
    learning_rate,
    optimism=None,
    b1=0.9,
    b2=0.999,
    eps=1e-08,
    eps_root=0.0,
    mu_dtype=None,
    *,
    nesterov=True,
):
    return gradtx.optimistic_adam(
        learning_rate, optimism, b1, b2, eps, eps_root, mu_dtype=mu_dtype, nesterov=nesterov
    )


def optimistic_adam_v2(
    learning_rate,
    *,
    alpha=1.0,
    beta=1.0,
    b1=0.9,
    b2=0.999,
    eps=1e-08,
    eps_root=0.0,
    mu_dtype=None,
    nesterov=True,
):
    return gradtx.optimistic_adam_v2(
        learning_rate,
        alpha=alpha,
        beta=beta,
        b1=b1,
        b2=b2,
        eps=eps,
        eps_root=eps_root,
        mu_dtype=mu_dtype,
        nesterov=nesterov,
    )


def polyak_sgd(max_learning_rate=1.0, scaling=1.0, f_min=0.0, eps=0.0, variant="sps"):
    return gradtx.polyak_sgd(
        max_learning_rate, scaling, f_min, eps, variant, scale_before_step=True
    )


def scale_by_stddev(
    decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True, bias_correction=False
):
    return gradtx.scale_by_stddev(
        decay, eps, initial_scale, eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction
    )


def scale_by_distance_over_gradients(
    reps_rel=1e-6, eps=1e-8, param_dtype=jnp.float32, global_scale=1.0
):
    return gradtx.scale_by_distance_over_gradients(reps_rel, eps, param_dtype, global_scale)


OVERRIDES = {
    "": {
        "adadelta": adadelta,
        "add_noise": add_noise,
        "optimistic_adam": optimistic_adam,
        "optimistic_adam_v2": optimistic_adam_v2,
        "polyak_sgd": polyak_sgd,
        "rprop": rprop,
        "scale_by_distance_over_gradients": scale_by_distance_over_gradients,
        "scale_by_rprop": scale_by_rprop,
        "scale_by_stddev": scale_by_stddev,
    },
    "transforms": {"add_noise": add_noise},
}
