"""Registry entries for the Adam family (transforms/_adam_variants, _aliases/adam_variants)."""

from __future__ import annotations

import gradtx
from tests.registry._entry import E, OptaxCase

ENTRIES = [
    # transforms
    E(gradtx.scale_by_adamax, {}, sweep="b2", sweep_values=(0.9, 0.99, 0.999)),
    E(gradtx.scale_by_amsgrad, {}, sweep="b1", sweep_values=(0.0, 0.5, 0.9)),
    E(
        gradtx.scale_by_amsgrad,
        {"correct_before_max": True, "eps_root": 1e-8},
        sweep="b2",
        sweep_values=(0.9, 0.99),
        label="optax",
    ),
    E(gradtx.scale_by_nadam, {}, sweep="momentum_decay", sweep_values=(0.0, 4e-3, 1.0)),
    E(
        gradtx.scale_by_nadam,
        {"momentum_decay": float("inf")},
        sweep="b1",
        sweep_values=(0.5, 0.9),
        label="constant",
    ),
    # rho_t > threshold switches between the branches within the K steps for low thresholds
    E(gradtx.scale_by_radam, {"b2": 0.9}, sweep="threshold", sweep_values=(0.0, 1.5, 5.0)),
    E(
        gradtx.scale_by_radam,
        {"b2": 0.9, "threshold": 1.5, "nesterov": True, "eps_on_corrected": True},
        sweep="b2",
        sweep_values=(0.5, 0.9),
        label="optax",
    ),
    E(gradtx.scale_by_belief, {}, sweep="b2", sweep_values=(0.9, 0.99, 0.999)),
    E(
        gradtx.scale_by_belief,
        {"nesterov": True, "eps": 1e-8},
        sweep="b1",
        sweep_values=(0.5, 0.9),
        label="nesterov",
    ),
    E(gradtx.scale_by_yogi, {}, sweep="b2", sweep_values=(0.9, 0.99, 0.999)),
    E(
        gradtx.scale_by_yogi,
        {"mu_starts_at_accumulator": True, "initial_accumulator_value": 1e-3},
        sweep="b1",
        sweep_values=(0.0, 0.5, 0.9),
        label="optax",
    ),
    E(gradtx.scale_by_adan, {}, sweep="b2", sweep_values=(0.5, 0.92, 0.99)),
    E(
        gradtx.scale_by_adan,
        {"diff_weight": 0.08},
        sweep="diff_weight",
        sweep_values=(0.0, 0.08, 0.92),
        label="optax",
    ),
    # optimizers
    E(gradtx.adamax, {"learning_rate": 0.01}, sweep="learning_rate"),
    E(
        gradtx.adamax,
        {"learning_rate": 0.01, "weight_decay": 0.1},
        sweep="weight_decay",
        needs_params=True,
        label="l2",
    ),
    E(gradtx.adamaxw, {"learning_rate": 0.01}, sweep="weight_decay", needs_params=True),
    E(gradtx.amsgrad, {"learning_rate": 0.01}, sweep="learning_rate"),
    E(gradtx.adam, {"learning_rate": 0.01, "amsgrad": True}, sweep="b2", label="amsgrad"),
    E(
        gradtx.adamw,
        {"learning_rate": 0.01, "amsgrad": True},
        sweep="weight_decay",
        needs_params=True,
        label="amsgrad",
    ),
    E(gradtx.nadam, {"learning_rate": 0.01}, sweep="learning_rate"),
    E(
        gradtx.nadam,
        {"learning_rate": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
        sweep="weight_decay",
        needs_params=True,
        label="decoupled",
    ),
    E(gradtx.nadamw, {"learning_rate": 0.01}, sweep="weight_decay", needs_params=True),
    E(gradtx.radam, {"learning_rate": 0.01}, sweep="learning_rate"),
    E(
        gradtx.radam,
        {"learning_rate": 0.01, "weight_decay": 0.1},
        sweep="weight_decay",
        needs_params=True,
        label="l2",
    ),
    E(gradtx.adabelief, {"learning_rate": 0.01}, sweep="learning_rate"),
    E(gradtx.yogi, {"learning_rate": 0.01}, sweep="learning_rate"),
    E(gradtx.adan, {"learning_rate": 0.01}, sweep="learning_rate"),
    E(
        gradtx.adan,
        {"learning_rate": 0.01, "weight_decay": 0.02},
        sweep="weight_decay",
        needs_params=True,
        label="decay",
    ),
]

NOT_TRANSFORMS: dict[str, str] = {}

_LR = {"learning_rate": 0.1}
OPTAX_CASES = {
    "adabelief": OptaxCase(kwargs=_LR),
    "adamax": OptaxCase(kwargs=_LR),
    "adamaxw": OptaxCase(kwargs=_LR),
    "adan": OptaxCase(kwargs=_LR),
    "amsgrad": OptaxCase(kwargs=_LR),
    "nadam": OptaxCase(kwargs=_LR),
    "nadamw": OptaxCase(kwargs=_LR),
    # b2=0.9: optax forms 1 - b2**t by subtraction, so in float32 its rho_t is off by about
    # 0.04 at b2=0.999 (1% in the rectified step at t=6); gradtx's expm1 form by about 1e-4.
    "radam": OptaxCase(kwargs={**_LR, "b2": 0.9}),
    "yogi": OptaxCase(kwargs=_LR),
    "scale_by_adamax": OptaxCase(),
    "scale_by_adan": OptaxCase(),
    "scale_by_amsgrad": OptaxCase(),
    "scale_by_belief": OptaxCase(),
    "scale_by_radam": OptaxCase(kwargs={"b2": 0.9}),
    "scale_by_yogi": OptaxCase(),
}
