"""Scaling out gradtx: three ways to place a model and its Adam state on 8 devices.

Run: ``python notebooks/scaling_out.py`` (8 simulated CPU devices unless JAX_NUM_CPU_DEVICES says
otherwise; on a real multi-device machine the same code uses the real devices).

1. replicated: pure data parallelism; every device holds all params and all optimizer state.
2. sharded state: tensor parallelism over "model"; each slot follows its parameter's sharding.
3. ZeRO-1: params replicated (data parallel), every optimizer slot split over all 8 devices.

Each setup trains the same MLP for a few steps; they reach the same parameters, and the table
shows what each device holds.
"""

import os

os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import gradtx  # noqa: E402

STEPS = 5
SHAPES = {"w1": (64, 1024), "b1": (1024,), "w2": (1024, 64), "b2": (64,)}
ALL = ("data", "model")


def loss_fn(params, x):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean(jnp.square(h @ params["w2"] + params["b2"] - x))


def train(mesh, param_specs, batch_spec, zero1_axis=None):
    """STEPS jitted steps of Adam; returns params, state and the last loss."""
    tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(1e-3))
    pshard = {k: NamedSharding(mesh, s) for k, s in param_specs.items()}
    bshard = NamedSharding(mesh, batch_spec)
    rng = np.random.default_rng(0)
    host = {
        k: (rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32) for k, s in SHAPES.items()
    }
    params = jax.device_put(host, pshard)
    # The state's shardings: slots follow their parameter, or (ZeRO-1) are split over the axis.
    sshard = gradtx.state_shardings(tx, params, zero1_axis=zero1_axis)
    state = jax.jit(tx.init, out_shardings=sshard)(params)

    def step(params, state, x):
        loss, grads = jax.value_and_grad(loss_fn)(params, x)
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state, loss

    step = jax.jit(
        step,
        in_shardings=(pshard, sshard, bshard),
        out_shardings=(pshard, sshard, NamedSharding(mesh, P())),
        donate_argnums=(0, 1),
    )
    for i in range(STEPS):
        x = jax.device_put(
            np.random.default_rng(i + 1).standard_normal((64, 64), np.float32), bshard
        )
        params, state, loss = step(params, state, x)
    return params, state, float(loss)


def kib_per_device(tree):
    """The most any one device holds of ``tree``, in KiB."""
    return max(gradtx.bytes_per_device(tree).values()) / 1024


def main():
    assert jax.device_count() >= 8, f"needs 8 devices, found {jax.device_count()}"
    mesh = Mesh(np.array(jax.devices()[:8]).reshape(2, 4), ALL)
    replicated = {k: P() for k in SHAPES}
    tensor_parallel = {"w1": P(None, "model"), "b1": P("model"), "w2": P("model", None), "b2": P()}
    setups = {
        "replicated": train(mesh, replicated, P(ALL)),
        "sharded state (4-way model)": train(mesh, tensor_parallel, P("data")),
        "ZeRO-1 (8-way)": train(mesh, replicated, P(ALL), zero1_axis=ALL),
    }
    print(f"{'setup':<28} | params KiB/device | optimizer KiB/device | loss after {STEPS} steps")
    for name, (params, state, loss) in setups.items():
        held = f"{kib_per_device(params):17.1f} | {kib_per_device(state):20.1f}"
        print(f"{name:<28} | {held} | {loss:.6f}")
    first = jax.tree.map(np.asarray, setups["replicated"][0])
    diff = max(
        float(np.max(np.abs(np.asarray(a) - b)))
        for params, _, _ in setups.values()
        for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(first))
    )
    # Float32 sums run in another order on each layout; Adam divides each gradient by its own
    # size, so coordinates with gradients near zero turn that rounding into ~1e-5 differences.
    assert diff < 1e-4, diff
    print(f"all three setups reach the same parameters (max difference {diff:.1e})")


if __name__ == "__main__":
    main()
