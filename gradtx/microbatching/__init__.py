"""gradtx.microbatching: optax's ``optax.microbatching``, with float32 accumulation.

Split a batch too large for memory into microbatches inside one jitted step: ``microbatch``
(any function), ``micro_vmap`` (a vmap in microbatches) and ``micro_grad`` (per-example
gradients, transformed and combined). ``gradtx.microbatch`` is ``microbatch``.
"""

from gradtx.microbatching._microbatching import (
    AccumulationType,
    Accumulator,
    IndividualOutputs,
    micro_grad,
    micro_vmap,
    microbatch,
    reshape_batch_axis,
)

__all__ = [
    "AccumulationType",
    "Accumulator",
    "IndividualOutputs",
    "micro_grad",
    "micro_vmap",
    "microbatch",
    "reshape_batch_axis",
]
