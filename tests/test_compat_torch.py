"""gradtx.compat.torch against torch.optim 2.13, through tests/fixtures/torch_optim.npz.

The fixture (written by tests/fixtures/make_torch_optim.py where torch is installed) holds
float64 trajectories of 40 steps of every torch.optim optimizer of the dialect with several
option combinations (each flag on and off, a StepLR or LambdaLR scheduler attached, two
parameter groups), and torch's state_dict at step 20 for the checkpoint test. The cases are
read from the file. Every comparison is to 1e-12 relative (the largest difference over the
run divided by the largest magnitude of that leaf), in float64, eager (no compilation).
"""

from __future__ import annotations

import inspect
import io
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import gradtx.compat.torch as optim
from gradtx.contrib import MuonDimensionNumbers

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "torch_optim.npz"
with np.load(FIXTURE, allow_pickle=False) as _z:
    DATA = {k: _z[k] for k in _z.files}
CASES = json.loads(str(DATA["cases"]))
STEPS = DATA["grads/w"].shape[0]
TOL = 1e-12
TORCH_LAYOUT = MuonDimensionNumbers(1, 0)  # torch's (out, in) weights


def _schedule(spec, lr):
    """The gradtx schedule of torch's scheduler spec, for a group whose base lr is ``lr``."""
    kind, kw = spec
    if kind == "StepLR":
        return gradtx.step_decay_schedule(lr, kw["step_size"], kw["gamma"])
    return gradtx.exponential_decay(lr, transition_steps=1, decay_rate=kw["gamma"])


def build(case):
    """The dialect optimizer of a fixture case: torch's arguments, passed as they are."""
    cls_name, kwargs, sched, groups = CASES[case]
    factory = getattr(optim, cls_name)
    kwargs = dict(kwargs)
    if cls_name == "Muon":
        kwargs["muon_weight_dimension_numbers"] = TORCH_LAYOUT
    base_lr = kwargs.get("lr", inspect.signature(factory).parameters["lr"].default)
    if sched is not None:
        kwargs["lr"] = _schedule(sched, base_lr)
    if groups is not None:
        groups = [dict(g) for g in groups]
        for g in groups:
            if sched is not None and "lr" in g:
                g["lr"] = _schedule(sched, g["lr"])
        return factory(groups, **kwargs)
    return factory(**kwargs)


def _tree(flat):
    """{"w": .., "b": .., "block": {...}} from {"w": .., "block/s": ..}."""
    out: dict = {}
    for k, v in flat.items():
        node = out
        *heads, last = k.split("/")
        for h in heads:
            node = node.setdefault(h, {})
        node[last] = v
    return out


def _flat(tree):
    return {
        gradtx.tree_utils.path_str(p) if hasattr(gradtx, "tree_utils") else p: x
        for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def _names(tree):
    return [
        "/".join(str(k.key) for k in p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def _grads(case, order, t):
    if CASES[case][0] == "LBFGS":
        return None
    return _tree({k: jnp.asarray(DATA[f"grads/{k}"][t]) for k in order})


def _lbfgs_grads(params, order):
    """The gradient of 0.5 x'Ax - b'x, x the leaves flattened in torch's order."""
    flat = dict(zip(_names(params), jax.tree.leaves(params), strict=True))
    x = jnp.concatenate([jnp.ravel(flat[k]) for k in order])
    g = jnp.asarray(DATA["quad/a"]) @ x - jnp.asarray(DATA["quad/b"])
    out, i = {}, 0
    for k in order:
        n = int(np.prod(flat[k].shape))
        out[k] = g[i : i + n].reshape(flat[k].shape)
        i += n
    return _tree(out)


def run(case, start=0, state=None, tx=None):
    """gradtx's trajectory from step ``start`` (params from the fixture): {leaf: [steps]}."""
    order = json.loads(str(DATA[f"{case}/order"]))
    tx = build(case) if tx is None else tx
    params = _tree({k: jnp.asarray(DATA[f"{case}/{k}"][start]) for k in order})
    state = tx.init(params) if state is None else state
    traj = {k: [] for k in _names(params)}
    for t in range(start, STEPS):
        g = _lbfgs_grads(params, order) if CASES[case][0] == "LBFGS" else _grads(case, order, t)
        updates, state = tx.update(g, state, params)
        params = gradtx.apply_updates(params, updates)
        for k, x in zip(_names(params), jax.tree.leaves(params), strict=True):
            traj[k].append(np.asarray(x))
    return traj


def rel_err(case, traj, start=0):
    err = 0.0
    for k, got in traj.items():
        want = DATA[f"{case}/{k}"][start + 1 :]
        got = np.stack(got)
        assert got.shape == want.shape, (case, k)
        err = max(err, float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300)))
    return err


ERRORS: dict[str, float] = {}


def test_every_optimizer_matches_torch():
    """All cases in one test (eager, shared op caches); the worst error per optimizer is kept
    in ERRORS and printed (docs/guide/torch.md's table)."""
    bad = {}
    with jax.enable_x64(True):
        for case, (cls_name, *_) in CASES.items():
            err = rel_err(case, run(case))
            ERRORS[cls_name] = max(ERRORS.get(cls_name, 0.0), err)
            if not err < TOL:
                bad[case] = err
    print({k: f"{v:.1e}" for k, v in ERRORS.items()})
    assert not bad, bad
    assert set(ERRORS) == set(optim.__all__) - {
        "load_optimizer_state",
        "export_torch_optimizer_state",
    }
