"""The seven seed optimizers by name, and the variants the demo compares them with."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

import gradtx
from gradtx._core.fused import tree_update_moment
from gradtx._core.trees import acc_dtype, as_dtype, tree_map_none, tree_zeros_like

SEED_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
COLORS = {
    "sgd": "#1f77b4",
    "momentum": "#ff7f0e",
    "nesterov": "#2ca02c",
    "adagrad": "#d62728",
    "rmsprop": "#9467bd",
    "adam": "#8c564b",
    "adamw": "#e377c2",
    "adam+l2": "#7f7f7f",
    "adam (no bias corr.)": "#bcbd22",
    "adam+mixup": "#17becf",
}


class RawAdamState(NamedTuple):
    mu: object  # like params: first moment, never bias-corrected
    nu: object  # like params: second moment, never bias-corrected


def adam_without_bias_correction(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    """Adam with the bias correction left out, built from ``gradtx.tree_update_moment``.

    mu = b1 * mu + (1 - b1) * g;  nu = b2 * nu + (1 - b2) * g ** 2
    updates = -learning_rate * mu / (sqrt(nu) + eps)

    On the first step this moves each coordinate by ``learning_rate * (1 - b1) / sqrt(1 - b2)``
    (about 3.2 * learning_rate with the defaults) instead of ``learning_rate``: the seed's reason
    for the correction.
    """

    def init(params):
        return RawAdamState(tree_zeros_like(params), tree_zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        mu = tree_update_moment(updates, state.mu, b1, 1)
        nu = tree_update_moment(updates, state.nu, b2, 2)

        def step(m, v):
            dt = acc_dtype(m.dtype)
            return (m.astype(dt) / (jnp.sqrt(v.astype(dt)) + as_dtype(eps, dt))).astype(m.dtype)

        return tree_map_none(step, mu, nu), RawAdamState(mu, nu)

    return gradtx.chain(
        gradtx.GradientTransformation(init, update), gradtx.scale_by_learning_rate(learning_rate)
    )


def adam_with_l2(learning_rate, weight_decay=1e-2):
    """Adam with coupled L2: the penalty's gradient goes through both moments (torch's Adam)."""
    return gradtx.chain(
        gradtx.add_l2_penalty(weight_decay),
        gradtx.scale_by_adam(),
        gradtx.scale_by_learning_rate(learning_rate),
    )


def make(name: str, learning_rate, weight_decay=1e-2) -> gradtx.GradientTransformation:
    """A seed optimizer (or a demo variant) by name, with the given learning rate."""
    if name == "sgd":
        return gradtx.sgd(learning_rate)
    if name == "momentum":
        return gradtx.sgd(learning_rate, momentum=0.9)
    if name == "nesterov":
        return gradtx.sgd(learning_rate, momentum=0.9, nesterov=True)
    if name == "adagrad":
        return gradtx.adagrad(learning_rate)
    if name == "rmsprop":
        return gradtx.rmsprop(learning_rate)
    if name == "adam":
        return gradtx.adam(learning_rate)
    if name == "adamw":
        return gradtx.adamw(learning_rate, weight_decay=weight_decay)
    if name == "adam+l2":
        return adam_with_l2(learning_rate, weight_decay)
    if name == "adam (no bias corr.)":
        return adam_without_bias_correction(learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(SEED_NAMES)}")
