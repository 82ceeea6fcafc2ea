"""Registry entries for the sign, trust-ratio, layer-wise and factored family (zoo_sign)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

import gradtx
from tests.registry._entry import E, OptaxCase


def _matrices(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


def _not_vectors(params):
    return jax.tree.map(lambda x: x.ndim != 1, params)


# min_dim_size_to_factor is left at gradtx's 0 (factor every matrix) in these entries: it
# decides shapes, so inject_hyperparams would need it in static_args.

ENTRIES = [
    # sign
    E(gradtx.scale_by_sign, {}),
    E(gradtx.scale_by_lion, {}, sweep="b1", sweep_values=(0.0, 0.5, 0.9)),
    E(
        gradtx.scale_by_lion,
        {"mode": "smooth", "smooth_beta": 2.0},
        sweep="b2",
        sweep_values=(0.5, 0.9, 0.99),
        label="smooth",
    ),
    E(gradtx.sign_sgd, {"learning_rate": 0.1}, sweep="learning_rate"),
    E(gradtx.signum, {"learning_rate": 0.1}, sweep="beta", sweep_values=(0.0, 0.5, 0.9)),
    E(gradtx.lion, {"learning_rate": 0.01}, sweep="learning_rate", needs_params=True),
    # trust ratio
    E(
        gradtx.scale_by_trust_ratio,
        {},
        sweep="trust_coefficient",
        sweep_values=(0.5, 1.0, 2.0),
        needs_params=True,
    ),
    E(
        gradtx.scale_by_trust_ratio,
        {"min_norm": 1e-6, "trust_coefficient": 0.01, "eps": 1e-8, "weight_decay": 0.1},
        sweep="weight_decay",
        sweep_values=(0.0, 0.1, 0.5),
        needs_params=True,
        label="lars",
    ),
    E(
        gradtx.scale_by_param_block_norm,
        {},
        sweep="min_scale",
        sweep_values=(1e-3, 0.1, 10.0),
        needs_params=True,
    ),
    E(
        gradtx.scale_by_param_block_rms,
        {},
        sweep="min_scale",
        sweep_values=(1e-3, 0.1, 10.0),
        needs_params=True,
    ),
    E(
        gradtx.lamb,
        {"learning_rate": 0.01, "weight_decay": 0.01},
        sweep="learning_rate",
        needs_params=True,
    ),
    E(
        gradtx.lars,
        {"learning_rate": 0.1, "weight_decay": 0.01},
        sweep="learning_rate",
        needs_params=True,
    ),
    E(
        gradtx.lars,
        {
            "learning_rate": 0.1,
            "weight_decay": 0.01,
            "weight_decay_mask": _matrices,
            "trust_ratio_mask": _not_vectors,
            "nesterov": True,
            "ratio_of_decayed_update": True,
        },
        sweep="weight_decay",
        sweep_values=(0.0, 0.01, 0.1),
        needs_params=True,
        label="optax,masks",
    ),
    E(gradtx.fromage, {"learning_rate": 0.01}, sweep="learning_rate", needs_params=True),
    # layer-wise
    E(
        gradtx.scale_by_novograd,
        {"weight_decay": 0.01},
        sweep="b2",
        sweep_values=(0.25, 0.5, 0.9),
        needs_params=True,
    ),
    E(gradtx.novograd, {"learning_rate": 0.01}, sweep="learning_rate", needs_params=True),
    E(gradtx.scale_by_sm3, {}, sweep="b1", sweep_values=(0.0, 0.5, 0.9)),
    E(gradtx.scale_by_sm3, {"b2": 0.9}, sweep="b2", sweep_values=(0.5, 0.9, 0.99), label="b2"),
    E(gradtx.sm3, {"learning_rate": 0.01}, sweep="learning_rate"),
    # factored
    E(
        gradtx.scale_by_factored_rms,
        {},
        sweep="decay_rate",
        sweep_values=(0.5, 0.8, 1.0),
    ),
    E(
        gradtx.scale_by_factored_rms,
        {"epsilon": None, "factor_largest": True, "eps_clamp": True},
        sweep="decay_rate",
        sweep_values=(0.5, 0.8, 1.0),
        label="torch_eps,largest",
    ),
    E(
        gradtx.adafactor,
        {},
        sweep="learning_rate",
        sweep_values=(1e-3, 1e-2, 1.0),
        needs_params=True,
    ),
    E(
        gradtx.adafactor,
        {
            "learning_rate": 0.05,
            "momentum": 0.9,
            "dtype_momentum": None,
            "weight_decay_rate": 0.01,
            "weight_decay_mask": _matrices,
            "relative_step": False,
        },
        sweep="momentum",
        sweep_values=(0.0, 0.5, 0.9),
        needs_params=True,
        label="optax_step,momentum",
    ),
]

NOT_TRANSFORMS: dict[str, str] = {}

_LR = {"learning_rate": 0.1}
# optax's adafactor computes its decay schedule in float32 (optax/_src/factorized.py,
# _decay_rate_pow), gradtx in the leaf's dtype: float64 runs agree to about 1e-7.
_F32_SCHEDULE = 1e-5
OPTAX_CASES = {
    "scale_by_sign": OptaxCase(),
    "scale_by_lion": OptaxCase(kwargs={"b1": 0.8, "b2": 0.95}),
    "sign_sgd": OptaxCase(kwargs=_LR),
    "signum": OptaxCase(kwargs={**_LR, "beta": 0.8}),
    "lion": OptaxCase(kwargs={**_LR, "weight_decay": 0.01}),
    "scale_by_trust_ratio": OptaxCase(
        kwargs={"min_norm": 0.1, "trust_coefficient": 2.0, "eps": 0.01}
    ),
    "scale_by_param_block_norm": OptaxCase(),
    "scale_by_param_block_rms": OptaxCase(kwargs={"min_scale": 0.5}),
    "lamb": OptaxCase(kwargs={**_LR, "weight_decay": 0.01}),
    "lars": OptaxCase(kwargs={**_LR, "weight_decay": 0.01, "nesterov": True}),
    "fromage": OptaxCase(kwargs=_LR),
    "scale_by_novograd": OptaxCase(kwargs={"weight_decay": 0.01}),
    "novograd": OptaxCase(kwargs={**_LR, "weight_decay": 0.01}),
    "scale_by_sm3": OptaxCase(
        kwargs={"b1": 0.8, "b2": 0.9}, scalar_leaf=False
    ),  # optax: IndexError
    "sm3": OptaxCase(kwargs=_LR, scalar_leaf=False),  # optax fails on 0-d leaves
    "scale_by_factored_rms": OptaxCase(kwargs={"min_dim_size_to_factor": 2}, rtol=_F32_SCHEDULE),
    "adafactor": OptaxCase(
        kwargs={
            "learning_rate": 0.05,
            "min_dim_size_to_factor": 2,
            "momentum": 0.9,
            "weight_decay_rate": 0.01,
            "dtype_momentum": jnp.float64,  # float32 averages would round the 1e-7 apart
        },
        rtol=_F32_SCHEDULE,
        float32=False,
    ),
}
