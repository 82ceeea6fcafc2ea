"""gradtx: composable, pure gradient transformations for JAX, in optax's protocol."""

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
from gradtx._checkpoint import load_state, read_state_dict, save_state
from gradtx._clipping import (
    adaptive_grad_clip,
    centralize,
    clip,
    clip_by_block_rms,
    clip_by_global_norm,
    normalize_by_update_norm,
    per_example_global_norm_clip,
)
from gradtx._decay import AddDecayedWeightsState, add_decayed_weights, add_l2_penalty
from gradtx._hyperparams import InjectHyperparamsState, inject_hyperparams
from gradtx._momentum import EmaState, TraceState, ema, trace
from gradtx._monitoring import (
    MonitorState,
    SnapshotState,
    get_measurement,
    measure_with_ema,
    monitor,
    snapshot,
)
from gradtx._optimizers import adagrad, adam, adamw, rmsprop, sgd
from gradtx._scaling import ScaleByLearningRateState, scale, scale_by_learning_rate
from gradtx._sharding import bytes_per_device, state_shardings
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
    tree_update_moment,
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
    "ApplyIfFiniteState",
    "AverageParamsState",
    "EmaState",
    "EmptyState",
    "GradientTransformation",
    "InjectHyperparamsState",
    "LookaheadParams",
    "LookaheadState",
    "MonitorState",
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
    "apply_if_finite",
    "apply_updates",
    "average_params",
    "bytes_per_device",
    "centralize",
    "chain",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "ema",
    "flatten",
    "get_measurement",
    "global_norm",
    "identity",
    "incremental_update",
    "inject_hyperparams",
    "load_state",
    "load_state_dict",
    "lookahead",
    "measure_with_ema",
    "monitor",
    "normalize_by_update_norm",
    "per_example_global_norm_clip",
    "periodic_update",
    "read_state_dict",
    "rmsprop",
    "safe_increment",
    "save_state",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "sgd",
    "skip_large_updates",
    "skip_not_finite",
    "snapshot",
    "state_dict",
    "state_dict_diff",
    "state_shardings",
    "stateless",
    "trace",
    "tree_bias_correction",
    "tree_get",
    "tree_set",
    "tree_update_moment",
    "tree_zeros_like",
    "zero_nans",
]
