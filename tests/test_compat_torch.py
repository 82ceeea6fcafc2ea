"""gradtx.compat.torch against torch.optim 2.13, through tests/fixtures/torch_optim.npz.

The fixture (written by tests/fixtures/make_torch_optim.py where torch is installed) holds
float64 trajectories of 40 steps of every torch.optim optimizer of the dialect with several
option combinations (each flag on and off, a StepLR or LambdaLR scheduler attached, two
parameter groups), and torch's state_dict at step 20 for the checkpoint test. The cases are
read from the file. Steps 1-20 of every case are compared; steps 21-40 of the cases kept
with a checkpoint continue from torch's state (the suite's time budget). Every comparison is
to 1e-12 relative (the largest difference over the run divided by the largest magnitude of
that leaf), in float64, eagerly (only L-BFGS's update is compiled).
"""

from __future__ import annotations

import inspect
import json
import os
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


_BUILT: dict = {}


def _built(case):
    """The case's optimizer and its update, built once per case for the whole file. L-BFGS's
    two-loop recursion is a lax.scan, which eager mode would trace at every call: its update
    is compiled (once)."""
    if case not in _BUILT:
        tx = build(case)
        _BUILT[case] = (tx, jax.jit(tx.update) if CASES[case][0] == "LBFGS" else tx.update)
    return _BUILT[case]


def run(case, start=0, stop=STEPS, state=None):
    """gradtx's trajectory of steps start + 1 .. stop (params from the fixture's step start):
    {leaf: [params after each step]}."""
    order = json.loads(str(DATA[f"{case}/order"]))
    tx, update = _built(case)
    params = _tree({k: jnp.asarray(DATA[f"{case}/{k}"][start]) for k in order})
    state = tx.init(params) if state is None else state
    names = _names(params)
    traj = {k: [] for k in names}
    for t in range(start, stop):
        g = _lbfgs_grads(params, order) if CASES[case][0] == "LBFGS" else _grads(case, order, t)
        updates, state = update(g, state, params)
        params = gradtx.apply_updates(params, updates)
        for k, x in zip(names, jax.tree.leaves(params), strict=True):
            traj[k].append(np.asarray(x))
    return traj


def rel_err(case, traj, start=0):
    """max over leaves of max |gradtx - torch| / max |torch| over the steps in ``traj``."""
    err = 0.0
    for k, got in traj.items():
        want = DATA[f"{case}/{k}"][start + 1 : start + 1 + len(got)]
        got = np.stack(got)
        assert got.shape == want.shape, (case, k)
        err = max(err, float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300)))
    return err


ERRORS: dict[str, float] = {}
HALF = STEPS // 2  # steps 21-40 are checked from torch's checkpoint (test below)
CHECKPOINTED = sorted({k.split("/")[1] for k in DATA if k.startswith("ckpt/")})


def _record(cls_name, err):
    ERRORS[cls_name] = max(ERRORS.get(cls_name, 0.0), err)


def test_every_optimizer_matches_torch():
    """Every case for its first 20 steps; steps 21-40 of one or two cases per optimizer are
    the checkpoint test's (GRADTX_TORCH_FULL=1 runs all 40 steps of every case: about 2x the
    time). One test: eager, so the cases share the op caches."""
    bad = {}
    stop = STEPS if os.environ.get("GRADTX_TORCH_FULL") else HALF
    with jax.enable_x64(True):
        for case, (cls_name, *_) in CASES.items():
            # L-BFGS's update is compiled (see run): its 40 steps then cost nothing
            err = rel_err(case, run(case, stop=STEPS if cls_name == "LBFGS" else stop))
            _record(cls_name, err)
            if not err < TOL:
                bad[case] = err
    assert not bad, bad
    assert set(ERRORS) == set(optim.__all__) - {
        "load_optimizer_state",
        "export_torch_optimizer_state",
    }


def _checkpoint(case, tmp_path):
    """torch's state_dict at step 20, as the .npz export_torch_optimizer_state wrote."""
    prefix = f"ckpt/{case}/"
    path = tmp_path / f"{case}.npz"
    np.savez(path, **{k[len(prefix) :]: v for k, v in DATA.items() if k.startswith(prefix)})
    return path


def _params_at(case, t):
    order = json.loads(str(DATA[f"{case}/order"]))
    return order, _tree({k: jnp.asarray(DATA[f"{case}/{k}"][t]) for k in order})


