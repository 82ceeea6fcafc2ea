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
from gradtx.contrib._utils import (
    NormalizeState,
    SplitRealAndImaginaryState,
    normalize,
    split_real_and_imaginary,
)

__all__ = [
    "MadgradState",
    "NormalizeState",
    "ReduceLROnPlateauState",
    "SAMState",
    "ScaleByAdemamixState",
    "ScaleBySimplifiedAdEMAMixState",
    "SplitRealAndImaginaryState",
    "acprop",
    "ademamix",
    "adopt",
    "madgrad",
    "normalize",
    "reduce_on_plateau",
    "sam",
    "scale_by_acprop",
    "scale_by_ademamix",
    "scale_by_adopt",
    "scale_by_madgrad",
    "scale_by_simplified_ademamix",
    "simplified_ademamix",
    "split_real_and_imaginary",
]
