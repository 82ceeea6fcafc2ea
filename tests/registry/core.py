"""Registry entries for the 0.1 library: contract, seed optimizers, schedules, combinators."""

from __future__ import annotations

import jax
import jax.numpy as jnp

import gradtx
from tests.registry._entry import E, OptaxCase


def _is_matrix(x) -> bool:
    return x.ndim > 1


ENTRIES = [
    # contract
    E(gradtx.identity, {}, complex_ok=True),
    E(gradtx.stateless, {"fn": lambda u, p: jax.tree.map(lambda g: 2 * g, u)}),
    E(gradtx.chain, {}, label="empty"),
    E(gradtx.stateless_with_tree_map, {"f": lambda u, p: u * 0.5 + 0.1 * p}, needs_params=False),
    E(gradtx.with_extra_args_support, {"tx": gradtx.adam(0.01)}),
    # scaling
    E(gradtx.scale, {"step_size": 0.5}, sweep="step_size", complex_ok=True),
    E(
        gradtx.scale_by_learning_rate,
        {"learning_rate": 0.1},
        sweep="learning_rate",
        complex_ok=True,
    ),
    # momentum
    E(gradtx.trace, {"decay": 0.9}, sweep="decay", sweep_values=(0.0, 0.5, 0.9), complex_ok=True),
    E(
        gradtx.trace,
        {"decay": 0.9, "nesterov": True},
        sweep="decay",
        label="nesterov",
        complex_ok=True,
    ),
    E(gradtx.ema, {"decay": 0.9}, sweep="decay", sweep_values=(0.5, 0.9, 0.99), complex_ok=True),
    # adaptive
    E(gradtx.scale_by_rss, {}, sweep="eps", sweep_values=(1e-10, 1e-3, 1e-1), complex_ok=True),
    E(gradtx.scale_by_rms, {}, sweep="decay", sweep_values=(0.9, 0.99, 0.5), complex_ok=True),
    E(
        gradtx.scale_by_rms,
        {"centered": True, "bias_correction": True, "eps_in_sqrt": True, "eps": 1e-2},
        sweep="decay",
        sweep_values=(0.9, 0.99, 0.5),
        label="centered",
    ),
    E(gradtx.scale_by_adam, {}, sweep="b1", sweep_values=(0.0, 0.5, 0.9), complex_ok=True),
    E(
        gradtx.scale_by_adam,
        {"nesterov": True},
        sweep="b2",
        sweep_values=(0.9, 0.99),
        label="nadam",
    ),
    # decay
    E(gradtx.add_decayed_weights, {"weight_decay": 0.1}, sweep="weight_decay", needs_params=True),
    E(gradtx.add_l2_penalty, {"weight_decay": 0.1}, sweep="weight_decay", needs_params=True),
    # clipping
    E(gradtx.clip, {"max_delta": 0.1}, sweep="max_delta"),
    E(gradtx.clip_by_global_norm, {"max_norm": 0.5}, sweep="max_norm", complex_ok=True),
    E(gradtx.clip_by_block_rms, {"threshold": 0.5}, sweep="threshold", complex_ok=True),
    E(gradtx.adaptive_grad_clip, {"clipping": 0.1}, sweep="clipping", needs_params=True),
    E(gradtx.centralize, {}),
    E(
        gradtx.normalize_by_update_norm,
        {},
        sweep="scale_factor",
        sweep_values=(0.5, 1.0, 2.0),
        complex_ok=True,
    ),
    # wrappers
    E(
        gradtx.apply_if_finite,
        {"inner": gradtx.adam(0.01), "max_consecutive_errors": 3},
        sweep="max_consecutive_errors",
        sweep_values=(0, 1, 3),
    ),
    E(gradtx.zero_nans, {}, complex_ok=True),
    E(gradtx.flatten, {"inner": gradtx.adam(0.01)}),
    # averaging
    E(
        gradtx.lookahead,
        {"fast_optimizer": gradtx.sgd(0.1), "sync_period": 2, "slow_step_size": 0.5},
        sweep="slow_step_size",
        sweep_values=(0.2, 0.5, 0.8),
        needs_params=True,
        params_fn=gradtx.LookaheadParams.init_synced,
    ),
    E(
        gradtx.lookahead,
        {
            "fast_optimizer": gradtx.adam(0.01),
            "sync_period": 3,
            "slow_step_size": 0.5,
            "reset_state": True,
        },
        sweep="sync_period",
        sweep_values=(1, 2, 3),
        needs_params=True,
        params_fn=gradtx.LookaheadParams.init_synced,
        label="reset",
    ),
    E(gradtx.average_params, {"decay": 0.9}, sweep="decay", needs_params=True),
    E(
        gradtx.average_params,
        {"start_step": 1, "mode": "swa"},
        sweep="start_step",
        sweep_values=(0, 1, 2),
        needs_params=True,
        label="swa",
    ),
    # monitoring
    E(gradtx.snapshot, {"measure_name": "norm", "measure": gradtx.global_norm}),
    E(gradtx.monitor, {}),
    E(
        gradtx.monitor,
        {"measures": {"ema": gradtx.measure_with_ema(gradtx.global_norm, 0.9)}},
        label="ema",
    ),
    # optimizers
    E(gradtx.sgd, {"learning_rate": 0.1}, sweep="learning_rate", complex_ok=True),
    E(
        gradtx.sgd,
        {"learning_rate": 0.1, "momentum": 0.9},
        sweep="momentum",
        label="momentum",
        complex_ok=True,
    ),
    E(
        gradtx.sgd,
        {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
        sweep="learning_rate",
        label="nesterov",
    ),
    E(gradtx.adagrad, {"learning_rate": 0.1}, sweep="learning_rate", complex_ok=True),
    E(gradtx.rmsprop, {"learning_rate": 0.01}, sweep="learning_rate", complex_ok=True),
    E(
        gradtx.rmsprop,
        {"learning_rate": 0.01, "centered": True, "momentum": 0.9},
        sweep="decay",
        sweep_values=(0.9, 0.99),
        label="centered-momentum",
    ),
    E(gradtx.adam, {"learning_rate": 0.01}, sweep="learning_rate", complex_ok=True),
    E(
        gradtx.adamw,
        {"learning_rate": 0.01},
        sweep="weight_decay",
        needs_params=True,
        complex_ok=True,
    ),
    # hyperparameters in the state
    E(gradtx.inject_hyperparams, {"learning_rate": 0.01}, sweep="learning_rate", wraps=gradtx.adam),
    E(
        gradtx.inject_hyperparams,
        {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
        sweep="momentum",
        sweep_values=(0.0, 0.5, 0.9),
        wraps=gradtx.sgd,
    ),
    E(
        gradtx.inject_hyperparams,
        {"learning_rate": lambda count: 0.01 * 0.9 ** count.astype(jnp.float32), "b1": 0.9},
        sweep="weight_decay",
        needs_params=True,
        wraps=gradtx.adamw,
    ),
    E(
        gradtx.inject_hyperparams,
        {"decay": 0.9, "eps": 1e-2, "eps_in_sqrt": True, "centered": True, "bias_correction": True},
        sweep="decay",
        sweep_values=(0.9, 0.99, 0.5),
        wraps=gradtx.scale_by_rms,
    ),
    # combinators
    E(
        gradtx.named_chain,
        {},
        args=(
            ("clip", gradtx.clip(0.5)),
            ("adam", gradtx.scale_by_adam()),
            ("lr", gradtx.scale(-0.1)),
        ),
    ),
    E(
        gradtx.masked,
        {"inner": gradtx.adam(0.01), "mask": lambda p: jax.tree.map(_is_matrix, p)},
        needs_params=True,
    ),
    E(
        gradtx.masked,
        {"inner": gradtx.adam(0.01), "mask": {"w": True, "b": False, "block": True}},
        label="tree",
        any_tree=False,
    ),
    E(
        gradtx.partition,
        {
            "transforms": {"matrix": gradtx.adam(0.01), "other": gradtx.sgd(0.1, momentum=0.9)},
            "param_labels": lambda p: jax.tree.map(
                lambda x: "matrix" if _is_matrix(x) else "other", p
            ),
        },
        needs_params=True,
        any_tree=False,
    ),
    E(
        gradtx.freeze,
        {"mask": lambda p: {"w": True, "b": False, "block": True}},
        needs_params=True,
        any_tree=False,
    ),
    E(
        gradtx.freeze,
        {"mask": {"w": True, "b": False, "block": {"s": False, "k": True}}},
        label="tree",
        any_tree=False,
    ),
    E(
        gradtx.multi_transform,
        {
            "transforms": {"matrix": gradtx.adam(0.01), "other": gradtx.sgd(0.1)},
            "param_labels": {"w": "matrix", "b": "other", "block": "matrix"},
        },
        any_tree=False,
    ),
    E(
        gradtx.adamw,
        {"learning_rate": 0.01, "mask": {"w": True, "b": False, "block": True}},
        sweep="weight_decay",
        needs_params=True,
        label="tree-mask",
        differentiable=False,  # its mask fits example_params only, not the hypergradient's tree
        any_tree=False,
    ),
    E(gradtx.set_to_zero, {}),
    E(
        gradtx.selective_transform,
        {"optimizer": gradtx.adam(0.01), "freeze_mask": lambda p: jax.tree.map(_is_matrix, p)},
        needs_params=True,
    ),
    E(
        gradtx.param_groups,
        {
            "optimizer": gradtx.adamw,
            "hyperparams": {"learning_rate": 0.01, "weight_decay": 0.1},
            "groups": [
                gradtx.ParamGroup("bias", "b", weight_decay=0.0, lr_scale=0.5),
                gradtx.ParamGroup("block", "block/*", frozen=True),
            ],
        },
        needs_params=True,
        any_tree=False,
    ),
    # accumulation
    E(
        gradtx.MultiSteps,
        {"opt": gradtx.adam(0.01), "every_k_schedule": 2},
        sweep="every_k_schedule",
        sweep_values=(1, 2, 3),
        float32_slots=True,
    ),
    E(
        gradtx.MultiSteps,
        {"opt": gradtx.sgd(0.1, momentum=0.9), "every_k_schedule": lambda step: 1 + step % 2},
        label="schedule",
        float32_slots=True,
    ),
    E(gradtx.apply_every, {"k": 2}, sweep="k", sweep_values=(1, 2, 3)),
    E(
        gradtx.conditionally_transform,
        {"inner": gradtx.adam(0.01), "should_transform_fn": lambda step: step % 2 == 0},
    ),
    # schedules
    E(
        gradtx.reduce_on_plateau,
        {"patience": 1},
        sweep="factor",
        sweep_values=(0.1, 0.5, 0.9),
        extra_args={"loss": jnp.asarray(1.0)},
    ),
]

SCHEDULES = (
    gradtx.constant_schedule,
    gradtx.cosine_decay_schedule,
    gradtx.cosine_onecycle_schedule,
    gradtx.cyclic_schedule,
    gradtx.exponential_decay,
    gradtx.join_schedules,
    gradtx.linear_onecycle_schedule,
    gradtx.linear_schedule,
    gradtx.piecewise_constant_schedule,
    gradtx.piecewise_interpolate_schedule,
    gradtx.polynomial_schedule,
    gradtx.sgdr_schedule,
    gradtx.step_decay_schedule,
    gradtx.warmup_constant_schedule,
    gradtx.warmup_cosine_decay_schedule,
    gradtx.warmup_exponential_decay_schedule,
    gradtx.warmup_inverse_sqrt_schedule,
    gradtx.wsd_schedule,
)

# Public names that are not gradient transformations, with what they are (tested elsewhere).
NOT_TRANSFORMS: dict[str, str] = {
    "GradientTransformation": "the contract type",
    "StateDictDiff": "state tools: what load_state_dict(strict=False) would add and drop",
    "load_state": "checkpoints: read a save_state file into a state like `like`",
    "load_state_dict": "state tools: rebuild a state from a state_dict",
    "read_state_dict": "checkpoints: read a save_state file into a state_dict",
    "save_state": "checkpoints: atomic versioned .npz",
    "state_dict": "state tools: flat {path: numpy array}",
    "state_dict_diff": "state tools: compare a state_dict with a state",
    "tree_get": "state tools: read a value by name",
    "tree_set": "state tools: replace values by name",
    "ParamGroup": "a parameter-group rule for param_groups",
    "param_group_labels": "the tree of group names param_groups assigns",
    "apply_updates": "contract helper",
    "bytes_per_device": "sharding helper: bytes of a tree held by each device",
    "FlatLayout": "the flat parameter layout's type (tests/test_flat.py)",
    "flat_layout": "builds a flat parameter layout (tests/test_flat.py)",
    "fused_updates": "forces the single-pass update formulation (tests/test_fused.py)",
    "global_norm": "tree helper",
    "LookaheadParams": "the (fast, slow) parameter pair lookahead works on",
    "get_measurement": "reads a snapshot/monitor measurement from a state by name",
    "incremental_update": "Polyak average of two trees (a pure function)",
    "measure_with_ema": "a stateful measure for monitor (its output is a measurement)",
    "per_example_global_norm_clip": "clips per-example gradients and sums them (a pure function)",
    "periodic_update": "periodic copy of parameters (a pure function)",
    "skip_large_updates": "a should_skip_update_fn for MultiSteps",
    "skip_not_finite": "a should_skip_update_fn for MultiSteps",
    "cutmix": "data regularisation: paste a partner's box, mix labels by area",
    "mixup": "data regularisation: convex combinations of example pairs and labels",
    "safe_increment": "tree helper",
    "state_shardings": "sharding helper: the state's shardings (follow params, or ZeRO-1)",
    "tree_bias_correction": "tree helper",
    "tree_update_moment": "tree helper",
    "tree_zeros_like": "tree helper",
    "Schedule": "the type of a schedule: a callable count -> value",
    "MaskOrFn": "optax's type name: a mask tree or a function building it",
    "OptState": "optax's type name for a state",
    "Params": "optax's type name for parameters",
    "ScalarOrSchedule": "optax's type name: a number, an array or a schedule",
    "TransformInitFn": "optax's type name for init",
    "TransformUpdateExtraArgsFn": "optax's type name for update",
    "TransformUpdateFn": "optax's type name for update",
    "Updates": "optax's type name for updates",
    "init_empty_state": "an init returning EmptyState (tests/test_numerics.py)",
    "safe_int32_increment": "optax's name for safe_increment",
    "safe_norm": "a norm clamped from below with finite gradients (tests/test_numerics.py)",
    "safe_root_mean_squares": "an RMS clamped from below with finite gradients",
    "scale_gradient": "identity forward, scaled gradient backward (tests/test_numerics.py)",
    **{f.__name__: "schedule" for f in SCHEDULES},
}


_LR = {"learning_rate": 0.1}
OPTAX_CASES = {
    "adam": OptaxCase(_LR),
    "adam#nesterov": OptaxCase({**_LR, "nesterov": True}),
    "adamw": OptaxCase(_LR),
    "adamw#mask": OptaxCase(
        {**_LR, "weight_decay": 0.1, "mask": {"w": True, "b": False, "s": False}}
    ),
    "sgd": OptaxCase(_LR),
    "sgd#momentum": OptaxCase({**_LR, "momentum": 0.9}),
    "sgd#nesterov": OptaxCase({**_LR, "momentum": 0.9, "nesterov": True}),
    "rmsprop": OptaxCase(_LR),
    "rmsprop#momentum": OptaxCase({**_LR, "momentum": 0.9, "bias_correction": True}),
    "adagrad": OptaxCase(_LR),
    "scale_by_rms": OptaxCase(),
    "scale_by_rss": OptaxCase(),
    "scale_by_adam": OptaxCase(),
    "scale_by_learning_rate": OptaxCase(_LR),
    "scale": OptaxCase({"step_size": -0.5}),
    "trace": OptaxCase({"decay": 0.9}),
    "trace#nesterov": OptaxCase({"decay": 0.9, "nesterov": True}),
    "ema": OptaxCase({"decay": 0.9}),
    "ema#nodebias": OptaxCase({"decay": 0.9, "debias": False}),
    "add_decayed_weights": OptaxCase({"weight_decay": 0.1}),
    "clip": OptaxCase({"max_delta": 0.5}),
    "clip_by_global_norm": OptaxCase({"max_norm": 0.5}),
    "clip_by_block_rms": OptaxCase({"threshold": 0.5}),
    "adaptive_grad_clip": OptaxCase({"clipping": 0.1}),
    "centralize": OptaxCase(),
    "normalize_by_update_norm": OptaxCase(),
    "zero_nans": OptaxCase(),
    "set_to_zero": OptaxCase(),
    "masked": OptaxCase(
        lambda lib: {"inner": lib.adam(0.1), "mask": {"w": True, "b": False, "s": True}}
    ),
    "partition": OptaxCase(
        lambda lib: {
            "transforms": {"a": lib.adam(0.1), "b": lib.sgd(0.1, 0.9)},
            "param_labels": {"w": "a", "b": "b", "s": "a"},
        }
    ),
    "multi_transform": OptaxCase(
        lambda lib: {
            "transforms": {"a": lib.rmsprop(0.1), "b": lib.adagrad(0.1)},
            "param_labels": lambda p: {"w": "a", "b": "b", "s": "a"},
        }
    ),
    # the accumulator is float32 in both (optax's default), so float64 runs agree to 1e-6
    "MultiSteps": OptaxCase(
        lambda lib: {"opt": lib.adam(0.1), "every_k_schedule": 2}, rtol=1e-6, atol=1e-9
    ),
    "constant_schedule": OptaxCase({"value": 0.5}, kind="schedule"),
    "linear_schedule": OptaxCase(
        {"init_value": 1.0, "end_value": 0.1, "transition_steps": 6}, kind="schedule"
    ),
    "polynomial_schedule": OptaxCase(
        {
            "init_value": 1.0,
            "end_value": 0.1,
            "power": 2.0,
            "transition_steps": 6,
            "transition_begin": 2,
        },
        kind="schedule",
    ),
    "exponential_decay": OptaxCase(
        {"init_value": 1.0, "transition_steps": 3, "decay_rate": 0.5, "staircase": True},
        kind="schedule",
    ),
    "cosine_decay_schedule": OptaxCase(
        {"init_value": 1.0, "decay_steps": 8, "alpha": 0.1}, kind="schedule"
    ),
    "piecewise_constant_schedule": OptaxCase(
        {"init_value": 1.0, "boundaries_and_scales": {3: 0.5, 6: 0.1}}, kind="schedule"
    ),
    "piecewise_interpolate_schedule": OptaxCase(
        {
            "interpolate_type": "cosine",
            "init_value": 1.0,
            "boundaries_and_scales": {3: 0.5, 6: 0.1},
        },
        kind="schedule",
    ),
    "warmup_constant_schedule": OptaxCase(
        {"init_value": 0.0, "peak_value": 1.0, "warmup_steps": 4}, kind="schedule"
    ),
    "warmup_cosine_decay_schedule": OptaxCase(
        {
            "init_value": 0.0,
            "peak_value": 1.0,
            "warmup_steps": 3,
            "decay_steps": 9,
            "end_value": 0.1,
        },
        kind="schedule",
    ),
    "warmup_exponential_decay_schedule": OptaxCase(
        {
            "init_value": 0.0,
            "peak_value": 1.0,
            "warmup_steps": 3,
            "transition_steps": 2,
            "decay_rate": 0.5,
        },
        kind="schedule",
    ),
    "linear_onecycle_schedule": OptaxCase(
        {"transition_steps": 10, "peak_value": 1.0}, kind="schedule"
    ),
    "cosine_onecycle_schedule": OptaxCase(
        {"transition_steps": 10, "peak_value": 1.0}, kind="schedule"
    ),
}
