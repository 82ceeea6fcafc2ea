"""Training runs for the demo: the spiral and the 8x8 shapes, one optimizer at a time."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx.demo._jit import Job, compiled, timed
from gradtx.demo._optimizers import make
from gradtx.demo._problems import mlp_accuracy, mlp_init, mlp_logits, mlp_loss, spiral_data
from gradtx.demo._shapes import shapes_data

# Learning rates for the training problems (the same for both; adaptive methods are robust).
TRAIN_LR = {
    "sgd": 0.5,
    "momentum": 0.05,
    "nesterov": 0.05,
    "adagrad": 0.1,
    "rmsprop": 3e-3,
    "adam": 1e-2,
    "adamw": 1e-2,
    "adam+l2": 1e-2,
    "adam (no bias corr.)": 1e-2,
}
WEIGHT_DECAY = 1e-2  # for adamw and adam+l2 (coupled), so the two can be compared
MIXUP_ALPHA = 0.2


class Problem(NamedTuple):
    name: str
    title: str
    train: tuple  # (inputs [N, d], labels int32 [N])
    test: tuple  # (inputs [M, d], labels int32 [M])
    sizes: tuple  # MLP layer sizes
    batch: int | None  # minibatch size; None for full-batch gradients


def problems(seed: int = 0, quick: bool = False):
    """The spiral (3 classes, full batch) and the 8x8 shapes (10 classes, minibatches of 64)."""
    spiral = Problem(
        "spiral",
        "CS231n spiral (2-D, 3 classes, full batch)",
        spiral_data(seed=seed),
        spiral_data(seed=seed + 1),
        (2, 100, 3),
        None,
    )
    n_train, n_test = (600, 300) if quick else (3000, 1000)
    flat = lambda xy: (xy[0].reshape(xy[0].shape[0], -1), xy[1])
    shapes = Problem(
        "shapes",
        "noisy 8x8 shapes (64-D, 10 classes, minibatches of 64)",
        flat(shapes_data(n_train, seed=seed + 10)),
        flat(shapes_data(n_test, seed=seed + 11)),
        (64, 64, 10),
        64,
    )
    return spiral, shapes


class Run(NamedTuple):
    loss: np.ndarray  # [steps] training loss (of the minibatch, before the step)
    test_accuracy: np.ndarray  # [evals] accuracy on the held-out set
    train_accuracy: float
    compile_s: float
    run_s: float
    steps: int
    params: object
    first_step: float  # the norm of the first update


def train_job(problem: Problem, name: str, steps: int, seed: int = 0, mixup: bool = False):
    """The compile job behind ``train`` (see ``_jit.compile_many``)."""
    tx = make(name, TRAIN_LR[name], weight_decay=WEIGHT_DECAY)
    classes, batch = problem.sizes[-1], problem.batch
    every = max(1, steps // 50)
    steps = every * (steps // every)

    def step(carry, key, x, y):
        params, state = carry
        if batch is not None:
            idx = jax.random.randint(key, (batch,), 0, x.shape[0], jnp.int32)
            x, y = x[idx], y[idx]
        y = jax.nn.one_hot(y, classes)
        if mixup:
            x, y = gradtx.mixup(jax.random.fold_in(key, 1), x, y, MIXUP_ALPHA)
        loss, grads = jax.value_and_grad(mlp_loss)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return (gradtx.apply_updates(params, updates), state), (loss, gradtx.global_norm(updates))

    def run(params, key, x, y, xt, yt):
        def chunk(carry, keys):
            carry, (losses, norms) = jax.lax.scan(lambda c, k: step(c, k, x, y), carry, keys)
            return carry, (losses, norms, mlp_accuracy(carry[0], xt, yt))

        keys = jax.random.split(key, steps).reshape(steps // every, every, -1)
        (params, _), (losses, norms, acc) = jax.lax.scan(chunk, (params, tx.init(params)), keys)
        return params, losses.reshape(-1), norms.reshape(-1)[0], acc

    args = (
        mlp_init(jax.random.PRNGKey(seed), problem.sizes),
        jax.random.PRNGKey(seed + 1),
        *problem.train,
        *problem.test,
    )
    config = ("train", problem.name, problem.sizes, batch, name, steps, mixup)
    return Job(config, run, args, f"{name}{' + mixup' if mixup else ''} on {problem.name}")


def train(problem: Problem, name: str, steps: int, seed: int = 0, mixup: bool = False) -> Run:
    """Train the problem's MLP with optimizer ``name``; one jitted scan, timed after compiling.

    ``steps`` is rounded down to a multiple of the evaluation interval (``steps // 50``).
    """
    job = train_job(problem, name, steps, seed, mixup)
    executable, compile_s = compiled(job.key, job.fn, *job.args)
    (params, losses, first, acc), run_s = timed(executable, *job.args)
    every = max(1, steps // 50)
    return Run(
        np.asarray(losses),
        np.asarray(acc),
        float(mlp_accuracy(params, *problem.train)),
        compile_s,
        run_s,
        every * (steps // every),
        params,
        float(first),
    )


def decision_grid(params, resolution: int = 100, lim: float = 1.1):
    """The predicted class on a ``resolution`` x ``resolution`` grid over [-lim, lim]^2."""
    g = np.linspace(-lim, lim, resolution)
    xs, ys = np.meshgrid(g, g)
    pts = jnp.asarray(np.stack([xs.ravel(), ys.ravel()], 1), jnp.float32)
    logits = mlp_logits(params, pts)
    return np.asarray(jnp.argmax(logits, -1)).reshape(resolution, resolution)
