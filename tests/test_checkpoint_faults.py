"""Checkpoint fault injection: corrupt, hostile and interrupted files never load wrong data.

Every case either loads exactly what was saved or raises a clear error; nothing runs code,
nothing allocates more than ``like`` needs, and an interrupted save leaves the previous
checkpoint whole. The loops are bounded so the file runs in a few seconds.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import stat
import subprocess
import sys
import threading
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STATE = {"w": jnp.arange(64.0).reshape(8, 8), "count": jnp.asarray(7, jnp.int32)}
LIKE = {"w": jnp.zeros((8, 8)), "count": jnp.zeros((), jnp.int32)}


def _same(a, b) -> bool:
    return all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


def _load_or_error(path):
    """The loaded state, or None when load_state raised the documented ValueError."""
    try:
        return gradtx.load_state(path, like=LIKE)
    except ValueError as err:
        assert "is not a readable gradtx checkpoint" in str(err) or "does not fit" in str(err)
        assert str(path) in str(err), "the error names the file"
        return None


@pytest.fixture(scope="session")  # computed once, even when xdist interleaves modules
def good_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.npz"
    gradtx.save_state(path, STATE)
    return path.read_bytes()


def test_truncation_at_many_offsets_never_loads(tmp_path, good_bytes):
    path = tmp_path / "cut.npz"
    for cut in np.unique(np.linspace(0, len(good_bytes) - 1, 48).astype(int)):
        path.write_bytes(good_bytes[:cut])
        assert _load_or_error(path) is None, f"a file cut at {cut} bytes loaded"


def test_byte_flips_in_data_and_header_never_load_wrong_data(tmp_path, good_bytes):
    path = tmp_path / "flip.npz"
    rng = np.random.default_rng(0)
    positions = np.unique(np.r_[rng.integers(0, len(good_bytes), 40), np.arange(0, 120, 8)])
    for pos in positions:
        data = bytearray(good_bytes)
        data[pos] ^= 0x5A
        path.write_bytes(bytes(data))
        loaded = _load_or_error(path)
        assert loaded is None or _same(loaded, STATE), f"a flip at byte {pos} loaded other data"


class _Payload:
    """Unpickling this creates the marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("declared", ["object", "float32"])
def test_pickled_payloads_never_execute(tmp_path, declared):
    marker = tmp_path / "marker"
    buf = io.BytesIO()
    np.save(buf, np.array([_Payload(str(marker))], dtype=object), allow_pickle=True)
    meta = {"format": "gradtx-state", "format_version": 1, "entries": [["w", declared, [1]]]}
    path = tmp_path / "pickle.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__gradtx__.npy", _npy_bytes(json.dumps(meta).encode()))
        zf.writestr("a0.npy", buf.getvalue())
    with pytest.raises(ValueError, match="is not a readable gradtx checkpoint"):
        gradtx.load_state(path, like={"w": jnp.zeros(1)})
    with pytest.raises(ValueError, match="is not a readable gradtx checkpoint"):
        gradtx.read_state_dict(path)
    with zipfile.ZipFile(path, "w") as zf:  # the header itself as a pickle
        zf.writestr("__gradtx__.npy", buf.getvalue())
    with pytest.raises(ValueError, match="is not a readable gradtx checkpoint"):
        gradtx.read_state_dict(path)
    path.write_bytes(pickle.dumps(_Payload(str(marker))))  # a bare pickle
    with pytest.raises(ValueError, match="is not a readable gradtx checkpoint"):
        gradtx.read_state_dict(path)
    assert not marker.exists()


def _npy_bytes(raw: bytes) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(raw, np.uint8))
    return buf.getvalue()


def test_zip_bomb_without_like_hits_the_limit(tmp_path):
    n = 1 << 21
    meta = {"format": "gradtx-state", "format_version": 1, "entries": [["w", "float64", [n]]]}
    buf = io.BytesIO()
    np.save(buf, np.zeros(n))
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("__gradtx__.npy", _npy_bytes(json.dumps(meta).encode()))
        zf.writestr("a0.npy", buf.getvalue())
    with pytest.raises(ValueError, match=r"declare 16777216 bytes, more than max_bytes=1048576"):
        gradtx.read_state_dict(path, max_bytes=1 << 20)


