"""ADOPT: Adam with the second moment of the previous step, as optax.contrib has it."""

from __future__ import annotations

import jax.numpy as jnp

from gradtx._aliases._common import maximizing
from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, chain
from gradtx._core.fused import tree_moment
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    safe_increment,
    tree_map_none,
    tree_squares_like,
    tree_zeros_like,
)
from gradtx.transforms._adaptive import ScaleByAdamState
from gradtx.transforms._scaling import scale_by_learning_rate


def quarter_root(step):
    """The clipping bound of Algorithm 2 of the ADOPT paper: c_t = step ** (1 / 4)."""
    return jnp.sqrt(jnp.sqrt(step))


def scale_by_adopt(
    b1=0.9,
    b2=0.9999,
    eps=1e-6,
    mu_dtype=None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn=quarter_root,
) -> GradientTransformation:
    """ADOPT's scaling: normalise by the second moment of the previous step, then average.

    At the first call (t = 0) the gradient only starts the second moment and the update is 0:
    nu = updates ** 2, mu = 0. At every later call t = 1, 2, ...:
    scaled = updates / max(sqrt(nu), eps)                   (nu of the previous step)
    scaled = clip(scaled, -clip_value_fn(t), clip_value_fn(t))   (use_clipping only)
    mu = b1 * mu + (1 - b1) * scaled
    nu = b2 * nu + (1 - b2) * updates ** 2
    updates = mu, or b1 * mu + (1 - b1) * scaled with nesterov=True

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: floor of the denominator sqrt(nu).
        mu_dtype: dtype of the first moment; defaults to each parameter's dtype.
        nesterov: return the look-ahead b1 * mu + (1 - b1) * scaled (as optax).
        use_clipping: clip the normalised gradient (Algorithm 2) rather than not (Algorithm 1).
        clip_value_fn: the bound c_t as a function of the step t, which it receives as a
            floating-point scalar of the leaf's dtype; t ** 0.25 by default (the paper's).

    References:
        Taniguchi et al., ADOPT: Modified Adam Can Converge with Any beta2 with the Optimal
        Rate, NeurIPS 2024, Algorithm 1 and Algorithm 2 (clipped).
    """
    where = "gradtx.contrib.scale_by_adopt"
    _checks.check_number(where, "b1", b1, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "b2", b2, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "eps", eps, low=0.0)
    if use_clipping and not callable(clip_value_fn):
        raise TypeError(
            f"{where}: clip_value_fn={clip_value_fn!r} is not callable; pass a function of the "
            "step such as lambda t: t ** 0.25, or use_clipping=False."
        )

    def init(params):
        mu = tree_zeros_like(params, mu_dtype)
        return ScaleByAdamState(jnp.zeros((), jnp.int32), mu, tree_squares_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.mu, where, "updates", "state.mu")
        first = state.count == 0

        def normalised(g, v):
            dt = acc_dtype(v.dtype)
            s = g.astype(dt) / jnp.maximum(jnp.sqrt(v.astype(dt)), as_dtype(eps, dt))
            if use_clipping:
                c = as_dtype(clip_value_fn(state.count.astype(dt)), dt)
                s = jnp.clip(s, -c, c)
            return jnp.where(first, jnp.zeros_like(s), s)

        scaled = tree_map_none(normalised, updates, state.nu)
        mu, mu_read = tree_moment(scaled, state.mu, b1, 1)
        nu_avg, _ = tree_moment(updates, state.nu, b2, 2)
        nu = tree_map_none(
            lambda g, v: jnp.where(first, jnp.square(g.astype(v.dtype)), v), updates, nu_avg
        )
        if nesterov:
            mu_read = tree_moment(scaled, mu_read, b1, 1)[0]
        updates = tree_map_none(lambda m, g: m.astype(g.dtype), mu_read, updates)
        return updates, ScaleByAdamState(safe_increment(state.count), mu, nu)

    return GradientTransformation(init, update)


def adopt(
    learning_rate,
    b1=0.9,
    b2=0.9999,
    eps=1e-6,
    mu_dtype=None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn=quarter_root,
    maximize: bool = False,
) -> GradientTransformation:
    """ADOPT: chain(scale_by_adopt(...), scale_by_learning_rate(learning_rate)).

    The update rule is ``scale_by_adopt``'s; defaults are the paper's (and optax's).
    """
    return maximizing(
        chain(
            scale_by_adopt(
                b1,
                b2,
                eps,
                mu_dtype,
                nesterov=nesterov,
                use_clipping=use_clipping,
                clip_value_fn=clip_value_fn,
            ),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )
