"""Registry entries for the parameter-free and schedule-free optimizers of gradtx.contrib."""

from __future__ import annotations

import jax.numpy as jnp

import gradtx
import gradtx.contrib as gc
from tests.registry._entry import E, OptaxCase

ENTRIES = [
    E(
        gc.schedule_free,
        {"base_optimizer": gradtx.sgd(0.1), "learning_rate": 0.1},
        sweep="b1",
        sweep_values=(0.0, 0.5, 0.9),
        needs_params=True,
    ),
    E(
        gc.schedule_free_sgd,
        {"learning_rate": 0.1},
        sweep="b1",
        sweep_values=(0.0, 0.5, 0.9),
        needs_params=True,
    ),
    E(
        gc.schedule_free_sgd,
        {"learning_rate": 0.1, "warmup_steps": 3, "weight_decay": 0.01},
        sweep="learning_rate",
        needs_params=True,
        label="warmup",
    ),
    E(
        gc.schedule_free_adamw,
        {"learning_rate": 0.01},
        sweep="b2",
        sweep_values=(0.9, 0.99, 0.999),
        needs_params=True,
    ),
    E(
        gc.schedule_free_adamw,
        {
            "learning_rate": 0.01,
            "warmup_steps": 3,
            "weight_decay": 0.01,
            "bias_correction": "moment",
            "warmup_lag": True,
        },
        sweep="weight_decay",
        sweep_values=(0.0, 0.01, 0.1),
        needs_params=True,
        label="optax",
    ),
]

ENTRIES += [
    E(gc.prodigy, {}, sweep="learning_rate", sweep_values=(0.5, 1.0, 2.0), needs_params=True),
    E(
        gc.prodigy,
        {
            "weight_decay": 0.01,
            "safeguard_warmup": True,
            "bias_correction": True,
            "eps_with_new_estimate": True,
            "beta3": 0.9,
        },
        sweep="estim_lr_coef",
        sweep_values=(0.5, 1.0, 2.0),
        needs_params=True,
        label="optax,safeguard",
    ),
    E(gc.dadapt_adamw, {}, sweep="learning_rate", sweep_values=(0.5, 1.0, 2.0), needs_params=True),
    E(
        gc.dadapt_adamw,
        {"weight_decay": 0.01, "bias_correction": True},
        sweep="weight_decay",
        sweep_values=(0.0, 0.01, 0.1),
        needs_params=True,
        label="optax",
    ),
]

ENTRIES += [
    E(gc.scale_by_dog, {}, sweep="eps", sweep_values=(1e-8, 1e-4, 1e-2), needs_params=True),
    E(
        gc.scale_by_dog,
        {"init_step": ("learning_rate", 0.1)},
        sweep="eps",
        sweep_values=(1e-8, 1e-4, 1e-2),
        needs_params=True,
        label="learning_rate",
    ),
    E(
        gc.dog,
        {"init_step": ("distance", 1e-3), "weight_decay": 0.01},
        sweep="learning_rate",
        sweep_values=(0.5, 1.0, 2.0),
        needs_params=True,
    ),
    E(gc.scale_by_dowg, {}, sweep="eps", sweep_values=(1e-6, 1e-4, 1e-2), needs_params=True),
    E(
        gc.dowg,
        {"init_estim_sq_dist": 1e-3, "weight_decay": 0.01},
        sweep="learning_rate",
        sweep_values=(0.5, 1.0, 2.0),
        needs_params=True,
    ),
]

ENTRIES += [
    E(gc.scale_by_cocob, {}, sweep="alpha", sweep_values=(10.0, 100.0, 1000.0), needs_params=True),
    E(
        gc.cocob,
        {"weight_decay": 0.01},
        sweep="learning_rate",
        sweep_values=(0.5, 1.0, 2.0),
        needs_params=True,
    ),
    E(
        gc.mechanize,
        {"base_optimizer": gradtx.adam(0.01)},
        sweep="weight_decay",
        sweep_values=(0.0, 0.01, 0.1),
        needs_params=True,
        # its betting state is a float32 vector of num_betas scalars, which the contract's
        # bf16 check takes for a slot: test_paramfree checks bf16 for mechanize instead
        bf16_ok=False,
    ),
    E(
        gc.mechanize,
        {"base_optimizer": gradtx.sgd(0.1), "num_betas": 3, "eps_in_delta": True},
        sweep="s_init",
        sweep_values=(1e-6, 1e-4, 1e-2),
        needs_params=True,
        bf16_ok=False,
        label="optax",
    ),
]

