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
from gradtx._base import (
    EmptyState,
    GradientTransformation,
    apply_updates,
    chain,
    identity,
    stateless,
)
from gradtx._clipping import clip, clip_by_global_norm
from gradtx._combine import MaskedState, PartitionState, masked, named_chain, partition
from gradtx._decay import AddDecayedWeightsState, add_decayed_weights, add_l2_penalty
from gradtx._groups import (
    ParamGroup,
    freeze,
    param_group_labels,
    param_groups,
    selective_transform,
    set_to_zero,
)
from gradtx._momentum import EmaState, TraceState, ema, trace
from gradtx._optimizers import adagrad, adam, adamw, rmsprop, sgd
from gradtx._scaling import ScaleByLearningRateState, scale, scale_by_learning_rate
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
    "ApplyEveryState",
    "ConditionallyTransformState",
    "EmaState",
    "EmptyState",
    "GradientTransformation",
    "MaskedState",
    "MultiSteps",
    "MultiStepsState",
    "ParamGroup",
    "PartitionState",
    "ScaleByAdamState",
    "ScaleByLearningRateState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "TraceState",
    "adagrad",
    "adam",
    "adamw",
    "add_decayed_weights",
    "add_l2_penalty",
    "apply_every",
    "apply_updates",
    "chain",
    "clip",
    "clip_by_global_norm",
    "conditionally_transform",
    "ema",
    "freeze",
    "global_norm",
    "identity",
    "masked",
    "named_chain",
    "param_group_labels",
    "param_groups",
    "partition",
    "rmsprop",
    "safe_increment",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "selective_transform",
    "set_to_zero",
    "sgd",
    "stateless",
    "trace",
    "tree_bias_correction",
    "tree_update_moment",
    "tree_zeros_like",
]
