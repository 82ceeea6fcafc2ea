"""Checkpoints: one versioned ``.npz`` file per state, written atomically.

File format (version 1): a NumPy ``.npz`` archive (a zip of ``.npy`` files, stored, not
compressed) holding
- ``__gradtx__``: a uint8 array of UTF-8 JSON ``{"format": "gradtx-state", "format_version": 1,
  "gradtx_version": ..., "entries": [[key, dtype, shape], ...]}``;
- ``a0``, ``a1``, ...: the arrays of ``state_dict(state)``, in the order of ``entries``.
  Dtypes NumPy cannot store natively (bfloat16, float8) are stored as unsigned integers of
  the same width and viewed back on load. Nothing is pickled.

Reading never trusts a size it has not checked: the JSON header is read first (at most
``MAX_HEADER_BYTES``), every entry's declared dtype and shape is compared with ``like`` (or,
without ``like``, their total with ``max_bytes``), each zip member's declared sizes must agree
with its ``.npy`` header, and only then is an array decoded. What is guaranteed, and what is
not, is written down in docs/guide/reliability.md.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import tempfile
import zipfile
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpy.lib.format as npy_format

from gradtx._state.tools import _fit, _place, state_dict

FORMAT = "gradtx-state"
FORMAT_VERSION = 1
_META = "__gradtx__"
MAX_HEADER_BYTES = 1 << 24  # the JSON header: 16 MiB is about 200,000 entries
DEFAULT_MAX_BYTES = 1 << 34  # arrays read without `like`: 16 GiB unless max_bytes says more
_CHUNK = 1 << 24  # arrays are read in 16 MiB pieces


def _storable(x: np.ndarray) -> np.ndarray:
    if x.dtype.isbuiltin == 1:  # a dtype NumPy itself defines: saved as it is
        return x
    return x.view(np.dtype(f"uint{8 * x.dtype.itemsize}"))


def _write(f, state) -> None:
    from gradtx import __version__

    d = state_dict(state)
    entries = [[k, jnp.dtype(v.dtype).name, list(v.shape)] for k, v in d.items()]
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gradtx_version": __version__,
        "entries": entries,
    }
    arrays = {f"a{i}": _storable(np.asarray(v)) for i, v in enumerate(d.values())}
    arrays[_META] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(f, **arrays)


def _umask() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def _target(path: str) -> tuple[str, int | None]:
    """The file to replace (symlinks followed) and its permission bits (None if new)."""
    if not os.path.lexists(path):
        return path, None
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise FileNotFoundError(
            errno.ENOENT,
            f"gradtx.save_state: {path!r} is a symbolic link to {real!r}, which does not "
            "exist. Nothing was written. Remove the link or point it at an existing file",
            path,
        ) from None
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "a character device"
            if stat.S_ISCHR(st.st_mode)
            else "a block device"
            if stat.S_ISBLK(st.st_mode)
            else "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "not a regular file"
        )
        shown = path if real == os.path.abspath(path) else f"{path} (-> {real})"
        raise ValueError(
            f"gradtx.save_state: {shown!r} exists and is {kind}, not a regular file; a "
            "checkpoint replaces only regular files (and links to them). Nothing was written. "
            "Pass the path of a file to create or overwrite."
        )
    return real, stat.S_IMODE(st.st_mode)


def _locked_temp(folder: str, base: str) -> tuple[int, str]:
    """A new temporary file next to the target, held under an exclusive advisory lock.

    Another save's cleanup removes only temporary files it can lock. Between the file's
    creation and its lock such a cleanup may remove it; then the file has no name any more
    (``st_nlink == 0``) and a new one is made.
    """
    while True:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=".tmp")
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
        except (ImportError, OSError):
            return fd, tmp  # no advisory locks here: cleanups do not run either
        if os.fstat(fd).st_nlink > 0:
            return fd, tmp
        os.close(fd)


def _remove_stale(folder: str, base: str, keep: str) -> None:
    """Delete the temporary files of earlier saves to ``base`` that were killed mid-save.

    A save holds an exclusive lock on its temporary file from its creation to its rename, so
    a file that can be locked belongs to no live save. Files of other names are never touched.
    """
    try:
        import fcntl
    except ImportError:
        return
    prefix = f".{base}."
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        full = os.path.join(folder, name)
        if full == keep:
            continue
        try:
            fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.remove(full)
        except OSError:
            pass  # locked by a live save, or already gone
        finally:
            os.close(fd)


def save_state(path: str | os.PathLike, state) -> None:
    """Save ``state`` (any pytree of arrays: an optimizer state, ``(params, opt_state)``, ...).

    The file is written to a temporary file in the same folder (``.NAME.*.tmp``), flushed and
    fsync-ed, then renamed over ``path`` with ``os.replace``, and the folder is fsync-ed. A
    crash at any point leaves either the previous file or the new one, never a mixture. A
    killed save may leave its temporary file; the next save to the same path removes it
    (each save holds a lock on its own temporary file, so concurrent saves are safe).

    ``path`` must be a new file, an existing regular file (its permission bits are kept) or a
    symbolic link to one: the link is followed and its target replaced, so the link keeps
    pointing at the new checkpoint. Anything else that exists (a directory, a device such as
    /dev/null, a FIFO, a socket, a dangling link) is refused with a ValueError (or
    FileNotFoundError) before anything is written. A new file gets ``0666 & ~umask``, as
    ``open`` would give it. ``.npz`` is the natural suffix.
    """
    path = os.fspath(path)
    target, mode = _target(path)
    folder = os.path.dirname(os.path.abspath(target))
    base = os.path.basename(target)
    try:
        fd, tmp = _locked_temp(folder, base)
    except OSError as err:
        raise type(err)(
            err.errno,
            f"gradtx.save_state: cannot create a file in {folder!r} ({err.strerror}). "
            "Nothing was written; the previous checkpoint, if any, is unchanged",
            folder,
        ) from err
    lock_fd = os.dup(fd)  # the same open file: its lock lasts until after the rename
    try:
        _remove_stale(folder, base, tmp)
        os.fchmod(fd, mode if mode is not None else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            _write(f, state)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise type(err)(
            err.errno,
            f"gradtx.save_state: writing {path!r} failed ({err.strerror}). The temporary file "
            "was removed; the previous checkpoint at this path, if any, is unchanged",
            path,
        ) from err
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    finally:
        os.close(lock_fd)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _Bad(Exception):
    """A reason a file is not a readable checkpoint (turned into the documented ValueError)."""


def _bad(path, why: str) -> ValueError:
    return ValueError(
        f"gradtx.load_state: {path!r} is not a readable gradtx checkpoint: {why}. Nothing was "
        "loaded. If a save was interrupted, the previous checkpoint at this path is intact "
        "unless this file is it; load an earlier checkpoint."
    )


class _Declared(NamedTuple):
    """An entry as the header declares it, before any of its data is read."""

    shape: tuple
    dtype: np.dtype
    member: str  # the zip member holding it

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _entry_dtype(name) -> np.dtype:
    if not isinstance(name, str):
        raise _Bad(f"an entry's dtype is {name!r}, not a dtype name")
    try:
        dt = np.dtype(jnp.dtype(name))
    except TypeError:
        raise _Bad(f"an entry has the unknown dtype {name!r}") from None
    native = dt.isbuiltin == 1 and dt.kind in "biufc"
    ml = dt.isbuiltin != 1 and type(dt.type).__module__.startswith("ml_dtypes")
    ml = ml or (dt.isbuiltin != 1 and dt.type.__module__.startswith("ml_dtypes"))
    if not (native or ml) or dt.name != name:
        raise _Bad(f"an entry has dtype {name!r}; checkpoints hold numeric arrays only")
    return dt


def _entries(meta) -> dict[str, _Declared]:
    if not isinstance(meta, dict):
        raise _Bad("its header is not a JSON object")
    if meta.get("format") != FORMAT:
        raise _Bad(f"its format is {meta.get('format')!r}, not {FORMAT!r}")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _Bad(f"its format version is {version!r}, not a positive integer")
    if version > FORMAT_VERSION:
        raise _Bad(
            f"it has format version {version} (written by gradtx "
            f"{meta.get('gradtx_version')}); this gradtx reads up to {FORMAT_VERSION}"
        )
    entries = meta.get("entries")
    if not isinstance(entries, list):
        raise _Bad("its header has no list of entries")
    out: dict[str, _Declared] = {}
    for i, entry in enumerate(entries):
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
            raise _Bad(f"header entry {i} is {str(entry)[:80]!r}, not [key, dtype, shape]")
        key, dtype, shape = entry
        if key in out:
            raise _Bad(f"the key {key!r} appears twice")
        ok = isinstance(shape, list) and len(shape) <= 64
        ok = ok and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
        if not ok:
            raise _Bad(f"entry {key!r} has the shape {str(shape)[:80]}, not a list of sizes")
        out[key] = _Declared(tuple(shape), _entry_dtype(dtype), f"a{i}.npy")
    return out


def _member(zf: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise _Bad(f"it has no member {name!r}") from None
    if info.flag_bits & 0x1:
        raise _Bad(f"member {name!r} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _Bad(f"member {name!r} uses compression method {info.compress_type}")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise _Bad(
            f"member {name!r} is stored uncompressed with {info.compress_size} bytes but "
            f"declares {info.file_size}"
        )
    return info


def _read_array(zf: zipfile.ZipFile, name: str, dtype: np.dtype, shape: tuple | None, limit):
    """Decode one ``.npy`` member after checking its header against ``dtype`` and ``shape``.

    ``shape=None`` accepts any 1-D length up to ``limit`` bytes (the JSON header). Nothing is
    allocated before the header's dtype, shape and byte count agree with what was expected.
    """
    info = _member(zf, name)
    storage = dtype if dtype.isbuiltin == 1 else np.dtype(f"uint{8 * dtype.itemsize}")
    with zf.open(info) as f:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            got_shape, fortran, got_dtype = npy_format.read_array_header_1_0(f)
        elif version == (2, 0):
            got_shape, fortran, got_dtype = npy_format.read_array_header_2_0(f)
        else:
            raise _Bad(f"member {name!r} has .npy version {version}")
        if got_dtype != storage or fortran:
            raise _Bad(f"member {name!r} holds {got_dtype} (fortran={fortran}), not {storage}")
        if shape is None:
            if len(got_shape) != 1 or got_shape[0] * storage.itemsize > limit:
                raise _Bad(f"its header member has shape {got_shape}, beyond {limit} bytes")
            shape = got_shape
        elif tuple(got_shape) != tuple(shape):
            raise _Bad(f"member {name!r} has shape {got_shape}, the header declares {shape}")
        nbytes = math.prod(shape) * storage.itemsize
        if info.file_size != f.tell() + nbytes:
            raise _Bad(
                f"member {name!r} declares {info.file_size} bytes, but its dtype and shape "
                f"need {f.tell() + nbytes}"
            )
        buf = bytearray(nbytes)
        view, pos = memoryview(buf), 0
        while pos < nbytes:
            chunk = f.read(min(_CHUNK, nbytes - pos))
            if not chunk:
                raise _Bad(f"member {name!r} ends after {pos} of {nbytes} bytes")
            view[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
        if f.read(1):  # also makes zipfile check the CRC, if it has not yet
            raise _Bad(f"member {name!r} is longer than it declares")
    arr = np.frombuffer(buf, storage).reshape(shape)
    return arr if storage == dtype else arr.view(dtype)


def _open(path):
    """Check the archive and its header: ``(zipfile, {key: _Declared})``, reading no array."""
    zf = zipfile.ZipFile(path)
    try:
        file_size = os.fstat(zf.fp.fileno()).st_size
        if sum(i.compress_size for i in zf.infolist()) > file_size:
            raise _Bad("its members declare more bytes than the file has")
        if _META + ".npy" not in zf.namelist():
            raise _Bad(f"it has no {_META} entry (not written by gradtx.save_state)")
        raw = _read_array(zf, _META + ".npy", np.dtype(np.uint8), None, MAX_HEADER_BYTES)
        try:
            meta = json.loads(raw.tobytes().decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise _Bad(f"its header is not UTF-8 JSON ({err})") from None
        return zf, _entries(meta)
    except BaseException:
        zf.close()
        raise


def _guarded(path, fn):
    """Run ``fn`` and turn every failure caused by the file's contents into the ValueError."""
    try:
        return fn()
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except _Bad as err:
        raise _bad(path, str(err)) from None
    except ValueError as err:
        if str(err).startswith("gradtx."):
            raise
        raise _bad(path, f"{type(err).__name__}: {err}") from err
    except MemoryError:
        raise
    except Exception as err:  # zipfile, zlib, struct, numpy header parsing, ...
        raise _bad(path, f"{type(err).__name__}: {err}") from err


