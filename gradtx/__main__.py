"""``python -m gradtx``: train the CS231n spiral classifier with each seed optimizer."""

from __future__ import annotations

import sys
import time

import jax

import gradtx
from gradtx.demo import mlp_accuracy, mlp_init, mlp_loss, spiral_data

SEED_OPTIMIZERS = {
    "sgd": lambda: gradtx.sgd(0.5),
    "momentum": lambda: gradtx.sgd(0.1, momentum=0.9),
    "nesterov": lambda: gradtx.sgd(0.1, momentum=0.9, nesterov=True),
    "adagrad": lambda: gradtx.adagrad(0.1),
    "rmsprop": lambda: gradtx.rmsprop(1e-2),
    "adam": lambda: gradtx.adam(1e-2),
    "adamw": lambda: gradtx.adamw(1e-2, weight_decay=1e-3),
}


def train(tx, steps: int = 1000, seed: int = 0):
    inputs, labels = spiral_data(seed=seed)
    params = mlp_init(jax.random.PRNGKey(seed))

    def body(carry, _):
        params, state = carry
        loss, grads = jax.value_and_grad(mlp_loss)(params, inputs, labels)
        updates, state = tx.update(grads, state, params)
        return (gradtx.apply_updates(params, updates), state), loss

    run = jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), length=steps))
    jax.block_until_ready(run(params))  # compile and warm up
    start = time.perf_counter()
    (params, _), losses = jax.block_until_ready(run(params))
    seconds = time.perf_counter() - start
    return float(losses[-1]), float(mlp_accuracy(params, inputs, labels)), steps / seconds


def main(argv=None) -> int:
    del argv
    print(f"{'optimizer':<10} {'final loss':>10} {'accuracy':>9} {'steps/s':>10}")
    for name, make in SEED_OPTIMIZERS.items():
        loss, acc, rate = train(make())
        print(f"{name:<10} {loss:>10.4f} {acc:>9.3f} {rate:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
