"""Per-coordinate adaptive scaling: AdaGrad's sum of squares, RMSProp, Adam."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.fused import tree_accumulate, tree_moment
from gradtx._core.trees import (
    abs_sq,
    acc_dtype,
    as_dtype,
    safe_increment,
    tree_bias_correction,
    tree_map_none,
    tree_squares_like,
    tree_zeros_like,
    value_at,
)


def _ratio(x, denom, eps_outside=None):
    """``x / denom`` with 0 / 0 = 0: eps = 0 and an all-zero history give a zero step, not NaN.

    ``denom`` is real and >= 0; x / 0 for x != 0 stays infinite (that is eps = 0's choice).
    ``eps_outside``: the eps added outside a square root to form ``denom``. When it is a
    concrete number of at least the smallest normal of ``denom``'s dtype, ``denom >= eps > 0``
    (or NaN), the guard cannot fire and is left out: the same values, six operations less per
    leaf to trace and compile. A traced eps keeps the guard.
    """
    if _surely_positive(eps_outside, denom.dtype):
        return x / denom.astype(x.dtype)
    both_zero = (denom == 0) & (x == 0)
    return jnp.where(both_zero, 0, x / jnp.where(both_zero, 1, denom).astype(x.dtype))


def _is_zero(x) -> bool:
    """Whether ``x`` is a concrete number equal to 0 (a tracer or a jax array never is)."""
    v = _checks.concrete_number(x)
    return v is not None and v == 0


def _surely_positive(eps, dtype) -> bool:
    """Whether ``eps`` is a concrete number no smaller than ``dtype``'s smallest normal (a
    decision on a Python or NumPy value only; a tracer or a jax array never is)."""
    v = _checks.concrete_number(eps)
    return v is not None and v >= float(jnp.finfo(dtype).tiny)


def _real(x, dt):
    """A second moment in ``dt``, as a real array (complex slots hold real values)."""
    x = x.astype(dt)
    return jnp.real(x) if jnp.issubdtype(dt, jnp.complexfloating) else x


def _divide_by_root(g, second, eps, eps_in_sqrt):
    """g / (sqrt(second) + eps), or g / sqrt(second + eps), in at least float32."""
    dt = acc_dtype(g.dtype)
    second = _real(second, dt)
    e = as_dtype(eps, second.dtype)
    denom = jnp.sqrt(second + e) if eps_in_sqrt else jnp.sqrt(second) + e
    return _ratio(g.astype(dt), denom, None if eps_in_sqrt else eps).astype(g.dtype)


class ScaleByRssState(NamedTuple):
    sum_of_squares: object  # like params: running sum of squared updates (AdaGrad's grad_squared)


def scale_by_rss(
    initial_accumulator_value=0.0, eps=1e-10, *, eps_in_sqrt: bool = False
) -> GradientTransformation:
    """AdaGrad's scaling by the root of the summed squares (the seed's rule by default).

    sum_of_squares = sum_of_squares + |updates| ** 2       (real, also for complex leaves)
    updates = updates / (sqrt(sum_of_squares) + eps)     (eps_in_sqrt=False, seed and PyTorch)
    updates = updates / sqrt(sum_of_squares + eps)       (eps_in_sqrt=True)

    Args:
        initial_accumulator_value: the accumulator's start (0 in the seed and PyTorch; optax
            uses 0.1).
        eps: added to the denominator for stability.
        eps_in_sqrt: put eps inside the square root.
    """
    where = "gradtx.scale_by_rss"
    _checks.check_number(where, "initial_accumulator_value", initial_accumulator_value, low=0.0)
    _checks.check_number(where, "eps", eps, low=0.0)

    def init(params):
        return ScaleByRssState(tree_squares_like(params, initial_accumulator_value))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_shapes(updates, state.sum_of_squares, where, "updates", "state")

        sos, sos_read = tree_accumulate(updates, state.sum_of_squares, power=2)
        updates = tree_map_none(
            lambda g, s: _divide_by_root(g, s, eps, eps_in_sqrt), updates, sos_read
        )
        return updates, ScaleByRssState(sos)

    return GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    count: jax.Array  # int32 scalar: steps, if bias_correction or a decay schedule; else ()
    nu: object  # like params: moving average of squared updates (the seed's grad_squared)
    mu: object  # like params when centered, else (): moving average of the updates


def scale_by_rms(
    decay=0.99,
    eps=1e-8,
    initial_scale=0.0,
    *,
    eps_in_sqrt: bool = False,
    centered: bool = False,
    bias_correction: bool = False,
) -> GradientTransformation:
    """RMSProp's scaling by a leaky average of squared updates (the seed's rule by default).

    nu = decay * nu + (1 - decay) * |updates| ** 2
    mu = decay * mu + (1 - decay) * updates                 (centered only)
    nu_hat = nu / (1 - decay ** count)                        (bias_correction only)
    v = max(nu_hat - |mu| ** 2, 0) if centered else nu_hat
    updates = updates / (sqrt(v) + eps)     (eps_in_sqrt=False: seed, PyTorch)
    updates = updates / sqrt(v + eps)       (eps_in_sqrt=True: optax's default)

    Only the second moment is bias-corrected, also when centered: correcting mu as well
    makes nu_hat - mu_hat ** 2 exactly 0 at the first step (one sample has no variance), so
    the step would be updates / eps, 1e8 times the gradient. Uncorrected, mu ** 2 underestimates
    the squared mean early on, so v overestimates the variance and the first steps are
    smaller, never larger, than RMSProp's (optax corrects both and takes the huge step).

    Args:
        decay: the seed's ``decay_rate`` (PyTorch's ``alpha``; 0.99 as in PyTorch, optax 0.9).
        eps: added to the denominator.
        initial_scale: the start of ``nu`` (0 in the seed and PyTorch).
        eps_in_sqrt: put eps inside the square root, as optax does.
        centered: divide by an estimate of the variance rather than the second moment.
        bias_correction: divide nu by ``1 - decay ** count`` (mu is not corrected: see above).
    """
    where = "gradtx.scale_by_rms"
    _checks.check_number(where, "decay", decay, low=0.0, high=1.0, schedule_ok=True)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "initial_scale", initial_scale, low=0.0)

    keeps_count = bias_correction or callable(decay)  # the count's only uses

    def init(params):
        mu = tree_zeros_like(params) if centered else ()
        count = jnp.zeros((), jnp.int32) if keeps_count else ()
        return ScaleByRmsState(count, tree_squares_like(params, initial_scale), mu)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_shapes(updates, state.nu, where, "updates", "state.nu")
        d = value_at(decay, state.count)
        _checks.check_scalar(where, "decay", d)
        count = safe_increment(state.count) if keeps_count else ()
        nu, nu_read = tree_moment(updates, state.nu, d, 2)
        mu, mu_read = tree_moment(updates, state.mu, d, 1) if centered else ((), ())
        nu_hat = tree_bias_correction(nu_read, d, count) if bias_correction else nu_read
        if centered:

            def variance(v, m):
                dt = acc_dtype(v.dtype)
                return jnp.maximum(_real(v, dt) - abs_sq(m.astype(dt)), 0).astype(v.dtype)

            nu_hat = tree_map_none(variance, nu_hat, mu_read)
        updates = tree_map_none(
            lambda g, v: _divide_by_root(g, v, eps, eps_in_sqrt), updates, nu_hat
        )
        return updates, ScaleByRmsState(count, nu, mu)

    return GradientTransformation(init, update)


class ScaleByAdamState(NamedTuple):
    count: jax.Array  # int32 scalar: the step t, from 1 after the first update
    mu: object  # like params (mu_dtype if given): first moment
    nu: object  # like params (float32 for float16 params): second moment


def scale_by_adam(
    b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, *, mu_dtype=None, nesterov: bool = False
) -> GradientTransformation:
    """Adam's scaling: bias-corrected first moment over the root of the second.

    mu = b1 * mu + (1 - b1) * updates
    nu = b2 * nu + (1 - b2) * |updates| ** 2      (real, also for complex leaves)
    mu_hat = mu / (1 - b1 ** t)
    nu_hat = nu / (1 - b2 ** t)
    updates = mu_hat / (sqrt(nu_hat + eps_root) + eps)

    With nesterov=True (NAdam, as optax):
    mu_hat = b1 * mu / (1 - b1 ** (t + 1)) + (1 - b1) * updates / (1 - b1 ** t)

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added outside the square root.
        eps_root: added inside the square root (0 by default; positive values keep the
            gradient through this transform finite, e.g. for meta-learning).
        mu_dtype: dtype of the first moment; defaults to each parameter's dtype.
        nesterov: use Nesterov momentum on the first moment (NAdam).

    References:
        Kingma and Ba, Adam: A Method for Stochastic Optimization, 2015.
        Dozat, Incorporating Nesterov Momentum into Adam, 2016.
    """
    where = "gradtx.scale_by_adam"
    _checks.check_number(where, "b1", b1, low=0.0, high=1.0, high_open=True, schedule_ok=True)
    _checks.check_number(where, "b2", b2, low=0.0, high=1.0, high_open=True)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "eps_root", eps_root, low=0.0)

    def init(params):
        mu = tree_zeros_like(params, mu_dtype)
        return ScaleByAdamState(jnp.zeros((), jnp.int32), mu, tree_squares_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_shapes(updates, state.mu, where, "updates", "state.mu")
        beta1 = value_at(b1, state.count)
        _checks.check_scalar(where, "b1", beta1)
        count = safe_increment(state.count)
        mu, mu_read = tree_moment(updates, state.mu, beta1, 1)
        nu, nu_read = tree_moment(updates, state.nu, b2, 2)
        if nesterov:

            def lookahead(m_next, g_now):
                dt = acc_dtype(m_next.dtype)
                b, one_minus = as_dtype(beta1, dt), as_dtype(1 - beta1, dt)
                return (b * m_next.astype(dt) + one_minus * g_now.astype(dt)).astype(m_next.dtype)

            mu_hat = tree_map_none(
                lookahead,
                tree_bias_correction(mu_read, beta1, safe_increment(count), hoist=True),
                tree_bias_correction(updates, beta1, count, hoist=True),
            )
        else:
            mu_hat = tree_bias_correction(mu_read, beta1, count, hoist=True)
        nu_hat = tree_bias_correction(nu_read, b2, count, hoist=True)

        def step(g, m, v):
            dt = acc_dtype(g.dtype)
            v = _real(v, dt)
            if not _is_zero(eps_root):  # a Python 0 adds nothing (sqrt(v + 0) == sqrt(v))
                v = v + as_dtype(eps_root, v.dtype)
            denom = jax.lax.sqrt(v) + as_dtype(eps, v.dtype)
            return _ratio(m.astype(dt), denom, eps).astype(g.dtype)

        updates = tree_map_none(step, updates, mu_hat, nu_hat)
        return updates, ScaleByAdamState(count, mu, nu)

    return GradientTransformation(init, update)
