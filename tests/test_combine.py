"""Combinators: named_chain, masked, partition, freeze, set_to_zero, selective_transform."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def nested_params():
    """Nested tree with a None leaf, an empty subtree, a list and a scalar."""
    return {
        "enc": {"w": jnp.arange(6.0).reshape(3, 2) / 7, "b": jnp.asarray([0.5, -1.0])},
        "dec": [jnp.asarray([[1.0, 2.0], [3.0, -4.0]]), None],
        "empty": {},
        "s": jnp.asarray(0.3, jnp.float32),
    }


def nested_grads(step):
    params = nested_params()
    leaves, treedef = jax.tree.flatten(params)
    key = jax.random.fold_in(jax.random.PRNGKey(7), step)
    ks = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape) for k, x in zip(ks, leaves)])


def is_matrix(p):
    return jax.tree.map(lambda x: x.ndim > 1, p)


def np_adam(g_steps, lr, b1=0.9, b2=0.999, eps=1e-8):
    """NumPy float64 Adam updates (the seed's rule) for a list of gradients of one leaf."""
    m = v = 0.0
    out = []
    for t, g in enumerate(g_steps, start=1):
        g = np.asarray(g, np.float64)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        out.append(-lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
    return out


def np_momentum(g_steps, lr, mu):
    """NumPy float64 heavy-ball updates: v = mu * v + g; update = -lr * v."""
    v, out = 0.0, []
    for g in g_steps:
        v = mu * v + np.asarray(g, np.float64)
        out.append(-lr * v)
    return out


def run(tx, steps, params=None):
    params = nested_params() if params is None else params
    state = tx.init(params)
    outs = []
    for i in range(steps):
        u, state = tx.update(nested_grads(i), state, params)
        outs.append(u)
    return outs, state


def leaf(tree, *path):
    for k in path:
        tree = tree[k]
    return tree


def check_jit_once_ensemble(tx, steps=3):
    """jit equals eager, the jitted step traces once, and vmap over an ensemble equals a loop."""
    params = nested_params()
    eager, _ = run(tx, steps)
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state, g, p):
        return tx.update(g, state, p)

    state, jitted = tx.init(params), []
    for i in range(steps):
        u, state = step(state, nested_grads(i), params)
        jitted.append(u)
    chex.assert_trees_all_close(eager, jitted, rtol=1e-6, atol=1e-6)

    def member(scale):
        p = jax.tree.map(lambda x: x * scale, params)
        s, outs = tx.init(p), []
        for i in range(steps):
            u, s = tx.update(jax.tree.map(lambda g: g * scale, nested_grads(i)), s, p)
            outs.append(u)
        return outs

    scales = jnp.asarray([1.0, 2.0])
    got = jax.vmap(member)(scales)
    for j, sc in enumerate([1.0, 2.0]):
        want = member(sc)
        chex.assert_trees_all_close(
            want, jax.tree.map(lambda x, j=j: x[j], got), rtol=1e-5, atol=1e-7
        )


# named_chain


def test_named_chain_state_by_name_and_equals_chain():
    lr = lambda count: 0.1 * 0.5 ** count.astype(jnp.float32)  # a schedule ticks the count
    pairs = (("mom", gradtx.trace(0.9)), ("lr", gradtx.scale_by_learning_rate(lr)))
    tx = gradtx.named_chain(*pairs)
    outs, state = run(tx, 3)
    want, _ = run(gradtx.chain(*(t for _, t in pairs)), 3)
    chex.assert_trees_all_close(outs, want)
    assert set(state) == {"mom", "lr"} and int(state["lr"].count) == 3
    assert state["mom"].trace["dec"][1] is None and state["mom"].trace["empty"] == {}
    ref = np_momentum([leaf(nested_grads(i), "enc", "w") for i in range(3)], 0.1, 0.9)
    np.testing.assert_allclose(leaf(outs[-1], "enc", "w"), ref[-1] * 0.5**2, rtol=1e-6, atol=1e-7)
    check_jit_once_ensemble(tx)


def test_named_chain_errors():
    with pytest.raises(ValueError, match=r"names \['a'\] are used more than once"):
        gradtx.named_chain(("a", gradtx.identity()), ("a", gradtx.identity()))
    with pytest.raises(TypeError, match="expected a \\(name, transform\\) pair"):
        gradtx.named_chain(gradtx.identity())
    with pytest.raises(TypeError, match="not a gradient transformation"):
        gradtx.named_chain(("adam", gradtx.scale_by_adam))
    tx = gradtx.named_chain(("a", gradtx.identity()))
    with pytest.raises(ValueError, match=r"state has keys \['b'\], expected \['a'\]"):
        tx.update({"x": 1.0}, {"b": gradtx.EmptyState()})


# masked


def test_masked_transforms_only_the_mask_and_keeps_no_state_elsewhere():
    tx = gradtx.masked(gradtx.sgd(0.1, momentum=0.9), is_matrix)
    outs, state = run(tx, 3)
    trace = state.inner_state[0].trace
    assert trace["enc"]["b"] is None and trace["s"] is None and trace["dec"][1] is None
    assert trace["enc"]["w"].shape == (3, 2)
    for path in [("enc", "w"), ("dec", 0)]:
        ref = np_momentum([leaf(nested_grads(i), *path) for i in range(3)], 0.1, 0.9)
        for i in range(3):
            np.testing.assert_allclose(leaf(outs[i], *path), ref[i], rtol=1e-6, atol=1e-7)
    for path in [("enc", "b"), ("s",)]:  # masked out: unchanged
        for i in range(3):
            np.testing.assert_array_equal(leaf(outs[i], *path), leaf(nested_grads(i), *path))
    assert outs[0]["dec"][1] is None and outs[0]["empty"] == {}
    check_jit_once_ensemble(tx)


def test_masked_prefix_mask_and_nesting():
    prefix = lambda p: {"enc": True, "dec": False, "empty": {}, "s": False}
    inner = gradtx.masked(gradtx.scale(3.0), lambda p: jax.tree.map(lambda x: x.ndim == 1, p))
    tx = gradtx.masked(inner, prefix)  # scale 3 only on enc/b
    outs, _ = run(tx, 1)
    g = nested_grads(0)
    np.testing.assert_allclose(outs[0]["enc"]["b"], 3 * g["enc"]["b"], rtol=1e-6, atol=1e-7)
    for path in [("enc", "w"), ("dec", 0), ("s",)]:
        np.testing.assert_array_equal(leaf(outs[0], *path), leaf(g, *path))


def test_mask_function_needs_params_and_a_tree_does_not():
    """A mask function is evaluated on the params only: never guessed from the updates."""
    tx = gradtx.masked(gradtx.scale(2.0), is_matrix)
    state = tx.init(nested_params())
    with pytest.raises(ValueError, match="mask is a function of the parameters, but update was"):
        tx.update(nested_grads(0), state)
    fixed = gradtx.masked(gradtx.scale(2.0), jax.tree.map(lambda x: x.ndim > 1, nested_params()))
    u, _ = fixed.update(nested_grads(0), fixed.init(nested_params()))
    np.testing.assert_allclose(u["enc"]["w"], 2 * nested_grads(0)["enc"]["w"])
    np.testing.assert_array_equal(u["s"], nested_grads(0)["s"])


def test_dtype_mask_in_mixed_precision_keeps_its_state():
    """The mask sees bf16 params at init and at update, though the gradients are float32."""
    params = {"w": jnp.ones(3, jnp.bfloat16), "v": jnp.ones(2, jnp.float32)}
    grads = {"w": jnp.ones(3, jnp.float32), "v": jnp.ones(2, jnp.float32)}
    is_bf16 = lambda p: jax.tree.map(lambda x: x.dtype == jnp.bfloat16, p)  # noqa: E731
    tx = gradtx.masked(gradtx.sgd(0.1, momentum=0.9), is_bf16)
    u, state = tx.update(grads, tx.init(params), params)
    assert state.inner_state[0].trace["v"] is None and state.inner_state[0].trace["w"] is not None
    np.testing.assert_allclose(np.asarray(u["w"], np.float32), -0.1)  # transformed
    np.testing.assert_array_equal(np.asarray(u["v"]), 1.0)  # untouched


def test_masks_and_labels_as_trees_equal_functions():
    params = nested_params()
    tree = jax.tree.map(lambda x: x.ndim > 1, params)
    labels = jax.tree.map(lambda x: "mat" if x.ndim > 1 else "vec", params)
    pairs = [
        (gradtx.masked(gradtx.adam(0.1), tree), gradtx.masked(gradtx.adam(0.1), is_matrix)),
        (gradtx.freeze(tree), gradtx.freeze(is_matrix)),
        (gradtx.add_decayed_weights(0.1, tree), gradtx.add_decayed_weights(0.1, is_matrix)),
        (gradtx.adamw(0.1, mask=tree), gradtx.adamw(0.1, mask=is_matrix)),
        (
            gradtx.selective_transform(gradtx.sgd(0.1), freeze_mask=tree),
            gradtx.selective_transform(gradtx.sgd(0.1), freeze_mask=is_matrix),
        ),
        (
            gradtx.partition({"mat": gradtx.adam(0.1), "vec": gradtx.sgd(0.1)}, labels),
            gradtx.multi_transform(
                {"mat": gradtx.adam(0.1), "vec": gradtx.sgd(0.1)},
                lambda p: jax.tree.map(lambda x: "mat" if x.ndim > 1 else "vec", p),
            ),
        ),
    ]
    for as_tree, as_fn in pairs:
        got, _ = run(as_tree, 2)
        want, _ = run(as_fn, 2)
        chex.assert_trees_all_equal(got, want)
    # a prefix tree: one flag for a whole subtree
    prefix = {"enc": True, "dec": False, "empty": {}, "s": False}
    got, _ = run(gradtx.masked(gradtx.scale(3.0), prefix), 1)
    np.testing.assert_allclose(got[0]["enc"]["b"], 3 * nested_grads(0)["enc"]["b"], rtol=1e-6)
    np.testing.assert_array_equal(got[0]["s"], nested_grads(0)["s"])
    # a bare bool freezes (or keeps) everything, as optax's freeze
    frozen, _ = run(gradtx.freeze(True), 1)
    assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree.leaves(frozen[0]))


