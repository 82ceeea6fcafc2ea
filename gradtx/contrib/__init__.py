"""gradtx.contrib: what optax keeps in ``optax.contrib``.

Every name here is also ``gradtx.<name>`` where optax has it at its top level.
"""

from gradtx.contrib._cocob import (
    COCOBState,
    cocob,
    scale_by_cocob,
)
from gradtx.contrib._dadapt import (
    DAdaptAdamWState,
    dadapt_adamw,
)
from gradtx.contrib._distance import (
    DoGState,
    DoWGState,
    dog,
    dowg,
    scale_by_dog,
    scale_by_dowg,
)
from gradtx.contrib._mechanic import (
    MechanicState,
    mechanize,
)
from gradtx.contrib._momo import (
    MomoAdamState,
    MomoState,
    momo,
    momo_adam,
)
from gradtx.contrib._plateau import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)
from gradtx.contrib._prodigy import (
    ProdigyState,
    prodigy,
)
from gradtx.contrib._schedule_free import (
    ScheduleFreeState,
    schedule_free,
    schedule_free_adamw,
    schedule_free_eval_params,
    schedule_free_sgd,
)

__all__ = [
    "COCOBState",
    "DAdaptAdamWState",
    "DoGState",
    "DoWGState",
    "MechanicState",
    "MomoAdamState",
    "MomoState",
    "ProdigyState",
    "ReduceLROnPlateauState",
    "ScheduleFreeState",
    "cocob",
    "dadapt_adamw",
    "dog",
    "dowg",
    "mechanize",
    "momo",
    "momo_adam",
    "prodigy",
    "reduce_on_plateau",
    "scale_by_cocob",
    "scale_by_dog",
    "scale_by_dowg",
    "schedule_free",
    "schedule_free_adamw",
    "schedule_free_eval_params",
    "schedule_free_sgd",
]
