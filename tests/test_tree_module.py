"""gradtx.tree (optax.tree's names) against NumPy float64 and against optax 0.2.8.

Each function is checked against a NumPy closed form on a nested tree with a complex leaf,
and, where optax is installed, against ``optax.tree`` on the same inputs.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import gradtx.tree as T


def _trees():
    rng = np.random.default_rng(0)
    x = {"a": rng.standard_normal((2, 3)), "b": [rng.standard_normal(4), np.float64(0.5)]}
    y = {"a": rng.standard_normal((2, 3)), "b": [rng.standard_normal(4), np.float64(-2.0)]}
    return x, y


def _flat(tree):
    return np.concatenate([np.ravel(np.asarray(v)) for v in jax.tree.leaves(tree)])


def test_arithmetic_and_reductions_against_numpy():
    x, y = _trees()
    with jax.enable_x64(True):
        jx, jy = jax.tree.map(jnp.asarray, x), jax.tree.map(jnp.asarray, y)
        fx, fy = _flat(x), _flat(y)
        close = lambda got, want: np.testing.assert_allclose(_flat(got), want, rtol=1e-12)  # noqa: E731
        close(T.add(jx, jy, jy), fx + 2 * fy)
        close(T.sub(jx, jy), fx - fy)
        close(T.mul(jx, jy), fx * fy)
        close(T.div(jx, jy), fx / fy)
        close(T.scale(3.0, jx), 3 * fx)
        close(T.add_scale(jx, -0.5, jy), fx - 0.5 * fy)
        close(T.clip(jx, -0.3, 0.4), np.clip(fx, -0.3, 0.4))
        close(T.where(True, jx, jy), fx)
        np.testing.assert_allclose(T.vdot(jx, jy), fx @ fy, rtol=1e-12)
        np.testing.assert_allclose(T.sum(jx), fx.sum(), rtol=1e-12)
        assert float(T.max(jx)) == fx.max() and float(T.min(jx)) == fx.min()
        assert T.size(jx) == fx.size
        np.testing.assert_allclose(T.norm(jx), np.linalg.norm(fx), rtol=1e-12)
        np.testing.assert_allclose(T.norm(jx, squared=True), fx @ fx, rtol=1e-12)
        np.testing.assert_allclose(T.norm(jx, 1), np.abs(fx).sum(), rtol=1e-12)
        np.testing.assert_allclose(T.norm(jx, jnp.inf), np.abs(fx).max(), rtol=1e-12)
        assert bool(T.allclose(jx, jx)) and not bool(T.allclose(jx, jy))
        moment = T.update_moment(jx, jy, 0.9, 2)
        close(moment, 0.9 * fy + 0.1 * fx**2)
        close(T.update_infinity_moment(jx, jy, 0.9, 1e-3), np.maximum(np.abs(fx) + 1e-3, 0.9 * fy))
        close(T.update_moment_per_elem_norm(jx, jy, 0.9, 3), 0.9 * fy + 0.1 * fx**3)  # as optax
        close(T.bias_correction(jx, 0.9, 3), fx / (1 - 0.9**3))
    with pytest.raises(ValueError, match="ord='fro' is not supported"):
        T.norm(jx, "fro")


def test_complex_leaves_use_the_modulus():
    z = {"z": jnp.asarray([3 + 4j, 1j], jnp.complex64)}
    np.testing.assert_allclose(float(T.norm(z)), np.sqrt(25 + 1), rtol=1e-6)
    np.testing.assert_allclose(complex(T.vdot(z, z)), 26.0, rtol=1e-6)  # conj(z) . z
    chex.assert_trees_all_close(T.conj(z), {"z": jnp.asarray([3 - 4j, -1j], jnp.complex64)})
    chex.assert_trees_all_close(T.real(z), {"z": jnp.asarray([3.0, 0.0], jnp.float32)})


def test_builders_casts_dtypes_and_random():
    x = {"a": jnp.ones((2, 3), jnp.bfloat16), "b": jnp.zeros(4, jnp.float32)}
    assert T.zeros_like(x)["a"].dtype == jnp.bfloat16
    assert float(T.full_like(x, 2.0)["b"][0]) == 2.0
    assert T.ones_like(x, jnp.float32)["a"].dtype == jnp.float32
    assert T.cast(x, jnp.float32)["a"].dtype == jnp.float32 and T.cast(x, None) is x
    assert T.cast_like(T.cast(x, jnp.float32), x)["a"].dtype == jnp.bfloat16
    assert T.dtype(x, "promote") == jnp.float32 and T.dtype(x, "lowest") == jnp.bfloat16
    assert T.dtype(x, "highest") == jnp.float32
    with pytest.raises(ValueError, match="several dtypes"):
        T.dtype(x)
    assert T.batch_shape(x, (5,))["a"].shape == (5, 2, 3)
    keys = T.split_key_like(jax.random.PRNGKey(0), x)
    assert jax.tree.structure(keys) == jax.tree.structure(x)
    r = T.random_like(jax.random.PRNGKey(0), x)
    assert r["a"].shape == (2, 3) and r["a"].dtype == jnp.bfloat16
    assert not bool(jnp.all(r["b"] == r["b"][0]))
    typed = {"k": jax.random.key(0)}
    assert T.unwrap_random_key_data(typed)["k"].dtype == jnp.uint32


def test_state_lookups_get_set_and_map_params():
    tx = gradtx.chain(
        gradtx.inject_hyperparams(gradtx.adam)(learning_rate=0.1),
        gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.2),
    )
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    found = T.get_all_with_path(state, "learning_rate")
    assert [float(v) for _, v in found] == pytest.approx([0.1, 0.2])
    assert T.get(state, "nothing_here", default=7) == 7
    with pytest.raises(KeyError, match="ambiguous"):
        T.get(state, "learning_rate")
    first = lambda path, v: "0" in jax.tree_util.keystr(path)[:4]  # noqa: E731
    assert float(T.get(state, "learning_rate", filtering=first)) == pytest.approx(0.1)
    new = T.set(state, learning_rate=0.5)  # every occurrence, as optax
    assert [float(v) for _, v in T.get_all_with_path(new, "learning_rate")] == [0.5, 0.5]
    assert new[0].hyperparams["learning_rate"].dtype == jnp.float32
    halved = T.set(state, lambda path, v: jnp.ndim(v) == 0, learning_rate=lambda old: old / 2)
    assert [float(v) for _, v in T.get_all_with_path(halved, "learning_rate")] == pytest.approx(
        [0.05, 0.1]
    )
    with pytest.raises(KeyError, match="no value named 'missing'"):
        T.set(state, missing=1.0)
    adam = gradtx.adam(0.1)
    specs = T.map_params(
        adam, lambda _: "P", adam.init(params), transform_non_params=lambda _: None
    )
    assert specs[0].mu == {"w": "P"} and specs[0].nu == {"w": "P"} and specs[0].count is None


def test_tree_utils_are_the_same_functions():
    for name in T.__all__:
        assert getattr(gradtx.tree_utils, f"tree_{name}") is getattr(T, name)


def test_matches_optax_tree():
    otree = pytest.importorskip("optax").tree
    x, y = _trees()
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        jx, jy = jax.tree.map(jnp.asarray, x), jax.tree.map(jnp.asarray, y)
        calls = {
            "add": (jx, jy),
            "sub": (jx, jy),
            "mul": (jx, jy),
            "div": (jx, jy),
            "scale": (2.5, jx),
            "add_scale": (jx, 0.3, jy),
            "vdot": (jx, jy),
            "sum": (jx,),
            "max": (jx,),
            "min": (jx,),
            "norm": (jx,),
            "clip": (jx, -0.2, 0.3),
            "where": (False, jx, jy),
            "conj": (jx,),
            "real": (jx,),
            "zeros_like": (jx,),
            "ones_like": (jx,),
            "full_like": (jx, 3.0),
            "batch_shape": (jx, (2,)),
            "update_moment": (jx, jy, 0.8, 2),
            "update_infinity_moment": (jx, jy, 0.8, 1e-3),
            "update_moment_per_elem_norm": (jx, jy, 0.8, 2),
            "bias_correction": (jx, 0.8, jnp.asarray(3)),
        }
        for name, args in calls.items():
            chex.assert_trees_all_close(
                getattr(T, name)(*args), getattr(otree, name)(*args), rtol=1e-12, atol=1e-14
            )
        for ord_ in (1, 2, jnp.inf):
            np.testing.assert_allclose(T.norm(jx, ord_), otree.norm(jx, ord_), rtol=1e-12)
        assert T.size(jx) == otree.size(jx)
        key = jax.random.PRNGKey(1)
        chex.assert_trees_all_equal(T.random_like(key, jx), otree.random_like(key, jx))
