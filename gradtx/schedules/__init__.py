"""gradtx.schedules: schedules ``count -> value`` and ``inject_hyperparams`` (``optax.schedules``).

Every name here is also ``gradtx.<name>``.
"""

from gradtx.schedules._cyclic import cyclic_schedule
from gradtx.schedules._decays import (
    Schedule,
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    join_schedules,
    linear_schedule,
    polynomial_schedule,
    step_decay_schedule,
)
from gradtx.schedules._inject import (
    InjectHyperparamsState,
    inject_hyperparams,
)
from gradtx.schedules._piecewise import (
    cosine_onecycle_schedule,
    linear_onecycle_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
)
from gradtx.schedules._warmup import (
    sgdr_schedule,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_exponential_decay_schedule,
    warmup_inverse_sqrt_schedule,
    wsd_schedule,
)

__all__ = [
    "Schedule",
    "InjectHyperparamsState",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "cyclic_schedule",
    "exponential_decay",
    "inject_hyperparams",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "sgdr_schedule",
    "step_decay_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_inverse_sqrt_schedule",
    "wsd_schedule",
]
