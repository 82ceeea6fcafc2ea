"""Optimizer memory of Adam on a 1B-parameter tree under dtype policies (nothing allocated).

Every number comes from ``gradtx.state_bytes`` (``jax.eval_shape`` of ``init``) on a tree of
``jax.ShapeDtypeStruct``s shaped like a 1B-parameter decoder (a 32000 x 2048 embedding and 22
blocks of attention and MLP matrices).

    python -m bench.precision_memory
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import gradtx

BF16, F32 = jnp.bfloat16, jnp.float32


def model_shape(dtype, layers: int = 22, d: int = 2048, ff: int = 4096, vocab: int = 32000):
    """A decoder-shaped parameter tree of ShapeDtypeStructs (about 1.0e9 parameters)."""
    s = lambda *shape: jax.ShapeDtypeStruct(shape, dtype)  # noqa: E731
    block = {
        "qkv": s(d, 3 * d),
        "out": s(d, d),
        "up": s(d, 2 * ff),
        "down": s(ff, d),
        "norm1": s(d),
        "norm2": s(d),
    }
    return {"embed": s(vocab, d), "blocks": [block] * layers, "final_norm": s(d)}


def rows():
    """(label, params dtype, transform) for each line of the table."""
    adam = gradtx.adam(1e-3)
    f32_moments = {"mu": F32, "nu": F32}
    return [
        ("float32 params, float32 slots", F32, adam),
        ("bf16 params, float32 mu and nu", BF16, gradtx.with_dtypes(adam, f32_moments)),
        (
            "bf16 params, bf16 mu, float32 nu",
            BF16,
            gradtx.with_dtypes(adam, {"mu": BF16, "nu": F32}),
        ),
        ("bf16 params, bf16 mu and nu", BF16, adam),
        (
            "bf16 params, float32 mu and nu, Kahan (bf16)",
            BF16,
            gradtx.chain(gradtx.with_dtypes(adam, f32_moments), gradtx.kahan_compensation()),
        ),
        (
            "bf16 params, bf16 mu and nu, Kahan (bf16)",
            BF16,
            gradtx.chain(adam, gradtx.kahan_compensation()),
        ),
        ("bf16 params, master weights (float32 master, mu, nu)", BF16, gradtx.master_weights(adam)),
    ]


def table() -> str:
    n = sum(x.size for x in jax.tree.leaves(model_shape(F32)))
    lines = [
        f"Adam on a {n / 1e9:.3f}B-parameter tree (GB = 1e9 bytes)",
        "",
        "| configuration | params GB | state GB | by slot (GB) | params + state GB |",
        "|---|---:|---:|---|---:|",
    ]
    for label, dtype, tx in rows():
        r = gradtx.state_bytes(tx, model_shape(dtype))
        slots = ", ".join(f"{k} {v / 1e9:.2f}" for k, v in r.by_slot.items() if v >= 1e6)
        lines.append(
            f"| {label} | {r.params / 1e9:.2f} | {r.total / 1e9:.2f} | {slots} | "
            f"{(r.params + r.total) / 1e9:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
