"""optax 0.2.8's defaults for the sign, trust-ratio, layer-wise and factored optimizers.

Only the names whose defaults or formulas differ from gradtx's are here; each is one call of
the gradtx definition with optax's arguments (see ``docs/guide/zoo_sign.md`` for why they
differ). The others (lion, sign_sgd, signum, lamb, fromage, novograd, sm3 and their
transforms) are exported unchanged: their defaults are optax's.
"""

from __future__ import annotations

import jax.numpy as jnp

from gradtx._aliases.factored import adafactor as _adafactor
from gradtx._aliases.trust_ratio import lars as _lars
from gradtx.transforms._factored import scale_by_factored_rms as _scale_by_factored_rms


def adafactor(
    learning_rate=None,
    min_dim_size_to_factor=128,
    decay_rate=0.8,
    decay_offset=0,
    multiply_by_parameter_scale=True,
    clipping_threshold=1.0,
    momentum=None,
    dtype_momentum=jnp.float32,
    weight_decay_rate=None,
    eps=1e-30,
    factored=True,
    weight_decay_mask=None,
):
    """optax.adafactor: no relative step (rho_t = learning_rate, or 1 when None), and only
    the two largest axes of at least 128 elements factored."""
    return _adafactor(
        learning_rate,
        min_dim_size_to_factor,
        decay_rate,
        decay_offset,
        multiply_by_parameter_scale,
        clipping_threshold,
        momentum,
        dtype_momentum,
        weight_decay_rate,
        eps,
        factored,
        weight_decay_mask,
        relative_step=False,
        factor_largest=True,
    )


def scale_by_factored_rms(
    factored=True,
    decay_rate=0.8,
    step_offset=0,
    min_dim_size_to_factor=128,
    epsilon=1e-30,
    decay_rate_fn=None,
):
    """optax.scale_by_factored_rms: the two largest axes of at least 128 elements factored.
    (optax's default decay_rate_fn is its private power schedule, which None selects.)"""
    return _scale_by_factored_rms(
        factored,
        decay_rate,
        step_offset,
        min_dim_size_to_factor,
        epsilon,
        decay_rate_fn,
        factor_largest=True,
    )


def lars(
    learning_rate,
    weight_decay=0.0,
    weight_decay_mask=True,
    trust_coefficient=0.001,
    eps=0.0,
    trust_ratio_mask=True,
    momentum=0.9,
    nesterov=False,
):
    """optax.lars: the trust ratio of the decayed gradient, ||w|| / ||g + weight_decay * w||."""
    return _lars(
        learning_rate,
        weight_decay,
        weight_decay_mask,
        trust_coefficient,
        eps,
        trust_ratio_mask,
        momentum,
        nesterov,
        ratio_of_decayed_update=True,
    )


OVERRIDES = {
    "": {
        "adafactor": adafactor,
        "lars": lars,
        "scale_by_factored_rms": scale_by_factored_rms,
    },
}
