"""The Adam family: AdaMax, AMSGrad, NAdam, RAdam, AdaBelief, Yogi, Adan.

Each keeps Adam's first moment and changes one thing: the second moment's norm (AdaMax), its
running maximum (AMSGrad), the look-ahead momentum (NAdam), a rectified step (RAdam), the
variance around the first moment (AdaBelief), an additive second moment (Yogi), or a moment
of gradient differences (Adan). Where torch.optim has the optimizer, its formula is the default;
the switches that reproduce optax 0.2.8 are named in each docstring.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.fused import tree_moment
from gradtx._core.trees import (
    acc_dtype,
    as_dtype,
    bias_correction_factor,
    safe_increment,
    tree_bias_correction,
    tree_full_like,
    tree_map_none,
    tree_zeros_like,
)


def _check_decay(where, name, value):
    _checks.check_number(where, name, value, low=0.0, high=1.0, high_open=True)


def _nesterov_mu_hat(mu, updates, b1, count):
    """NAdam's look-ahead with constant momentum (optax's ``nesterov=True``).

    mu_hat = b1 * mu / (1 - b1 ** (t + 1)) + (1 - b1) * updates / (1 - b1 ** t)
    """

    def leaf(m_next, g_now):
        dt = acc_dtype(m_next.dtype)
        b, one_minus = as_dtype(b1, dt), as_dtype(1 - b1, dt)
        return (b * m_next.astype(dt) + one_minus * g_now.astype(dt)).astype(m_next.dtype)

    return tree_map_none(
        leaf,
        tree_bias_correction(mu, b1, safe_increment(count), hoist=True),
        tree_bias_correction(updates, b1, count, hoist=True),
    )


def _ratio(updates, num, denom_fn, *rest):
    """updates-dtype ``num / denom_fn(*rest)`` per leaf, computed in at least float32."""

    def leaf(g, m, *r):
        dt = acc_dtype(g.dtype)
        return (m.astype(dt) / denom_fn(dt, *(x.astype(dt) for x in r))).astype(g.dtype)

    return tree_map_none(leaf, updates, num, *rest)


class ScaleByAdamaxState(NamedTuple):
    count: jax.Array  # int32 scalar: the step t
    mu: object  # like params: first moment
    nu: object  # like params: exponentially weighted infinity norm (the paper's u)


def scale_by_adamax(b1=0.9, b2=0.999, eps=1e-8) -> GradientTransformation:
    """AdaMax's scaling: Adam with the infinity norm in place of the second moment.

    mu = b1 * mu + (1 - b1) * updates
    nu = max(b2 * nu, abs(updates) + eps)
    updates = mu / (1 - b1 ** t) / nu

    eps sits inside the maximum, as in torch.optim.Adamax and optax (the paper has none).

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the infinity norm, in [0, 1).
        eps: added to ``abs(updates)`` so that ``nu`` is never 0.

    References:
        Kingma and Ba, Adam: A Method for Stochastic Optimization, 2015, Sec. 7.1,
        Algorithm 2.
    """
    where = "gradtx.scale_by_adamax"
    _check_decay(where, "b1", b1)
    _check_decay(where, "b2", b2)
    _checks.check_number(where, "eps", eps, low=0.0)

    def init(params):
        return ScaleByAdamaxState(
            jnp.zeros((), jnp.int32), tree_zeros_like(params), tree_zeros_like(params)
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.mu, where, "updates", "state.mu")
        count = safe_increment(state.count)
        mu, mu_read = tree_moment(updates, state.mu, b1, 1)

        def inf_norm(g, u):
            dt = acc_dtype(u.dtype)
            decayed = as_dtype(b2, dt) * u.astype(dt)
            return jnp.maximum(decayed, jnp.abs(g.astype(dt)) + as_dtype(eps, dt)).astype(u.dtype)

        nu = tree_map_none(inf_norm, updates, state.nu)
        mu_hat = tree_bias_correction(mu_read, b1, count, hoist=True)
        updates = _ratio(updates, mu_hat, lambda dt, u: u, nu)
        return updates, ScaleByAdamaxState(count, mu, nu)

    return GradientTransformation(init, update)


class ScaleByAmsgradState(NamedTuple):
    count: jax.Array  # int32 scalar: the step t
    mu: object  # like params (mu_dtype if given): first moment
    nu: object  # like params: second moment
    nu_max: object  # like params: running maximum of nu (of nu_hat when correct_before_max)


def scale_by_amsgrad(
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    mu_dtype=None,
    bias_correction_mu: bool = True,
    bias_correction_nu: bool = True,
    *,
    correct_before_max: bool = False,
) -> GradientTransformation:
    """AMSGrad's scaling: Adam divided by the running maximum of the second moment.

    mu = b1 * mu + (1 - b1) * updates
    nu = b2 * nu + (1 - b2) * updates ** 2
    nu_max = max(nu_max, nu)
    mu_hat = mu / (1 - b1 ** t)                    (bias_correction_mu)
    nu_hat = nu_max / (1 - b2 ** t)                (bias_correction_nu)
    updates = mu_hat / (sqrt(nu_hat + eps_root) + eps)

    The maximum is of the raw second moment, the paper's v_hat, and Adam's bias correction is
    applied to it afterwards, as torch.optim.Adam(amsgrad=True) and TensorFlow do. optax 0.2.8
    takes the maximum of the corrected moments instead, nu_max = max(nu_max, nu / (1 - b2 ** t)),
    which follows neither (google-deepmind/optax#1389, pytorch/pytorch#142323):
    ``correct_before_max=True`` reproduces it.

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added outside the square root.
        eps_root: added inside the square root.
        mu_dtype: dtype of the first moment; defaults to each parameter's dtype.
        bias_correction_mu: divide the first moment by ``1 - b1 ** t``.
        bias_correction_nu: divide the second moment by ``1 - b2 ** t``.
        correct_before_max: keep the maximum of the corrected second moments (optax 0.2.8).

    References:
        Reddi, Kale and Kumar, On the Convergence of Adam and Beyond, ICLR 2018, Algorithm 2.
    """
    where = "gradtx.scale_by_amsgrad"
    _check_decay(where, "b1", b1)
    _check_decay(where, "b2", b2)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "eps_root", eps_root, low=0.0)

    def init(params):
        mu, nu, nu_max = (tree_zeros_like(params, d) for d in (mu_dtype, None, None))
        return ScaleByAmsgradState(jnp.zeros((), jnp.int32), mu, nu, nu_max)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.mu, where, "updates", "state.mu")
        count = safe_increment(state.count)
        mu, mu_read = tree_moment(updates, state.mu, b1, 1)
        nu, nu_read = tree_moment(updates, state.nu, b2, 2)
        correct_first = correct_before_max and bias_correction_nu
        candidate = tree_bias_correction(nu_read, b2, count) if correct_first else nu_read
        nu_max = tree_map_none(jnp.maximum, state.nu_max, candidate)
        mu_hat = (
            tree_bias_correction(mu_read, b1, count, hoist=True) if bias_correction_mu else mu_read
        )
        correct_after = bias_correction_nu and not correct_before_max
        nu_hat = tree_bias_correction(nu_max, b2, count, hoist=True) if correct_after else nu_max
        updates = _ratio(
            updates,
            mu_hat,
            lambda dt, v: jnp.sqrt(v + as_dtype(eps_root, dt)) + as_dtype(eps, dt),
            nu_hat,
        )
        return updates, ScaleByAmsgradState(count, mu, nu, nu_max)

    return GradientTransformation(init, update)


class ScaleByNadamState(NamedTuple):
    count: jax.Array  # int32 scalar: the step t
    mu_product: jax.Array  # float scalar: mu_1 * ... * mu_t, the product of the momentum schedule
    mu: object  # like params (mu_dtype if given): first moment
    nu: object  # like params: second moment


def scale_by_nadam(
    b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, momentum_decay=4e-3, *, mu_dtype=None
) -> GradientTransformation:
    """NAdam's scaling with Dozat's momentum schedule, as torch.optim.NAdam.

    mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    mu_product = mu_product * mu_t
    mu = b1 * mu + (1 - b1) * updates
    nu = b2 * nu + (1 - b2) * updates ** 2
    nu_hat = nu / (1 - b2 ** t)
    mu_hat = (1 - mu_t) / (1 - mu_product) * updates + mu_next / (1 - mu_product * mu_next) * mu
    updates = mu_hat / (sqrt(nu_hat + eps_root) + eps)

    ``momentum_decay=float("inf")`` makes mu_t = b1 at every step: the constant-momentum NAdam
    of optax 0.2.8 (``scale_by_adam(nesterov=True)``), which has no schedule.

    Args:
        b1: decay of the first moment and the schedule's limit, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added outside the square root.
        eps_root: added inside the square root.
        momentum_decay: the schedule's rate psi (torch's default 4e-3); inf for constant b1.
        mu_dtype: dtype of the first moment; defaults to each parameter's dtype.

    References:
        Dozat, Incorporating Nesterov Momentum into Adam, ICLR workshop 2016, Algorithm 2.
    """
    where = "gradtx.scale_by_nadam"
    _check_decay(where, "b1", b1)
    _check_decay(where, "b2", b2)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "eps_root", eps_root, low=0.0)
    _checks.check_number(where, "momentum_decay", momentum_decay, low=0.0)

    def init(params):
        mu = tree_zeros_like(params, mu_dtype)
        product = jnp.ones((), jnp.result_type(float))
        return ScaleByNadamState(jnp.zeros((), jnp.int32), product, mu, tree_zeros_like(params))

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.mu, where, "updates", "state.mu")
        count = safe_increment(state.count)
        dt = state.mu_product.dtype
        t = count.astype(dt)
        decay = as_dtype(momentum_decay, dt)

        def momentum(step):
            return as_dtype(b1, dt) * (1 - 0.5 * jnp.power(as_dtype(0.96, dt), step * decay))

        mu_t, mu_next = momentum(t), momentum(t + 1)
        mu_product = state.mu_product * mu_t
        mu, mu_read = tree_moment(updates, state.mu, b1, 1)
        nu, nu_read = tree_moment(updates, state.nu, b2, 2)
        nu_hat = tree_bias_correction(nu_read, b2, count, hoist=True)
        coef_g = (1 - mu_t) / (1 - mu_product)
        coef_m = mu_next / (1 - mu_product * mu_next)

        def step(g, m, v):
            ldt = acc_dtype(g.dtype)
            mu_hat = as_dtype(coef_g, ldt) * g.astype(ldt) + as_dtype(coef_m, ldt) * m.astype(ldt)
            denom = jnp.sqrt(v.astype(ldt) + as_dtype(eps_root, ldt)) + as_dtype(eps, ldt)
            return (mu_hat / denom).astype(g.dtype)

        updates = tree_map_none(step, updates, mu_read, nu_hat)
        return updates, ScaleByNadamState(count, mu_product, mu, nu)

    return GradientTransformation(init, update)


class ScaleByRadamState(NamedTuple):
    count: jax.Array  # int32 scalar: the step t
    mu: object  # like params: first moment
    nu: object  # like params: second moment


def scale_by_radam(
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    threshold=5.0,
    *,
    nesterov: bool = False,
    eps_on_corrected: bool = False,
) -> GradientTransformation:
    """Rectified Adam's scaling: Adam's step rectified, or momentum alone while rho_t is small.

    mu = b1 * mu + (1 - b1) * updates
    nu = b2 * nu + (1 - b2) * updates ** 2
    mu_hat = mu / (1 - b1 ** t)                   (nesterov: as in scale_by_adam)
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    r = sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
    denom = (sqrt(nu + eps_root) + eps) / sqrt(1 - b2 ** t)
    updates = r * mu_hat / denom    if rho_t > threshold
              mu_hat                otherwise

    r is 0 where the root's argument is not positive, which only a threshold below 4 reaches.
    eps is added to the root of the raw second moment, as in torch.optim.RAdam and the
    authors' code; ``eps_on_corrected=True`` adds eps and eps_root to the corrected moment,
    denom = sqrt(nu / (1 - b2 ** t) + eps_root) + eps, as optax 0.2.8 does. torch tests
    rho_t > 5 and optax rho_t >= threshold; the two differ only when rho_t equals it exactly.

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added to the root of the second moment.
        eps_root: added inside the square root.
        threshold: the rectification threshold on rho_t (5 in torch and optax, 4 in the
            paper's Algorithm 2).
        nesterov: use the Nesterov look-ahead on the first moment (optax's option).
        eps_on_corrected: put eps on the bias-corrected second moment (optax 0.2.8).

    References:
        Liu et al., On the Variance of the Adaptive Learning Rate and Beyond, ICLR 2020,
        Algorithm 2.
    """
    where = "gradtx.scale_by_radam"
    _check_decay(where, "b1", b1)
    _check_decay(where, "b2", b2)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "eps_root", eps_root, low=0.0)
    _checks.check_number(where, "threshold", threshold)

    def init(params):
        return ScaleByRadamState(
            jnp.zeros((), jnp.int32), tree_zeros_like(params), tree_zeros_like(params)
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.mu, where, "updates", "state.mu")
        count = safe_increment(state.count)
        mu, mu_read = tree_moment(updates, state.mu, b1, 1)
        nu, nu_read = tree_moment(updates, state.nu, b2, 2)
        if nesterov:
            mu_hat = _nesterov_mu_hat(mu_read, updates, b1, count)
        else:
            mu_hat = tree_bias_correction(mu_read, b1, count, hoist=True)

        def step(g, m, v):
            dt = acc_dtype(g.dtype)
            correction = bias_correction_factor(b2, count, dt)  # 1 - b2 ** t
            t = count.astype(dt)
            rho_inf = 2 / as_dtype(1 - b2, dt) - 1
            rho_t = rho_inf - 2 * t * (1 - correction) / correction
            ratio = (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            defined = ratio > 0  # rho_t > 4 (or < 2); the double where keeps gradients finite
            r = jnp.where(defined, jnp.sqrt(jnp.where(defined, ratio, 1)), 0)
            m, v = m.astype(dt), v.astype(dt)
            e, e_root = as_dtype(eps, dt), as_dtype(eps_root, dt)
            if eps_on_corrected:
                denom = jnp.sqrt(v / correction + e_root) + e
            else:
                denom = (jnp.sqrt(v + e_root) + e) / jnp.sqrt(correction)
            rectified = rho_t > as_dtype(threshold, dt)
            return jnp.where(rectified, r * m / denom, m).astype(g.dtype)

        updates = tree_map_none(step, updates, mu_hat, nu_read)
        return updates, ScaleByRadamState(count, mu, nu)

    return GradientTransformation(init, update)


class ScaleByBeliefState(NamedTuple):
    count: jax.Array  # int32 scalar: the step t
    mu: object  # like params: first moment
    nu: object  # like params: second moment of the prediction error (the paper's s), eps_root in


def scale_by_belief(
    b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16, *, nesterov: bool = False
) -> GradientTransformation:
    """AdaBelief's scaling: Adam with the variance of the gradient around its moving average.

    mu = b1 * mu + (1 - b1) * updates
    nu = b2 * nu + (1 - b2) * (updates - mu) ** 2 + eps_root
    mu_hat = mu / (1 - b1 ** t)                   (nesterov: as in scale_by_adam)
    nu_hat = nu / (1 - b2 ** t)
    updates = mu_hat / (sqrt(nu_hat) + eps)

    eps_root is added to ``nu`` at every step and kept in the state, as the paper's s_t is.

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: decay of the second moment, in [0, 1).
        eps: added outside the square root (the authors' 1e-16).
        eps_root: added to the second moment every step (the paper's eps inside s_t).
        nesterov: use the Nesterov look-ahead on the first moment (optax's option).

    References:
        Zhuang et al., AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed
        Gradients, NeurIPS 2020, Algorithm 2.
    """
    where = "gradtx.scale_by_belief"
    _check_decay(where, "b1", b1)
    _check_decay(where, "b2", b2)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "eps_root", eps_root, low=0.0)

    def init(params):
        return ScaleByBeliefState(
            jnp.zeros((), jnp.int32), tree_zeros_like(params), tree_zeros_like(params)
        )

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.mu, where, "updates", "state.mu")
        count = safe_increment(state.count)
        mu, mu_read = tree_moment(updates, state.mu, b1, 1)
        errors = tree_map_none(
            lambda g, m: g.astype(acc_dtype(m.dtype)) - m.astype(acc_dtype(m.dtype)),
            updates,
            mu_read,
        )

        def plus_root(v):
            dt = acc_dtype(v.dtype)
            return (v.astype(dt) + as_dtype(eps_root, dt)).astype(v.dtype)

        nu, nu_read = tree_moment(errors, state.nu, b2, 2)
        nu, nu_read = tree_map_none(plus_root, nu), tree_map_none(plus_root, nu_read)
        if nesterov:
            mu_hat = _nesterov_mu_hat(mu_read, updates, b1, count)
        else:
            mu_hat = tree_bias_correction(mu_read, b1, count, hoist=True)
        nu_hat = tree_bias_correction(nu_read, b2, count, hoist=True)
        updates = _ratio(updates, mu_hat, lambda dt, v: jnp.sqrt(v) + as_dtype(eps, dt), nu_hat)
        return updates, ScaleByBeliefState(count, mu, nu)

    return GradientTransformation(init, update)


class ScaleByYogiState(NamedTuple):
    count: jax.Array  # int32 scalar: the step t
    mu: object  # like params: first moment
    nu: object  # like params: additive second moment


def scale_by_yogi(
    b1=0.9,
    b2=0.999,
    eps=1e-3,
    eps_root=0.0,
    initial_accumulator_value=1e-6,
    *,
    mu_starts_at_accumulator: bool = False,
) -> GradientTransformation:
    """Yogi's scaling: Adam with an additive, sign-controlled second moment.

    mu = b1 * mu + (1 - b1) * updates                        (mu from 0)
    nu = nu - (1 - b2) * sign(nu - updates ** 2) * updates ** 2   (nu from the initial value)
    mu_hat = mu / (1 - b1 ** t)
    nu_hat = nu / (1 - b2 ** t)
    updates = mu_hat / (sqrt(nu_hat + eps_root) + eps)

    The first moment starts at 0 (the paper's m_0 = 0). optax 0.2.8 starts it at
    ``initial_accumulator_value`` as well: ``mu_starts_at_accumulator=True`` reproduces that.
    The bias correction is Adam's, as optax and the authors' TensorFlow code apply it (the
    paper's Algorithm 2 leaves it out for clarity).

    Args:
        b1: decay of the first moment, in [0, 1).
        b2: the rate of the additive second moment, in [0, 1).
        eps: added outside the square root (the paper's 1e-3).
        eps_root: added inside the square root.
        initial_accumulator_value: the start of ``nu`` (the authors' 1e-6).
        mu_starts_at_accumulator: start ``mu`` at ``initial_accumulator_value`` (optax 0.2.8).

    References:
        Zaheer et al., Adaptive Methods for Nonconvex Optimization, NeurIPS 2018, Algorithm 2.
    """
    where = "gradtx.scale_by_yogi"
    _check_decay(where, "b1", b1)
    _check_decay(where, "b2", b2)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "eps_root", eps_root, low=0.0)
    _checks.check_number(where, "initial_accumulator_value", initial_accumulator_value, low=0.0)

    def init(params):
        nu = tree_full_like(params, initial_accumulator_value)
        mu = (
            tree_full_like(params, initial_accumulator_value)
            if mu_starts_at_accumulator
            else tree_zeros_like(params)
        )
        return ScaleByYogiState(jnp.zeros((), jnp.int32), mu, nu)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.mu, where, "updates", "state.mu")
        count = safe_increment(state.count)
        mu, mu_read = tree_moment(updates, state.mu, b1, 1)

        def additive(g, v):
            dt = acc_dtype(v.dtype)
            g2, old = jnp.square(g.astype(dt)), v.astype(dt)
            return (old - as_dtype(1 - b2, dt) * jnp.sign(old - g2) * g2).astype(v.dtype)

        nu = tree_map_none(additive, updates, state.nu)
        mu_hat = tree_bias_correction(mu_read, b1, count, hoist=True)
        nu_hat = tree_bias_correction(nu, b2, count, hoist=True)
        updates = _ratio(
            updates,
            mu_hat,
            lambda dt, v: jnp.sqrt(v + as_dtype(eps_root, dt)) + as_dtype(eps, dt),
            nu_hat,
        )
        return updates, ScaleByYogiState(count, mu, nu)

    return GradientTransformation(init, update)


class ScaleByAdanState(NamedTuple):
    count: jax.Array  # int32 scalar: the step k
    m: object  # like params: moving average of the gradients
    v: object  # like params: moving average of the gradient differences
    n: object  # like params: moving average of the squared Nesterov gradient estimate
    prev_g: object  # like params: the previous step's gradient


def scale_by_adan(
    b1=0.98, b2=0.92, b3=0.99, eps=1e-8, eps_root=0.0, *, diff_weight=None
) -> GradientTransformation:
    """Adan's scaling: Adam-style moments of a Nesterov gradient estimate.

    diff = updates - prev_g                       (0 at the first step)
    m = b1 * m + (1 - b1) * updates
    v = b2 * v + (1 - b2) * diff
    n = b3 * n + (1 - b3) * (updates + diff_weight * diff) ** 2
    m_hat, v_hat, n_hat = m / (1 - b1 ** k), v / (1 - b2 ** k), n / (1 - b3 ** k)
    updates = (m_hat + diff_weight * v_hat) / (sqrt(n_hat + eps_root) + eps)
    prev_g = updates (the incoming gradient)

    The b's are decays (the paper's 1 - beta's: b1 = 0.98 is beta1 = 0.02). The paper weights
    the difference by its (1 - beta2), which is ``b2``: the default ``diff_weight=None`` means
    ``b2``, as in Algorithm 1 and the authors' code. optax 0.2.8 weights it by ``1 - b2``
    (0.08 instead of 0.92, google-deepmind/optax#1715): ``diff_weight=1 - b2`` reproduces it.
    The bias corrections are those of the authors' code.

    Args:
        b1: decay of the gradient average (1 - the paper's beta1), in [0, 1).
        b2: decay of the difference average (1 - the paper's beta2), in [0, 1).
        b3: decay of the squared estimate (1 - the paper's beta3), in [0, 1).
        eps: added outside the square root.
        eps_root: added inside the square root.
        diff_weight: the weight of the gradient difference; None for ``b2``.

    References:
        Xie et al., Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
        Models, 2022 (arXiv:2208.06677), Algorithm 1.
    """
    where = "gradtx.scale_by_adan"
    for name, value in (("b1", b1), ("b2", b2), ("b3", b3)):
        _check_decay(where, name, value)
    _checks.check_number(where, "eps", eps, low=0.0)
    _checks.check_number(where, "eps_root", eps_root, low=0.0)
    if diff_weight is not None:
        _checks.check_number(where, "diff_weight", diff_weight, low=0.0)

    def init(params):
        zeros = lambda: tree_zeros_like(params)  # noqa: E731
        return ScaleByAdanState(jnp.zeros((), jnp.int32), zeros(), zeros(), zeros(), zeros())

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        _checks.check_same_structure(updates, state.m, where, "updates", "state.m")
        w = b2 if diff_weight is None else diff_weight
        first = state.count == 0

        def difference(g, prev):
            dt = acc_dtype(g.dtype)
            return jnp.where(first, 0, g.astype(dt) - prev.astype(dt))

        diff = tree_map_none(difference, updates, state.prev_g)

        def estimate(g, d):
            dt = acc_dtype(g.dtype)
            return g.astype(dt) + as_dtype(w, dt) * d.astype(dt)

        count = safe_increment(state.count)
        m, m_read = tree_moment(updates, state.m, b1, 1)
        v, v_read = tree_moment(diff, state.v, b2, 1)
        n, n_read = tree_moment(tree_map_none(estimate, updates, diff), state.n, b3, 2)
        m_hat = tree_bias_correction(m_read, b1, count, hoist=True)
        v_hat = tree_bias_correction(v_read, b2, count, hoist=True)
        n_hat = tree_bias_correction(n_read, b3, count, hoist=True)

        def step(g, mh, vh, nh):
            dt = acc_dtype(g.dtype)
            num = mh.astype(dt) + as_dtype(w, dt) * vh.astype(dt)
            denom = jnp.sqrt(nh.astype(dt) + as_dtype(eps_root, dt)) + as_dtype(eps, dt)
            return (num / denom).astype(g.dtype)

        new_updates = tree_map_none(step, updates, m_hat, v_hat, n_hat)
        prev_g = tree_map_none(lambda g, p: g.astype(p.dtype), updates, state.prev_g)
        return new_updates, ScaleByAdanState(count, m, v, n, prev_g)

    return GradientTransformation(init, update)
