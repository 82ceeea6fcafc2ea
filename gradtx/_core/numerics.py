"""Numerics with finite gradients at the edges, and optax's small contract helpers.

``safe_norm`` and ``safe_root_mean_squares`` clamp from below without a NaN gradient at zero
(the norm's gradient is 0/0 there); ``scale_gradient`` scales only the backward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradtx._core.base import EmptyState, GradientTransformation, call_update
from gradtx._core.trees import safe_increment, tree_map_none

# optax's type names, for annotations in code that moves over.
Params = Any
Updates = Any
OptState = Any
ScalarOrSchedule = Any  # a number, an array, or a schedule count -> value
MaskOrFn = Any  # a tree of bools, or a function params -> such a tree
TransformInitFn = Any  # a Callable: init(params) -> state
TransformUpdateFn = Any  # a Callable: update(updates, state, params=None, **extra_args)
TransformUpdateExtraArgsFn = Any  # the same: gradtx has one update signature


def safe_norm(x, min_norm, ord=None, axis=None, keepdims: bool = False):  # noqa: A002
    """max(norm(x), min_norm), with a zero gradient (not NaN) where norm(x) <= min_norm.

    ``ord``, ``axis`` and ``keepdims`` are those of ``jnp.linalg.norm``.
    """
    x = jnp.asarray(x)
    norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=True)
    small = norm <= min_norm
    safe_x = jnp.where(small, jnp.ones_like(x), x)
    masked = jnp.linalg.norm(safe_x, ord=ord, axis=axis, keepdims=keepdims)
    small = small if keepdims else jnp.squeeze(small, axis=axis)
    return jnp.where(small, jnp.asarray(min_norm, masked.dtype), masked)


def safe_root_mean_squares(x, min_rms):
    """max(sqrt(mean(|x|**2)), min_rms), with a zero gradient where the RMS <= min_rms."""
    x = jnp.asarray(x)
    sq = jnp.square(jnp.abs(x)) if jnp.iscomplexobj(x) else jnp.square(x)
    ms = jnp.mean(sq)
    small = ms <= jnp.square(min_rms)
    return jnp.where(small, jnp.asarray(min_rms, ms.dtype), jnp.sqrt(jnp.where(small, 1, ms)))


def safe_int32_increment(count):
    """optax's name for ``safe_increment``: count + 1, saturating at the int32 maximum."""
    return safe_increment(count)


def scale_gradient(inputs, scale):
    """The identity on the forward pass; gradients are multiplied by ``scale`` on the way back.

    backward: d inputs = scale * d outputs
    """

    @jax.custom_vjp
    def identity(x):
        return x

    def fwd(x):
        return x, None

    def bwd(_, g):
        return (tree_map_none(lambda t: t * jnp.asarray(scale, t.dtype), g),)

    identity.defvjp(fwd, bwd)
    return identity(inputs)


def init_empty_state(params) -> EmptyState:
    """The ``init`` of a transform without state: returns ``EmptyState()``."""
    del params
    return EmptyState()


def stateless_with_tree_map(f: Callable) -> GradientTransformation:
    """A transform without state from ``f(update_leaf, param_leaf) -> update_leaf``.

    updates = tree_map(f, updates, params)       (param_leaf is None when params is None)
    """

    def update(updates, state, params=None, **extra_args):
        del extra_args
        if params is None:
            return tree_map_none(lambda u: f(u, None), updates), state
        return tree_map_none(f, updates, params), state

    return GradientTransformation(init_empty_state, update)


def with_extra_args_support(tx) -> GradientTransformation:
    """``tx`` as a transform whose update takes (and passes on where it can) extra arguments.

    updates = tx(updates)

    gradtx transforms already take them; a foreign transform gets them only if its update
    accepts ``**kwargs``.
    """

    def update(updates, state, params=None, **extra_args):
        return call_update(tx, updates, state, params, extra_args)

    return GradientTransformation(tx.init, update)


class MultiNormalDiagFromLogScale:
    """A normal distribution with diagonal covariance, from its mean and log standard deviation.

    x = loc + exp(log_scale) * normal(key, shape + param_shape)             (sample)
    log_prob(x) = sum over the parameter axes of
        -0.5 * ((x - loc) / exp(log_scale)) ** 2 - log_scale - 0.5 * log(2 pi)
    ``params`` is [loc, log_scale], the arguments a score-function gradient estimator
    differentiates with respect to.
    """

    def __init__(self, loc, log_scale):
        self._mean = jnp.asarray(loc)
        self._log_scale = jnp.asarray(log_scale)
        self._scale = jnp.exp(self._log_scale)
        self._param_shape = jax.lax.broadcast_shapes(self._mean.shape, self._scale.shape)

    def sample(self, shape, key) -> jax.Array:
        """Draws of shape ``tuple(shape) + param_shape`` from the key ``key``."""
        dt = jnp.result_type(self._mean, self._scale)
        dt = dt if jnp.issubdtype(dt, jnp.floating) else jnp.float32
        z = jax.random.normal(key, tuple(shape) + self._param_shape, dt)
        scale, mean = (self._lifted(v, z.ndim).astype(dt) for v in (self._scale, self._mean))
        return z * scale + mean

    def _lifted(self, v, ndim):
        """``v`` broadcast to the parameter shape, with leading axes of size 1 up to ``ndim``."""
        full = jnp.broadcast_to(v, self._param_shape)
        return full.reshape((1,) * (ndim - full.ndim) + full.shape)

    def log_prob(self, x) -> jax.Array:
        """The log density at ``x``, summed over the parameter axes (one value per draw)."""
        x = jnp.asarray(x)
        dt = jnp.result_type(x, self._mean, self._scale)
        mean, scale, log_scale = (
            self._lifted(v, x.ndim).astype(dt) for v in (self._mean, self._scale, self._log_scale)
        )
        z = (x.astype(dt) - mean) / scale
        per = -0.5 * z * z - log_scale - jnp.asarray(0.5 * math.log(2 * math.pi), dt)
        return jnp.sum(per, axis=tuple(range(-len(self._param_shape), 0)))

    @property
    def log_scale(self) -> jax.Array:
        """The log standard deviation, as given."""
        return self._log_scale

    @property
    def params(self) -> list:
        """[loc, log_scale]."""
        return [self._mean, self._log_scale]


def multi_normal(loc, log_scale) -> MultiNormalDiagFromLogScale:
    """A diagonal normal distribution with mean ``loc`` and standard deviation exp(log_scale)
    (optax's ``multi_normal``): ``sample(shape, key)``, ``log_prob(x)``, ``params``.

    Example:
        >>> import jax, jax.numpy as jnp, gradtx
        >>> dist = gradtx.multi_normal(jnp.zeros(3), jnp.zeros(3))
        >>> dist.sample((4,), jax.random.key(0)).shape
        (4, 3)
        >>> round(float(dist.log_prob(jnp.zeros(3))), 4)   # 3 * -0.5 * log(2 pi)
        -2.7568
    """
    return MultiNormalDiagFromLogScale(loc, log_scale)
