"""The 8-device checks, run as ``python -m tests.scaleout.devices8`` with JAX_NUM_CPU_DEVICES=8.

Prints one JSON line of measurements; ``tests/test_scaleout.py`` asserts on them.
"""

from __future__ import annotations

import json
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from tests.registry import ENTRIES, example_params
from tests.scaleout import common
from tests.scaleout.cases import REDUCERS, apply_reducer, reducer_id

REGISTRY_SPECS = {"w": P(None, "model"), "b": P("model"), "block": {"s": P(), "k": P("data")}}


def state_follows_params(mesh):
    """Per registry entry: does eager init, and jit(init) with the helper's shardings, keep them?"""
    shard = jax.tree.map(lambda s: NamedSharding(mesh, s), REGISTRY_SPECS)
    params = jax.device_put(example_params(), shard)
    txs = {entry.name: entry.build() for entry in ENTRIES}
    wants = {name: gradtx.state_shardings(tx, params) for name, tx in txs.items()}
    # one program initialises every entry (one compilation, not one per entry); each output
    # is pinned to that entry's shardings, exactly as a jit of its init alone
    all_inits = jax.jit(lambda p: {n: tx.init(p) for n, tx in txs.items()}, out_shardings=wants)
    jitted_all = all_inits(params)
    split = lambda s: not s.is_fully_replicated  # noqa: E731
    same = lambda x, s: x.sharding.is_equivalent_to(s, x.ndim)  # noqa: E731
    report = {}
    for name, tx in txs.items():
        want, eager, jitted = wants[name], tx.init(params), jitted_all[name]
        report[name] = {
            "split_slots": sum(split(s) for s in jax.tree.leaves(want)),
            "eager": all(
                same(x, s)
                for x, s in zip(jax.tree.leaves(eager), jax.tree.leaves(want))
                if split(s)
            ),
            "jit": all(same(x, s) for x, s in zip(jax.tree.leaves(jitted), jax.tree.leaves(want))),
        }
    adam = gradtx.adam()
    plain = jax.jit(adam.init)(params)  # the trap: no out_shardings, everything on one device
    report["plain_jit_devices"] = max(len(x.sharding.device_set) for x in jax.tree.leaves(plain))
    return report


def run_shard_map(mesh, clip_axis=None):
    """Data parallel over all 8 devices with shard_map; params and state replicated."""
    axes = ("data", "model")
    tx = common.make_tx(clip_axis)

    def local_step(params, state, x, y):
        # The gradient of the mean loss over every device: with check_vma=True it comes out
        # summed over the devices already, i.e. the full-batch gradient on every device.
        loss, grads = jax.value_and_grad(lambda p: jax.lax.pmean(common.loss_fn(p, x, y), axes))(
            params
        )
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state, loss

    step = jax.jit(
        jax.shard_map(
            local_step,
            mesh=mesh,
            in_specs=(P(), P(), P(axes), P(axes)),
            out_specs=P(),
            check_vma=True,
        )
    )
    params = jax.device_put(common.init_params(), NamedSharding(mesh, P()))
    state = tx.init(params)
    xs, ys = common.batches()
    for i in range(common.STEPS):
        params, state, _ = step(params, state, xs[i], ys[i])
    ref_params, ref_state, norms = common.reference()
    return {
        "err_params": common.max_err(common.to_numpy(params), ref_params),
        "err_state": common.max_err(common.to_numpy(state), ref_state),
        "grad_norms": norms,
    }


def classic_gradient_ratio(mesh):
    """pmean(grad(local loss)) over the full-batch gradient, with check_vma on and off."""
    axes = ("data", "model")
    params = common.init_params()
    xs, ys = common.batches()
    want = jax.grad(common.loss_fn)(params, xs[0], ys[0])["w1"]
    ratios = {}
    for vma in (True, False):
        classic = jax.shard_map(
            lambda p, x, y: jax.lax.pmean(jax.grad(common.loss_fn)(p, x, y), axes),
            mesh=mesh,
            in_specs=(P(), P(axes), P(axes)),
            out_specs=P(),
            check_vma=vma,
        )
        got = classic(params, xs[0], ys[0])["w1"]
        ratios[f"check_vma={vma}"] = float(jnp.sum(got * want) / jnp.sum(want * want))
    return ratios


