"""Gradient noise: annealed Gaussian noise added to the updates."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.trees import acc_dtype, as_dtype, safe_increment


class AddNoiseState(NamedTuple):
    count: jax.Array  # int32 scalar: steps taken (t + 1 after the t-th update, from 0)
    rng_key: jax.Array  # uint32 key data (jax.random.key_data): the key of the next draw


def _key_data(key, where):
    """Key data and implementation of a seed, a raw uint32 key or a typed key."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key), jax.random.key_impl(key)
    if isinstance(key, int) and not isinstance(key, bool):
        return jax.random.key_data(jax.random.key(key)), None
    if hasattr(key, "dtype") and jnp.dtype(key.dtype) == jnp.uint32 and jnp.ndim(key) == 1:
        return jnp.asarray(key), None  # a raw key, as jax.random.PRNGKey gives
    if hasattr(key, "dtype") and jnp.issubdtype(key.dtype, jnp.integer) and jnp.ndim(key) == 0:
        return jax.random.key_data(jax.random.key(key)), None  # a seed as an array or tracer
    raise TypeError(
        f"{where}: key={key!r} is not a random key; pass an int seed, jax.random.key(seed) or "
        "jax.random.PRNGKey(seed)."
    )


# Leaves per batched draw. XLA's compile time grows with the square of the number of slices
# taken from one buffer (2,000 slices of one stacked draw: 47 s; in chunks of 50: 6 s).
_DRAW_CHUNK = 64


def _normal_draws(keys, shapes, dtypes, batch):
    """A standard normal draw per leaf, leaf i from keys[i] in shape i and dtype i.

    With ``batch``, leaves of one shape and dtype are drawn together, up to _DRAW_CHUNK at a
    time, by ``vmap`` over their keys: the bits of the one-draw-per-leaf form (threefry's draw
    is a function of its key and counter, and vmap batches it elementwise), from one threefry
    computation per chunk instead of one per leaf, which at 2,000 leaves of 64x64 is the
    difference between minutes and seconds of compile time.
    """
    size = _DRAW_CHUNK if batch else 1
    draws = [None] * len(shapes)
    groups = {}
    for i, shape_dtype in enumerate(zip(shapes, dtypes)):
        groups.setdefault(shape_dtype, []).append(i)
    for (shape, dt), members in groups.items():
        for start in range(0, len(members), size):
            chunk = members[start : start + size]
            if len(chunk) == 1:
                draws[chunk[0]] = jax.random.normal(keys[chunk[0]], shape, dt)
                continue
            stacked = jax.vmap(lambda k, shape=shape, dt=dt: jax.random.normal(k, shape, dt))(
                keys[np.asarray(chunk)]
            )
            for j, i in enumerate(chunk):
                draws[i] = stacked[j]
    return draws


def add_noise(eta=0.01, gamma=0.55, key=None, *, seed=None) -> GradientTransformation:
    """Add Gaussian noise whose variance decays with the step count.

    count = count + 1
    sigma = sqrt(eta / count ** gamma)
    rng_key, sample_key = split(rng_key)
    updates = updates + sigma * normal(sample_key, one key per leaf)

    The draw is optax 0.2.8's (the key split in two, the sample key split once per leaf, each
    leaf drawn in its dtype), so the same key gives the same noise as ``optax.add_noise`` for
    float32 and float64 leaves; bfloat16 leaves are drawn in float32 and rounded. With a
    threefry key (the default), leaves of one shape and dtype are drawn in batched calls of 64,
    with the same bits: many leaves compile in seconds rather than minutes.

    Args:
        eta: the variance at the first step (the paper tries 0.01, 0.3 and 1.0).
        gamma: the decay exponent of the variance (the paper's 0.55).
        key: an int seed, ``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``; None
            means the seed 0 (as optax, which warns). The state keeps it as uint32 key data.
        seed: an int seed, optax's older name for ``key``; give one or the other.

    References:
        Neelakantan et al., Adding Gradient Noise Improves Learning for Very Deep Networks,
        2015, section 2 (eq. 1: sigma_t ** 2 = eta / (1 + t) ** gamma).
    """
    where = "gradtx.add_noise"
    _checks.check_number(where, "eta", eta, low=0.0)
    _checks.check_number(where, "gamma", gamma, low=0.0)
    if seed is not None:
        if key is not None:
            raise ValueError(f"{where}: both key={key!r} and seed={seed!r} given; pass one.")
        key = seed
    data, impl = _key_data(0 if key is None else key, where)

    def init(params):
        del params
        return AddNoiseState(jnp.zeros((), jnp.int32), data)

    def update(updates, state, params=None, **extra_args):
        del params, extra_args
        count = safe_increment(state.count)
        rng_key = jax.random.wrap_key_data(state.rng_key, impl=impl)
        rng_key, sample_key = jax.random.split(rng_key)
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(sample_key, len(leaves))
        dtypes = [acc_dtype(g.dtype) for g in leaves]
        # vmap over keys keeps the bits for threefry (the default) only
        batch = str(jax.random.key_impl(rng_key)) == "threefry2x32"
        noises = _normal_draws(keys, [g.shape for g in leaves], dtypes, batch)

        def noisy(g, noise, dt):
            sigma = jnp.sqrt(as_dtype(eta, dt) / count.astype(dt) ** as_dtype(gamma, dt))
            return (g.astype(dt) + sigma * noise).astype(g.dtype)

        updates = jax.tree.unflatten(treedef, list(map(noisy, leaves, noises, dtypes)))
        return updates, AddNoiseState(count, jax.random.key_data(rng_key))

    return GradientTransformation(init, update)