def test_a_mask_tree_of_the_wrong_structure_fails_at_init_naming_the_path():
    params = nested_params()
    bad = {"enc": {"w": True, "bias": False}, "dec": False, "empty": {}, "s": True}
    with pytest.raises(ValueError, match=r"at enc it has the keys \['bias', 'w'\], the param"):
        gradtx.masked(gradtx.scale(2.0), bad).init(params)
    with pytest.raises(ValueError, match=r"at enc it has the keys"):
        gradtx.adamw(1e-3, mask=bad).update(
            nested_grads(0), gradtx.adamw(1e-3).init(params), params
        )
    with pytest.raises(ValueError, match=r"at the root it has the keys"):
        gradtx.partition({"a": gradtx.sgd(0.1)}, {"w": "a"}).init(params)


def test_masked_errors():
    params = nested_params()
    with pytest.raises(TypeError, match="expected a function params -> tree, or a tree"):
        gradtx.masked(gradtx.scale(2.0), None)
    bad = gradtx.masked(gradtx.scale(2.0), lambda p: jax.tree.map(lambda x: jnp.asarray(True), p))
    with pytest.raises(TypeError, match="at 'dec/0'; expected a Python bool"):
        bad.init(params)
    wrong = gradtx.masked(gradtx.scale(2.0), lambda p: {"enc": True})
    with pytest.raises(ValueError, match="not shaped like the parameters"):
        wrong.init(params)
    with pytest.raises(TypeError, match="not a gradient transformation"):
        gradtx.masked(gradtx.scale, is_matrix)