def run_shard_map_fsdp(mesh, clip_axis):
    """shard_map with params and state split over "model", batch over both axes.

    Each device gathers the full params for the forward pass; the gradient then comes back
    split over "model" (summed over every device), so clipping needs axis_name="model".
    """
    axes = ("data", "model")
    tx = common.make_tx(clip_axis)
    pshard = NamedSharding(mesh, P("model"))
    params = jax.device_put(common.init_params(), pshard)
    sshard = gradtx.state_shardings(tx, params)
    state = jax.jit(tx.init, out_shardings=sshard)(params)
    specs = (P("model"), jax.tree.map(lambda s: s.spec, sshard))

    def local_step(params, state, x, y):
        def loss(p):
            full = jax.tree.map(lambda v: jax.lax.all_gather(v, "model", tiled=True), p)
            return jax.lax.pmean(common.loss_fn(full, x, y), axes)

        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    step = jax.jit(
        jax.shard_map(local_step, mesh=mesh, in_specs=(*specs, P(axes), P(axes)), out_specs=specs)
    )
    xs, ys = common.batches()
    for i in range(common.STEPS):
        params, state = step(params, state, xs[i], ys[i])
    ref_params, ref_state, _ = common.reference()
    return {
        "err_params": common.max_err(common.to_numpy(params), ref_params),
        "err_state": common.max_err(common.to_numpy(state), ref_state),
    }


def run_reducers():
    """Each whole-tree reducer on a tree split over 8 devices, with and without axis_name."""
    mesh = Mesh(np.array(jax.devices()), ("i",))
    rng = np.random.default_rng(2)
    tree = {"a": rng.standard_normal((16, 3)), "b": rng.standard_normal(8)}
    tree = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), tree)
    report = {}
    for fn, kwargs in REDUCERS:
        want = jax.tree.map(np.asarray, apply_reducer(fn, kwargs, tree, None))

        def local(t, axis, fn=fn, kwargs=kwargs):
            out = apply_reducer(fn, kwargs, t, axis)
            return jax.tree.map(lambda v: v.reshape(1) if v.ndim == 0 else v, out)

        errs = {}
        for label, axis in (("without", None), ("with", "i")):
            run = jax.shard_map(
                partial(local, axis=axis), mesh=mesh, in_specs=P("i"), out_specs=P("i")
            )
            got = jax.tree.map(np.asarray, run(tree))
            rel = [
                np.max(np.abs(g - np.broadcast_to(w, g.shape))) / np.max(np.abs(w))
                for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want))
            ]
            errs[label] = float(max(rel))
        report[reducer_id((fn, kwargs))] = errs
    return report


def main():
    assert jax.device_count() == 8, f"expected 8 devices, got {jax.devices()}"
    mesh = Mesh(np.array(jax.devices()).reshape(2, 4), ("data", "model"))
    replicated = {k: P() for k in common.MODEL_SPECS}
    report = {
        "follow": state_follows_params(mesh),
        "gspmd": common.run_gspmd(mesh, common.MODEL_SPECS),
        "zero1": common.run_gspmd(mesh, replicated, zero1_axis="data"),
        "zero1_all": common.run_gspmd(mesh, replicated, zero1_axis=("data", "model")),
        "shard_map": run_shard_map(mesh),
        "shard_map_wrong_axis": run_shard_map(mesh, clip_axis=("data", "model")),
        "classic_gradient_ratio": classic_gradient_ratio(mesh),
        "shard_map_fsdp": run_shard_map_fsdp(mesh, "model"),
        "shard_map_fsdp_no_axis": run_shard_map_fsdp(mesh, None),
        "reducers": run_reducers(),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
