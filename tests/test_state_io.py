"""state_dict / load_state_dict, and checkpoints that survive a crash mid-save."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.demo import mlp_init, mlp_loss, spiral_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _adam_state(params):
    tx = gradtx.chain(gradtx.scale_by_adam(), gradtx.scale_by_learning_rate(0.1))
    return tx.init(params)


def test_state_dict_keys_are_readable_paths():
    params = {"layers": [{"w": jnp.ones((2, 3)), "b": jnp.ones(3)}], "scale": jnp.ones(())}
    d = gradtx.state_dict(_adam_state(params))
    assert list(d) == [
        "0/count",
        "0/mu/layers/0/b",
        "0/mu/layers/0/w",
        "0/mu/scale",
        "0/nu/layers/0/b",
        "0/nu/layers/0/w",
        "0/nu/scale",
    ]  # a constant learning rate keeps no clock, so "1/count" is absent
    assert all(isinstance(v, np.ndarray) for v in d.values())
    assert d["0/mu/layers/0/w"].shape == (2, 3) and d["0/count"].dtype == np.int32
    injected = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1).init(params)
    assert "hyperparams/learning_rate" in gradtx.state_dict(injected)


def test_load_state_dict_round_trip_and_abstract_like():
    params = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3, jnp.bfloat16)}
    tx = gradtx.adam(0.1)
    state = tx.update(params, tx.init(params))[1]
    loaded = gradtx.load_state_dict(tx.init(params), gradtx.state_dict(state))
    chex.assert_trees_all_equal(loaded, state, strict=True)
    abstract = jax.eval_shape(tx.init, params)
    chex.assert_trees_all_equal(gradtx.load_state_dict(abstract, gradtx.state_dict(state)), state)


def test_strict_load_lists_every_problem_in_one_error():
    saved = gradtx.state_dict(_adam_state({"w": jnp.ones(3), "old": jnp.ones(2)}))
    saved["0/count"] = saved["0/count"].astype(np.float32)
    like = _adam_state({"w": jnp.ones(4), "new": jnp.ones(2)})
    with pytest.raises(ValueError, match="7 problems") as info:
        gradtx.load_state_dict(like, saved)
    msg = str(info.value)
    for line in (
        "mismatched 0/mu/w: saved float32[3], expected float32[4]",
        "mismatched 0/nu/w",
        "mismatched 0/count: saved float32[], expected int32[]",
        "missing 0/mu/new",
        "missing 0/nu/new",
        "unexpected 0/mu/old",
        "unexpected 0/nu/old",
    ):
        assert line in msg, line


def test_non_strict_load_lets_the_model_grow():
    old = {"w": jnp.full(3, 1.0), "dropped": jnp.ones(2)}
    tx = gradtx.adam(0.1)
    state = tx.update(old, tx.init(old))[1]
    new_params = {"w": jnp.zeros(3), "added": jnp.ones(5)}
    like = tx.init(new_params)
    saved = gradtx.state_dict(state)
    diff = gradtx.state_dict_diff(like, saved)
    assert diff.missing == ["0/mu/added", "0/nu/added"]
    assert diff.unexpected == ["0/mu/dropped", "0/nu/dropped"] and diff.mismatched == []
    with pytest.warns(UserWarning, match="dropped saved entries .*0/mu/dropped, 0/nu/dropped"):
        loaded = gradtx.load_state_dict(like, saved, strict=False)
    np.testing.assert_array_equal(loaded[0].mu["w"], saved["0/mu/w"])  # kept from the save
    np.testing.assert_array_equal(loaded[0].mu["added"], np.zeros(5))  # fresh from init
    assert int(loaded[0].count) == 1
    with pytest.raises(ValueError, match="mismatched 0/mu/w"):  # shapes must still agree
        gradtx.load_state_dict(tx.init({"w": jnp.zeros(4)}), saved, strict=False)
    with pytest.raises(ValueError, match=r"missing 0/mu/added \(`like` is abstract"):
        gradtx.load_state_dict(jax.eval_shape(tx.init, new_params), saved, strict=False)


def test_save_and_load_state_round_trip(tmp_path):
    params = {"w": jnp.ones((2, 3), jnp.bfloat16), "b": jnp.arange(3.0)}
    tx = gradtx.inject_hyperparams(gradtx.adamw)(learning_rate=0.1)
    state = tx.update(params, tx.init(params), params)[1]
    path = tmp_path / "opt.npz"
    gradtx.save_state(path, state)
    chex.assert_trees_all_equal(gradtx.load_state(path, like=state), state, strict=True)
    with np.load(path) as z:
        meta = json.loads(z["__gradtx__"].tobytes())
    assert meta["format_version"] == 1 and meta["gradtx_version"] == gradtx.__version__
    assert os.listdir(tmp_path) == ["opt.npz"]  # no temporary file left behind
    with jax.enable_x64(True):
        s64 = {"x": jnp.arange(3, dtype=jnp.float64)}
        gradtx.save_state(path, s64)
        assert gradtx.load_state(path, like=s64)["x"].dtype == jnp.float64


def test_bad_files_raise_clear_errors(tmp_path):
    state = {"w": jnp.arange(1000.0)}
    good = tmp_path / "good.npz"
    gradtx.save_state(good, state)
    data = good.read_bytes()
    cases = {
        "truncated.npz": data[: len(data) // 2],
        "corrupted.npz": data[:200] + bytes(b ^ 0xFF for b in data[200:400]) + data[400:],
        "text.npz": b"not a checkpoint\n",
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    np.savez(tmp_path / "foreign.npz", w=np.arange(1000.0))
    meta = {"format": "gradtx-state", "format_version": 99, "gradtx_version": "9.0", "entries": []}
    np.savez(tmp_path / "future.npz", __gradtx__=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    for name, reason in [
        ("truncated.npz", "BadZipFile"),
        ("corrupted.npz", ""),
        ("text.npz", ""),
        ("foreign.npz", "no __gradtx__ entry"),
        ("future.npz", "format version 99 .written by gradtx 9.0.; this gradtx reads up to 1"),
    ]:
        with pytest.raises(ValueError, match=f"is not a readable gradtx checkpoint: .*{reason}"):
            gradtx.load_state(tmp_path / name, like=state)


WRITER = """
import os, signal, sys
import jax.numpy as jnp
import numpy.lib.format as fmt
import gradtx
path, mode = sys.argv[1], sys.argv[2]
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if mode == "mid-write":  # killed after the first array of the new file is written
    original, calls = fmt.write_array, []
    def write_array(*a, **k):
        calls.append(1)
        return die() if len(calls) == 2 else original(*a, **k)
    fmt.write_array = write_array
