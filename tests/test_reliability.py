"""One test per root cause of the reliability and security issue; each failed before its fix.

Numbers in the test names are the issue's root causes (8 and 11 are fixed elsewhere).
"""

from __future__ import annotations

import io
import json
import os
import stat
import time
import tracemalloc
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

# --- helpers: hand-made checkpoint files ---------------------------------------------------


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def _npy_header_only(shape, dtype="<f4") -> bytes:
    """A .npy file whose header declares ``shape`` but which holds no data at all."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def _meta(entries) -> bytes:
    meta = {
        "format": "gradtx-state",
        "format_version": 1,
        "gradtx_version": "x",
        "entries": entries,
    }
    return _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))


def _write_zip(path, members: dict, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


# --- 1. a small crafted checkpoint must not exhaust memory --------------------------------


def test_1_header_declaring_a_terabyte_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.npz"
    huge = [1 << 38]  # float32: 1 TiB
    _write_zip(
        path,
        {
            "__gradtx__.npy": _meta([["x", "float32", huge]]),
            "a0.npy": _npy_header_only(tuple(huge)),
        },
    )
    assert os.path.getsize(path) < 1000
    with pytest.raises(ValueError, match=r"(?s)huge.npz.*saved float32\[274877906944\]"):
        gradtx.load_state(path, like={"x": jnp.zeros(3)})
    with pytest.raises(ValueError, match=r"huge.npz.*more than max_bytes"):
        gradtx.read_state_dict(path)


def test_1_zip_bomb_reads_no_more_than_like_needs(tmp_path):
    path = tmp_path / "bomb.npz"
    n = 1 << 22  # 16 MiB of zeros, deflated to about 16 KiB
    _write_zip(
        path,
        {"__gradtx__.npy": _meta([["x", "float32", [n]]]), "a0.npy": _npy(np.zeros(n, np.float32))},
        zipfile.ZIP_DEFLATED,
    )
    assert os.path.getsize(path) < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="mismatched x: saved float32"):
            gradtx.load_state(path, like={"x": jnp.zeros(3)})
        with pytest.raises(ValueError, match="more than max_bytes"):
            gradtx.read_state_dict(path, max_bytes=1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"reading a refused file allocated {peak} bytes"


def test_1_declared_sizes_must_agree(tmp_path):
    """A member whose zip size disagrees with its .npy header is refused, not read."""
    path = tmp_path / "liar.npz"
    member = _npy(np.zeros(4, np.float32)) + b"\0" * 64  # 64 bytes more than the header says
    _write_zip(path, {"__gradtx__.npy": _meta([["x", "float32", [4]]]), "a0.npy": member})
    with pytest.raises(ValueError, match=r"liar.npz.*declares \d+ bytes, but its dtype and shape"):
        gradtx.load_state(path, like={"x": jnp.zeros(4)})


# --- 2. save_state must not replace special files -----------------------------------------


def test_2_special_files_are_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"'.*pipe' exists and is a FIFO, not a regular file"):
        gradtx.save_state(fifo, {"x": jnp.ones(2)})
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    with pytest.raises(ValueError, match="is a directory"):
        gradtx.save_state(tmp_path, {"x": jnp.ones(2)})
    try:
        os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError):
        return  # creating a device needs root; the FIFO covers the same check
    with pytest.raises(ValueError, match="is a character device"):
        gradtx.save_state(tmp_path / "null", {"x": jnp.ones(2)})
    assert stat.S_ISCHR(os.lstat(tmp_path / "null").st_mode)
    assert sorted(os.listdir(tmp_path)) == ["null", "pipe"]  # no temporary file was made


def test_2_permissions_kept_symlinks_followed_and_stale_temporaries_removed(tmp_path):
    path = tmp_path / "ckpt.npz"
    gradtx.save_state(path, {"x": jnp.ones(2)})
    os.chmod(path, 0o640)
    gradtx.save_state(path, {"x": jnp.zeros(2)})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640

    link = tmp_path / "latest.npz"
    os.symlink(path, link)
    gradtx.save_state(link, {"x": jnp.full(2, 7.0)})
    assert os.path.islink(link) and os.readlink(link) == str(path)
    np.testing.assert_array_equal(gradtx.read_state_dict(path)["x"], [7.0, 7.0])
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    with pytest.raises(FileNotFoundError, match="does not exist. Nothing was written"):
        gradtx.save_state(tmp_path / "dangling", {"x": jnp.ones(2)})

    stale = tmp_path / ".ckpt.npz.killed.tmp"
    stale.write_bytes(b"x" * 1000)
    os.utime(stale, (time.time() - 60, time.time() - 60))
    other = tmp_path / ".other.npz.killed.tmp"  # another checkpoint's: not ours to remove
    other.write_bytes(b"y")
    os.utime(other, (time.time() - 60, time.time() - 60))
    gradtx.save_state(path, {"x": jnp.ones(2)})
    assert not stale.exists() and other.exists()


# --- 3. 64-bit dtypes must not change silently ---------------------------------------------


def test_3_sixty_four_bit_entries_do_not_fit_32_bit_state(tmp_path):
    path = tmp_path / "x64.npz"
    with jax.enable_x64(True):
        gradtx.save_state(
            path, {"count": jnp.asarray(2**40, jnp.int64), "x": jnp.asarray([1e300, 0.1])}
        )
    like = {"count": jnp.zeros((), jnp.int32), "x": jnp.zeros(2, jnp.float32)}
    with pytest.raises(ValueError, match=r"(?s)saved int64\[\], expected int32\[\].*saved float64"):
        gradtx.load_state(path, like=like)
    with pytest.warns(UserWarning, match=r"changed the values of count \(int64 -> int32\), x"):
        loaded = gradtx.load_state(path, like=like, strict=False)
    assert loaded["x"].dtype == jnp.float32
    d = gradtx.read_state_dict(path)
    assert d["count"].dtype == np.int64 and int(d["count"]) == 2**40
    with pytest.raises(ValueError, match=r"saved int64\[\], expected int32\[\]"):
        gradtx.load_state_dict(like, d)
    with jax.enable_x64(True):
        like64 = {"count": jnp.zeros((), jnp.int64), "x": jnp.zeros(2, jnp.float64)}
        assert int(gradtx.load_state(path, like=like64)["count"]) == 2**40


# --- 4. shapes are checked against the state -----------------------------------------------


def test_4_state_of_other_shapes_is_refused_naming_the_path():
    tx = gradtx.adam(0.1)
    state = tx.init({"w": jnp.zeros(3), "b": jnp.zeros(2)})
    with pytest.raises(ValueError, match=r"updates\['w'\] has shape \(1,\), but state.mu\['w'\]"):
        tx.update({"w": jnp.ones(1), "b": jnp.ones(2)}, state)
    ms = gradtx.MultiSteps(gradtx.sgd(0.1), 2)
    with pytest.raises(ValueError, match=r"MultiSteps: updates\['w'\] has shape \(1,\)"):
        ms.update({"w": jnp.ones(1)}, ms.init({"w": jnp.zeros(3)}))


def test_4_non_scalar_hyperparameters_and_schedules_are_refused():
    params = {"w": jnp.zeros(3)}
    for tx in (
        gradtx.adam(learning_rate=lambda c: jnp.ones(3)),
        gradtx.adam(0.1, b1=lambda c: jnp.full(3, 0.9)),
        gradtx.adam(0.1, b2=jnp.full(3, 0.99)),
    ):
        with pytest.raises(ValueError, match=r"shape \(3,\).*scalar"):
            tx.update({"w": jnp.ones(3)}, tx.init(params))
    sched = lambda c: jnp.ones(2)  # noqa: E731
    tx = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=sched)
    with pytest.raises(ValueError, match=r"inject_hyperparams\(sgd\): the value of the schedule "):
        tx.init(params)


# --- 5. flat_layout checks shapes and sizes ------------------------------------------------


def test_5_flat_layout_pack_and_unflatten_check_shapes():
    layout = gradtx.flat_layout({"w": jnp.ones((2, 3)), "b": jnp.zeros(3)})
    with pytest.raises(ValueError, match=r"pack: the leaf at \['w'\] has shape \(3, 2\)"):
        layout.pack({"w": jnp.ones((3, 2)), "b": jnp.zeros(3)})
    with pytest.raises(ValueError, match=r"unflatten: buffer 'float32' has shape \(8,\)"):
        layout.unflatten({"float32": jnp.zeros(8)})


# --- 6. corrupt files raise the documented ValueError --------------------------------------


@pytest.mark.parametrize("meta", [b"[1, 2]", b"[" * 100_000 + b"]" * 100_000], ids=["list", "deep"])
def test_6_malformed_headers_raise_the_documented_error(tmp_path, meta):
    path = tmp_path / "bad.npz"
    header = _npy(np.frombuffer(meta, np.uint8))  # AttributeError, RecursionError before
    _write_zip(path, {"__gradtx__.npy": header, "a0.npy": _npy(np.zeros(1))})
    with pytest.raises(ValueError, match=r"'.*bad.npz' is not a readable gradtx checkpoint"):
        gradtx.load_state(path, like={"x": jnp.zeros(1)})


# --- 7. one overflowing gradient must not freeze a coordinate ------------------------------


@pytest.mark.parametrize(
    "dtype, big", [(jnp.float32, 1e30), (jnp.float16, 1e4)], ids=["float32", "float16"]
)
@pytest.mark.parametrize(
    "make",
    [gradtx.scale_by_adam, gradtx.scale_by_rms, gradtx.scale_by_rss],
    ids=lambda f: f.__name__,
)
def test_7_second_moments_stay_finite_after_an_overflowing_gradient(make, dtype, big):
    tx = make()
    params = {"w": jnp.zeros(2, dtype)}
    state = tx.init(params)
    _, state = tx.update({"w": jnp.asarray([big, 1.0], dtype)}, state)
    slot = state.sum_of_squares if make is gradtx.scale_by_rss else state.nu
    assert bool(jnp.all(jnp.isfinite(slot["w"]))), slot
    before = slot["w"][0].astype(jnp.float32)
    updates, state = tx.update({"w": jnp.asarray([1.0, 1.0], dtype)}, state)
    slot = state.sum_of_squares if make is gradtx.scale_by_rss else state.nu
    assert bool(jnp.all(jnp.isfinite(updates["w"])))
    if make is not gradtx.scale_by_rss:  # the moving averages decay again
        assert float(slot["w"][0]) < float(before)


# --- 9. normalize_by_update_norm keeps float16 zeros zero ----------------------------------


def test_9_normalize_by_update_norm_float16_zero_gradients_stay_zero():
    tx = gradtx.normalize_by_update_norm()
    updates, _ = tx.update({"w": jnp.zeros(3, jnp.float16)}, tx.init(None))
    assert updates["w"].dtype == jnp.float16
    np.testing.assert_array_equal(np.asarray(updates["w"], np.float32), 0.0)


# --- 10. complex parameters use |g|^2 -------------------------------------------------------


def _adam_reference(grads, lr=0.1, b1=0.9, b2=0.999, eps=1e-8):
    """Adam (Kingma and Ba 2015, Algorithm 1) for complex parameters in float64 NumPy, with
    the second moment of |g|^2 (real), as for a pair of real coordinates sharing one nu."""
    m = np.zeros_like(grads[0])
    v = np.zeros(grads[0].shape)
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * np.abs(g) ** 2
        out.append(-lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
    return out


def test_10_complex_adam_matches_a_float64_reference_and_norms_are_real():
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=3) + 1j * rng.normal(size=3) for _ in range(20)]
    grads[0] = np.array([1j, 1.0, -2j])  # a purely imaginary gradient moves along i
    want = _adam_reference(grads)
    with jax.enable_x64(True):
        tx = gradtx.adam(0.1)
        state = tx.init({"w": jnp.zeros(3, jnp.complex128)})
        for g, w in zip(grads, want):
            u, state = tx.update({"w": jnp.asarray(g)}, state)
            np.testing.assert_allclose(np.asarray(u["w"]), w, rtol=1e-10, atol=1e-14)
        assert float(jnp.max(jnp.abs(jnp.imag(state[0].nu["w"])))) == 0.0
    norm = gradtx.global_norm([jnp.asarray(3 + 4j, jnp.complex64)])
    assert norm.dtype == jnp.float32 and float(norm) == 5.0
    u, _ = gradtx.clip_by_global_norm(1.0).update([jnp.asarray([3 + 4j], jnp.complex64)], ())
    np.testing.assert_allclose(np.asarray(u[0]), [0.6 + 0.8j], rtol=1e-6)


def test_10_transforms_without_a_complex_meaning_reject_complex_leaves():
    with pytest.raises(TypeError, match=r"clip: the updates at \['w'\] are complex"):
        gradtx.clip(1.0).update({"w": jnp.ones(2, jnp.complex64)}, ())


# --- 12. rmsprop(centered, bias_correction) takes a sane first step ------------------------


def test_12_centered_bias_corrected_rmsprop_matches_its_float64_reference():
    """RMSProp centered (Graves 2013, eq. 38-40), second moment bias-corrected only."""
    lr, decay, eps = 0.01, 0.9, 1e-8
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=4) for _ in range(20)]
    nu, mu, want = np.zeros(4), np.zeros(4), []
    for t, g in enumerate(grads, start=1):
        nu = decay * nu + (1 - decay) * g**2
        mu = decay * mu + (1 - decay) * g
        v = np.maximum(nu / (1 - decay**t) - mu**2, 0)
        want.append(-lr * g / (np.sqrt(v) + eps))
    with jax.enable_x64(True):
        tx = gradtx.rmsprop(lr, decay=decay, eps=eps, centered=True, bias_correction=True)
        state = tx.init(jnp.zeros(4, jnp.float64))
        for g, w in zip(grads, want):
            u, state = tx.update(jnp.asarray(g), state)
            np.testing.assert_allclose(np.asarray(u), w, rtol=1e-10)
    assert np.max(np.abs(want[0])) < 2 * lr  # not lr * g / eps


# --- 13. integer parameters and float0 gradients -------------------------------------------


def test_13_integer_parameters_are_refused_and_float0_gradients_named():
    params = {"w": jnp.zeros(2), "step": jnp.zeros((), jnp.int32)}
    for tx in (
        gradtx.adam(0.1),
        gradtx.sgd(0.1, momentum=0.9),
        gradtx.MultiSteps(gradtx.sgd(1), 2),
    ):
        with pytest.raises(TypeError, match=r"parameter at \['step'\] has dtype int32"):
            tx.init(params)
    grads = jax.grad(lambda p: jnp.sum(p["w"]) * 2.0, allow_int=True)(params)
    assert grads["step"].dtype == jax.dtypes.float0
    tx = gradtx.scale(0.5)
    with pytest.raises(TypeError, match=r"float0 leaf at \['step'\]"):
        tx.update(grads, tx.init(params))


# --- 14. hyperparameters set at run time are checked ---------------------------------------


def test_14_tree_set_and_numpy_scalars_are_checked_like_build_time():
    tx = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=0.1, b2=0.999)
    state = tx.init({"w": jnp.zeros(2)})
    with pytest.raises(ValueError, match=r"tree_set .*scale_by_adam.*b2=1.0 is out of range"):
        gradtx.tree_set(state, b2=1.0)
    with pytest.raises(ValueError, match=r"b2=1.0 is out of range"):  # bf16 0.999 is 1.0
        gradtx.tree_set(state, b2=jnp.asarray(0.999, jnp.bfloat16))
    with pytest.raises(ValueError, match=r"learning_rate=np.float32\(-0.5\) is out of range"):
        gradtx.tree_set(state, learning_rate=np.float32(-0.5))
    sgd_state = gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=0.1, momentum=0.9).init(
        {"w": jnp.zeros(2)}
    )
    with pytest.raises(ValueError, match=r"as gradtx.trace checks it\): momentum=1.5"):
        gradtx.tree_set(sgd_state, momentum=1.5)
    assert float(gradtx.tree_get(gradtx.tree_set(state, b2=0.99), "b2")) == pytest.approx(0.99)
    with pytest.raises(ValueError, match=r"learning_rate=np.float32\(-0.1\) is out of range"):
        gradtx.sgd(np.float32(-0.1))
    with pytest.raises(ValueError, match=r"learning_rate=np.float64\(-0.1\) is out of range"):
        gradtx.inject_hyperparams(gradtx.adam)(learning_rate=np.float64(-0.1))


# --- 15. the lower-severity ones -----------------------------------------------------------


def test_15_eps_zero_with_zero_gradients_is_finite():
    for tx in (
        gradtx.adam(0.1, eps=0.0),
        gradtx.rmsprop(0.1, eps=0.0),
        gradtx.adagrad(0.1, eps=0.0),
    ):
        u, _ = tx.update({"w": jnp.zeros(3)}, tx.init({"w": jnp.zeros(3)}))
        np.testing.assert_array_equal(np.asarray(u["w"]), 0.0)


def test_15_hypergradients_through_norms_of_zero_gradients_are_finite():
    def through(tx):
        def f(s):
            u, _ = tx.update({"w": s * jnp.zeros(3)}, tx.init(None))
            return jnp.sum(u["w"])

        return jax.grad(f)(1.0)

    assert float(jax.grad(lambda s: gradtx.global_norm({"w": s * jnp.zeros(3)}))(1.0)) == 0.0
    for tx in (gradtx.clip_by_global_norm(1.0), gradtx.normalize_by_update_norm()):
        assert bool(jnp.isfinite(through(tx)))


def test_15_schedule_boundaries_are_exact_above_2_to_the_24():
    b = 2**24 + 1  # float32 cannot tell it from 2**24
    sched = gradtx.piecewise_constant_schedule(1.0, {b: 0.1})
    assert float(sched(jnp.asarray(b - 1))) == 1.0
    assert float(sched(jnp.asarray(b))) == pytest.approx(0.1)
    step = gradtx.step_decay_schedule(1.0, b, 0.5)
    assert float(step(jnp.asarray(b - 1))) == 1.0 and float(step(jnp.asarray(b))) == 0.5
    interp = gradtx.piecewise_interpolate_schedule("linear", 1.0, {b: 0.5, b + 2: 1.0})
    assert float(interp(jnp.asarray(b))) == 0.5


def test_15_multisteps_accumulates_bf16_in_float32():
    k = 256
    rng = np.random.default_rng(2)
    grads = rng.normal(1.0, 0.3, size=(k, 4)).astype(np.float32)
    ms = gradtx.MultiSteps(gradtx.sgd(1.0), k)
    state = ms.init(jnp.zeros(4, jnp.bfloat16))
    assert state.acc_grads.dtype == jnp.float32
    step = jax.jit(ms.update)
    for g in grads:
        u, state = step(jnp.asarray(g, jnp.bfloat16), state)
    want = -np.asarray(jnp.asarray(grads, jnp.bfloat16), np.float64).mean(0)
    np.testing.assert_allclose(np.asarray(u, np.float64), want, rtol=1e-2)
