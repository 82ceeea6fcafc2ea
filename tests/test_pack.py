"""pack_leaves: the same trajectory as unwrapped, and the state tools working through it."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from tests.registry import example_grads, example_params
from tests.test_flat import ELEMENTWISE

# Elementwise entries whose eager steps cost 10-40x a typical entry's (Hessian-vector products
# through an objective, the L-BFGS two-loop recursion), left out to keep this file within its
# CPU budget; they go through the same pack/unpack code as the rest.
COSTLY = {"hutchinson_estimator_diag_hessian", "scale_by_sophia", "sophia", "scale_by_lbfgs"}
# example_params: w (3, 4), b (4,), block.s (), block.k (2, 3, 2); 4 packs b and s, not w and k
LIMIT = 4


def _run(tx, entry, steps=2):
    params = entry.params() if entry else example_params()
    state = tx.init(params)
    extra = entry.extra_args if entry else {}
    for i in range(steps):
        u, state = tx.update(example_grads(i), state, params, **extra)
        params = gradtx.apply_updates(params, u)
    return params, state


def test_every_elementwise_transform_follows_the_unwrapped_trajectory():
    """Eager, 2 steps of every elementwise transform of the registry (test_flat's list, the
    first entry of each factory), packed or not."""
    failures, seen = [], set()
    for entry in ELEMENTWISE:
        name = entry.factory.__name__
        if entry.factory is gradtx.pack_leaves or name in COSTLY or name in seen:
            continue
        seen.add(name)
        want, _ = _run(entry.build(), entry)
        got, state = _run(gradtx.pack_leaves(entry.build(), max_leaf_size=LIMIT), entry)
        try:
            chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)
        except AssertionError as e:
            failures.append(f"{entry.name}: {str(e).splitlines()[0]}")
    assert not failures, "\n".join(failures)
    assert len(seen) > 50


def test_state_is_packed_and_large_leaves_stay():
    tx = gradtx.pack_leaves(gradtx.adam(0.1), max_leaf_size=LIMIT)
    state = tx.init(example_params())
    mu = gradtx.tree_get(state, "mu")
    # tree order: block.k, w (large); b and block.s (small) in one buffer
    assert {k: v.shape for k, v in mu.items()} == {
        "float32": (5,),
        "leaf00000": (2, 3, 2),
        "leaf00001": (3, 4),
    }
    assert int(gradtx.tree_get(state, "0/count")) == 0


def test_state_dict_and_checkpoint_round_trip(tmp_path):
    tx = gradtx.pack_leaves(gradtx.adam(0.1), max_leaf_size=LIMIT)
    _, state = _run(tx, None, steps=2)
    d = gradtx.state_dict(state)
    assert set(d) == {
        "inner/0/count",
        "inner/0/mu/float32",
        "inner/0/mu/leaf00000",
        "inner/0/mu/leaf00001",
        "inner/0/nu/float32",
        "inner/0/nu/leaf00000",
        "inner/0/nu/leaf00001",
    }, sorted(d)
    like = tx.init(example_params())
    chex.assert_trees_all_equal(gradtx.load_state_dict(like, d), state)
    gradtx.save_state(tmp_path / "s.gtx", state)
    back = gradtx.load_state(tmp_path / "s.gtx", like)
    chex.assert_trees_all_equal(back, state)
    # the restored state continues the same trajectory
    u1, _ = tx.update(example_grads(5), state, example_params())
    u2, _ = tx.update(example_grads(5), back, example_params())
    chex.assert_trees_all_equal(u1, u2)


def test_state_shardings_place_buffers_and_large_leaves():
    mesh = Mesh(np.array(jax.devices()[:1]), ("x",))
    params = jax.tree.map(
        lambda a: jax.device_put(a, NamedSharding(mesh, P("x") if a.ndim else P())),
        example_params(),
    )
    tx = gradtx.pack_leaves(gradtx.adam(0.1), max_leaf_size=LIMIT)
    shard = gradtx.state_shardings(tx, params)
    assert isinstance(shard, gradtx.PackLeavesState)
    inner = shard.inner[0]
    assert inner.mu["float32"].spec == P()
    assert inner.mu["leaf00000"].spec == inner.mu["leaf00001"].spec == P("x")
    state = jax.jit(tx.init, out_shardings=shard)(params)
    assert state.inner[0].nu["leaf00001"].sharding.spec == P("x")
    step = jax.jit(
        lambda p, s, g: tx.update(g, s, p), in_shardings=(None, shard, None), donate_argnums=1
    )
    u, _ = step(params, state, example_grads(0))
    want, _ = gradtx.adam(0.1).update(example_grads(0), gradtx.adam(0.1).init(params))
    chex.assert_trees_all_close(u, want, rtol=1e-6)


def test_jitted_donated_step_on_mixed_dtypes():
    params = {"a": jnp.ones((2, 3)), "b": jnp.zeros(3, jnp.bfloat16), "c": jnp.ones(100)}
    tx = gradtx.pack_leaves(gradtx.adam(0.1), max_leaf_size=10)
    state = tx.init(params)
    assert {k: (v.dtype, v.shape) for k, v in state.inner[0].mu.items()} == {
        "float32": (jnp.float32, (6,)),
        "bfloat16": (jnp.bfloat16, (3,)),
        "leaf00000": (jnp.float32, (100,)),
    }
    step = jax.jit(
        lambda p, s, g: (lambda u, s: (gradtx.apply_updates(p, u), s))(*tx.update(g, s, p)),
        donate_argnums=(0, 1),
    )
    grads = jax.tree.map(jnp.ones_like, params)
    p, s = step(params, state, grads)
    assert jax.tree.map(lambda x: x.dtype, p) == jax.tree.map(lambda x: x.dtype, params)
    np.testing.assert_allclose(np.asarray(p["a"]), 0.9, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(p["b"], np.float32), -0.1, rtol=1e-2)


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="max_leaf_size"):
        gradtx.pack_leaves(gradtx.adam(0.1), max_leaf_size=2.5)
    with pytest.raises(ValueError, match="max_leaf_size"):
        gradtx.pack_leaves(gradtx.adam(0.1), max_leaf_size=-1)
    with pytest.raises(TypeError, match="inner"):
        gradtx.pack_leaves(lambda x: x)
    tx = gradtx.pack_leaves(gradtx.adam(0.1), max_leaf_size=LIMIT)
    state = tx.init(example_params())
    with pytest.raises(ValueError, match="structure"):
        tx.update({"w": jnp.ones((3, 4))}, state)
    with pytest.raises(ValueError, match=r"\['b'\].*shape"):
        tx.update({**example_grads(0), "b": jnp.ones(5)}, state)
    with pytest.raises(TypeError, match="PackLeavesState"):
        tx.update(example_grads(0), gradtx.adam(0.1).init(example_params()))