# partition


def labels(p):
    return jax.tree.map(lambda x: "adam" if x.ndim > 1 else "sgd", p)


def test_partition_gives_each_group_its_transform():
    tx = gradtx.partition({"adam": gradtx.adam(0.01), "sgd": gradtx.sgd(0.1, 0.5)}, labels)
    outs, state = run(tx, 3)
    adam_state = state.inner_states["adam"][0]
    assert adam_state.mu["enc"]["b"] is None and adam_state.mu["enc"]["w"].shape == (3, 2)
    assert state.inner_states["sgd"][0].trace["dec"][0] is None
    for path in [("enc", "w"), ("dec", 0)]:
        ref = np_adam([leaf(nested_grads(i), *path) for i in range(3)], 0.01)
        for i in range(3):
            np.testing.assert_allclose(leaf(outs[i], *path), ref[i], rtol=1e-5, atol=1e-7)
    for path in [("enc", "b"), ("s",)]:
        ref = np_momentum([leaf(nested_grads(i), *path) for i in range(3)], 0.1, 0.5)
        for i in range(3):
            np.testing.assert_allclose(leaf(outs[i], *path), ref[i], rtol=1e-6, atol=1e-7)
    assert outs[0]["dec"][1] is None
    check_jit_once_ensemble(tx)


