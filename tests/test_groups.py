"""Declarative parameter groups: each group gets exactly its own settings, or an error says why."""

from __future__ import annotations

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import ParamGroup

LR, WD = 0.01, 0.1


def model_params():
    k = jax.random.split(jax.random.PRNGKey(3), 6)
    return {
        "embedding": {"table": jax.random.normal(k[0], (5, 3))},
        "layer": {"kernel": jax.random.normal(k[1], (3, 4)), "bias": jax.random.normal(k[2], (4,))},
        "norm": {"scale": 1.0 + jax.random.normal(k[3], (4,))},
        "head": {"kernel": jax.random.normal(k[4], (4, 2)), "bias": jax.random.normal(k[5], (2,))},
    }


def model_grads(step):
    leaves, treedef = jax.tree.flatten(model_params())
    ks = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(4), step), len(leaves))
    return jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape) for k, x in zip(ks, leaves)])


GROUPS = [
    ParamGroup("no_decay", re.compile(r"(layer|norm)/(bias|scale)"), weight_decay=0.0),
    ParamGroup("embedding", "embedding/*", lr_scale=0.1),
    ParamGroup("frozen", lambda path, x: path.startswith("head/"), frozen=True),
]
# What each leaf must get: (learning rate, weight decay, frozen), written out by hand.
EXPECTED = {
    ("embedding", "table"): (0.1 * LR, WD, False),
    ("layer", "kernel"): (LR, WD, False),
    ("layer", "bias"): (LR, 0.0, False),
    ("norm", "scale"): (LR, 0.0, False),
    ("head", "kernel"): (None, None, True),
    ("head", "bias"): (None, None, True),
}


def np_adamw(p, grads, lr, wd, b1=0.9, b2=0.999, eps=1e-8):
    """NumPy float64 AdamW (decay decoupled, multiplied by lr): parameters after each step."""
    p, m, v, out = np.asarray(p, np.float64), 0.0, 0.0, []
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, np.float64)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * ((m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps) + wd * p)
        out.append(p)
    return out


def train(tx, steps=3):
    params = model_params()
    state = tx.init(params)
    history = []
    for i in range(steps):
        u, state = tx.update(model_grads(i), state, params)
        params = gradtx.apply_updates(params, u)
        history.append(params)
    return history, state


def test_each_group_gets_exactly_its_settings():
    tx = gradtx.param_groups(gradtx.adamw, {"learning_rate": LR, "weight_decay": WD}, GROUPS)
    history, state = train(tx)
    p0 = model_params()
    for (a, b), (lr, wd, frozen) in EXPECTED.items():
        grads = [model_grads(i)[a][b] for i in range(3)]
        want = [p0[a][b]] * 3 if frozen else np_adamw(p0[a][b], grads, lr, wd)
        for i in range(3):
            np.testing.assert_allclose(history[i][a][b], want[i], rtol=1e-5, atol=1e-6)
    assert set(state.inner_states) == {"no_decay", "embedding", "frozen", "default"}
    assert state.inner_states["frozen"] == gradtx.EmptyState()
    mu = state.inner_states["default"][0].mu
    assert mu["layer"]["kernel"].shape == (3, 4) and mu["head"]["kernel"] is None


def test_labels_jit_traced_once_and_lr_scale_sweep():
    labels = gradtx.param_group_labels(model_params(), GROUPS, ParamGroup("default"))
    assert labels == {
        "embedding": {"table": "embedding"},
        "layer": {"kernel": "default", "bias": "no_decay"},
        "norm": {"scale": "no_decay"},
        "head": {"kernel": "frozen", "bias": "frozen"},
    }
    tx = gradtx.param_groups(gradtx.adamw, {"learning_rate": LR, "weight_decay": WD}, GROUPS)
    eager, _ = train(tx)
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state, g):
        u, state = tx.update(g, state, params)
        return gradtx.apply_updates(params, u), state

    params, state = model_params(), tx.init(model_params())
    for i in range(3):
        params, state = step(params, state, model_grads(i))
    chex.assert_trees_all_close(params, eager[-1], rtol=1e-5, atol=1e-6)

    def run(scale):  # the embedding's lr_scale as a traced array
        groups = [GROUPS[0], ParamGroup("embedding", "embedding/*", lr_scale=scale), GROUPS[2]]
        hyper = {"learning_rate": lambda c: LR / (1.0 + c.astype(jnp.float32)), "weight_decay": WD}
        return train(gradtx.param_groups(gradtx.adamw, hyper, groups))[0][-1]

    got = jax.jit(jax.vmap(run))(jnp.asarray([0.1, 0.5]))
    for j, s in enumerate([0.1, 0.5]):
        grads = [model_grads(i)["embedding"]["table"] for i in range(3)]
        p, m, v = np.asarray(model_params()["embedding"]["table"], np.float64), 0.0, 0.0
        for t, g in enumerate(grads, start=1):  # AdamW with lr = s * LR / (1 + count)
            g = np.asarray(g, np.float64)
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            step_ = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8) + WD * p
            p = p - s * LR / t * step_
        np.testing.assert_allclose(got["embedding"]["table"][j], p, rtol=1e-5, atol=1e-6)


