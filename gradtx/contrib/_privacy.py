"""Differentially private SGD: per-example clipping, a sum, Gaussian noise, a mean."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradtx._aliases._common import maximizing
from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation, chain, identity
from gradtx._core.trees import acc_dtype, as_dtype
from gradtx.transforms._clipping import per_example_global_norm_clip
from gradtx.transforms._momentum import trace
from gradtx.transforms._noise import _key_data
from gradtx.transforms._scaling import scale_by_learning_rate


class DifferentiallyPrivateAggregateState(NamedTuple):
    rng_key: jax.Array  # uint32 key data (jax.random.key_data): the key of the next draw


def differentially_private_aggregate(
    l2_norm_clip, noise_multiplier, key=None, *, seed=None
) -> GradientTransformation:
    """Aggregate per-example gradients as DP-SGD does: clip each, sum, add noise, average.

    updates[i] is example i's gradient (every leaf has the leading batch axis, size B):
    norm_i = sqrt(sum over leaves of sum(updates[i] ** 2))
    total = sum over i of updates[i] * min(1, l2_norm_clip / norm_i)
    rng_key, k_1, ..., k_n = split(rng_key, n + 1)              (n leaves)
    updates = (total + l2_norm_clip * noise_multiplier * normal(k_j)) / B    (leaf j)

    The key stream is optax 0.2.8's (one split into n + 1 keys per step, each leaf drawn in
    its dtype), so the same key gives optax's noise for float32 and float64 leaves; bfloat16
    leaves are drawn in float32 and rounded. Put it first in a chain: the transforms after it
    see one averaged gradient per parameter. MultiSteps or apply_every would accumulate the
    noisy means, which is not the algorithm.

    Args:
        l2_norm_clip: C, the bound on each example's gradient norm (the paper's clipping bound).
        noise_multiplier: sigma; the noise's standard deviation is sigma * C.
        key: an int seed, ``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``. None means
            the seed 0, with a warning (as optax): DP noise should come from a key you choose.
        seed: an int seed, optax's older name for ``key``; give one or the other.

    References:
        Abadi et al., Deep Learning with Differential Privacy, 2016, Algorithm 1 (compute
        gradient, clip gradient, add noise: g_t = (sum_i g_t(x_i) / max(1, |g_t(x_i)| / C)
        + N(0, sigma^2 C^2 I)) / L).
    """
    where = "gradtx.contrib.differentially_private_aggregate"
    _checks.check_number(where, "l2_norm_clip", l2_norm_clip, low=0.0)
    _checks.check_number(where, "noise_multiplier", noise_multiplier, low=0.0)
    if seed is not None:
        if key is not None:
            raise ValueError(f"{where}: both key={key!r} and seed={seed!r} given; pass one.")
        key = seed
    if key is None:
        warnings.warn(
            f"{where}: no key given, so the noise comes from the seed 0; pass key= (an int "
            "seed or jax.random.key(seed)) of your choosing.",
            UserWarning,
            stacklevel=2,
        )
        key = 0
    data, impl = _key_data(key, where)

    def init(params):
        del params
        return DifferentiallyPrivateAggregateState(data)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        total, _ = per_example_global_norm_clip(updates, l2_norm_clip)
        leaves, treedef = jax.tree.flatten(total)
        batch = jnp.shape(jax.tree.leaves(updates)[0])[0]
        rng_key, *keys = jax.random.split(
            jax.random.wrap_key_data(state.rng_key, impl=impl), len(leaves) + 1
        )

        def noisy(g, k):
            dt = acc_dtype(g.dtype)
            std = as_dtype(l2_norm_clip, dt) * as_dtype(noise_multiplier, dt)
            noise = jax.random.normal(k, g.shape, dt)
            return ((g.astype(dt) + std * noise) / as_dtype(batch, dt)).astype(g.dtype)

        updates = jax.tree.unflatten(treedef, [noisy(g, k) for g, k in zip(leaves, keys)])
        return updates, DifferentiallyPrivateAggregateState(jax.random.key_data(rng_key))

    return GradientTransformation(init, update)


def dpsgd(
    learning_rate,
    l2_norm_clip,
    noise_multiplier,
    seed,
    momentum=None,
    nesterov: bool = False,
    *,
    maximize: bool = False,
) -> GradientTransformation:
    """DP-SGD: chain(differentially_private_aggregate, trace (if momentum), learning rate).

    Takes per-example gradients (a leading batch axis on every leaf, e.g. from
    ``jax.vmap(jax.grad(loss), in_axes=(None, 0))``) and returns one update per parameter:
    the clipped, noised mean of ``differentially_private_aggregate`` (see it for the rule),
    with heavy-ball or Nesterov momentum when ``momentum`` is a number, times -learning_rate.
    The defaults are the paper's: no momentum.

    Args:
        learning_rate: the step size eta_t (a number or a schedule).
        l2_norm_clip: C, the bound on each example's gradient norm.
        noise_multiplier: sigma; the noise's standard deviation is sigma * C.
        seed: an int seed or a random key for the noise.
        momentum: None (the paper's plain descent) or the decay of ``trace``.
        nesterov: Nesterov momentum (with ``momentum``).

    References:
        Abadi et al., Deep Learning with Differential Privacy, 2016, Algorithm 1.
    """
    return maximizing(
        chain(
            differentially_private_aggregate(l2_norm_clip, noise_multiplier, key=seed),
            identity() if momentum is None else trace(momentum, nesterov),
            scale_by_learning_rate(learning_rate),
        ),
        maximize,
    )
