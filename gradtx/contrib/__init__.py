"""gradtx.contrib: what optax keeps in ``optax.contrib``.

Every name here is also ``gradtx.<name>`` where optax has it at its top level.
"""

from gradtx.contrib._acprop import acprop, scale_by_acprop
from gradtx.contrib._ademamix import (
    ScaleByAdemamixState,
    ScaleBySimplifiedAdEMAMixState,
    ademamix,
    scale_by_ademamix,
    scale_by_simplified_ademamix,
    simplified_ademamix,
)
from gradtx.contrib._adopt import adopt, scale_by_adopt
from gradtx.contrib._madgrad import MadgradState, madgrad, scale_by_madgrad
from gradtx.contrib._plateau import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)
from gradtx.contrib._sam import SAMState, sam
from gradtx.contrib._sophia import (
    HutchinsonState,
    SophiaState,
    hutchinson_estimator_diag_hessian,
    scale_by_sophia,
    sophia,
)
from gradtx.contrib._utils import (
    NormalizeState,
    SplitRealAndImaginaryState,
    normalize,
    split_real_and_imaginary,
)

__all__ = [
    "HutchinsonState",
    "MadgradState",
    "NormalizeState",
    "ReduceLROnPlateauState",
    "SAMState",
    "ScaleByAdemamixState",
    "ScaleBySimplifiedAdEMAMixState",
    "SophiaState",
    "SplitRealAndImaginaryState",
    "acprop",
    "ademamix",
    "adopt",
    "hutchinson_estimator_diag_hessian",
    "madgrad",
    "normalize",
    "reduce_on_plateau",
    "sam",
    "scale_by_acprop",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_madgrad",
    "scale_by_simplified_ademamix",
    "scale_by_sophia",
    "simplified_ademamix",
    "sophia",
    "split_real_and_imaginary",
]
