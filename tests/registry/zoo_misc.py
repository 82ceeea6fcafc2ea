"""Registry entries for the zoo_misc family: Rprop, Adadelta, gradient noise, optimistic
methods, Polyak and DoG step sizes, ASGD, the centered RMS, schedules, constraints, masks, and
trace/sgd with torch's dampening."""

from __future__ import annotations

import jax.numpy as jnp

import gradtx
from tests.registry._entry import E, OptaxCase

VALUE = {"value": jnp.asarray(2.5)}  # the loss value scale_by_polyak reads


def _schedule(count):
    return 0.1 / (1 + count.astype(jnp.float32))


def _even(step):
    return step % 2 == 0


ENTRIES = [
    # sign-of-change
    # (learning_rate and DoG's reps_rel only set the initial state: not swept)
    E(gradtx.scale_by_rprop, {}, sweep="eta_minus", sweep_values=(0.3, 0.5, 0.9)),
    E(
        gradtx.scale_by_rprop,
        {"one_step_lag": True},
        sweep="eta_plus",
        sweep_values=(1.1, 1.2, 1.5),
        label="lag",
    ),
    E(gradtx.rprop, {"learning_rate": 0.01}, sweep="eta_minus", sweep_values=(0.3, 0.5, 0.9)),
    # Adadelta and the centered RMS
    E(gradtx.scale_by_adadelta, {}, sweep="rho", sweep_values=(0.5, 0.9, 0.99)),
    E(
        gradtx.adadelta,
        {"learning_rate": 1.0, "weight_decay": 0.1},
        sweep="learning_rate",
        sweep_values=(0.5, 1.0, 2.0),
        needs_params=True,
    ),
    E(gradtx.scale_by_stddev, {}, sweep="decay", sweep_values=(0.5, 0.9, 0.99)),
    # gradient noise: the state holds uint32 key data, which the contract's bf16 dtype list
    # does not include; tests/test_zoo_misc.py checks bf16 for these two
    E(gradtx.add_noise, {"key": 0}, sweep="eta", sweep_values=(0.01, 0.1, 0.3), bf16_ok=False),
    E(gradtx.noisy_sgd, {"learning_rate": 0.1, "key": 1}, sweep="learning_rate", bf16_ok=False),
    # optimistic
    E(gradtx.scale_by_optimistic_gradient, {}, sweep="beta", sweep_values=(0.0, 0.5, 1.0)),
    E(gradtx.optimistic_gradient_descent, {"learning_rate": 0.1}, sweep="learning_rate"),
    E(gradtx.optimistic_adam, {"learning_rate": 0.01}, sweep="learning_rate"),
    E(
        gradtx.optimistic_adam_v2,
        {"learning_rate": 0.01, "nesterov": True},
        sweep="beta",
        sweep_values=(0.0, 0.5, 1.0),
    ),
    # step sizes from the run
    E(
        gradtx.scale_by_polyak,
        {},
        sweep="max_learning_rate",
        sweep_values=(0.1, 0.5, 1.0),
        extra_args=VALUE,
    ),
    E(gradtx.polyak_sgd, {"max_learning_rate": 0.5}, sweep="scaling", extra_args=VALUE),
    E(
        gradtx.polyak_sgd,
        {"max_learning_rate": 0.5, "scaling": 0.5, "scale_before_step": True},
        sweep="f_min",
        sweep_values=(0.0, 0.5, 1.0),
        extra_args=VALUE,
        label="scale-first",
    ),
    E(
        gradtx.scale_by_distance_over_gradients,
        {},
        sweep="global_scale",
        sweep_values=(0.5, 1.0, 2.0),
        needs_params=True,
    ),
    E(gradtx.scale_by_asgd, {}, sweep="learning_rate", needs_params=True),
    E(gradtx.asgd, {}, sweep="lambd", sweep_values=(1e-4, 1e-2, 0.1), needs_params=True),
    E(
        gradtx.asgd,
        {"learning_rate": 0.05, "t0": 1.0, "weight_decay": 0.01},
        sweep="t0",
        sweep_values=(0.0, 1.0, 2.0),
        needs_params=True,
        label="averaging",
    ),
    # schedules, constraints, masks
    E(gradtx.scale_by_schedule, {"step_size_fn": _schedule}),
    E(gradtx.keep_params_nonnegative, {}, needs_params=True),
    E(gradtx.conditionally_mask, {"inner": gradtx.adam(0.01), "should_transform_fn": _even}),
    # torch's dampening
    E(
        gradtx.trace,
        {"decay": 0.9, "dampening": 0.3},
        sweep="dampening",
        sweep_values=(0.0, 0.3, 0.9),
        label="dampening",
    ),
    E(
        gradtx.sgd,
        {"learning_rate": 0.1, "momentum": 0.9, "dampening": 0.5},
        sweep="dampening",
        sweep_values=(0.0, 0.5, 1.0),
        label="dampening",
    ),
]

NOT_TRANSFORMS: dict[str, str] = {}

# optax 0.2.8's names, for tests/test_compat_optax.py. Not here: optimistic_adam (optax's warns
# DeprecationWarning when built) and scale_by_distance_over_gradients (optax's (1,)-shaped
# per-leaf scalars need rank promotion on matrix leaves): tests/test_zoo_misc.py compares both
# with optax directly.
OPTAX_CASES = {
    "rprop": OptaxCase(kwargs={"learning_rate": 0.01}),
    "scale_by_rprop": OptaxCase(kwargs={"learning_rate": 0.05, "eta_plus": 1.5}),
    "adadelta": OptaxCase(kwargs={"learning_rate": 0.5, "weight_decay": 0.1}),
    "scale_by_adadelta": OptaxCase(kwargs={"rho": 0.8}),
    "add_noise": OptaxCase(kwargs={"eta": 0.3, "gamma": 0.55, "key": 4}),
    "transforms:add_noise": OptaxCase(kwargs={"eta": 0.1, "gamma": 0.6, "key": 5}),
    "noisy_sgd": OptaxCase(kwargs={"learning_rate": 0.1, "eta": 0.3, "key": 4}),
    "scale_by_optimistic_gradient": OptaxCase(kwargs={"alpha": 0.5}),
    "optimistic_gradient_descent": OptaxCase(
        kwargs={"learning_rate": 0.1, "alpha": 0.7, "beta": 0.3}
    ),
    "optimistic_adam_v2": OptaxCase(kwargs={"learning_rate": 0.1, "beta": 0.5}, rtol=1e-9),
    "polyak_sgd": OptaxCase(kwargs={"max_learning_rate": 0.5, "scaling": 0.3}, extra_args=VALUE),
    "scale_by_polyak": OptaxCase(kwargs={"f_min": 0.5, "variant": "sps+"}, extra_args=VALUE),
    "scale_by_stddev": OptaxCase(kwargs={}),
    "scale_by_schedule": OptaxCase(kwargs={"step_size_fn": _schedule}),
    "keep_params_nonnegative": OptaxCase(kwargs={}),
    "transforms:keep_params_nonnegative": OptaxCase(kwargs={}),
    "conditionally_mask": OptaxCase(
        kwargs=lambda lib: {"inner": lib.sgd(0.1, momentum=0.9), "should_transform_fn": _even}
    ),
    "transforms:conditionally_mask": OptaxCase(
        kwargs=lambda lib: {"inner": lib.adam(0.1), "should_transform_fn": _even}
    ),
}
