"""Training runs for the demo: the spiral classifier, its learning-rate sweep and schedules.

One program per optimizer serves the training table, the sweep's loop and any learning rate:
the learning rate is an argument (an array), never a constant baked into the program.
"""

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

# Learning rates for the spiral (each near the best of the sweep at 300 to 1000 steps).
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
EVALUATIONS = 50  # held-out accuracy is measured this many times per run


class Problem(NamedTuple):
    name: str
    title: str
    train: tuple  # (inputs [N, d], labels int32 [N])
    test: tuple  # (inputs [M, d], labels int32 [M])
    sizes: tuple  # MLP layer sizes
    batch: int | None  # minibatch size; None for full-batch gradients


def spiral(seed: int = 0) -> Problem:
    """The CS231n spiral: 3 classes of 100 points, full-batch gradients, a 2-100-3 MLP."""
    return Problem(
        "spiral",
        "CS231n spiral (2-D, 3 classes, full batch)",
        spiral_data(seed=seed),
        spiral_data(seed=seed + 1),
        (2, 100, 3),
        None,
    )


def shapes(seed: int = 0, n_train: int = 500, n_test: int = 1000, noise: float = 0.15) -> Problem:
    """Noisy 8x8 shapes (10 classes): a small training set, so a 64-128-10 MLP overfits."""
    flat = lambda xy: (xy[0].reshape(xy[0].shape[0], -1), xy[1])
    return Problem(
        "shapes",
        f"8x8 shapes ({n_train} training images, pixel noise {noise:g}, 10 classes, "
        "minibatches of 32)",
        flat(shapes_data(n_train, seed=seed + 10, noise=noise)),
        flat(shapes_data(n_test, seed=seed + 11, noise=noise)),
        (64, 128, 10),
        32,
    )


class Run(NamedTuple):
    loss: np.ndarray  # [steps] training loss (of the minibatch, before the step)
    test_accuracy: np.ndarray  # [EVALUATIONS] accuracy on the held-out set
    eval_steps: np.ndarray  # [EVALUATIONS] the step after which each evaluation was made
    train_accuracy: float
    final_loss: float  # the loss on the whole training set after the last step
    compile_s: float
    run_s: float
    steps: int
    params: object
    first_step: float  # the norm of the first update


