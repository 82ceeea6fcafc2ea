"""The flat parameter layout: exact round trips, same gradients, same optimizer trajectories."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests.registry import ELEMENTWISE, PER_LEAF  # noqa: F401  (re-exported for other tests)


def _mixed_params():
    k = jax.random.split(jax.random.PRNGKey(3), 3)
    return {
        "dense": {"w": jax.random.normal(k[0], (5, 4)), "b": jnp.zeros(4)},
        "scale": jnp.asarray(1.5),
        "emb": jax.random.normal(k[1], (3, 4)).astype(jnp.bfloat16),
        "out": [jax.random.normal(k[2], (4,)), jnp.ones((5, 4))],
    }


@pytest.mark.parametrize("stack", [False, True])
def test_round_trip_is_exact(stack):
    params = _mixed_params()
    layout = gradtx.flat_layout(params, stack_by_shape=stack)
    back = layout.unflatten(layout.buffers)
    chex.assert_trees_all_equal(back, params, strict=True)
    chex.assert_trees_all_equal(layout.pack(back), layout.buffers, strict=True)
    expected = {"float32", "bfloat16"} if not stack else {"float32[5,4]", "float32[]"}
    assert expected <= set(layout.buffers)
    if stack:
        assert layout.buffers["float32[5,4]"].shape == (2, 5, 4)
    else:
        assert layout.buffers["float32"].shape == (20 + 4 + 1 + 4 + 20,)


def _loss(tree):
    w, b = tree["dense"]["w"], tree["dense"]["b"]
    h = jnp.tanh(tree["out"][1] * w + b[None, :]) * tree["scale"]
    return jnp.sum(h * tree["out"][0][None, :]) + jnp.sum(tree["emb"].astype(jnp.float32) ** 2)


@pytest.mark.parametrize("stack", [False, True])
def test_loss_and_gradients_match_the_tree(stack):
    params = _mixed_params()
    layout = gradtx.flat_layout(params, stack_by_shape=stack)
    loss_tree, g_tree = jax.value_and_grad(_loss)(params)
    flat_loss = jax.jit(jax.value_and_grad(lambda bufs: _loss(layout.unflatten(bufs))))
    loss_flat, g_flat = flat_loss(layout.buffers)
    np.testing.assert_allclose(loss_flat, loss_tree, rtol=1e-6)
    assert set(g_flat) == set(layout.buffers)
    chex.assert_trees_all_close(layout.unflatten(g_flat), g_tree, rtol=1e-6, atol=1e-6)


def test_jit_with_donation_and_stacked_layout():
    params = {f"w{i}": jnp.full((8, 8), float(i)) for i in range(6)}
    layout = gradtx.flat_layout(params, stack_by_shape=True)
    tx = gradtx.adam(0.1)

    @jax.jit
    def target_loss(bufs):
        tree = layout.unflatten(bufs)
        return sum(jnp.sum((x - 1.0) ** 2) for x in jax.tree.leaves(tree))

    step = jax.jit(lambda b, s: _apply(tx, b, s, jax.grad(target_loss)(b)), donate_argnums=(0, 1))
    bufs, state = layout.buffers, tx.init(layout.buffers)
    first = target_loss(bufs)
    for _ in range(20):
        bufs, state = step(bufs, state)
    assert target_loss(bufs) < 0.5 * first
    assert set(bufs) == {"float32[8,8]"}


def _apply(tx, bufs, state, grads):
    updates, state = tx.update(grads, state, bufs)
    return gradtx.apply_updates(bufs, updates), state


def test_pack_rejects_another_structure():
    layout = gradtx.flat_layout({"a": jnp.ones(2), "b": jnp.ones(3)})
    with pytest.raises(ValueError, match=r"FlatLayout.pack: the tree has structure"):
        layout.pack({"a": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"buffers \['float32'\] are missing"):
        layout.unflatten({})


_SHARDED_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, gradtx
    from jax.sharding import NamedSharding, PartitionSpec as P
    mesh = jax.make_mesh((2,), ("data",))
    rows = NamedSharding(mesh, P("data"))
    params = {
        "a": jax.device_put(jnp.arange(8.0).reshape(4, 2), rows),
        "b": jax.device_put(jnp.arange(4.0), rows),
        "c": jnp.ones(3),
    }
    flat = gradtx.flat_layout(params)
    stacked = gradtx.flat_layout({"a": params["a"], "a2": params["a"] + 1}, stack_by_shape=True)
    print(sorted(flat.buffers), tuple(flat.buffers["float32"].sharding.spec))
    print(tuple(stacked.buffers["float32[4,2]"].sharding.spec))
    back = flat.unflatten(flat.buffers)
    print(all(np.array_equal(back[k], params[k]) for k in params))
    """
)


def test_buffers_grouped_by_sharding():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, "-c", _SHARDED_SCRIPT],
        env=env,
        cwd=pathlib.Path(__file__).parents[1],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0] == "['float32', 'float32#1'] ('data',)"
    assert out[1] == "(None, 'data')"
    assert out[2] == "True"
