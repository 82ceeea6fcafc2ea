"""Checkpoints: one versioned ``.npz`` file per state, written atomically.

File format (version 1): a NumPy ``.npz`` archive holding
- ``__gradtx__``: a uint8 array of UTF-8 JSON ``{"format": "gradtx-state", "format_version": 1,
  "gradtx_version": ..., "entries": [[key, dtype, shape], ...]}``;
- ``a0``, ``a1``, ...: the arrays of ``state_dict(state)``, in the order of ``entries``.
  Dtypes NumPy cannot store natively (bfloat16, float8) are stored as unsigned integers of
  the same width and viewed back on load. Nothing is pickled.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

import jax.numpy as jnp
import numpy as np

from gradtx._state.tools import load_state_dict, state_dict

FORMAT = "gradtx-state"
FORMAT_VERSION = 1
_META = "__gradtx__"


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


def save_state(path: str | os.PathLike, state) -> None:
    """Save ``state`` (any pytree of arrays: an optimizer state, ``(params, opt_state)``, ...).

    The file is written to a temporary file in the same folder (``.NAME.*.tmp``), flushed and
    fsync-ed, then renamed over ``path`` with ``os.replace``, and the folder is fsync-ed. A
    crash at any point leaves either the previous file or the new one, never a mixture (a stray
    temporary file may remain). ``path`` is used as given; ``.npz`` is the natural suffix.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            _write(f, state)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _bad(path, why: str) -> ValueError:
    return ValueError(
        f"gradtx.load_state: {path!r} is not a readable gradtx checkpoint: {why}. Nothing was "
        "loaded. If a save was interrupted, the previous checkpoint at this path is intact "
        "unless this file is it; load an earlier checkpoint."
    )


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a ``save_state`` checkpoint into ``{key: numpy array}``, checking all of it."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            if _META not in z.files:
                raise _bad(path, f"it has no {_META} entry (not written by gradtx.save_state)")
            meta = json.loads(z[_META].tobytes().decode())
            if meta.get("format") != FORMAT:
                raise _bad(path, f"its format is {meta.get('format')!r}, not {FORMAT!r}")
            if meta.get("format_version", 0) > FORMAT_VERSION:
                raise _bad(
                    path,
                    f"it has format version {meta['format_version']} (written by gradtx "
                    f"{meta.get('gradtx_version')}); this gradtx reads up to {FORMAT_VERSION}",
                )
            out = {}
            for i, (key, dtype, shape) in enumerate(meta["entries"]):
                raw = z[f"a{i}"]
                value = raw.view(jnp.dtype(dtype)) if raw.dtype != jnp.dtype(dtype) else raw
                if list(value.shape) != shape:
                    raise _bad(path, f"entry {key!r} has shape {value.shape}, recorded {shape}")
                out[key] = value
            return out
    except FileNotFoundError:
        raise
    except ValueError as err:
        if str(err).startswith("gradtx.load_state"):
            raise
        raise _bad(path, str(err)) from err
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, TypeError) as err:
        raise _bad(path, f"{type(err).__name__}: {err}") from err


def load_state(path: str | os.PathLike, like, *, strict: bool = True):
    """Load a checkpoint written by ``save_state`` into a state shaped like ``like``.

    The whole file is read and checked (zip CRCs, format name and version, every entry's
    shape) before anything is built; a truncated, corrupted or foreign file raises ValueError.
    ``strict`` is that of ``load_state_dict``: by default every missing or unexpected key and
    every shape or dtype mismatch is reported in one error.
    """
    return load_state_dict(like, read_state_dict(path), strict=strict)
