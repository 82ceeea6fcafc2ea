"""Learning-rate sweep: one vmapped jit against a loop of jitted runs, gradtx and optax.

Trains the spiral MLP (2 -> 64 -> 64 -> 3, 3 classes x 100 points) with Adam for ``--steps``
steps in ``lax.scan``, for ``--lrs`` learning rates, two ways:
- vmapped: ``jax.jit(jax.vmap(train))(learning_rates)``, one program for all values;
- loop: ``[jax.jit(train)(lr) for lr in learning_rates]``, one compilation reused per value.
Each repeat builds fresh functions, so "first call" includes tracing and compiling, and
"steady" is a second call of the same functions. Prints a table of the vmapped/loop wall-time
ratios (median and min-max over repeats) and writes them as JSON.

    python bench/sweep.py                  # 5 repeats, writes bench/results/sweep.json
    python bench/sweep.py --repeats 3 --steps 100 --out /tmp/sweep.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import gradtx
from gradtx.demo import mlp_init, mlp_loss, spiral_data


def make_train(lib: str, steps: int, traces: list):
    """A fresh ``train(lr) -> final loss`` (a new function object, so a new compilation)."""
    inputs, labels = spiral_data()
    params0 = mlp_init(jax.random.PRNGKey(0), (2, 64, 64, 3))
    adam = gradtx.adam if lib == "gradtx" else optax.adam
    apply = gradtx.apply_updates if lib == "gradtx" else optax.apply_updates

    def train(lr):
        traces.append(1)  # runs once per trace
        tx = adam(lr)

        def step(carry, _):
            params, state = carry
            grads = jax.grad(mlp_loss)(params, inputs, labels)
            updates, state = tx.update(grads, state, params)
            return (apply(params, updates), state), None

        (params, _), _ = jax.lax.scan(step, (params0, tx.init(params0)), None, length=steps)
        return mlp_loss(params, inputs, labels)

    return train


def timed(fn):
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return time.perf_counter() - start, out


def one_repeat(lib: str, lrs, steps: int) -> dict:
    traces_v, traces_l = [], []
    vmapped = jax.jit(jax.vmap(make_train(lib, steps, traces_v)))
    looped = jax.jit(make_train(lib, steps, traces_l))
    loop = lambda: jnp.stack([looped(lr) for lr in lrs])  # noqa: E731
    first_v, losses_v = timed(lambda: vmapped(lrs))
    first_l, losses_l = timed(loop)
    steady_v, _ = timed(lambda: vmapped(lrs))
    steady_l, _ = timed(loop)
    return {
        "first_vmapped_s": first_v,
        "first_loop_s": first_l,
        "steady_vmapped_s": steady_v,
        "steady_loop_s": steady_l,
        "traces_vmapped": len(traces_v),
        "traces_loop": len(traces_l),
        "max_loss_diff_vmap_vs_loop": float(jnp.max(jnp.abs(losses_v - losses_l))),
        "losses": [float(x) for x in losses_v],
    }


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lrs", type=int, default=32)
    parser.add_argument(
        "--out", default=os.path.join(os.path.dirname(__file__), "results/sweep.json")
    )
    args = parser.parse_args()
    lrs = jnp.logspace(-4, -1, args.lrs, dtype=jnp.float32)
    runs = {"gradtx": [], "optax": []}
    for _ in range(args.repeats):  # interleaved, so both libraries see the same machine load
        for lib in runs:
            runs[lib].append(one_repeat(lib, lrs, args.steps))
    result = {
        "device": str(jax.devices()[0]),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "steps": args.steps,
        "learning_rates": args.lrs,
        "repeats": args.repeats,
    }
    print(
        f"{args.lrs} learning rates x {args.steps} Adam steps, spiral MLP 2-64-64-3, "
        f"{args.repeats} repeats on {result['device']} ({os.cpu_count()} CPUs)"
    )
    print(
        f"{'library':8} {'when':7} {'vmapped s':>10} {'loop s':>8} "
        f"{'ratio median [min, max]':>26} {'traces v/l':>10}"
    )
    for lib, reps in runs.items():
        result[lib] = {"repeats": reps}
        for when in ("first", "steady"):
            ratios = [r[f"{when}_vmapped_s"] / r[f"{when}_loop_s"] for r in reps]
            s = summary(ratios)
            result[lib][f"{when}_ratio"] = s
            v = statistics.median(r[f"{when}_vmapped_s"] for r in reps)
            lo = statistics.median(r[f"{when}_loop_s"] for r in reps)
            tr = f"{reps[0]['traces_vmapped']}/{reps[0]['traces_loop']}"
            print(
                f"{lib:8} {when:7} {v:10.3f} {lo:8.3f} "
                f"{s['median']:9.3f} [{s['min']:.3f}, {s['max']:.3f}]{'':3} {tr:>10}"
            )
    diff = max(abs(a - b) for a, b in zip(runs["gradtx"][0]["losses"], runs["optax"][0]["losses"]))
    result["max_final_loss_diff_gradtx_vs_optax"] = diff
    print(f"max |final loss gradtx - optax| over learning rates: {diff:.2e}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
