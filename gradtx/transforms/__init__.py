"""gradtx.transforms: the transforms, by family (optax's ``optax.transforms`` and more).

Every name here is also ``gradtx.<name>``.
"""

from gradtx.transforms._accumulate import (
    ApplyEveryState,
    ConditionallyTransformState,
    MultiSteps,
    MultiStepsState,
    apply_every,
    conditionally_transform,
)
from gradtx.transforms._adaptive import (
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRssState,
    scale_by_adam,
    scale_by_rms,
    scale_by_rss,
)
from gradtx.transforms._averaging import (
    AverageParamsState,
    LookaheadParams,
    LookaheadState,
    average_params,
    incremental_update,
    lookahead,
    periodic_update,
)
from gradtx.transforms._clipping import (
    adaptive_grad_clip,
    centralize,
    clip,
    clip_by_block_rms,
    clip_by_global_norm,
    normalize_by_update_norm,
    per_example_global_norm_clip,
)
from gradtx.transforms._combine import (
    MaskedState,
    PartitionState,
    masked,
    multi_transform,
    named_chain,
    partition,
)
from gradtx.transforms._decay import (
    AddDecayedWeightsState,
    add_decayed_weights,
    add_l2_penalty,
)
from gradtx.transforms._factored import (
    FactoredState,
    scale_by_factored_rms,
)
from gradtx.transforms._groups import (
    ParamGroup,
    freeze,
    param_group_labels,
    param_groups,
    selective_transform,
    set_to_zero,
)
from gradtx.transforms._layerwise import (
    ScaleByNovogradState,
    ScaleBySM3State,
    scale_by_novograd,
    scale_by_sm3,
)
from gradtx.transforms._momentum import (
    EmaState,
    TraceState,
    ema,
    trace,
)
from gradtx.transforms._monitoring import (
    MonitorState,
    SnapshotState,
    get_measurement,
    measure_with_ema,
    monitor,
    snapshot,
)
from gradtx.transforms._scaling import (
    ScaleByLearningRateState,
    scale,
    scale_by_learning_rate,
)
from gradtx.transforms._sign import (
    ScaleByLionState,
    scale_by_lion,
    scale_by_sign,
)
from gradtx.transforms._trust_ratio import (
    ScaleByTrustRatioState,
    scale_by_param_block_norm,
    scale_by_param_block_rms,
    scale_by_trust_ratio,
)
from gradtx.transforms._wrappers import (
    ApplyIfFiniteState,
    ZeroNansState,
    apply_if_finite,
    flatten,
    skip_large_updates,
    skip_not_finite,
    zero_nans,
)

__all__ = [
    "AddDecayedWeightsState",
    "ApplyEveryState",
    "ApplyIfFiniteState",
    "AverageParamsState",
    "ConditionallyTransformState",
    "EmaState",
    "FactoredState",
    "LookaheadParams",
    "LookaheadState",
    "MaskedState",
    "MonitorState",
    "MultiSteps",
    "MultiStepsState",
    "ParamGroup",
    "PartitionState",
    "ScaleByAdamState",
    "ScaleByLearningRateState",
    "ScaleByLionState",
    "ScaleByNovogradState",
    "ScaleByRmsState",
    "ScaleByRssState",
    "ScaleBySM3State",
    "ScaleByTrustRatioState",
    "SnapshotState",
    "TraceState",
    "ZeroNansState",
    "adaptive_grad_clip",
    "add_decayed_weights",
    "add_l2_penalty",
    "apply_every",
    "apply_if_finite",
    "average_params",
    "centralize",
    "clip",
    "clip_by_block_rms",
    "clip_by_global_norm",
    "conditionally_transform",
    "ema",
    "flatten",
    "freeze",
    "get_measurement",
    "incremental_update",
    "lookahead",
    "masked",
    "measure_with_ema",
    "monitor",
    "multi_transform",
    "named_chain",
    "normalize_by_update_norm",
    "param_group_labels",
    "param_groups",
    "partition",
    "per_example_global_norm_clip",
    "periodic_update",
    "scale",
    "scale_by_adam",
    "scale_by_factored_rms",
    "scale_by_learning_rate",
    "scale_by_lion",
    "scale_by_novograd",
    "scale_by_param_block_norm",
    "scale_by_param_block_rms",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_sign",
    "scale_by_sm3",
    "scale_by_trust_ratio",
    "selective_transform",
    "set_to_zero",
    "skip_large_updates",
    "skip_not_finite",
    "snapshot",
    "trace",
    "zero_nans",
]
