"""The error catalogue (after torch's optim_db): every kind of bad input and the error it gets.

One table of ``(callable, bad input, expected exception type, message regex)``; one
parametrised test calls ``callable(*bad.args, **bad.kwargs)`` and checks the exception and
its message. A row covers build-time validation, update-time checks (tree structure, leaf
shapes, missing params, non-scalar hyperparameters, integer and float0 leaves, complex
leaves), run-time hyperparameters (``tree_set``), state tools, the flat layout and checkpoints.
Add a row when adding a check; the message regex is the contract.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx


class Bad:
    """The bad input of a row: the positional and keyword arguments of the call."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __repr__(self):
        return ", ".join([*map(repr, self.args), *(f"{k}={v!r}" for k, v in self.kwargs.items())])


P = {"w": jnp.zeros(3)}
G = {"w": jnp.ones(3)}
_DIR = tempfile.mkdtemp(prefix="gradtx-errors-")


def update(tx, grads=G, params=None, init_params=P, **extra):
    """Build-then-update: ``tx.update(grads, tx.init(init_params), params)``."""
    return tx.update(grads, tx.init(init_params), params, **extra)


def injected_state(factory=gradtx.adam, **kwargs):
    return gradtx.inject_hyperparams(factory)(**kwargs).init(P)


def file_with(name, members: dict | bytes):
    """A file in the catalogue's folder holding raw bytes or zip members."""
    path = os.path.join(_DIR, name)
    if isinstance(members, bytes):
        with open(path, "wb") as fh:
            fh.write(members)
    else:
        with zipfile.ZipFile(path, "w") as zf:
            for k, v in members.items():
                zf.writestr(k, v)
    return path


def _npy(x: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=False)
    return buf.getvalue()


def header(entries, version=1):
    meta = {"format": "gradtx-state", "format_version": version, "entries": entries}
    return _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))


def load(path, like=None, **kwargs):
    return gradtx.load_state(path, like=like if like is not None else {"w": jnp.zeros(3)}, **kwargs)


def saved(state, name):
    path = os.path.join(_DIR, name)
    if "x64" in name:
        with jax.enable_x64(True):
            gradtx.save_state(path, state)
    else:
        gradtx.save_state(path, state)
    return path


def fifo(name):
    path = os.path.join(_DIR, name)
    if not os.path.exists(path):
        os.mkfifo(path)
    return path


def float0_grads():
    params = {"w": jnp.zeros(2), "n": jnp.zeros((), jnp.int32)}
    return jax.grad(lambda p: jnp.sum(p["w"]), allow_int=True)(params)


