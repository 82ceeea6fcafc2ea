"""Registry entries for the precision transforms: slot dtypes, Kahan, stochastic rounding,
master weights, loss scaling."""

from __future__ import annotations

import jax.numpy as jnp

import gradtx
from tests.registry._entry import E

ENTRIES = [
    E(
        gradtx.with_dtypes,
        {"inner": gradtx.adam(0.01), "dtypes": {"mu": jnp.bfloat16}},
    ),
    E(
        gradtx.with_dtypes,
        {"inner": gradtx.sgd(0.1, momentum=0.9), "dtypes": {"trace": None}},
        label="unchanged",
    ),
    E(gradtx.kahan_compensation, {}, needs_params=True),
    E(gradtx.stochastic_rounding, {"key": 3}, needs_params=True),
    # float32 masters mirror bf16 parameters by design: its bf16 run is in test_precision.py
    E(gradtx.master_weights, {"inner": gradtx.adam(0.01)}, needs_params=True, bf16_ok=False),
    E(
        gradtx.dynamic_loss_scale,
        {"inner": gradtx.adam(0.01), "initial_scale": 1024.0, "growth_interval": 2},
        sweep="growth_factor",
        sweep_values=(1.0, 2.0, 4.0),
    ),
]

NOT_TRANSFORMS = {
    "StateBytes": "memory accounting: what state_bytes reports",
    "state_bytes": "memory accounting: bytes of a state by slot and parameter (eval_shape)",
    "stochastic_round": "a pure function: unbiased random rounding to a lower-precision dtype",
    "microbatch": "gradtx.microbatching.microbatch: a function transformation, not a transform",
}
