"""AdEMAMix: Adam with a second, slow moving average of the gradient, and its simplified form."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._aliases._common import maximizing
from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, chain
from gradtx._core.fused import tree_accumulate, tree_moment
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    safe_increment,
    tree_bias_correction,
    tree_map_none,
    tree_squares_like,
    tree_zeros_like,
    value_at,
)
from gradtx.transforms._decay import add_decayed_weights
from gradtx.transforms._scaling import scale_by_learning_rate


def _mix_over_root(fast, slow, alpha, second, eps, eps_root, like):
    """(fast + alpha * slow) / (sqrt(second + eps_root) + eps), in at least float32."""
    dt = acc_dtype(second.dtype)
    num = fast.astype(dt) + as_dtype(alpha, dt) * slow.astype(dt)
    den = jnp.sqrt(second.astype(dt) + as_dtype(eps_root, dt)) + as_dtype(eps, dt)
    return (num / den).astype(like.dtype)


class ScaleByAdemamixState(NamedTuple):
    count: jax.Array  # int32 scalar: the step t, from 1 after the first update
    count_m2: jax.Array  # int32 scalar: the clock of the alpha and b3 schedules
    m1: object  # like params (mu_dtype if given): fast moving average of the gradient
    m2: object  # like params (mu_dtype if given): slow moving average of the gradient
    nu: object  # like params (float32 for float16 params): second moment


def scale_by_ademamix(
    b1=0.9, b2=0.999, b3=0.9999, alpha=6.0, eps=1e-8, eps_root=0.0, mu_dtype=None
) -> GradientTransformation:
    """AdEMAMix's scaling: the bias-corrected fast average plus alpha times the slow one.

    m1 = b1 * m1 + (1 - b1) * updates
    m2 = b3 * m2 + (1 - b3) * updates          (b3 = b3(count_m2) if a schedule)
    nu = b2 * nu + (1 - b2) * updates ** 2
    m1_hat = m1 / (1 - b1 ** t); nu_hat = nu / (1 - b2 ** t)
    updates = (m1_hat + alpha * m2) / (sqrt(nu_hat + eps_root) + eps)   (alpha(count_m2) alike)

    m2 is not bias-corrected (the paper's choice). The paper's warm-ups of alpha and b3 are
    schedules passed as ``alpha`` and ``b3``.

    Args:
        b1: decay of the fast average, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        b3: decay of the slow average, in [0, 1), or a schedule.
        alpha: weight of the slow average, or a schedule.
        eps: added outside the square root.
        eps_root: added inside the square root.
        mu_dtype: dtype of m1 and m2; defaults to each parameter's dtype.

    References:
        Pagliardini, Ablin and Grangier, The AdEMAMix Optimizer: Better, Faster, Older,
        ICLR 2025 (arXiv:2409.03137), Algorithm 1.
    """
    where = "gradtx.contrib.scale_by_ademamix"
    _checks.check_number(where, "b1", b1, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "b2", b2, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "b3", b3, low=0.0, high=1.0, high_open=True, schedule_ok=True)
    _checks.check_number(where, "alpha", alpha, schedule_ok=True)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "eps_root", eps_root, low=0.0)

    def init(params):
        zero = jnp.zeros((), jnp.int32)
        return ScaleByAdemamixState(
            zero,
            zero,
            tree_zeros_like(params, mu_dtype),
            tree_zeros_like(params, mu_dtype),
            tree_squares_like(params),
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.m1, where, "updates", "state.m1")
        beta3, alpha_t = value_at(b3, state.count_m2), value_at(alpha, state.count_m2)
        count = safe_increment(state.count)
        m1, m1_read = tree_moment(updates, state.m1, b1, 1)
        m2, m2_read = tree_moment(updates, state.m2, beta3, 1)
        nu, nu_read = tree_moment(updates, state.nu, b2, 2)
        m1_hat = tree_bias_correction(m1_read, b1, count, hoist=True)
        nu_hat = tree_bias_correction(nu_read, b2, count, hoist=True)
        updates = tree_map_none(
            lambda g, f, s, v: _mix_over_root(f, s, alpha_t, v, eps, eps_root, g),
            updates,
            m1_hat,
            m2_read,
            nu_hat,
        )
        return updates, ScaleByAdemamixState(count, safe_increment(state.count_m2), m1, m2, nu)

    return GradientTransformation(init, update)


def ademamix(
    learning_rate,
    b1=0.9,
    b2=0.999,
    b3=0.9999,
    alpha=5.0,
    eps=1e-8,
    eps_root=0.0,
    mu_dtype=None,
    weight_decay=0.0,
    mask=None,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """AdEMAMix: chain(scale_by_ademamix(...), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate)).

    The decay is decoupled as in AdamW (Algorithm 1's lambda * theta inside the step). The
    update rule is ``scale_by_ademamix``'s; defaults are optax's (the paper gives none).
    """
    return maximizing(
        chain(
            scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype),
            add_decayed_weights(weight_decay, mask),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    t: jax.Array  # int32 scalar: the step, from 1 after the first update
    m: object  # like params: the undamped sum b1 * m + updates
    n: object  # like params (float32 for float16 params): second moment


def scale_by_simplified_ademamix(
    b1=0.99, b2=0.95, alpha=0.0, eps=1e-8, eps_root=0.0
) -> GradientTransformation:
    """Simplified AdEMAMix's scaling: one undamped momentum plus alpha times the gradient.

    m = b1 * m + updates                       (no (1 - b1) factor)
    n = b2 * n + (1 - b2) * updates ** 2
    n_hat = n / (1 - b2 ** t)
    updates = (m + alpha * updates) / (sqrt(n_hat + eps_root) + eps)   (alpha(t - 1) alike)

    Args:
        b1: decay of the momentum m, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        alpha: weight of the current gradient, or a schedule.
        eps: added outside the square root.
        eps_root: added inside the square root.

    References:
        Morwani, Vyas, Ge, Kakade et al., Connections between Schedule-Free Optimizers,
        AdEMAMix, and Accelerated SGD Variants, 2025 (arXiv:2502.02431), Algorithm 2
        (Simplified-AdEMAMix); Pagliardini et al., The AdEMAMix Optimizer, ICLR 2025.
    """
    where = "gradtx.contrib.scale_by_simplified_ademamix"
    _checks.check_number(where, "b1", b1, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "b2", b2, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "alpha", alpha, schedule_ok=True)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "eps_root", eps_root, low=0.0)

    def init(params):
        return ScaleBySimplifiedAdEMAMixState(
            jnp.zeros((), jnp.int32), tree_zeros_like(params), tree_squares_like(params)
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.m, where, "updates", "state.m")
        alpha_t = value_at(alpha, state.t)
        t = safe_increment(state.t)
        m, m_read = tree_accumulate(updates, state.m, b1, None, power=1)
        n, n_read = tree_moment(updates, state.n, b2, 2)
        n_hat = tree_bias_correction(n_read, b2, t, hoist=True)
        updates = tree_map_none(
            lambda g, mm, v: _mix_over_root(mm, g, alpha_t, v, eps, eps_root, g),
            updates,
            m_read,
            n_hat,
        )
        return updates, ScaleBySimplifiedAdEMAMixState(t, m, n)

    return GradientTransformation(init, update)


def simplified_ademamix(
    learning_rate,
    b1=0.99,
    b2=0.95,
    alpha=0.0,
    eps=1e-8,
    eps_root=0.0,
    weight_decay=0.0,
    mask=None,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """Simplified AdEMAMix: chain(scale_by_simplified_ademamix(...),
    add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate)).

    The update rule is ``scale_by_simplified_ademamix``'s; defaults are optax's.
    """
    return maximizing(
        chain(
            scale_by_simplified_ademamix(b1, b2, alpha, eps, eps_root),
            add_decayed_weights(weight_decay, mask),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )
