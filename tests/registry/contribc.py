"""Registry entries for optax.contrib's Adam-like and utility optimizers (contribc)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

import gradtx
import gradtx.contrib as gc
import gradtx.schedules as gs
from tests.registry._entry import E, OptaxCase


def _sam_kwargs(lib):
    return {
        "optimizer": lib.sgd(0.1),
        "adv_optimizer": lib.chain(lib.contrib.normalize(), lib.sgd(0.05)),
    }


def _grad_fn(params, i):
    """A stand-in gradient oracle for SAM's opaque mode: the gradient of sum(p ** 2) / 2."""
    del i
    return params


def _obj_fn(params):
    """A smooth loss with a non-constant Hessian, for Sophia's Hutchinson estimates."""
    return sum(jnp.sum(0.5 * x**2 + jnp.cos(x)) for x in jax.tree.leaves(params))


_OBJ = {"obj_fn": _obj_fn}
# Hutchinson's state is a uint32 PRNG key, which the contract's bf16 check does not admit among
# state dtypes; test_contribc.test_sophia_keeps_bfloat16 checks those three in bf16 instead.
# test_hyperparams' hypergradient check passes no extra_args (Sophia needs obj_fn).
_KEYED = {"needs_params": True, "extra_args": _OBJ, "bf16_ok": False, "differentiable": False}

ENTRIES = [
    E(gc.hutchinson_estimator_diag_hessian, {}, **_KEYED),
    E(
        gc.scale_by_sophia,
        {"update_interval": 2},
        sweep="b1",
        sweep_values=(0.0, 0.5, 0.9),
        **_KEYED,
    ),
    E(
        gc.sophia,
        {"learning_rate": 0.01, "bias_correction": True, "fresh_hessian": False},
        sweep="learning_rate",
        label="optax",
        **_KEYED,
    ),
    E(gc.sam, _sam_kwargs(gradtx), needs_params=True),
    E(
        gc.sam,
        {**_sam_kwargs(gradtx), "sync_period": 3, "reset_state": False},
        needs_params=True,
        label="3",
    ),
    E(
        gc.sam,
        {**_sam_kwargs(gradtx), "opaque_mode": True},
        needs_params=True,
        extra_args={"grad_fn": _grad_fn},
        label="opaque",
    ),
    E(gc.normalize, {}),
    E(gc.split_real_and_imaginary, {"inner": gradtx.adam(0.1)}),
    E(gc.scale_by_acprop, {}, sweep="b1", sweep_values=(0.0, 0.5, 0.9)),
    E(
        gc.scale_by_acprop,
        {"residual_of_previous_mu": True},
        sweep="b2",
        sweep_values=(0.5, 0.9, 0.999),
        label="optax",
    ),
    E(
        gc.acprop,
        {"learning_rate": 0.01, "weight_decay": 0.01},
        sweep="learning_rate",
        needs_params=True,
    ),
    E(gc.scale_by_adopt, {}, sweep="b1", sweep_values=(0.0, 0.5, 0.9)),
    E(
        gc.scale_by_adopt,
        {"use_clipping": False, "nesterov": True},
        sweep="b2",
        sweep_values=(0.5, 0.9, 0.999),
        label="noclip,nesterov",
    ),
    E(gc.adopt, {"learning_rate": 0.01}, sweep="learning_rate"),
    E(gc.scale_by_ademamix, {}, sweep="alpha", sweep_values=(0.0, 2.0, 5.0)),
    E(
        gc.scale_by_ademamix,
        {"b3": gs.linear_schedule(0.9, 0.999, 10), "alpha": gs.linear_schedule(0.0, 5.0, 10)},
        sweep="b1",
        sweep_values=(0.0, 0.5, 0.9),
        label="schedules",
    ),
    E(
        gc.ademamix,
        {"learning_rate": 0.01, "weight_decay": 0.01},
        sweep="learning_rate",
        needs_params=True,
    ),
    E(gc.scale_by_simplified_ademamix, {"alpha": 1.0}, sweep="alpha", sweep_values=(0.0, 1.0)),
    E(
        gc.simplified_ademamix,
        {"learning_rate": 0.01, "weight_decay": 0.01},
        sweep="learning_rate",
        needs_params=True,
    ),
    E(
        gc.scale_by_madgrad,
        {"learning_rate": 0.01},
        sweep="momentum",
        needs_params=True,
        sweep_values=(0.0, 0.5, 0.9),
    ),
    E(
        gc.madgrad,
        {"learning_rate": 0.01, "weight_decay": 0.01},
        sweep="learning_rate",
        needs_params=True,
    ),
]

NOT_TRANSFORMS: dict[str, str] = {}

_LR = {"learning_rate": 0.1}
# optax computes madgrad's sqrt(k + 1) from an int32 count, in float32 even under x64 (1e-8 to
# 1e-7 relative), and forms the step as ((1 - momentum) * z + momentum * x) - x, which cancels;
# gradtx uses the leaf's dtype and (1 - momentum) * (z - x).
_CANCEL = 1e-6
OPTAX_CASES = {
    "contrib:hutchinson_estimator_diag_hessian": OptaxCase(extra_args=_OBJ),
    "contrib:sophia": OptaxCase(kwargs={**_LR, "update_interval": 2}, extra_args=_OBJ),
    "contrib:sam": OptaxCase(kwargs=_sam_kwargs),
    "contrib:sam#3": OptaxCase(kwargs=lambda lib: {**_sam_kwargs(lib), "sync_period": 3}),
    "contrib:normalize": OptaxCase(),
    "contrib:split_real_and_imaginary": OptaxCase(kwargs=lambda lib: {"inner": lib.adam(0.1)}),
    "contrib:scale_by_acprop": OptaxCase(kwargs={"b1": 0.8, "b2": 0.95}),
    "contrib:acprop": OptaxCase(kwargs={**_LR, "weight_decay": 0.01}),
    "contrib:scale_by_adopt": OptaxCase(kwargs={"b1": 0.8, "b2": 0.95}),
    "contrib:adopt": OptaxCase(kwargs={**_LR, "nesterov": True}),
    "contrib:scale_by_ademamix": OptaxCase(kwargs={"b3": 0.99, "alpha": 3.0}),
    "contrib:ademamix": OptaxCase(kwargs={**_LR, "b3": 0.99, "weight_decay": 0.01}),
    "contrib:scale_by_simplified_ademamix": OptaxCase(kwargs={"alpha": 2.0, "b1": 0.9}),
    "contrib:simplified_ademamix": OptaxCase(kwargs={**_LR, "alpha": 2.0, "weight_decay": 0.01}),
    "contrib:scale_by_madgrad": OptaxCase(kwargs=_LR, rtol=_CANCEL),
    "contrib:madgrad": OptaxCase(kwargs={**_LR, "weight_decay": 0.01}, rtol=_CANCEL),
}
