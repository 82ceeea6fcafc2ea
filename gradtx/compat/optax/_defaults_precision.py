"""optax 0.2.8's microbatching defaults: results are summed in their own dtype.

gradtx sums and averages microbatch results in at least float32 and rounds once at the end
(``accumulation_dtype=None``); optax keeps the running sum in the result's dtype, so bfloat16
results lose a bit per microbatch. The dialect passes ``accumulation_dtype="input"``. For
float32 results the two are identical.
"""

import jax

from gradtx import microbatching as _mb

_SUM, _CONCAT = _mb.AccumulationType.SUM, _mb.AccumulationType.CONCAT


def microbatch(
    fun,
    argnums,
    microbatch_size,
    accumulator=_SUM,
    *,
    argnames=(),
    in_axes=0,
    num_real_microbatches=None,
):
    """optax's ``microbatch``: gradtx's ``microbatch`` (sums in the result's dtype)."""
    return _mb.microbatch(
        fun,
        argnums,
        microbatch_size,
        accumulator,
        argnames=argnames,
        in_axes=in_axes,
        num_real_microbatches=num_real_microbatches,
        accumulation_dtype="input",
    )


def micro_vmap(
    fun,
    in_axes=0,
    out_axes=0,
    *,
    microbatch_size=None,
    vmap_fn=jax.vmap,
    accumulator=_CONCAT,
    num_real_microbatches=None,
):
    """optax's ``micro_vmap``: gradtx's ``micro_vmap`` (sums in the result's dtype)."""
    return _mb.micro_vmap(
        fun,
        in_axes,
        out_axes,
        microbatch_size=microbatch_size,
        vmap_fn=vmap_fn,
        accumulator=accumulator,
        num_real_microbatches=num_real_microbatches,
        accumulation_dtype="input",
    )


def micro_grad(
    fun,
    has_aux=False,
    argnums=0,
    *,
    batch_argnums=1,
    keep_batch_dim=True,
    microbatch_size=None,
    accumulator=_SUM,
    transform_fn=lambda x: x,
    metrics_fn=lambda x: None,
    num_real_microbatches=None,
):
    """optax's ``micro_grad``: gradtx's ``micro_grad`` (sums in the result's dtype)."""
    return _mb.micro_grad(
        fun,
        has_aux,
        argnums,
        batch_argnums=batch_argnums,
        keep_batch_dim=keep_batch_dim,
        microbatch_size=microbatch_size,
        accumulator=accumulator,
        transform_fn=transform_fn,
        metrics_fn=metrics_fn,
        num_real_microbatches=num_real_microbatches,
        accumulation_dtype="input",
    )


OVERRIDES = {
    "": {"microbatch": microbatch},
    "microbatching": {"microbatch": microbatch, "micro_vmap": micro_vmap, "micro_grad": micro_grad},
}
