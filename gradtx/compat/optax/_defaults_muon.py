"""optax 0.2.8's defaults for Muon (``optax.contrib.muon`` / ``scale_by_muon``).

Each function has optax's signature and is one call of the gradtx definition. What differs
from gradtx (torch.optim.Muon's defaults): the learning rate is required, ``eps=1e-8`` is
added to the norm instead of clamping it, the momentum is bias-corrected, ``weight_decay=0``,
and the Adam fallback shares Muon's ``eps`` and ``nesterov``. GaLore: the learning rate
is required, ``scale=1`` (the paper's alpha is 0.25) and the SVD is always float32.
"""

from __future__ import annotations

import jax.numpy as jnp

from gradtx.contrib import _galore, _muon


def scale_by_muon(
    ns_coeffs=_muon.DEFAULT_NS_COEFFS,
    ns_steps=5,
    beta=0.95,
    eps=1e-8,
    mu_dtype=None,
    *,
    nesterov=True,
    adaptive=False,
    preconditioning="frobenius",
    weight_dimension_numbers=None,
):
    return _muon.scale_by_muon(
        ns_coeffs,
        ns_steps,
        beta,
        eps,
        mu_dtype,
        nesterov=nesterov,
        adaptive=adaptive,
        preconditioning=preconditioning,
        weight_dimension_numbers=weight_dimension_numbers,
        bias_correction=True,
        eps_clamp=False,
    )


def muon(
    learning_rate,
    ns_coeffs=_muon.DEFAULT_NS_COEFFS,
    ns_steps=5,
    beta=0.95,
    eps=1e-8,
    weight_decay=0.0,
    weight_decay_mask=None,
    mu_dtype=None,
    *,
    nesterov=True,
    adaptive=False,
    preconditioning="frobenius",
    adam_b1=0.9,
    adam_b2=0.999,
    adam_eps_root=0.0,
    adam_weight_decay=0.0,
    adam_learning_rate=None,
    muon_weight_dimension_numbers=None,
    consistent_rms=None,
):
    return _muon.muon(
        learning_rate,
        ns_coeffs,
        ns_steps,
        beta,
        eps,
        weight_decay,
        weight_decay_mask,
        mu_dtype,
        nesterov=nesterov,
        adaptive=adaptive,
        preconditioning=preconditioning,
        adam_b1=adam_b1,
        adam_b2=adam_b2,
        adam_eps=eps,
        adam_eps_root=adam_eps_root,
        adam_weight_decay=adam_weight_decay,
        adam_learning_rate=adam_learning_rate,
        adam_nesterov=nesterov,
        muon_weight_dimension_numbers=muon_weight_dimension_numbers,
        consistent_rms=consistent_rms,
        bias_correction=True,
        eps_clamp=False,
    )


OVERRIDES = {"contrib": {"muon": muon, "scale_by_muon": scale_by_muon}}


def scale_by_galore(
    rank=128, update_proj_gap=200, scale=1.0, base_optimizer=None, weight_dimension_numbers=None
):
    return _galore.scale_by_galore(
        rank,
        update_proj_gap,
        scale,
        base_optimizer,
        weight_dimension_numbers,
        svd_dtype=jnp.float32,
    )


def galore(
    learning_rate,
    rank=128,
    update_proj_gap=200,
    scale=1.0,
    base_optimizer=None,
    weight_decay=0.0,
    mask=None,
    weight_dimension_numbers=None,
):
    return _galore.galore(
        learning_rate,
        rank,
        update_proj_gap,
        scale,
        base_optimizer,
        weight_decay,
        mask,
        weight_dimension_numbers,
        svd_dtype=jnp.float32,
    )


OVERRIDES["contrib"].update(galore=galore, scale_by_galore=scale_by_galore)