_VALUE = {"value": jnp.asarray(2.0)}
ENTRIES += [
    E(
        gc.momo,
        {},
        sweep="beta",
        sweep_values=(0.0, 0.5, 0.9),
        needs_params=True,
        extra_args=_VALUE,
    ),
    E(
        gc.momo,
        {"learning_rate": 0.5, "weight_decay": 0.01, "adapt_lower_bound": True},
        sweep="learning_rate",
        sweep_values=(0.1, 0.5, 1.0),
        needs_params=True,
        extra_args=_VALUE,
        label="adapt",
    ),
    E(
        gc.momo_adam,
        {},
        sweep="b2",
        sweep_values=(0.9, 0.99, 0.999),
        needs_params=True,
        extra_args=_VALUE,
    ),
    E(
        gc.momo_adam,
        {"weight_decay": 0.01, "adapt_lower_bound": True},
        sweep="learning_rate",
        sweep_values=(1e-3, 1e-2, 1e-1),
        needs_params=True,
        extra_args=_VALUE,
        label="adapt",
    ),
]

NOT_TRANSFORMS = {
    "schedule_free_eval_params": "a function of (state, params): the averaged iterate x",
}

# optax's warmup_constant_schedule computes in float32, even under x64
_F32_SCHEDULE = 1e-5
OPTAX_CASES = {
    "contrib:schedule_free": OptaxCase(
        kwargs=lambda lib: {"base_optimizer": lib.sgd(0.1), "learning_rate": 0.1, "b1": 0.8}
    ),
    "contrib:schedule_free_sgd": OptaxCase(
        kwargs={"learning_rate": 0.1, "warmup_steps": 3, "weight_decay": 0.01},
        rtol=_F32_SCHEDULE,
    ),
    "contrib:schedule_free_adamw": OptaxCase(kwargs={"learning_rate": 0.05, "weight_decay": 0.01}),
    "contrib:prodigy": OptaxCase(kwargs={"estim_lr0": 1e-3, "weight_decay": 0.01}),
    "contrib:prodigy#safeguard": OptaxCase(
        kwargs={"estim_lr0": 1e-3, "safeguard_warmup": True, "beta3": 0.9}
    ),
    # d = max(d, r / |s|_1) amplifies float32 rounding of the sums (5e-5 by step 10): float64
    "contrib:dadapt_adamw": OptaxCase(
        kwargs={"estim_lr0": 1e-3, "weight_decay": 0.01}, float32=False
    ),
    # optax.contrib does not export scale_by_dog / scale_by_dowg: they are checked through
    # dog and dowg (their only transforms besides the learning rate)
    "contrib:dog#heuristic": OptaxCase(kwargs={"init_step": ("heuristic", 1e-3)}),
    "contrib:dog#learning_rate": OptaxCase(kwargs={"init_step": ("learning_rate", 0.1)}),
    "contrib:dog": OptaxCase(kwargs={"init_step": ("distance", 1e-2), "weight_decay": 0.01}),
    "contrib:dowg#init": OptaxCase(kwargs={"init_estim_sq_dist": 1e-3}),
    "contrib:dowg": OptaxCase(kwargs={"weight_decay": 0.01}),
    "contrib:scale_by_cocob": OptaxCase(kwargs={"alpha": 10.0}),
    "contrib:cocob": OptaxCase(kwargs={"learning_rate": 0.5, "weight_decay": 0.01}),
    "contrib:mechanize": OptaxCase(
        kwargs=lambda lib: {"base_optimizer": lib.sgd(0.1), "s_init": 1e-3}
    ),
    "contrib:momo": OptaxCase(kwargs={"learning_rate": 0.5}, extra_args=_VALUE),
    "contrib:momo#adapt": OptaxCase(
        kwargs={"weight_decay": 0.01, "adapt_lower_bound": True}, extra_args=_VALUE
    ),
    "contrib:momo_adam": OptaxCase(kwargs={"learning_rate": 0.1}, extra_args=_VALUE),
    "contrib:momo_adam#adapt": OptaxCase(
        kwargs={"weight_decay": 0.01, "adapt_lower_bound": True}, extra_args=_VALUE
    ),
    "contrib:schedule_free_adamw#warmup": OptaxCase(
        kwargs={"learning_rate": 0.05, "warmup_steps": 4}, rtol=_F32_SCHEDULE
    ),
}
