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
from gradtx._clipping import clip, clip_by_global_norm
from gradtx._decay import AddDecayedWeightsState, add_decayed_weights, add_l2_penalty
from gradtx._flat import FlatLayout, flat_layout
from gradtx._fused import fused_updates
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
    "EmaState",
    "EmptyState",
    "FlatLayout",
    "GradientTransformation",
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
    "apply_updates",
    "chain",
    "clip",
    "clip_by_global_norm",
    "ema",
    "flat_layout",
    "fused_updates",
    "global_norm",
    "identity",
    "rmsprop",
    "safe_increment",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "sgd",
    "stateless",
    "trace",
    "tree_bias_correction",
    "tree_update_moment",
    "tree_zeros_like",
]
