"""Convergence for a fixed budget: AdamW, Schedule-Free AdamW, Prodigy and D-Adapt AdamW.

Trains a 2-64-64-3 MLP on the CS231n spiral (gradtx.demo.spiral_data, generated here, full
batch) for STEPS steps with each optimizer at its learning rate in TUNED (chosen once with
``--tune``, which tries a small grid and prints the best of each), then prints the final
loss and writes the loss curves to bench/results/convergence.png. Schedule-Free AdamW is
evaluated where its paper says to, at ``schedule_free_eval_params``. Each run is one jitted
``lax.scan``; the whole benchmark takes well under a minute on 2 cores.

    python -m bench.convergence [--steps 300] [--tune]
"""

from __future__ import annotations

import argparse
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
import gradtx.contrib as gc
from gradtx.demo import mlp_init, mlp_loss, spiral_data

RESULTS = pathlib.Path(__file__).parent / "results"

# learning rates chosen once with --tune at 300 steps (AdamW 0.03, Schedule-Free 0.1; at 1500
# steps every optimizer reaches the same 0.011); Prodigy and D-Adapt take a multiplier on their
# own estimate and run at their default 1.0, as a parameter-free method is meant to
TUNED = {"adamw": 3e-2, "schedule_free_adamw": 1e-1, "prodigy": 1.0, "dadapt_adamw": 1.0}
GRIDS = {
    "adamw": (3e-3, 1e-2, 3e-2, 1e-1),
    "schedule_free_adamw": (3e-3, 1e-2, 3e-2, 1e-1),
    "prodigy": (0.5, 1.0, 2.0),
    "dadapt_adamw": (0.5, 1.0, 2.0),
}


def build(name: str, lr: float) -> gradtx.GradientTransformation:
    if name == "adamw":
        return gradtx.adamw(lr, weight_decay=1e-4)
    if name == "schedule_free_adamw":
        return gc.schedule_free_adamw(lr, warmup_steps=50, weight_decay=1e-4)
    if name == "prodigy":
        return gc.prodigy(lr, weight_decay=1e-4)
    if name == "dadapt_adamw":
        return gc.dadapt_adamw(lr, weight_decay=1e-4)
    raise ValueError(name)


def train(name: str, lr: float, steps: int, inputs, labels) -> np.ndarray:
    """The loss after each step (at the eval params for Schedule-Free)."""
    tx = build(name, lr)
    params = mlp_init(jax.random.PRNGKey(0), (2, 64, 64, 3))

    def body(carry, _):
        p, s = carry
        grads = jax.grad(mlp_loss)(p, inputs, labels)
        updates, s = tx.update(grads, s, p)
        p = gradtx.apply_updates(p, updates)
        at = gc.schedule_free_eval_params(s, p) if name == "schedule_free_adamw" else p
        return (p, s), mlp_loss(at, inputs, labels)

    run = jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), None, length=steps)[1])
    return np.asarray(run(params))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--tune", action="store_true", help="try GRIDS and print the best")
    args = parser.parse_args(argv)
    inputs, labels = (jnp.asarray(a) for a in spiral_data(100, 3, seed=0))
    if args.tune:
        for name, grid in GRIDS.items():
            finals = {lr: float(train(name, lr, args.steps, inputs, labels)[-1]) for lr in grid}
            best = min(finals, key=lambda lr: finals[lr] if np.isfinite(finals[lr]) else np.inf)
            print(
                f"{name:22s} best lr {best:g}  "
                + "  ".join(f"{k:g}: {v:.4f}" for k, v in finals.items())
            )
        return 0
    curves = {}
    print(f"{'optimizer':22s} {'lr':>8s} {'final loss':>11s} {'seconds':>8s}")
    for name, lr in TUNED.items():
        start = time.perf_counter()
        curves[name] = train(name, lr, args.steps, inputs, labels)
        took = time.perf_counter() - start
        print(f"{name:22s} {lr:8g} {curves[name][-1]:11.5f} {took:8.1f}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, label=f"{name} (lr {TUNED[name]:g})")
    ax.set(xlabel="step", ylabel="training loss (spiral MLP)", yscale="log")
    ax.set_title(f"{args.steps} steps, full batch")
    ax.legend()
    fig.tight_layout()
    out = RESULTS / "convergence.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