@pytest.mark.parametrize("version", [99, 0, "1", None, 1.5])
def test_wrong_format_versions_are_refused(tmp_path, version):
    meta = {"format": "gradtx-state", "format_version": version, "entries": []}
    path = tmp_path / "v.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__gradtx__.npy", _npy_bytes(json.dumps(meta).encode()))
    with pytest.raises(ValueError, match="format version"):
        gradtx.read_state_dict(path)


def test_special_targets_and_symlinks(tmp_path):
    gradtx.save_state(tmp_path / "real.npz", STATE)
    os.symlink(tmp_path / "real.npz", tmp_path / "link.npz")
    os.symlink(tmp_path, tmp_path / "dirlink")
    os.mkfifo(tmp_path / "fifo")
    for target, kind in [("fifo", "a FIFO"), ("dirlink", "a directory"), (".", "a directory")]:
        with pytest.raises(ValueError, match=f"is {kind}, not a regular file"):
            gradtx.save_state(tmp_path / target, STATE)
    gradtx.save_state(tmp_path / "link.npz", {**STATE, "count": jnp.asarray(8, jnp.int32)})
    assert os.path.islink(tmp_path / "link.npz")
    assert int(gradtx.load_state(tmp_path / "real.npz", like=LIKE)["count"]) == 8
    assert sorted(os.listdir(tmp_path)) == ["dirlink", "fifo", "link.npz", "real.npz"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders anyway")
def test_read_only_folder_is_a_clear_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    gradtx.save_state(folder / "c.npz", STATE)
    os.chmod(folder, 0o500)
    try:
        with pytest.raises(PermissionError, match="cannot create a file in .*Nothing was written"):
            gradtx.save_state(folder / "c.npz", {**STATE, "count": jnp.asarray(1, jnp.int32)})
        assert int(gradtx.load_state(folder / "c.npz", like=LIKE)["count"]) == 7
    finally:
        os.chmod(folder, 0o700)


def test_full_disk_keeps_the_previous_checkpoint(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    folder = tmp_path / "tiny"
    folder.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.decode().strip()}")
    try:
        gradtx.save_state(folder / "c.npz", STATE)
        with pytest.raises(OSError, match="writing .* failed .*previous checkpoint .* unchanged"):
            gradtx.save_state(folder / "c.npz", {"w": jnp.zeros(1 << 16)})
        assert _same(gradtx.load_state(folder / "c.npz", like=LIKE), STATE)
        assert os.listdir(folder) == ["c.npz"]
    finally:
        subprocess.run(["umount", str(folder)], check=False)


KILLER = """
import os, signal, sys, time
import numpy as np
import gradtx
path, rounds = sys.argv[1], int(sys.argv[2])
states = [{"x": np.full((1 << 19,), float(i))} for i in (2, 3)]
gradtx.save_state(path, states[0])
rng = np.random.default_rng(0)
for r in range(rounds):
    pid = os.fork()
    if pid == 0:
        i = 0
        while True:
            gradtx.save_state(path, states[i % 2]); i += 1
    time.sleep(0.005 + 0.05 * rng.random())
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    x = gradtx.read_state_dict(path)["x"]
    ok = x[0] in (2.0, 3.0) and bool(np.all(x == x[0]))
    temps = [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")]
    print("ok" if ok else "BAD", len(temps), flush=True)
"""


def test_kills_at_random_moments_always_leave_a_whole_checkpoint(tmp_path):
    path = tmp_path / "ckpt.npz"
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", KILLER, str(path), "12"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")[:-1]
    assert len(lines) == 12 and all(line.startswith("ok ") for line in lines), out.stdout
    assert max(int(line.split()[1]) for line in lines) <= 2, "stray temporaries pile up"


def test_two_concurrent_writers_never_mix_or_lose_the_file(tmp_path):
    path = tmp_path / "ckpt.npz"
    states = [{"x": np.full((1 << 16,), float(i))} for i in (1, 2)]
    errors = []

    def writer(i):
        try:
            for _ in range(15):
                gradtx.save_state(path, states[i])
        except Exception as err:  # noqa: BLE001 (collected and reported below)
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    x = gradtx.read_state_dict(path)["x"]
    assert x[0] in (1.0, 2.0) and np.all(x == x[0])
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert stat.S_ISREG(os.lstat(path).st_mode)
