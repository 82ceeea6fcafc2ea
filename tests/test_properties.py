"""Property tests over every registry entry, on random pytrees and dtypes (hypothesis).

For each entry of ``tests.registry.ENTRIES`` (so a new entry is covered without editing this
file), hypothesis draws a parameter tree (nested dicts, lists, tuples and NamedTuples, None
leaves, empty subtrees, 0-d and zero-size arrays) and a dtype (float16, bfloat16, float32,
float64 under the x64 context, complex64 where the entry says ``complex_ok``), and checks:

- the updates have the gradients' structure, shapes and dtypes;
- the state keeps its structure, shapes and dtypes over steps;
- updates are finite for finite inputs of moderate size;
- the update is deterministic (the same inputs give bit-identical outputs);
- (jit equals eager on an irregular tree is in tests/test_contract.py, in the entry's one
  compiled program).

Runs are eager (``jax.disable_jit``: op by op, nothing compiled per tree) on tiny trees, so
the suite stays cheap. CI uses a fixed seed and
``GRADTX_HYPOTHESIS_EXAMPLES`` examples per entry (default 2); set it higher locally, e.g.
``GRADTX_HYPOTHESIS_EXAMPLES=200 pytest tests/test_properties.py``.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.registry import ENTRIES

EXAMPLES = int(os.environ.get("GRADTX_HYPOTHESIS_EXAMPLES", "2"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI is reproducible
    database=None,
    suppress_health_check=list(HealthCheck),
)
_NONE = lambda x: x is None  # noqa: E731


class Pair(NamedTuple):
    first: object
    second: object


# A tree of shapes: leaves are shape tuples, None (a masked-out leaf) or empty containers.
SHAPES = st.sampled_from([(), (3,), (2, 3), (0,)])  # few shapes: eager ops compile per shape
LEAF = st.one_of(SHAPES, SHAPES, SHAPES, st.none(), st.just({}), st.just(()))


def _extend(children):
    keys = st.sampled_from(["a", "b", "c", "kernel", "bias"])
    return st.one_of(
        st.dictionaries(keys, children, min_size=1, max_size=3),
        st.lists(children, min_size=1, max_size=3),
        st.tuples(children, children),
        st.builds(Pair, children, children),
    )


TREES = st.dictionaries(
    st.sampled_from(["w", "b", "block"]),
    st.recursive(LEAF, _extend, max_leaves=5),
    min_size=1,
    max_size=3,
)
DTYPES = ["float32", "float16", "bfloat16", "float64", "complex64"]


def _is_shape(x) -> bool:
    return isinstance(x, tuple) and not hasattr(x, "_fields") and all(isinstance(n, int) for n in x)


def _materialise(shapes, dtype, rng, scale):
    """Arrays of ``dtype`` (moderate values) at the shape leaves; None and empty kept."""

    def leaf(shape):
        if not _is_shape(shape):
            return shape
        x = rng.uniform(-scale, scale, size=shape)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            x = x + 1j * rng.uniform(-scale, scale, size=shape)
        return jnp.asarray(x, dtype)

    return jax.tree.map(leaf, shapes, is_leaf=lambda x: _is_shape(x) or x is None)


def _spec(tree):
    return jax.tree.map(
        lambda x: None if x is None else (jnp.shape(x), jnp.result_type(x)), tree, is_leaf=_NONE
    )


def _allowed(entry, dtype) -> bool:
    if dtype in ("float16", "bfloat16"):
        return entry.bf16_ok
    if dtype == "complex64":
        return entry.complex_ok
    return True


def _check(entry, shapes, dtype, value_seed):
    rng = np.random.default_rng(value_seed)
    plain = _materialise(shapes, jnp.dtype(dtype), rng, 2.0)
    grads = [_materialise(shapes, jnp.dtype(dtype), rng, 2.0) for _ in range(2)]
    params = entry.wrap(plain)
    tx = entry.build()
    state0 = tx.init(params)
    spec0 = _spec(state0)

    def step(p, s, g):
        with jax.disable_jit():  # op by op: no compilation per tree (lax.cond runs in Python)
            return tx.update(g, s, p, **entry.extra_args)

    updates, state = step(params, state0, grads[0])
    # updates are shaped like the params they are applied to (the gradients, unless the entry
    # wraps the params, as lookahead does)
    assert jax.tree.structure(updates, is_leaf=_NONE) == jax.tree.structure(
        params, is_leaf=_NONE
    ), "the updates lost the parameters' structure"
    for u, p in zip(
        jax.tree.leaves(updates, is_leaf=_NONE), jax.tree.leaves(params, is_leaf=_NONE)
    ):
        if p is not None and u is not None:
            assert jnp.shape(u) == jnp.shape(p), "an update changed shape"
            assert jnp.result_type(u) == jnp.result_type(p), f"{jnp.result_type(u)} update"
    assert _spec(state) == spec0, "the state changed shape or dtype after a step"
    again = step(params, state0, grads[0])
    chex.assert_trees_all_equal((updates, state), again, strict=True)  # deterministic
    updates2, state2 = step(params, state, grads[1])
    assert _spec(state2) == spec0, "the state changed shape or dtype after two steps"
    for u in jax.tree.leaves((updates, updates2)):
        assert bool(jnp.all(jnp.isfinite(u))), "finite inputs gave a non-finite update"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.any_tree], ids=lambda e: e.name)
def test_properties(entry):
    @seed(20261201)
    @SETTINGS
    @given(shapes=TREES, dtype=st.sampled_from(DTYPES), value_seed=st.integers(0, 2**16))
    def run(shapes, dtype, value_seed):
        if not _allowed(entry, dtype):
            dtype = "float32"
        with jax.enable_x64(dtype == "float64"):
            _check(entry, shapes, dtype, value_seed)

    run()