def test_overlap_unmatched_and_unused_rules_are_listed():
    params = model_params()
    overlap = [ParamGroup("no_decay", "*bias"), ParamGroup("frozen", "head/*", frozen=True)]
    with pytest.raises(ValueError, match=r"'head/bias' matches \['no_decay', 'frozen'\]"):
        gradtx.param_group_labels(params, overlap)
    with pytest.raises(ValueError, match=r"in no group \(and no default\): 'embedding/table'"):
        gradtx.param_group_labels(params, overlap[:1])
    with pytest.raises(ValueError, match=r"groups that match no parameter: \['ghost'\]"):
        gradtx.param_group_labels(params, [ParamGroup("ghost", "decoder/*")], ParamGroup("d"))
    tx = gradtx.param_groups(gradtx.sgd, {"learning_rate": LR}, overlap)
    with pytest.raises(ValueError, match="every parameter must match exactly one group"):
        tx.init(params)


def test_group_errors_at_build_time():
    with pytest.raises(ValueError, match="a frozen group takes no lr_scale"):
        ParamGroup("f", "head/*", frozen=True, lr_scale=0.5)
    with pytest.raises(TypeError, match="expected a glob string, a re.compile"):
        ParamGroup("g", 3)
    with pytest.raises(ValueError, match=r"lr_scale=-1.0 is out of range"):
        ParamGroup("g", "*", lr_scale=-1.0)
    with pytest.raises(ValueError, match="has no 'learning_rate' to scale"):
        gradtx.param_groups(gradtx.adamw, {}, [ParamGroup("e", "embedding/*", lr_scale=0.1)])
    with pytest.raises(TypeError, match="building the optimizer of group 'nd'"):
        gradtx.param_groups(
            gradtx.sgd, {"learning_rate": LR}, [ParamGroup("nd", "*b", weight_decay=0.0)]
        )
    with pytest.raises(ValueError, match=r"group names \['default'\] are used more than once"):
        gradtx.param_groups(gradtx.sgd, {"learning_rate": LR}, [ParamGroup("default", "*")])
    bad = [ParamGroup("p", lambda path, x: jnp.asarray(x.ndim == 1))]
    with pytest.raises(TypeError, match="match returned .* for 'embedding/table'"):
        gradtx.param_group_labels(model_params(), bad, ParamGroup("d"))


def test_group_hyperparams_and_default_settings():
    groups = [ParamGroup("slow", "layer/*", hyperparams={"momentum": 0.5})]
    default = ParamGroup("rest", lr_scale=2.0)
    tx = gradtx.param_groups(gradtx.sgd, {"learning_rate": LR}, groups, default=default)
    params = model_params()
    state = tx.init(params)
    g = [model_grads(i) for i in range(2)]
    u0, state = tx.update(g[0], state, params)
    u1, _ = tx.update(g[1], state, params)
    want = -LR * (0.5 * np.asarray(g[0]["layer"]["kernel"]) + np.asarray(g[1]["layer"]["kernel"]))
    np.testing.assert_allclose(u1["layer"]["kernel"], want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(u1["head"]["bias"], -2 * LR * np.asarray(g[1]["head"]["bias"]))


def test_groups_match_flax_nnx_state_paths():
    """nnx.State paths end in '/value'; '*/bias' must still select conv1/bias/value."""
    nnx = pytest.importorskip("flax.nnx")

    class Net(nnx.Module):
        def __init__(self, rngs):
            self.conv1 = nnx.Linear(3, 4, rngs=rngs)
            self.head = nnx.Linear(4, 2, rngs=rngs)

    _, state = nnx.split(Net(nnx.Rngs(0)), nnx.Param)
    groups = [gradtx.ParamGroup("bias", "*/bias", weight_decay=0.0)]
    labels = gradtx.param_group_labels(state, groups, default=gradtx.ParamGroup("rest"))
    flat = {
        "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path): label
        for path, label in jax.tree_util.tree_leaves_with_path(labels)
    }
    assert flat == {
        "conv1/bias/value": "bias",
        "conv1/kernel/value": "rest",
        "head/bias/value": "bias",
        "head/kernel/value": "rest",
    }
    tx = gradtx.param_groups(
        gradtx.adamw,
        {"learning_rate": 0.1, "weight_decay": 0.5},
        groups,
        default=gradtx.ParamGroup("rest"),
    )
    grads = jax.tree.map(jnp.zeros_like, state)
    updates, _ = tx.update(grads, tx.init(state), state)
    # zero gradients: only the decayed kernels move (biases have weight_decay 0)
    assert float(jnp.abs(updates["conv1"]["bias"][...]).max()) == 0.0
    np.testing.assert_allclose(
        np.asarray(updates["conv1"]["kernel"][...]),
        -0.1 * 0.5 * np.asarray(state["conv1"]["kernel"][...]),
        rtol=1e-6,
    )
