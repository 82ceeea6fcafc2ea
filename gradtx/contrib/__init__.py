"""gradtx.contrib: what optax keeps in ``optax.contrib``.

Every name here is also ``gradtx.<name>`` where optax has it at its top level.
"""

from gradtx.contrib._plateau import (
    ReduceLROnPlateauState,
    reduce_on_plateau,
)

__all__ = [
    "ReduceLROnPlateauState",
    "reduce_on_plateau",
]