RANGE = r"is out of range; expected"
CATALOGUE = [
    # --- build time: Python and NumPy numbers are range-checked --------------------------
    (gradtx.adam, Bad(eps=-1e-8), ValueError, rf"scale_by_adam: eps=-1e-08 {RANGE} eps in \[0"),
    (gradtx.adam, Bad(b1=1.0), ValueError, rf"b1=1.0 {RANGE} b1 in \[0, 1\)"),
    (gradtx.adam, Bad(b2=np.float32(1.5)), ValueError, rf"b2=np.float32\(1.5\) {RANGE}"),
    (gradtx.adam, Bad(b1=True), TypeError, r"b1=True is a bool; expected a number"),
    (gradtx.adam, Bad(eps=lambda c: 1e-8), TypeError, r"eps is the callable .* not accept"),
    (gradtx.sgd, Bad(-0.1), ValueError, r"learning_rate=-0.1 .*flip_sign=False"),
    (gradtx.sgd, Bad(np.float64(-0.1)), ValueError, r"learning_rate=np.float64\(-0.1\)"),
    (gradtx.sgd, Bad(0.1, momentum=-0.5), ValueError, rf"trace: decay=-0.5 {RANGE}"),
    (gradtx.rmsprop, Bad(0.1, decay=1.2), ValueError, r"scale_by_rms: decay=1.2"),
    (gradtx.adagrad, Bad(0.1, eps=float("nan")), ValueError, rf"eps=nan {RANGE}"),
    (gradtx.clip_by_global_norm, Bad(-1.0), ValueError, r"max_norm=-1.0"),
    (gradtx.adamw, Bad(weight_decay=-0.1), ValueError, r"weight_decay=-0.1"),
    (gradtx.apply_every, Bad(k=2.5), ValueError, r"k=2.5 is not a whole number"),
    (gradtx.MultiSteps, Bad(gradtx.sgd(0.1), 0), ValueError, r"every_k_schedule=0"),
    (gradtx.chain, Bad(gradtx.scale_by_adam), TypeError, r"argument 0 .*scale_by_adam\(\)"),
    (gradtx.apply_if_finite, Bad(gradtx.sgd, 3), TypeError, r"inner is .*not a gradient"),
    (gradtx.conditionally_transform, Bad(gradtx.sgd(1), 3), TypeError, r"not callable"),
    (lambda e: gradtx.fused_updates(e).__enter__(), Bad(1), TypeError, r"enabled=1 is not a bool"),
    # --- schedules ---------------------------------------------------------------------
    (gradtx.warmup_cosine_decay_schedule, Bad(0.0, 1.0, 10, 5), ValueError, r"decay_steps=5 <="),
    (gradtx.piecewise_constant_schedule, Bad(1.0, [(1, 2, 3)]), ValueError, r"\(step, scale\)"),
    (gradtx.piecewise_constant_schedule, Bad(1.0, {10: -1.0}), ValueError, r"the scale of"),
    (gradtx.cyclic_schedule, Bad(0.1, 1.0, mode="sine"), ValueError, r"mode='sine'"),
    (gradtx.wsd_schedule, Bad(0, 1, 1, 1, 1, decay_type="exp"), ValueError, r"decay_type"),
    (gradtx.join_schedules, Bad([lambda c: c], [1]), ValueError, r"1 schedules and 1 bound"),
    (gradtx.exponential_decay, Bad(1.0, 0, 0.5), ValueError, r"transition_steps=0"),
    # --- inject_hyperparams ---------------------------------------------------------------
    (gradtx.inject_hyperparams(gradtx.sgd), Bad(*[0.1] * 20), TypeError, r"cannot bind the arg"),
    (
        gradtx.inject_hyperparams,
        Bad(gradtx.adam, hyperparam_dtype=jnp.bfloat16),
        ValueError,
        r"float32 or",
    ),
    (gradtx.inject_hyperparams(gradtx.adam), Bad(b2=1.5), ValueError, rf"b2=1.5 {RANGE}"),
    (gradtx.inject_hyperparams(gradtx.adam), Bad(b1=jnp.ones(2)), ValueError, r"b1 has shape"),
    (
        lambda tx: tx.init(P),
        Bad(gradtx.inject_hyperparams(gradtx.sgd)(learning_rate=lambda c: jnp.ones(2))),
        ValueError,
        r"the value of the schedule learning_rate=.* has shape \(2,\)",
    ),
    # --- update time: trees, shapes, params, hyperparameter shapes, dtypes ---------------
    (update, Bad(gradtx.adam(), {"x": jnp.ones(3)}), ValueError, r"(?s)tree structure.*\['x'\]"),
    (update, Bad(gradtx.adam(), {"w": jnp.ones(1)}), ValueError, r"updates\['w'\] has shape \(1"),
    (update, Bad(gradtx.scale_by_rss(), {"w": jnp.ones(1)}), ValueError, r"scale_by_rss: upd"),
    (update, Bad(gradtx.trace(0.9), {"w": jnp.ones(1)}), ValueError, r"the state's slot"),
    (update, Bad(gradtx.adamw()), ValueError, r"add_decayed_weights: .*params=None"),
    (update, Bad(gradtx.adaptive_grad_clip(0.1)), ValueError, r"adaptive_grad_clip: .*None"),
    (update, Bad(gradtx.adam(lambda c: jnp.ones(3))), ValueError, r"shape \(3,\).*scalar"),
    (
        update,
        Bad(gradtx.adam(0.1, b1=lambda c: jnp.ones(3))),
        ValueError,
        r"returned a value of shape",
    ),
    (update, Bad(gradtx.adam(0.1, b2=jnp.ones(3))), ValueError, r"hyperparameter has shape"),
    (
        update,
        Bad(gradtx.adam(), init_params={"n": jnp.zeros(2, jnp.int32)}),
        TypeError,
        r"parameter at \['n'\] has dtype int32; gradtx optimizes floating-point",
    ),
    (update, Bad(gradtx.scale(0.5), float0_grads()), TypeError, r"float0 leaf at \['n'\]"),
    (update, Bad(gradtx.clip(1.0), {"w": jnp.ones(3, jnp.complex64)}), TypeError, r"complex"),
    (
        lambda: gradtx.chain(gradtx.scale_by_adam(), gradtx.scale(-0.1)).update(G, ()),
        Bad(),
        ValueError,
        r"expected a tuple of 2 states",
    ),
    (
        gradtx.per_example_global_norm_clip,
        Bad([jnp.ones((2, 3)), jnp.ones((3, 3))], 1.0),
        ValueError,
        r"same leading batch axis",
    ),
    (
        update,
        Bad(
            gradtx.adaptive_grad_clip(0.1),
            {"w": jnp.ones((2,) * 6)},
            {"w": jnp.ones((2,) * 6)},
            init_params={"w": jnp.ones((2,) * 6)},
        ),  # fmt: skip
        ValueError,
        r"no default unit for rank > 5",
    ),
    # --- run time: tree_set / tree_get --------------------------------------------------
    (gradtx.tree_set, Bad(injected_state(b2=0.999), b2=1.0), ValueError, rf"b2=1.0 {RANGE}"),
    (
        gradtx.tree_set,
        Bad(injected_state(b2=0.999), b2=jnp.asarray(0.999, jnp.bfloat16)),
        ValueError,
        rf"b2=1.0 {RANGE}",
    ),
    (
        gradtx.tree_set,
        Bad(injected_state(learning_rate=0.1), learning_rate=np.float32(-1)),
        ValueError,
        r"learning_rate=np.float32\(-1.0\) is out of range",
    ),
    (
        gradtx.tree_set,
        Bad(injected_state(gradtx.sgd, learning_rate=0.1, momentum=0.9), momentum=2.0),
        ValueError,
        r"as gradtx.trace checks it\): momentum=2.0",
    ),
    (
        gradtx.tree_set,
        Bad(injected_state(learning_rate=0.1), learning_rate=jnp.ones(3)),
        ValueError,
        r"shape",
    ),
    (gradtx.tree_get, Bad(injected_state(), "lr"), KeyError, r"no field named 'lr'"),
    (gradtx.tree_get, Bad(gradtx.adam().init(P), "w"), KeyError, r"ambiguous"),
    # --- flat layout ------------------------------------------------------------------------
    (
        gradtx.flat_layout({"w": jnp.ones((2, 3))}).pack,
        Bad({"w": jnp.ones((3, 2))}),
        ValueError,
        r"pack: the leaf at \['w'\] has shape \(3, 2\)",
    ),
    (
        gradtx.flat_layout({"w": jnp.ones((2, 3))}).unflatten,
        Bad({"float32": jnp.ones(5)}),
        ValueError,
        r"buffer 'float32' has shape \(5,\)",
    ),
    (
        gradtx.flat_layout({"w": jnp.ones((2, 3))}).unflatten,
        Bad({}),
        ValueError,
        r"buffers \['float32'\] are missing",
    ),
    # --- state dicts and checkpoints ------------------------------------------------------
    (
        gradtx.load_state_dict,
        Bad({"w": jnp.zeros(3)}, {"w": np.zeros(3, np.float64)}),
        ValueError,
        r"mismatched w: saved float64\[3\], expected float32\[3\]",
    ),
    (
        gradtx.load_state_dict,
        Bad({"w": jnp.zeros(3)}, {"w": np.zeros(4, np.float32)}, strict=False),
        ValueError,
        r"mismatched w: saved float32\[4\]",
    ),
    (
        load,
        Bad(saved({"w": np.asarray([1.0, 2.0, 1e300])}, "x64.npz")),
        ValueError,
        r"saved float64\[3\], expected float32\[3\]",
    ),
    (gradtx.save_state, Bad(fifo("fifo"), P), ValueError, r"is a FIFO, not a regular file"),
    (gradtx.save_state, Bad(_DIR, P), ValueError, r"is a directory, not a regular file"),
    (gradtx.save_state, Bad(os.path.join(_DIR, "no", "dir.npz"), P), FileNotFoundError, r"cannot"),
    (load, Bad(os.path.join(_DIR, "missing.npz")), FileNotFoundError, r"missing.npz"),
    (load, Bad(file_with("text.npz", b"not a checkpoint")), ValueError, r"text.npz' is not a"),
    (load, Bad(file_with("empty.npz", b"")), ValueError, r"not a readable gradtx checkpoint"),
    (load, Bad(file_with("foreign.npz", {"w.npy": _npy(np.zeros(3))})), ValueError, r"no __gr"),
    (load, Bad(file_with("v99.npz", {"__gradtx__.npy": header([], 99)})), ValueError, r"ver.*99"),
    (
        load,
        Bad(file_with("list.npz", {"__gradtx__.npy": _npy(np.frombuffer(b"[1]", np.uint8))})),
        ValueError,
        r"its header is not a JSON object",
    ),
    (
        load,
        Bad(file_with("obj.npz", {"__gradtx__.npy": header([["w", "object", [3]]])})),
        ValueError,
        r"checkpoints hold numeric arrays only",
    ),
    (
        load,
        Bad(file_with("dup.npz", {"__gradtx__.npy": header([["w", "float32", [3]]] * 2)})),
        ValueError,
        r"the key 'w' appears twice",
    ),
    (
        load,
        Bad(file_with("tib.npz", {"__gradtx__.npy": header([["w", "float32", [1 << 38]]])})),
        ValueError,
        r"saved float32\[274877906944\], expected float32\[3\]",
    ),
    (
        gradtx.read_state_dict,
        Bad(file_with("tib2.npz", {"__gradtx__.npy": header([["w", "float32", [1 << 38]]])})),
        ValueError,
        r"more than max_bytes",
    ),
    (
        load,
        Bad(file_with("nodata.npz", {"__gradtx__.npy": header([["w", "float32", [3]]])})),
        ValueError,
        r"no member 'a0.npy'",
    ),
    (
        load,
        Bad(
            file_with(
                "shape.npz",
                {"__gradtx__.npy": header([["w", "float32", [3]]]), "a0.npy": _npy(np.zeros(4))},
            )
        ),
        ValueError,
        r"member 'a0.npy' holds float64",
    ),
]
IDS = [f"{i}-{getattr(fn, '__name__', 'call')}" for i, (fn, *_) in enumerate(CATALOGUE)]


@pytest.mark.parametrize("fn, bad, exc, pattern", CATALOGUE, ids=IDS)
def test_error_catalogue(fn, bad, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn(*bad.args, **bad.kwargs)