elif mode == "before-rename":  # killed after the new file is complete and fsync-ed
    os.replace = die
if mode == "loop":  # saves forever, alternating two states, until the test kills it
    big = [{"x": jnp.full((1 << 21,), float(i))} for i in (2, 3)]
    i = 0
    while True:
        gradtx.save_state(path, big[i % 2]); i += 1
gradtx.save_state(path, {"x": jnp.full((1000,), 2.0), "y": jnp.ones(10)})
"""


def _writer(path, mode):
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), mode], env=env)


@pytest.mark.parametrize("mode", ["mid-write", "before-rename"])
def test_killed_writer_leaves_previous_checkpoint(tmp_path, mode):
    path = tmp_path / "ckpt.npz"
    previous = {"x": jnp.full((1000,), 1.0), "y": jnp.zeros(10)}
    gradtx.save_state(path, previous)
    proc = _writer(path, mode)
    assert proc.wait(timeout=120) == -signal.SIGKILL
    chex.assert_trees_all_equal(gradtx.load_state(path, like=previous), previous)
    assert len(os.listdir(tmp_path)) == 2  # the previous file and a stray temporary file


def test_sigkill_at_a_random_moment_leaves_a_whole_checkpoint(tmp_path):
    path = tmp_path / "ckpt.npz"
    like = {"x": jnp.zeros((1 << 21,))}
    proc = _writer(path, "loop")
    deadline = time.time() + 120
    while not path.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.1 + 0.4 * np.random.default_rng().random())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    x = np.asarray(gradtx.load_state(path, like=like)["x"])
    assert x[0] in (2.0, 3.0) and np.all(x == x[0])


@jax.numpy_rank_promotion("allow")  # the demo MLP broadcasts its biases
def test_resume_from_checkpoint_is_bitwise_identical(tmp_path):
    inputs, labels = spiral_data(20)
    params0 = mlp_init(jax.random.PRNGKey(0), (2, 16, 3))
    sched = lambda count: 0.05 * 0.95 ** count.astype(jnp.float32)  # noqa: E731
    tx = gradtx.inject_hyperparams(gradtx.adamw)(learning_rate=sched, weight_decay=1e-3)

    @jax.jit
    def step(carry, _=None):
        params, state = carry
        grads = jax.grad(mlp_loss)(params, inputs, labels)
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    straight = (params0, tx.init(params0))
    for _ in range(10):
        straight = step(straight)
    carry = (params0, tx.init(params0))
    for _ in range(5):
        carry = step(carry)
    gradtx.save_state(tmp_path / "ckpt.npz", carry)
    resumed = gradtx.load_state(tmp_path / "ckpt.npz", like=(params0, tx.init(params0)))
    for _ in range(5):
        resumed = step(resumed)
    chex.assert_trees_all_equal(resumed, straight, strict=True)
