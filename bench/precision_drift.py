"""Drift of bf16 training from float32: naive bf16, Kahan compensation, stochastic rounding.

Trains the demo's spiral MLP (gradtx.demo: spiral_data, mlp_init, mlp_loss; 2-100-3, full
batch) with Adam for STEPS steps, once with float32 parameters and once per bf16 variant; the
forward pass runs in float32 on the stored parameters, so only the storage and the update
differ. Without a policy a bf16 parameter's Adam moments are bf16 too; the "f32 moments"
variants keep them in float32 (``with_dtypes``), and master weights keep everything in
float32. Prints, per variant, the final loss's relative difference from the float32 run and the
parameters' relative distance ||p - p32|| / ||p32||.

    python -m bench.precision_drift [--steps 2000] [--lr 1e-3]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx.demo import mlp_init, mlp_loss, spiral_data

VARIANTS = (
    "float32",
    "bf16",
    "bf16+kahan",
    "bf16+stochastic",
    "bf16, f32 moments",
    "bf16+kahan, f32 moments",
    "bf16+stochastic, f32 moments",
    "bf16+master",
)
F32_MOMENTS = {"mu": jnp.float32, "nu": jnp.float32}


def optimizer(variant: str, lr: float):
    """Adam for one variant; "f32 moments" is the policy {"mu": float32, "nu": float32}."""
    adam = gradtx.adam(lr)
    if variant.endswith("f32 moments"):
        adam = gradtx.with_dtypes(adam, F32_MOMENTS)
        variant = variant.split(",")[0]
    if variant.endswith("kahan"):
        return gradtx.chain(adam, gradtx.kahan_compensation())
    if variant.endswith("stochastic"):
        return gradtx.chain(adam, gradtx.stochastic_rounding(key=0))
    if variant.endswith("master"):
        return gradtx.master_weights(adam)
    return adam


def train(variant: str, steps: int, lr: float):
    """Final (loss in float32, params as float32) after ``steps`` steps of one variant."""
    x, y = spiral_data()
    dtype = jnp.float32 if variant == "float32" else jnp.bfloat16
    params = jax.tree.map(lambda p: p.astype(dtype), mlp_init(jax.random.PRNGKey(0)))
    tx = optimizer(variant, lr)

    def loss(p):
        return mlp_loss(jax.tree.map(lambda a: a.astype(jnp.float32), p), x, y)

    def body(carry, _):
        p, s = carry
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        return (gradtx.apply_updates(p, u), s), None

    @jax.jit
    def run(p):
        (p, _), _ = jax.lax.scan(body, (p, tx.init(p)), None, length=steps)
        return loss(p), jax.tree.map(lambda a: a.astype(jnp.float32), p)

    return run(params)


def drift(steps: int = 2000, lr: float = 1e-3, variants=VARIANTS[1:]) -> dict:
    """{variant: (final loss, relative loss difference, relative parameter distance)}."""
    ref_loss, ref_params = train("float32", steps, lr)
    ref = np.concatenate([np.ravel(a) for a in jax.tree.leaves(ref_params)])
    out = {"float32": (float(ref_loss), 0.0, 0.0)}
    for v in variants:
        loss, params = train(v, steps, lr)
        flat = np.concatenate([np.ravel(a) for a in jax.tree.leaves(params)])
        rel_loss = abs(float(loss) - float(ref_loss)) / float(ref_loss)
        out[v] = (float(loss), rel_loss, float(np.linalg.norm(flat - ref) / np.linalg.norm(ref)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    t0 = time.perf_counter()
    result = drift(args.steps, args.lr)
    print(f"spiral MLP, Adam lr={args.lr}, {args.steps} steps ({time.perf_counter() - t0:.1f} s)")
    print("| variant | final loss | loss vs float32 (relative) | params vs float32 (relative) |")
    print("|---|---:|---:|---:|")
    for v, (loss, rl, rp) in result.items():
        print(f"| {v} | {loss:.5f} | {rl:.2e} | {rp:.2e} |")


if __name__ == "__main__":
    main()
