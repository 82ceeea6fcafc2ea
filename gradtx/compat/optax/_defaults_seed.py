"""optax 0.2.8's defaults for the CS231n optimizers, the combinators and optax's type names.

Each function has optax's signature and is one call of the gradtx definition. What differs
from gradtx (see the migration table in the README):
- ``adam``/``adamw``/``sgd``/``rmsprop``/``adagrad``: the learning rate is required;
- ``adamw``: ``weight_decay=1e-4`` and optax's argument order (``mu_dtype`` before it);
- ``rmsprop``/``scale_by_rms``: ``decay=0.9`` and eps inside the square root;
- ``adagrad``/``scale_by_rss``: the accumulator starts at 0.1, ``eps=1e-7`` inside the root;
- ``MultiSteps``: the accumulator is float32 whatever the parameters' dtype.
Kept from gradtx on purpose: bias corrections in float32 (``-expm1(t * log1p(-(1 - b)))``),
a centered RMSProp variance clamped at 0, and float32 injected hyperparameters.
"""

from __future__ import annotations

import jax.numpy as jnp

import gradtx


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *, nesterov=False):
    return gradtx.adam(learning_rate, b1, b2, eps, eps_root, mu_dtype=mu_dtype, nesterov=nesterov)


def adamw(
    learning_rate,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    mu_dtype=None,
    weight_decay=1e-4,
    mask=None,
    *,
    nesterov=False,
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


def rmsprop(
    learning_rate,
    decay=0.9,
    eps=1e-8,
    initial_scale=0.0,
    eps_in_sqrt=True,
    centered=False,
    momentum=None,
    nesterov=False,
    bias_correction=False,
):
    return gradtx.rmsprop(
        learning_rate,
        decay,
        eps,
        initial_scale,
        eps_in_sqrt,
        centered,
        momentum,
        nesterov,
        bias_correction,
    )


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7):
    return gradtx.adagrad(learning_rate, initial_accumulator_value, eps, eps_in_sqrt=True)


def scale_by_rms(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True, bias_correction=False):
    return gradtx.scale_by_rms(
        decay, eps, initial_scale, eps_in_sqrt=eps_in_sqrt, bias_correction=bias_correction
    )


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7):
    return gradtx.scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt=True)


def MultiSteps(  # noqa: N802 - optax's name
    opt,
    every_k_schedule,
    use_grad_mean=True,
    should_skip_update_fn=None,
    accumulator_dtype=jnp.float32,
):
    return gradtx.MultiSteps(
        opt, every_k_schedule, use_grad_mean, should_skip_update_fn, accumulator_dtype
    )


# optax's type names: gradtx has one transformation type and plain NamedTuple states.
_TYPES = {
    "GradientTransformationExtraArgs": gradtx.GradientTransformation,
    "ApplyEvery": gradtx.ApplyEveryState,
    "MultiTransformState": gradtx.PartitionState,
    "ClipState": gradtx.EmptyState,
    "ClipByGlobalNormState": gradtx.EmptyState,
    "AdaptiveGradClipState": gradtx.EmptyState,
    "ScaleState": gradtx.EmptyState,
    "Schedule": gradtx.schedules.Schedule,
}
# optax's top-level spellings of gradtx.tree functions
_TREE = {
    "bias_correction": gradtx.tree.bias_correction,
    "update_moment": gradtx.tree.update_moment,
    "update_infinity_moment": gradtx.tree.update_infinity_moment,
    "update_moment_per_elem_norm": gradtx.tree.update_moment_per_elem_norm,
    "tree_map_params": gradtx.tree.map_params,
}

OVERRIDES = {
    "": {
        "adam": adam,
        "adamw": adamw,
        "rmsprop": rmsprop,
        "adagrad": adagrad,
        "scale_by_rms": scale_by_rms,
        "scale_by_rss": scale_by_rss,
        "MultiSteps": MultiSteps,
        **_TYPES,
        **_TREE,
    },
    "transforms": {"MultiSteps": MultiSteps},
    "schedules": {"Schedule": gradtx.schedules.Schedule},
}