def test_partition_errors_name_labels_and_paths():
    params = nested_params()
    no_sgd = gradtx.partition({"adam": gradtx.adam(0.01)}, labels)
    with pytest.raises(ValueError, match=r"'sgd': enc/b, s\n.*transforms has \['adam'\]"):
        no_sgd.init(params)
    extra = gradtx.partition(
        {"adam": gradtx.adam(0.01), "sgd": gradtx.sgd(0.1), "lion": gradtx.sgd(0.1)}, labels
    )
    with pytest.raises(ValueError, match=r"transforms \['lion'\] label no parameter"):
        extra.init(params)
    ints = gradtx.partition({"adam": gradtx.adam(0.01)}, lambda p: jax.tree.map(lambda x: 0, p))
    with pytest.raises(TypeError, match="has 0 at 'dec/0'; expected a string label"):
        ints.init(params)
    with pytest.raises(ValueError, match=r"param_labels is not shaped like the parameters"):
        gradtx.partition({"adam": gradtx.adam(0.01)}, {"enc": "adam"}).init(params)


# freeze, set_to_zero, selective_transform


def test_set_to_zero_and_freeze():
    outs, state = run(gradtx.set_to_zero(), 1)
    assert state == gradtx.EmptyState() and outs[0]["dec"][1] is None
    assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree.leaves(outs[0]))
    tx = gradtx.freeze(lambda p: {"enc": True, "dec": False, "empty": {}, "s": True})
    outs, state = run(tx, 2)
    assert jax.tree.leaves(state) == []
    g = nested_grads(1)
    np.testing.assert_array_equal(outs[1]["enc"]["w"], np.zeros((3, 2)))
    np.testing.assert_array_equal(outs[1]["s"], 0.0)
    np.testing.assert_array_equal(outs[1]["dec"][0], g["dec"][0])
    check_jit_once_ensemble(tx)


def test_selective_transform_trains_only_unfrozen_leaves():
    tx = gradtx.selective_transform(gradtx.adam(0.01), freeze_mask=is_matrix)
    outs, state = run(tx, 3)
    mu = state.inner_states["train"][0].mu
    assert mu["enc"]["w"] is None and mu["enc"]["b"].shape == (2,)
    for i in range(3):
        np.testing.assert_array_equal(outs[i]["dec"][0], np.zeros((2, 2)))
    ref = np_adam([nested_grads(i)["s"] for i in range(3)], 0.01)
    np.testing.assert_allclose(outs[2]["s"], ref[2], rtol=1e-5, atol=1e-7)
    check_jit_once_ensemble(tx)
    for everything in (True, False):  # either group may be empty
        tx = gradtx.selective_transform(
            gradtx.sgd(0.1), freeze_mask=lambda p, e=everything: jax.tree.map(lambda _: e, p)
        )
        outs, _ = run(tx, 1)
        want = 0.0 if everything else -0.1 * nested_grads(0)["s"]
        np.testing.assert_allclose(outs[0]["s"], want, rtol=1e-6, atol=1e-7)


def test_masking_out_a_bare_array_does_not_blame_missing_params():
    """A bare-array tree whose one leaf is masked out: the inner transform (which needs params)
    is not called with params=None, and the update passes through unchanged."""
    w = jnp.ones(3)
    g = jnp.full(3, 0.5)
    for tx in (
        gradtx.masked(gradtx.adamw(0.1), lambda p: False),
        gradtx.selective_transform(gradtx.adamw(0.1), freeze_mask=lambda p: True),
    ):
        u, _ = tx.update(g, tx.init(w), w)
        assert u.shape == (3,)
    u, _ = gradtx.masked(gradtx.adamw(0.1), lambda p: False).update(
        g, gradtx.masked(gradtx.adamw(0.1), lambda p: False).init(w), w
    )
    np.testing.assert_array_equal(np.asarray(u), np.asarray(g))
