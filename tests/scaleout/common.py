"""Shared by the scale-out workers: a small MLP, its data, the steps, and the 1-device reference.

Imported only in worker interpreters whose device count was set before jax started.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx

STEPS = 10
LEARNING_RATE = 1e-2
MAX_NORM = 3.0  # clips about half the steps (gradient norms 2.1-3.7), so a wrong norm shows
# Tensor parallel over "model" (GSPMD); the batch is split over "data".
MODEL_SPECS = {"w1": P(None, "model"), "b1": P("model"), "w2": P("model", None), "b2": P()}
BATCH_SPEC = P("data")


def make_tx(axis_name=None):
    """Adam with global-norm clipping of the gradients."""
    return gradtx.chain(
        gradtx.clip_by_global_norm(MAX_NORM, axis_name=axis_name), gradtx.adam(LEARNING_RATE)
    )


def init_params() -> dict:
    rng = np.random.default_rng(0)
    shapes = {"w1": (8, 32), "b1": (32,), "w2": (32, 4), "b2": (4,)}
    return {k: (0.5 * rng.standard_normal(s)).astype(np.float32) for k, s in shapes.items()}


def batches():
    """STEPS batches of 16 examples: x (STEPS, 16, 8), y (STEPS, 16, 4)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((STEPS, 16, 8)).astype(np.float32)
    y = np.sin(x[..., :4] + x[..., 4:]).astype(np.float32)
    return x, y


def loss_fn(params, x, y):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean(jnp.square(h @ params["w2"] + params["b2"] - y))


def train_step(tx):
    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state, loss

    return step


def to_numpy(tree):
    """Host copies of (possibly globally sharded) arrays."""

    def host(x):
        if x.is_fully_addressable:
            return np.asarray(x)
        return multihost_utils.process_allgather(x, tiled=True)

    return jax.tree.map(host, tree)


@functools.cache
def reference():
    """The 1-device run: params, state and per-step gradient norms, on this process's device."""
    device = jax.local_devices()[0]
    tx = make_tx()
    params = jax.device_put(init_params(), device)
    state = tx.init(params)
    step = jax.jit(train_step(tx))
    xs, ys = batches()
    norms = []
    for i in range(STEPS):
        grads = jax.grad(loss_fn)(params, xs[i], ys[i])
        norms.append(float(gradtx.global_norm(grads)))
        params, state, _ = step(params, state, jax.device_put(xs[i], device), ys[i])
    return to_numpy(params), to_numpy(state), norms


def max_err(a, b) -> float:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b))
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in pairs)


def put(x: np.ndarray, sharding: NamedSharding):
    """A global array from a host array that every process holds in full."""
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def run_gspmd(mesh: Mesh, param_specs: dict, zero1_axis=None):
    """10 jitted steps with sharded params, state and batch, and donation. Returns a report."""
    tx = make_tx()
    pshard = {k: NamedSharding(mesh, s) for k, s in param_specs.items()}
    bshard = NamedSharding(mesh, BATCH_SPEC)
    params = {k: put(v, pshard[k]) for k, v in init_params().items()}
    sshard = gradtx.state_shardings(tx, params, zero1_axis=zero1_axis)
    state = jax.jit(tx.init, out_shardings=sshard)(params)
    step = jax.jit(
        train_step(tx),
        in_shardings=(pshard, sshard, bshard, bshard),
        out_shardings=(pshard, sshard, NamedSharding(mesh, P())),
        donate_argnums=(0, 1),
    )
    xs, ys = batches()
    first = params
    for i in range(STEPS):
        params, state, _ = step(params, state, put(xs[i], bshard), put(ys[i], bshard))
    kept = jax.tree.map(lambda x, s: x.sharding.is_equivalent_to(s, x.ndim), state, sshard)
    adam = state[1][0]
    slots = jax.tree.leaves((adam.mu, adam.nu))
    ref_params, ref_state, _ = reference()
    return {
        "err_params": max_err(to_numpy(params), ref_params),
        "err_state": max_err(to_numpy(state), ref_state),
        "state_kept_sharding": all(jax.tree.leaves(kept)),
        "donated": all(x.is_deleted() for x in jax.tree.leaves(first)),
        # the fraction of each moment one device holds, over every addressable shard
        "slot_fractions": sorted(
            {s.data.size / x.size for x in slots for s in x.addressable_shards}
        ),
        "mu_follows_params": all(
            adam.mu[k].sharding.is_equivalent_to(params[k].sharding, params[k].ndim) for k in params
        ),
        "opt_bytes_per_device": sorted(set(gradtx.bytes_per_device(state).values())),
    }
