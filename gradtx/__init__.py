"""gradtx: composable, pure gradient transformations for JAX, in optax's protocol."""

from gradtx._accumulate import (
    ApplyEveryState,
    ConditionallyTransformState,
    MultiSteps,
    MultiStepsState,
    apply_every,
    conditionally_transform,
)
from gradtx._adaptive import (
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRssState,
    scale_by_adam,
    scale_by_rms,
    scale_by_rss,
)
from gradtx._averaging import (
    AverageParamsState,
    LookaheadParams,
    LookaheadState,
    average_params,
    incremental_update,
    lookahead,
    periodic_update,
)
from gradtx._base import (
    EmptyState,
    GradientTransformation,
    apply_updates,
    chain,
    identity,
    stateless,
)
from gradtx._checkpoint import (
    load_state,
    read_state_dict,
    save_state,
)
from gradtx._clipping import (
    adaptive_grad_clip,
    centralize,
    clip,
    clip_by_block_rms,
    clip_by_global_norm,
    normalize_by_update_norm,
    per_example_global_norm_clip,
)
from gradtx._combine import (
    MaskedState,
    PartitionState,
    masked,
    named_chain,
    partition,
)
from gradtx._decay import (
    AddDecayedWeightsState,
    add_decayed_weights,
    add_l2_penalty,
)
from gradtx._flat import (
    FlatLayout,
    flat_layout,
)
from gradtx._fused import (
    fused_updates,
    tree_update_moment,
)
from gradtx._groups import (
    ParamGroup,
    freeze,
    param_group_labels,
    param_groups,
    selective_transform,
    set_to_zero,
)
from gradtx._hyperparams import (
    InjectHyperparamsState,
    inject_hyperparams,
)
from gradtx._momentum import (
    EmaState,
    TraceState,
    ema,
    trace,
)
from gradtx._monitoring import (
    MonitorState,
    SnapshotState,
    get_measurement,
    measure_with_ema,
    monitor,
    snapshot,
)
from gradtx._optimizers import (
    adagrad,
    adam,
    adamw,
    rmsprop,
    sgd,
)
from gradtx._plateau import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)
from gradtx._regularize import (
    cutmix,
    mixup,
)
from gradtx._scaling import (
    ScaleByLearningRateState,
    scale,
    scale_by_learning_rate,
)
from gradtx._schedules import (
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    join_schedules,
    linear_schedule,
    polynomial_schedule,
)
from gradtx._schedules_extra import (
    cyclic_schedule,
    step_decay_schedule,
    warmup_inverse_sqrt_schedule,
    wsd_schedule,
)
from gradtx._schedules_piecewise import (
    cosine_onecycle_schedule,
    linear_onecycle_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
)
from gradtx._schedules_warmup import (
    sgdr_schedule,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
)
from gradtx._sharding import (
    bytes_per_device,
    state_shardings,
)
from gradtx._state_tools import (
    StateDictDiff,
    load_state_dict,
    state_dict,
    state_dict_diff,
    tree_get,
    tree_set,
)
from gradtx._tree import (
    global_norm,
    safe_increment,
    tree_bias_correction,
    tree_zeros_like,
)
from gradtx._wrappers import (
    ApplyIfFiniteState,
    ZeroNansState,
    apply_if_finite,
    flatten,
    skip_large_updates,
    skip_not_finite,
    zero_nans,
)

__version__ = "0.1.0"

__all__ = [
    "AddDecayedWeightsState",
    "ApplyEveryState",
    "ApplyIfFiniteState",
    "AverageParamsState",
    "ConditionallyTransformState",
    "EmaState",
    "EmptyState",
    "FlatLayout",
    "GradientTransformation",
    "InjectHyperparamsState",
    "LookaheadParams",
    "LookaheadState",
    "MaskedState",
    "MonitorState",
    "MultiSteps",
    "MultiStepsState",
    "ParamGroup",
    "PartitionState",
    "ReduceLROnPlateauState",
    "ScaleByAdamState",
    "ScaleByLearningRateState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "SnapshotState",
    "StateDictDiff",
    "TraceState",
    "ZeroNansState",
    "adagrad",
    "adam",
    "adamw",
    "adaptive_grad_clip",
    "add_decayed_weights",
    "add_l2_penalty",
    "apply_every",
    "apply_if_finite",
    "apply_updates",
    "average_params",
    "bytes_per_device",
    "centralize",
    "chain",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "conditionally_transform",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "cutmix",
    "cyclic_schedule",
    "ema",
    "exponential_decay",
    "flat_layout",
    "flatten",
    "freeze",
    "fused_updates",
    "get_measurement",
    "global_norm",
    "identity",
    "incremental_update",
    "inject_hyperparams",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "load_state",
    "load_state_dict",
    "lookahead",
    "masked",
    "measure_with_ema",
    "mixup",
    "monitor",
    "named_chain",
    "normalize_by_update_norm",
    "param_group_labels",
    "param_groups",
    "partition",
    "per_example_global_norm_clip",
    "periodic_update",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "read_state_dict",
    "reduce_on_plateau",
    "rmsprop",
    "safe_increment",
    "save_state",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "selective_transform",
    "set_to_zero",
    "sgd",
    "sgdr_schedule",
    "skip_large_updates",
    "skip_not_finite",
    "snapshot",
    "state_dict",
    "state_dict_diff",
    "state_shardings",
    "stateless",
    "step_decay_schedule",
    "trace",
    "tree_bias_correction",
    "tree_get",
    "tree_set",
    "tree_update_moment",
    "tree_zeros_like",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_inverse_sqrt_schedule",
    "wsd_schedule",
    "zero_nans",
]