def _round(steps: int) -> tuple[int, int]:
    every = max(1, steps // EVALUATIONS)
    return every, every * max(1, steps // every)


def run_fn(problem: Problem, name: str, steps: int, *, mixup: bool = False, schedule=False):
    """``run(lr, params, key, x, y, xt, yt)``: train and evaluate one configuration.

    ``lr`` is a scalar learning rate, or with ``schedule=True`` a table ``[steps]`` read at the
    optimizer's step count. With ``mixup`` the function takes a last argument ``mix`` (a bool
    array): mixup is applied where it is True, so one program runs both arms. Returns
    ``(params, losses [steps], first update norm, accuracies [evals], final loss)``.
    """
    classes, batch = problem.sizes[-1], problem.batch
    every, steps = _round(steps)

    def run(lr, params, key, x, y, xt, yt, mix=False):
        if schedule:
            table = lr
            lr = lambda count: table[jnp.minimum(count, table.shape[0] - 1)]
        tx = make(name, lr, weight_decay=WEIGHT_DECAY)

        def step(carry, k):
            p, state = carry
            xb, yb = x, y
            if batch is not None:
                idx = jax.random.randint(k, (batch,), 0, x.shape[0], jnp.int32)
                xb, yb = x[idx], y[idx]
            yb = jax.nn.one_hot(yb, classes)
            if mixup:
                xm, ym = gradtx.mixup(jax.random.fold_in(k, 1), xb, yb, MIXUP_ALPHA)
                xb, yb = jnp.where(mix, xm, xb), jnp.where(mix, ym, yb)
            loss, grads = jax.value_and_grad(mlp_loss)(p, xb, yb)
            updates, state = tx.update(grads, state, p)
            return (gradtx.apply_updates(p, updates), state), (loss, gradtx.global_norm(updates))

        def chunk(carry, keys):
            carry, (losses, norms) = jax.lax.scan(step, carry, keys)
            return carry, (losses, norms, mlp_accuracy(carry[0], xt, yt))

        keys = jax.random.split(key, steps).reshape(steps // every, every, -1)
        (params, _), (losses, norms, acc) = jax.lax.scan(chunk, (params, tx.init(params)), keys)
        return params, losses.reshape(-1), norms.reshape(-1)[0], acc, mlp_loss(params, x, y)

    return run


def data_args(problem: Problem, seed: int = 0) -> tuple:
    """``(params, key, x, y, xt, yt)``: the initial MLP and the data, as arguments."""
    init = mlp_init(jax.random.PRNGKey(seed), problem.sizes)
    return (init, jax.random.PRNGKey(seed + 1), *problem.train, *problem.test)


def train_job(problem: Problem, name: str, steps: int, seed: int = 0, mixup: bool = False):
    """The compile job behind ``train``: the learning rate is the first argument."""
    lr = jnp.asarray(TRAIN_LR[name], jnp.float32)
    args = (lr, *data_args(problem, seed))
    fn = run_fn(problem, name, steps)
    if mixup:  # every step on mixup batches
        inner = run_fn(problem, name, steps, mixup=True)
        fn = lambda *a: inner(*a, True)
    key = ("train", problem.name, problem.sizes, name, _round(steps)[1], mixup)
    return Job(key, fn, args, f"{name}{' + mixup' if mixup else ''} on {problem.name}")


def _run(problem, steps, out, compile_s, run_s) -> Run:
    params, losses, first, acc, final = out
    every, steps = _round(steps)
    return Run(
        np.asarray(losses),
        np.asarray(acc),
        every * np.arange(1, len(acc) + 1),
        float(mlp_accuracy(params, *problem.train)),
        float(final),
        compile_s,
        run_s,
        steps,
        params,
        float(first),
    )


def train(problem: Problem, name: str, steps: int, seed: int = 0, mixup: bool = False, lr=None):
    """Train the problem's MLP with optimizer ``name``; one jitted scan, timed after compiling.

    ``steps`` is rounded down to a multiple of the evaluation interval (``steps // 50``).
    ``lr`` defaults to ``TRAIN_LR[name]``.
    """
    job = train_job(problem, name, steps, seed, mixup)
    executable, compile_s = compiled(job.key, job.fn, *job.args)
    args = job.args if lr is None else (jnp.asarray(lr, jnp.float32), *job.args[1:])
    out, run_s = timed(executable, *args)
    return _run(problem, steps, out, compile_s, run_s)


class MixupStudy(NamedTuple):
    seeds: tuple
    train_accuracy: np.ndarray  # [2, seeds]: row 0 without mixup, row 1 with
    test_accuracy: np.ndarray  # [2, seeds], at the end of training
    curves: np.ndarray  # [2, seeds, evals] held-out accuracy during training
    eval_steps: np.ndarray


def mixup_job(steps: int, seeds=(0, 1, 2), name: str = "adam"):
    """One program for both arms of the mixup study over every seed (vmap over 2 x seeds)."""
    problems = [shapes(s) for s in seeds]
    per_seed = [data_args(p, s) for p, s in zip(problems, seeds)]
    stack = lambda *xs: jnp.stack(xs)
    batched = jax.tree.map(stack, *(per_seed + per_seed))  # [2 * seeds, ...]
    mix = jnp.repeat(jnp.asarray([False, True]), len(seeds))
    lr = jnp.full((2 * len(seeds),), TRAIN_LR[name], jnp.float32)
    fn = jax.vmap(run_fn(problems[0], name, steps, mixup=True))
    key = ("mixup", name, _round(steps)[1], tuple(seeds))
    return Job(key, fn, (lr, *batched, mix), f"{name} with and without mixup on shapes")


def mixup_study(steps: int, seeds=(0, 1, 2), name: str = "adam") -> MixupStudy:
    """Adam on the small shapes set, with and without mixup, for each seed."""
    job = mixup_job(steps, seeds, name)
    executable, _ = compiled(job.key, job.fn, *job.args)
    params, _, _, acc, _ = executable(*job.args)
    k = len(seeds)
    problems = [shapes(s) for s in seeds]
    train_acc = np.array(
        [
            float(mlp_accuracy(jax.tree.map(lambda a, i=i: a[i], params), *problems[i % k].train))
            for i in range(2 * k)
        ]
    ).reshape(2, k)
    acc = np.asarray(acc).reshape(2, k, -1)
    every, _ = _round(steps)
    return MixupStudy(
        tuple(seeds), train_acc, acc[:, :, -1], acc, every * np.arange(1, acc.shape[-1] + 1)
    )


def schedule_tables(steps: int, peak: float) -> dict:
    """The schedule zoo at peak learning rate ``peak``: ``{name: values [steps]}``."""
    t = jnp.arange(steps)
    warm = max(1, steps // 10)
    zoo = {
        "constant": gradtx.constant_schedule(peak),
        "step": gradtx.step_decay_schedule(peak, step_size=max(1, steps // 3), gamma=0.1),
        "cosine": gradtx.cosine_decay_schedule(peak, decay_steps=steps),
        "warmup-cosine": gradtx.warmup_cosine_decay_schedule(0.0, peak, warm, steps),
        "one-cycle": gradtx.cosine_onecycle_schedule(steps, peak),
        "wsd": gradtx.wsd_schedule(0.0, peak, warm, steps - warm - steps // 5, steps // 5),
    }
    return {n: np.asarray(jnp.broadcast_to(s(t), t.shape), np.float32) for n, s in zoo.items()}


def schedules_job(steps: int, name: str, peak: float, seed: int = 0):
    """One program that trains the spiral under every schedule of the zoo (vmap)."""
    problem = spiral(seed)
    tables = schedule_tables(_round(steps)[1], peak)
    fn = jax.vmap(run_fn(problem, name, steps, schedule=True), in_axes=(0,) + (None,) * 6)
    args = (jnp.asarray(np.stack(list(tables.values()))), *data_args(problem, seed))
    key = ("schedules", name, _round(steps)[1], tuple(tables))
    return Job(key, fn, args, f"{name} under {len(tables)} schedules"), tables


def schedule_study(steps: int, name: str = "momentum", peak: float = 0.1, seed: int = 0):
    """``(tables, losses)``: each schedule's values and the training loss it produces."""
    job, tables = schedules_job(steps, name, peak, seed)
    executable, _ = compiled(job.key, job.fn, *job.args)
    _, losses, _, _, final = executable(*job.args)
    losses = np.asarray(losses)
    return (
        tables,
        {n: losses[i] for i, n in enumerate(tables)},
        dict(zip(tables, np.asarray(final))),
    )


def decision_grid(params, resolution: int = 100, lim: float = 1.1):
    """The predicted class on a ``resolution`` x ``resolution`` grid over [-lim, lim]^2."""
    g = np.linspace(-lim, lim, resolution)
    xs, ys = np.meshgrid(g, g)
    pts = jnp.asarray(np.stack([xs.ravel(), ys.ravel()], 1), jnp.float32)
    logits = mlp_logits(params, pts)
    return np.asarray(jnp.argmax(logits, -1)).reshape(resolution, resolution)
