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
from gradtx._momentum import EmaState, TraceState, ema, trace
from gradtx._optimizers import adagrad, adam, adamw, rmsprop, sgd
from gradtx._plateau import ReduceLROnPlateauState, reduce_on_plateau
from gradtx._scaling import ScaleByLearningRateState, scale, scale_by_learning_rate
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
    "ReduceLROnPlateauState",
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
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "cyclic_schedule",
    "ema",
    "exponential_decay",
    "global_norm",
    "identity",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "reduce_on_plateau",
    "rmsprop",
    "safe_increment",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "sgd",
    "sgdr_schedule",
    "stateless",
    "step_decay_schedule",
    "trace",
    "tree_bias_correction",
    "tree_update_moment",
    "tree_zeros_like",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_inverse_sqrt_schedule",
    "wsd_schedule",
]
