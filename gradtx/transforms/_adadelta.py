"""Running-RMS methods beyond RMSProp: Adadelta's unit correction and the centered RMS."""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.fused import tree_moment
from gradtx._core.trees import acc_dtype, as_dtype, tree_map_none, tree_zeros_like
from gradtx.transforms._adaptive import scale_by_rms


class ScaleByAdaDeltaState(NamedTuple):
    e_g: object  # like params: running average of squared gradients (torch's square_avg)
    e_x: object  # like params: running average of squared updates (torch's acc_delta)


def scale_by_adadelta(rho=0.9, eps=1e-6) -> GradientTransformation:
    """Adadelta's scaling: the RMS of past updates over the RMS of gradients.

    e_g = rho * e_g + (1 - rho) * updates ** 2
    delta = sqrt(e_x + eps) / sqrt(e_g + eps) * updates      (e_x from the previous step)
    e_x = rho * e_x + (1 - rho) * delta ** 2
    updates = delta

    The output is the step to subtract; ``adadelta`` chains the learning rate (1.0 as torch)
    with the sign flip.

    Args:
        rho: the decay of both running averages, in [0, 1] (the paper's and torch's 0.9).
        eps: added inside both roots (torch's 1e-6; the paper's epsilon).

    References:
        Zeiler, ADADELTA: An Adaptive Learning Rate Method, 2012, Algorithm 1 (lines 4-7).
    """
    where = "gradtx.scale_by_adadelta"
    _checks.check_number(where, "rho", rho, low=0.0, high=1.0)
    _checks.check_number(where, "eps", eps, low=0.0)

    def init(params):
        return ScaleByAdaDeltaState(tree_zeros_like(params), tree_zeros_like(params))

    def delta(g, e_g, e_x):
        dt = acc_dtype(e_g.dtype)
        e = as_dtype(eps, dt)
        d = jnp.sqrt(e_x.astype(dt) + e) / jnp.sqrt(e_g.astype(dt) + e) * g.astype(dt)
        return d.astype(g.dtype)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.e_g, where, "updates", "e_g")
        e_g = tree_moment(updates, state.e_g, rho, 2)[0]
        updates = tree_map_none(delta, updates, e_g, state.e_x)
        e_x = tree_moment(updates, state.e_x, rho, 2)[0]
        return updates, ScaleByAdaDeltaState(e_g, e_x)

    return GradientTransformation(init, update)


def scale_by_stddev(
    decay=0.99,
    eps=1e-8,
    initial_scale=0.0,
    *,
    eps_in_sqrt: bool = False,
    bias_correction: bool = False,
) -> GradientTransformation:
    """Scale by the root of the centered second moment: ``scale_by_rms(..., centered=True)``.

    nu = decay * nu + (1 - decay) * updates ** 2
    mu = decay * mu + (1 - decay) * updates
    updates = updates / (sqrt(max(nu - mu ** 2, 0)) + eps)     (eps_in_sqrt=False: torch)
    updates = updates / sqrt(max(nu - mu ** 2, 0) + eps)       (eps_in_sqrt=True: optax)

    The state is ``scale_by_rms``'s (``ScaleByRmsState`` with ``mu``); see it for the details.
    Defaults are torch's ``RMSprop(centered=True)`` (decay 0.99, eps outside the root); optax's
    (0.9, inside) are in the optax dialect.

    Args:
        decay: the decay of both averages.
        eps: added to the denominator.
        initial_scale: the start of ``nu``.
        eps_in_sqrt: put eps inside the square root.
        bias_correction: divide both averages by ``1 - decay ** count``.

    References:
        Graves, Generating Sequences With Recurrent Neural Networks, 2013, eq. 38-41.
    """
    return scale_by_rms(
        decay,
        eps,
        initial_scale,
        eps_in_sqrt=eps_in_sqrt,
        centered=True,
        bias_correction=bias_correction,
    )
