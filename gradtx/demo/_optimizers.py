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


class LessonAdamState(NamedTuple):
    count: object  # int32 []: the step number t, from 0
    mu: object  # like params: first moment
    nu: object  # like params: second moment


def scale_by_adam_lesson(b1=0.9, b2=0.999, eps=1e-8, *, corrected=1.0):
    """Adam's scaling with the bias correction switched by data, built on the tree helpers.

    mu = b1 * mu + (1 - b1) * g;  nu = b2 * nu + (1 - b2) * g ** 2
    mu_hat = mu / (1 - corrected * b1 ** t);  nu_hat = nu / (1 - corrected * b2 ** t)
    updates = mu_hat / (sqrt(nu_hat) + eps)

    ``corrected`` is 1 (Adam) or 0 (no bias correction) and may be an array, so both variants
    run in one compiled program. Without the correction the first step moves each coordinate by
    ``learning_rate * (1 - b1) / sqrt(1 - b2)`` (about 3.2 * learning_rate with the defaults)
    instead of ``learning_rate``: the lecture's reason for the correction.
    """

    def init(params):
        zeros = tree_zeros_like(params)
        return LessonAdamState(jnp.zeros((), jnp.int32), zeros, tree_zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        mu = tree_update_moment(updates, state.mu, b1, 1)
        nu = tree_update_moment(updates, state.nu, b2, 2)
        t = (state.count + 1).astype(jnp.float32)
        c = jnp.asarray(corrected, jnp.float32)
        f1, f2 = (
            1 - c * jnp.asarray(b1, jnp.float32) ** t,
            1 - c * jnp.asarray(b2, jnp.float32) ** t,
        )

        def step(m, v):
            dt = acc_dtype(m.dtype)
            m_hat, v_hat = m.astype(dt) / f1.astype(dt), v.astype(dt) / f2.astype(dt)
            return (m_hat / (jnp.sqrt(v_hat) + as_dtype(eps, dt))).astype(m.dtype)

        count = gradtx.safe_increment(state.count)
        return tree_map_none(step, mu, nu), LessonAdamState(count, mu, nu)

    return gradtx.GradientTransformation(init, update)


def adam_lesson(learning_rate, l2=0.0, weight_decay=0.0, corrected=1.0):
    """Adam, AdamW, Adam with coupled L2 and Adam without bias correction, chosen by data.

    chain(add_l2_penalty(l2), scale_by_adam_lesson(corrected=corrected),
          add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))
    (l2, weight_decay, corrected) = (0, 0, 1) is Adam, (0, wd, 1) AdamW, (wd, 0, 1) Adam with
    coupled L2 and (0, 0, 0) Adam without bias correction; all may be arrays (one program).
    """
    return gradtx.chain(
        gradtx.add_l2_penalty(l2),
        scale_by_adam_lesson(corrected=corrected),
        gradtx.add_decayed_weights(weight_decay),
        gradtx.scale_by_learning_rate(learning_rate),
    )


def adam_without_bias_correction(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    """Adam with the bias correction left out (``scale_by_adam_lesson(corrected=0)``)."""
    return gradtx.chain(
        scale_by_adam_lesson(b1, b2, eps, corrected=0.0),
        gradtx.scale_by_learning_rate(learning_rate),
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
