"""gradtx: composable, pure gradient transformations for JAX, in optax's protocol."""

from gradtx._adaptive import (
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRssState,
    scale_by_adam,
    scale_by_rms,
    scale_by_rss,
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
from gradtx._clipping import clip, clip_by_global_norm
from gradtx._decay import AddDecayedWeightsState, add_decayed_weights, add_l2_penalty
from gradtx._hyperparams import InjectHyperparamsState, inject_hyperparams
from gradtx._momentum import EmaState, TraceState, ema, trace
from gradtx._optimizers import adagrad, adam, adamw, rmsprop, sgd
from gradtx._scaling import ScaleByLearningRateState, scale, scale_by_learning_rate
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

__version__ = "0.1.0"

__all__ = [
    "AddDecayedWeightsState",
    "EmaState",
    "EmptyState",
    "GradientTransformation",
    "InjectHyperparamsState",
    "ScaleByAdamState",
    "ScaleByLearningRateState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "StateDictDiff",
    "TraceState",
    "adagrad",
    "adam",
    "adamw",
    "add_decayed_weights",
    "add_l2_penalty",
    "apply_updates",
    "chain",
    "clip",
    "clip_by_global_norm",
    "ema",
    "global_norm",
    "identity",
    "inject_hyperparams",
    "load_state",
    "load_state_dict",
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
    "state_dict",
    "state_dict_diff",
    "stateless",
    "trace",
    "tree_bias_correction",
    "tree_get",
    "tree_set",
    "tree_update_moment",
    "tree_zeros_like",
]