def read_state_dict(path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES):
    """Read a ``save_state`` checkpoint into ``{key: numpy array}``, checking all of it.

    The arrays' declared sizes are added up from the header before any is read; more than
    ``max_bytes`` (16 GiB by default) raises ValueError. ``load_state`` needs no such limit:
    it reads only what ``like`` needs.
    """
    path = os.fspath(path)

    def read():
        zf, declared = _open(path)
        with zf:
            total = sum(d.nbytes for d in declared.values())
            if total > max_bytes:
                raise _Bad(
                    f"its arrays declare {total} bytes, more than max_bytes={max_bytes}; pass a "
                    "larger max_bytes if you trust this file, or load_state(path, like)"
                )
            return {
                k: _read_array(zf, d.member, d.dtype, d.shape, None) for k, d in declared.items()
            }

    return _guarded(path, read)


def load_state(path: str | os.PathLike, like, *, strict: bool = True):
    """Load a checkpoint written by ``save_state`` into a state shaped like ``like``.

    The header is read and every entry's declared dtype and shape compared with ``like``
    before any array is decoded, so a file can make ``load_state`` allocate no more than
    ``like`` needs. Then the arrays are read and checked (zip CRCs, sizes). A truncated,
    corrupted or foreign file raises ValueError naming the file. ``strict`` is that of
    ``load_state_dict``: by default every missing or unexpected key and every shape or dtype
    mismatch (dtypes as saved in the file: an int64 count is not an int32) is reported in one
    error; ``strict=False`` allows added and removed keys and casts a differing dtype to
    ``like``'s, warning where a value changes.
    """
    path = os.fspath(path)

    def read():
        zf, declared = _open(path)
        with zf:
            specs = {k: (d.shape, d.dtype) for k, d in declared.items()}
            want, cast = _fit(like, specs, strict, f"gradtx.load_state({path!r})")
            values = {
                k: _read_array(zf, declared[k].member, declared[k].dtype, declared[k].shape, None)
                for k in want
                if k in declared
            }
        return want, cast, values

    want, cast, values = _guarded(path, read)
    return _assemble(like, want, cast, values)


def _assemble(like, want, cast, values):
    from gradtx._state.tools import _cast_values

    values = _cast_values(values, cast, "gradtx.load_state")
    new = [_place(values[k], leaf) if k in values else leaf for k, leaf in want.items()]
    return jax.tree.unflatten(jax.tree.structure(like), new)


__all__ = ["load_state", "read_state_dict", "save_state"]