@pytest.mark.parametrize("case", CHECKPOINTED)
def test_torch_checkpoint_continues_in_gradtx(case, tmp_path):
    """torch stopped at step 20, its state_dict loaded, gradtx runs steps 21-40: torch's
    step-40 parameters (and every step between) to 1e-12."""
    cls_name = CASES[case][0]
    with jax.enable_x64(True):
        order, params = _params_at(case, HALF)
        tx, _ = _built(case)
        step = HALF if cls_name in ("SGD", "Muon") else None  # torch keeps no step for them
        state = optim.load_optimizer_state(
            _checkpoint(case, tmp_path), params, tx, names=order, step=step
        )
        err = rel_err(case, run(case, start=HALF, state=state), start=HALF)
    _record(cls_name, err)
    assert err < TOL


def _torch_dict(case):
    """The checkpoint as torch's own state_dict() layout: {"state": {i: {key: array}}, ...}."""
    prefix = f"ckpt/{case}/"
    state: dict = {}
    for k, v in DATA.items():
        if k.startswith(prefix + "state/"):
            _, index, key = k[len(prefix) :].split("/")
            state.setdefault(int(index), {})[key] = v
    groups = json.loads(str(DATA[prefix + "param_groups"]))
    return {"state": state, "param_groups": groups}


def test_a_state_dict_loads_as_its_export():
    """The dict route (optimizer.state_dict() with arrays) gives the state the .npz gives."""
    case = "adam_groups"
    with jax.enable_x64(True):
        order, params = _params_at(case, HALF)
        state = optim.load_optimizer_state(_torch_dict(case), params, _built(case)[0], names=order)
        err = rel_err(case, run(case, start=HALF, stop=HALF + 3, state=state), HALF)
    assert err < TOL


def test_a_wrong_checkpoint_lists_every_mismatch():
    """Swapping two names of different shapes: one error naming all four mismatched slots."""
    case = "adamax_options"
    with jax.enable_x64(True):
        order, params = _params_at(case, HALF)
        names = list(order)
        i, j = names.index("w"), names.index("block/k")
        names[i], names[j] = names[j], names[i]
        with pytest.raises(ValueError) as info:
            optim.load_optimizer_state(_torch_dict(case), params, build(case), names=names)
    msg = str(info.value)
    for key in ("exp_avg", "exp_inf"):
        for name in ("'w'", "'block/k'"):
            assert any(key in line and name in line for line in msg.splitlines()), (key, name)
    assert "(5, 3)" in msg and "(2, 5, 3)" in msg and "4 problems" in msg


def test_an_unknown_name_is_reported_with_the_rest():
    case = "adamax_options"
    with jax.enable_x64(True):
        order, params = _params_at(case, HALF)
        names = ["nope" if n == "block/s" else n for n in order]
        with pytest.raises(ValueError) as info:
            optim.load_optimizer_state(_torch_dict(case), params, build(case), names=names)
    msg = str(info.value)
    assert "['nope']" in msg  # not a parameter path
    assert "['block/s']" in msg  # and block/s is missing from the names


def test_largest_errors_seen():
    """The table of docs/guide/torch.md: the worst error per optimizer (run after the others)."""
    assert ERRORS and max(ERRORS.values()) < TOL
    print({k: f"{v:.1e}" for k, v in sorted(ERRORS.items())})


def test_groups_and_arguments_are_checked():
    """torch-style groups: every leaf in exactly one group; a group key must be an argument;
    torch's kernel flags pass, other unknown keywords do not; a params tree is refused."""
    params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
    with pytest.raises(ValueError, match="several groups"):
        optim.Adam([{"params": "w"}, {"params": "*"}]).init(params)
    with pytest.raises(ValueError, match="only one"):
        optim.Adam([{"lr": 0.1}, {"params": None}])
    with pytest.raises(TypeError, match="bettas"):
        optim.Adam([{"params": "w", "bettas": (0.9, 0.9)}, {}])
    with pytest.raises(TypeError, match="spelling"):
        optim.SGD(lr=0.1, nesterof=True)
    with pytest.raises(TypeError, match="at init"):
        optim.SGD(params, lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="schedule"):
        optim.Rprop(lr=lambda count: 0.1)
    tx = optim.AdamW([{"params": ["b"], "weight_decay": 0.0}, {}], lr=0.5, foreach=True)
    updates, _ = tx.update(params, tx.init(params), params)
    # Adam's first step is lr * sign(g); AdamW adds lr * wd * w for w only
    np.testing.assert_allclose(np.asarray(updates["b"]), -0.5, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(updates["w"]), -0.5 * 1.01, rtol=1e-6)
