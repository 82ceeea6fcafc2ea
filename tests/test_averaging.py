"""lookahead, incremental_update, periodic_update, average_params: against NumPy references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

A = np.array([1.0, 4.0])  # loss = 0.5 * sum(A * x ** 2), gradient A * x
X0 = np.array([1.0, -2.0])


def test_incremental_and_periodic_update():
    new = {"a": jnp.array([1.0, 2.0]), "n": None}
    old = {"a": jnp.array([3.0, 6.0]), "n": None}
    out = gradtx.incremental_update(new, old, 0.25)
    np.testing.assert_allclose(
        np.asarray(out["a"]), 0.25 * np.array([1, 2]) + 0.75 * np.array([3, 6])
    )
    assert out["n"] is None
    for step in range(7):
        out = gradtx.periodic_update(new, old, jnp.int32(step), 3)
        want = [1.0, 2.0] if step % 3 == 0 else [3.0, 6.0]
        np.testing.assert_array_equal(np.asarray(out["a"]), want)
    steps = jnp.arange(4, dtype=jnp.int32)  # under vmap the step is a tracer
    batched = jax.vmap(lambda s: gradtx.periodic_update(new, old, s, 2)["a"])(steps)
    np.testing.assert_array_equal(np.asarray(batched[:, 0]), [1.0, 3.0, 1.0, 3.0])


def _np_lookahead(steps, k, alpha, lr, mu=0.0, reset=False):
    """Zhang et al.'s Algorithm 1 with heavy-ball SGD inside; the fast weights after each step."""
    slow, fast, v, out = X0.copy(), X0.copy(), np.zeros(2), []
    for t in range(1, steps + 1):
        v = mu * v + A * fast
        fast = fast - lr * v
        if t % k == 0:
            slow = slow + alpha * (fast - slow)
            fast = slow.copy()
            v = np.zeros(2) if reset else v
        out.append((fast.copy(), slow.copy()))
    return out


@pytest.mark.parametrize("reset", [False, True])
def test_lookahead_matches_algorithm(reset):
    k, alpha, lr, mu = 3, 0.5, 0.1, 0.9
    with jax.enable_x64(True):
        tx = gradtx.lookahead(gradtx.sgd(lr, momentum=mu), k, alpha, reset_state=reset)
        params = gradtx.LookaheadParams.init_synced({"x": jnp.asarray(X0), "n": None})
        state = tx.init(params)
        for fast, slow in _np_lookahead(8, k, alpha, lr, mu, reset):
            grads = {"x": jnp.asarray(A) * params.fast["x"], "n": None}
            updates, state = tx.update(grads, state, params)
            params = gradtx.apply_updates(params, updates)
            np.testing.assert_allclose(np.asarray(params.fast["x"]), fast, rtol=1e-12)
            np.testing.assert_allclose(np.asarray(params.slow["x"]), slow, rtol=1e-12)
            assert params.fast["n"] is None


def test_lookahead_errors():
    tx = gradtx.lookahead(gradtx.sgd(0.1), 2, 0.5)
    p = {"x": jnp.zeros(2)}
    state = tx.init(p)  # init also accepts the plain params (the fast ones)
    with pytest.raises(TypeError, match="expected gradtx.LookaheadParams"):
        tx.update(p, state, p)
    with pytest.raises(ValueError, match=r"sync_period=0 is out of range"):
        gradtx.lookahead(gradtx.sgd(0.1), 0, 0.5)


def _np_averages(params_seq, decay, start):
    """torch.optim.swa_utils.AveragedModel: the first averaged value is copied, then averaged."""
    ema = swa = None
    n = 0
    out = []
    for t, p in enumerate(params_seq):
        if t >= start:
            ema = p.copy() if n == 0 else decay * ema + (1 - decay) * p
            swa = p.copy() if n == 0 else swa + (p - swa) / (n + 1)
            n += 1
        out.append((ema, swa, n))
    return out


def test_average_params_ema_and_swa():
    decay, start, lr = 0.8, 2, 0.1
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=2) for _ in range(6)]
    seq, x = [], X0.copy()
    for g in grads:
        x = x - lr * g
        seq.append(x.copy())
    with jax.enable_x64(True):
        txs = {
            m: gradtx.chain(gradtx.sgd(lr), gradtx.average_params(decay, start, mode=m))
            for m in ("ema", "swa")
        }
        params = {"x": jnp.asarray(X0), "n": None}
        states = {m: tx.init(params) for m, tx in txs.items()}
        for g, (ema, swa, n) in zip(grads, _np_averages(seq, decay, start)):
            for m, tx in txs.items():
                u, states[m] = tx.update({"x": jnp.asarray(g), "n": None}, states[m], params)
                avg = states[m][1]
                want = X0 if n == 0 else (ema if m == "ema" else swa)
                np.testing.assert_allclose(np.asarray(avg.average["x"]), want, rtol=1e-12)
                assert int(avg.n_averaged) == n and avg.average["n"] is None
            params = gradtx.apply_updates(params, u)
    np.testing.assert_allclose(swa, np.mean(seq[start:], axis=0), rtol=1e-12)


def test_average_params_dtype_and_mode_check():
    tx = gradtx.average_params(0.99, dtype=jnp.float32)
    p = {"w": jnp.ones(3, jnp.bfloat16)}
    state = tx.init(p)
    _, state = tx.update({"w": jnp.ones(3, jnp.bfloat16)}, state, p)
    assert state.average["w"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(state.average["w"]), 2.0)
    with pytest.raises(ValueError, match="mode='mean' is not one of"):
        gradtx.average_params(mode="mean")
