"""state_shardings and bytes_per_device in this (1-device) process.

The placement rule is checked on an abstract 2 x 4 mesh, which needs no devices; the runs on
real meshes of 8 devices and across processes are in test_scaleout.py.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AbstractMesh, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx

MESH = AbstractMesh((2, 4), ("data", "model"))
F32 = jnp.float32


def abstract(**shapes):
    return {k: jax.ShapeDtypeStruct(s, F32) for k, s in shapes.items()}


def specs_of(tree):
    return jax.tree.map(lambda s: s.spec, tree)


def test_slots_take_their_own_parameter_sharding_by_path():
    # same shapes, different shardings: only the tree path can tell them apart
    params = abstract(a=(4, 8), b=(4, 8), c=())
    specs = {"a": P("data", None), "b": P(None, "model"), "c": P()}
    adam, lr = gradtx.state_shardings(gradtx.adam(), params, specs, mesh=MESH)
    assert specs_of(adam.mu) == specs and specs_of(adam.nu) == specs
    assert adam.count.spec == P() and lr.count == ()  # a constant rate keeps no count


def test_parameter_shardings_are_read_from_the_parameters():
    params = {
        k: jax.ShapeDtypeStruct(x.shape, F32, sharding=NamedSharding(MESH, s))
        for k, (x, s) in {
            "a": (abstract(a=(4, 8))["a"], P("data")),
            "b": (abstract(b=(8,))["b"], P("model")),
        }.items()
    }
    adam, _ = gradtx.state_shardings(gradtx.adam(), params)
    assert specs_of(adam.mu) == {"a": P("data"), "b": P("model")}


class _RowsState(NamedTuple):
    rows: object  # like params' structure, shape (params.shape[0],): a factored moment


def _factored():
    init = lambda p: _RowsState(jax.tree.map(lambda x: jnp.zeros(x.shape[:1], x.dtype), p))
    return gradtx.GradientTransformation(init, lambda u, s, p=None: (u, s))


def test_a_mirroring_leaf_of_another_shape_is_replicated():
    params = abstract(a=(4, 8))
    out = gradtx.state_shardings(_factored(), params, {"a": P("data", "model")}, mesh=MESH)
    assert out.rows["a"].spec == P()


def test_zero1_splits_the_first_free_divisible_dimension():
    params = abstract(w=(3, 8), v=(6,), odd=(3, 5), s=())
    adam, _ = gradtx.state_shardings(gradtx.adam(), params, P(), mesh=MESH, zero1_axis="data")
    # w: dim 0 (3) does not divide by 2, dim 1 does; odd: nothing divides, stays replicated
    assert specs_of(adam.mu) == {
        "w": P(None, "data"),
        "v": P("data"),
        "odd": P(None, None),
        "s": P(),
    }
    assert adam.count.spec == P()


def test_zero1_over_several_axes_and_on_top_of_model_sharding():
    params = abstract(w=(16, 8), b=(8,))
    specs = {"w": P(None, "model"), "b": P("model")}
    adam, _ = gradtx.state_shardings(gradtx.adam(), params, specs, mesh=MESH, zero1_axis=("data",))
    assert specs_of(adam.mu) == {"w": P("data", "model"), "b": P("model")}
    adam, _ = gradtx.state_shardings(
        gradtx.adam(), params, P(), mesh=MESH, zero1_axis=("data", "model")
    )
    assert specs_of(adam.mu) == {"w": P(("data", "model"), None), "b": P(("data", "model"))}


def test_zero1_keeps_fsdp_slots_already_split_over_the_axis():
    params = abstract(w=(8, 8))
    adam, _ = gradtx.state_shardings(
        gradtx.adam(), params, {"w": P("data")}, mesh=MESH, zero1_axis="data"
    )
    assert adam.mu["w"].spec == P("data", None)


def test_masked_parameters_give_none():
    params = {"a": jax.ShapeDtypeStruct((4,), F32), "b": None}
    adam, _ = gradtx.state_shardings(gradtx.adam(), params, P("data"), mesh=MESH)
    assert adam.mu["b"] is None and adam.mu["a"].spec == P("data")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"shardings": P()}, ValueError, "Pass mesh=Mesh"),
        ({"shardings": [P(), P()], "mesh": MESH}, ValueError, "shardings has 2 leaves"),
        ({"shardings": P(), "mesh": MESH, "zero1_axis": "batch"}, ValueError, "'batch'"),
        ({}, TypeError, r"parameter \['a'\] has sharding None"),
    ],
)
def test_errors_name_the_problem(kwargs, error, match):
    with pytest.raises(error, match=match):
        gradtx.state_shardings(gradtx.adam(), abstract(a=(4,)), **kwargs)


def test_jit_init_and_step_on_the_devices_there_are():
    mesh = Mesh(np.array(jax.devices()), ("data",))
    n = len(jax.devices())
    params = jax.device_put({"w": jnp.ones((2 * n, 3), F32)}, NamedSharding(mesh, P()))
    tx = gradtx.adam(0.1)
    shard = gradtx.state_shardings(tx, params, zero1_axis="data")
    state = jax.jit(tx.init, out_shardings=shard)(params)
    step = jax.jit(tx.update, in_shardings=(None, shard), out_shardings=(None, shard))
    updates, state = step({"w": jnp.ones((2 * n, 3), F32)}, state)
    np.testing.assert_allclose(np.asarray(updates["w"]), -0.1, rtol=1e-6)
    assert state[0].mu["w"].sharding.is_equivalent_to(shard[0].mu["w"], 2)
    held = gradtx.bytes_per_device(state[0].mu)
    assert set(held) == set(jax.devices()) and all(b == 2 * 3 * 4 for b in held.values())
