"""snapshot, monitor, measure_with_ema, get_measurement: against NumPy statistics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


def _np_stats(tree):
    flat = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)])
    return {"global_norm": np.linalg.norm(flat), "max_abs": np.abs(flat).max(), "mean": flat.mean()}


def test_monitor_before_and_after_clipping():
    tx = gradtx.chain(
        gradtx.monitor(),
        gradtx.clip_by_global_norm(1.0),
        gradtx.monitor({"after": gradtx.global_norm}),
        gradtx.snapshot("copy", lambda u: u["w"]),
    )
    params = {"w": jnp.zeros((2, 2)), "b": jnp.zeros(3), "n": None}
    state = tx.init(params)
    assert float(gradtx.get_measurement(state, "global_norm")) == 0.0  # zeros before step 1
    rng = np.random.default_rng(0)
    for _ in range(2):
        g = {"w": jnp.asarray(rng.normal(size=(2, 2)), jnp.float32)}
        g |= {"b": jnp.asarray(rng.normal(size=3), jnp.float32), "n": None}
        out, state = tx.update(g, state, params)
        want = _np_stats({"w": g["w"], "b": g["b"]})
        for name, value in want.items():
            np.testing.assert_allclose(float(gradtx.get_measurement(state, name)), value, rtol=1e-5)
        after = min(1.0, want["global_norm"])
        np.testing.assert_allclose(float(gradtx.get_measurement(state, "after")), after, rtol=1e-5)
        np.testing.assert_allclose(gradtx.get_measurement(state, "copy"), out["w"])
        assert state[0].measurements.keys() == {"global_norm", "max_abs", "mean"}


def test_measure_with_ema_debiased():
    decay = 0.9
    tx = gradtx.monitor({"ema": gradtx.measure_with_ema(gradtx.global_norm, decay)})
    state = tx.init({"w": jnp.zeros(2)})
    ema, norms = 0.0, [5.0, 1.0, 13.0]
    for t, n in enumerate(norms, start=1):
        _, state = tx.update({"w": jnp.array([0.6 * n, 0.8 * n])}, state)
        ema = decay * ema + (1 - decay) * n
        got = float(gradtx.get_measurement(state, "ema"))
        np.testing.assert_allclose(got, ema / (1 - decay**t), rtol=1e-5)


def test_get_measurement_errors():
    tx = gradtx.chain(
        gradtx.snapshot("n", gradtx.global_norm), gradtx.monitor({"n": gradtx.global_norm})
    )
    state = tx.init({"w": jnp.zeros(2)})
    with pytest.raises(KeyError, match="2 measurements called 'n'"):
        gradtx.get_measurement(state, "n")
    with pytest.raises(KeyError, match=r"no measurement called 'x'.*\['n'\]"):
        gradtx.get_measurement(state, "x")
