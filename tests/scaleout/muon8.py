"""The 8-device Muon checks, run as ``python -m tests.scaleout.muon8`` with 8 CPU devices.

Prints one JSON line; ``tests/test_muon_scaleout.py`` asserts on it. Parameters of a small
attention-and-MLP block, sharded over a (2, 4) mesh in several ways, take 6 jitted Muon steps
under each shard policy; each run is compared with the same steps on one device.
"""

from __future__ import annotations

import json
import os

# XLA's default compiler, not the suite's compile-speed settings (tests/conftest.py, inherited
# through the environment): with both of them the one-device program rounds differently from
# every sharded one (all four policies 3.8e-6 Frobenius-relative from it, the owner policy
# included, which is bit-identical under the defaults); with either alone, 0 or 5e-8.
os.environ.pop("JAX_DISABLE_MOST_OPTIMIZATIONS", None)
os.environ["XLA_FLAGS"] = " ".join(
    f
    for f in os.environ.get("XLA_FLAGS", "").split()
    if "xla_cpu_use_fusion_emitters" not in f and "xla_cpu_parallel_codegen_split_count" not in f
)

import jax  # noqa: E402
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from gradtx.contrib import muon, muon_bytes_moved

SHAPES = {
    "q": (64, 64),
    "k": (64, 64),
    "v": (64, 64),
    "o": (64, 64),
    "up": (64, 128),
    "down": (128, 64),
    "bias": (64,),
}
SPECS = {
    "q": P(None, "model"),
    "k": P("model", None),
    "v": P("data", "model"),
    "o": P(("data", "model"), None),
    "up": P(None, "model"),
    "down": P("model", None),
    "bias": P("model"),
}
STEPS = 6


def make(dtype=jnp.float32):
    keys = jax.random.split(jax.random.PRNGKey(0), len(SHAPES))
    params = {n: 0.1 * jax.random.normal(k, s, dtype) for k, (n, s) in zip(keys, SHAPES.items())}
    grads = [
        jax.tree.map(lambda p, t=t: jnp.sin(7.0 * p + 0.3 * t) + 0.05 * t, params)
        for t in range(STEPS)
    ]
    return params, grads


def trajectory(tx, params, grads, shardings=None):
    state = tx.init(params)  # eager: slots follow the params' shardings
    out = None
    if shardings is not None:
        state_shard = gradtx.state_shardings(tx, params)
        state = jax.jit(tx.init, out_shardings=state_shard)(params)
        out = (shardings, state_shard)
    step = jax.jit(lambda g, s, p: tx.update(g, s, p), out_shardings=out)
    updates = []
    for g in grads:
        if shardings is not None:
            g = jax.device_put(g, shardings)
        u, state = step(g, state, params)
        params = gradtx.apply_updates(params, u)
        updates.append(jax.device_get(u))
    kept = shardings is None or all(
        x.sharding.is_equivalent_to(s, x.ndim)
        for x, s in zip(jax.tree.leaves(params), jax.tree.leaves(shardings))
    )
    return updates, kept


def norm_err(got, want):
    """max over steps and leaves of |got - want| / |want| (Frobenius norms)."""
    return max(
        float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))
        for gs, ws in zip(got, want)
        for a, b in zip(jax.tree.leaves(gs), jax.tree.leaves(ws))
    )


def rel_err(got, want):
    """max over steps and leaves of max|got - want| / max|want|."""
    return max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))
        for gs, ws in zip(got, want)
        for a, b in zip(jax.tree.leaves(gs), jax.tree.leaves(ws))
    )


def main():
    assert jax.device_count() == 8, f"expected 8 devices, got {jax.devices()}"
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))
    shardings = {n: NamedSharding(mesh, s) for n, s in SPECS.items()}
    params, grads = make()
    one = jax.devices()[0]
    reference, _ = trajectory(muon(0.02), jax.device_put(params, one), grads)
    sharded = jax.device_put(params, shardings)
    policies = {
        # the mesh pins Newton-Schulz's layout: every sum in one device's order
        "gspmd": muon(0.02, mesh=mesh),
        "gspmd_batched": muon(0.02, batch_same_shape=True, mesh=mesh),
        "owner": muon(0.02, shard_policy="owner", mesh=mesh, owner_axis=("data", "model")),
        "owner_model": muon(0.02, shard_policy="owner", mesh=mesh, owner_axis="model"),
    }
    report = {"matrix_bytes": int(sum(4 * np.prod(s) for s in SHAPES.values() if len(s) == 2))}
    for name, tx in policies.items():
        got, kept = trajectory(tx, sharded, grads, shardings)
        report[name] = {
            "rel_err": rel_err(got, reference),
            "norm_err": norm_err(got, reference),
            "kept_sharding": kept,
            **muon_bytes_moved(tx, sharded),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
