"""Adafactor: factored second moments, update clipping and a step relative to the parameters.

The math is in ``gradtx/transforms/_factored.py`` (``scale_by_factored_rms``) and in the
transforms named in the chain.
"""

from __future__ import annotations

import jax.numpy as jnp

from gradtx._aliases._common import maximizing
from gradtx._aliases.trust_ratio import as_mask_fn
from gradtx._core.base import GradientTransformation, chain, identity
from gradtx.transforms._clipping import clip_by_block_rms
from gradtx.transforms._decay import add_decayed_weights
from gradtx.transforms._factored import scale_by_factored_rms
from gradtx.transforms._momentum import ema
from gradtx.transforms._scaling import scale, scale_by_learning_rate
from gradtx.transforms._trust_ratio import scale_by_param_block_rms


def _relative_step(learning_rate):
    """The schedule rho(count) = min(learning_rate, 1 / sqrt(t)), t = count + 1 (the paper's
    rho_t = min(1e-2, 1 / sqrt(t)) with learning_rate = 1e-2; torch's with its lr)."""

    def rho(count):
        t = jnp.asarray(count).astype(jnp.result_type(float)) + 1  # float64 under x64
        decay = t**-0.5
        if learning_rate is None:
            return decay
        lr = learning_rate(count) if callable(learning_rate) else learning_rate
        return jnp.minimum(jnp.asarray(lr, decay.dtype), decay)

    return rho


def adafactor(
    learning_rate=1e-2,
    min_dim_size_to_factor: int = 0,
    decay_rate=0.8,
    decay_offset=0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold=1.0,
    momentum=None,
    dtype_momentum=jnp.float32,
    weight_decay_rate=None,
    eps=1e-30,
    factored: bool = True,
    weight_decay_mask=None,
    *,
    relative_step: bool = True,
    eps_scale=1e-3,
    factor_largest: bool = False,
    eps_clamp: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """Adafactor (Shazeer and Stern 2018, Algorithms 4-5 with the Section 9 settings).

    chain(scale_by_factored_rms(factored, decay_rate, decay_offset, min_dim_size_to_factor,
    eps), clip_by_block_rms(clipping_threshold), scale_by_learning_rate(rho, flip_sign=False),
    scale_by_param_block_rms(eps_scale), ema(momentum, debias=False),
    add_decayed_weights(weight_decay_rate, weight_decay_mask), scale(-1)), i.e. per leaf
    X = X - max(eps_scale, RMS(X)) * rho_t * U / max(1, RMS(U) / clipping_threshold)
    with U = G / sqrt(V_hat) the factored scaling and
    rho_t = min(learning_rate, 1 / sqrt(t))    (relative_step=True: the paper's and torch's)
    rho_t = learning_rate                       (relative_step=False: optax's; None: 1).
    Each of clipping_threshold, momentum, weight_decay_rate may be None to leave its
    transform out; multiply_by_parameter_scale=False leaves out the parameter scale.

    Args:
        learning_rate: the cap of the relative step (torch's lr, the paper's 1e-2), or with
            relative_step=False the step itself (number, array, schedule or None).
        min_dim_size_to_factor: factor a matrix only if both factored axes are this long.
        decay_rate: c in beta_t = 1 - t ** -c (torch: beta2_decay = -c).
        decay_offset: subtracted from t (for fine-tuning).
        multiply_by_parameter_scale: scale the step by max(eps_scale, RMS(X)).
        clipping_threshold: d of the update clipping.
        momentum: an optional moving average of the final steps (no debiasing).
        dtype_momentum: dtype of that average.
        weight_decay_rate: decoupled decay added to the step, not multiplied by the learning
            rate (torch's weight_decay=w with lr is weight_decay_rate=lr * w).
        eps: the paper's epsilon1 (None: the dtype's machine epsilon, torch's default).
        factored: factor second moments at all.
        weight_decay_mask: which leaves are decayed (a function or a tree of bools).
        relative_step: rho_t = min(learning_rate, 1 / sqrt(t)) rather than learning_rate.
        eps_scale: the paper's epsilon2, the floor of RMS(X) (torch's eps[1]).
        factor_largest: factor the two largest axes instead of the last two (optax).
        eps_clamp: torch's placement of eps (see ``scale_by_factored_rms``).
    """
    if relative_step:
        step = scale_by_learning_rate(_relative_step(learning_rate), flip_sign=False)
    elif learning_rate is None:
        step = identity()
    else:
        step = scale_by_learning_rate(learning_rate, flip_sign=False)
    return maximizing(
        chain(
            scale_by_factored_rms(
                factored,
                decay_rate,
                decay_offset,
                min_dim_size_to_factor,
                eps,
                factor_largest=factor_largest,
                eps_clamp=eps_clamp,
            ),
            identity() if clipping_threshold is None else clip_by_block_rms(clipping_threshold),
            step,
            scale_by_param_block_rms(eps_scale) if multiply_by_parameter_scale else identity(),
            identity()
            if momentum is None
            else ema(momentum, debias=False, accumulator_dtype=dtype_momentum),
            identity()
            if weight_decay_rate is None
            else add_decayed_weights(weight_decay_rate, as_mask_fn(weight_decay_mask)),
            scale(-1),
        ),
        maximize,
    )
