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
from gradtx.demo._optimizers import adam_lesson, make
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
    steps: int
    params: object
    first_step: float  # the norm of the first update


def _round(steps: int) -> tuple[int, int]:
    every = max(1, steps // EVALUATIONS)
    return every, every * max(1, steps // every)


def run_fn(problem: Problem, name: str, steps: int, *, mixup: bool = False):
    """``run(table, params, key, x, y, xt, yt, knobs, mix)``: train and evaluate one run.

    ``table`` [steps] is the learning rate at each step (a constant learning rate is a
    constant table, a schedule its values), read at the optimizer's own step count, so one
    program serves every learning rate and every schedule. ``knobs`` = (l2, weight_decay,
    corrected) are data for the ``"lesson"`` optimizer (``_optimizers.adam_lesson``); ``mix``
    turns mixup on where True (with ``mixup``). Returns ``(params, losses [steps], first update
    norm, accuracies [evals], (final loss, training accuracy))``.
    """
    classes, batch = problem.sizes[-1], problem.batch
    every, steps = _round(steps)

    def run(table, params, key, x, y, xt, yt, knobs=None, mix=True):
        lr = lambda count: table[jnp.minimum(count, table.shape[0] - 1)]
        if name == "lesson":
            tx = adam_lesson(lr, *knobs)
        else:
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
        final = (mlp_loss(params, x, y), mlp_accuracy(params, x, y))
        return params, losses.reshape(-1), norms.reshape(-1)[0], acc, final

    return run


def data_args(problem: Problem, seed: int = 0) -> tuple:
    """``(params, key, x, y, xt, yt)``: the initial MLP and the data, as arguments."""
    init = mlp_init(jax.random.PRNGKey(seed), problem.sizes)
    return (init, jax.random.PRNGKey(seed + 1), *problem.train, *problem.test)


def constant(lr, steps: int) -> np.ndarray:
    """A constant learning rate as a table ``[steps]``."""
    return np.full(_round(steps)[1], lr, np.float32)


def rows_job(problem: Problem, name: str, tables, steps: int, seed=0, mixup=False, knobs=None):
    """One program that trains ``problem`` once per row of ``tables`` [rows, steps] (vmap).

    With ``knobs`` [rows, 3] (the ``"lesson"`` optimizer) each row also has its own
    (l2, weight_decay, corrected).
    """
    fn = run_fn(problem, name, steps, mixup=mixup)
    tables = jnp.asarray(np.asarray(tables, np.float32))
    if knobs is None:
        batched = jax.vmap(lambda tb, *a: fn(tb, *a, None, True), in_axes=(0,) + (None,) * 6)
        args = (tables, *data_args(problem, seed))
    else:
        batched = jax.vmap(
            lambda tb, kn, *a: fn(tb, *a, tuple(kn), True), in_axes=(0, 0) + (None,) * 6
        )
        args = (tables, jnp.asarray(knobs, jnp.float32), *data_args(problem, seed))
    key = ("rows", problem.name, problem.sizes, name, _round(steps)[1], tables.shape[0], mixup)
    label = f"{name}{' + mixup' if mixup else ''}: {tables.shape[0]} runs on {problem.name}"
    return Job(key, batched, args, label)


def single_job(problem: Problem, name: str, steps: int, seed: int = 0):
    """One run (not vmapped) whose learning-rate table is its first argument: the sweep's loop."""
    fn = run_fn(problem, name, steps)
    args = (jnp.asarray(constant(TRAIN_LR.get(name, 1e-2), steps)), *data_args(problem, seed))
    key = ("single", problem.name, problem.sizes, name, _round(steps)[1])
    return Job(key, lambda tb, *a: fn(tb, *a, None, True), args, f"single run of {name}")


def runs_of(problem: Problem, steps: int, out) -> list[Run]:
    """Split a ``rows_job`` result into one ``Run`` per row (NumPy arrays: no eager JAX ops)."""
    params, losses, first, acc, (final, train_acc) = jax.tree.map(np.asarray, out)
    every, steps = _round(steps)
    evals = every * np.arange(1, acc.shape[1] + 1)
    return [
        Run(
            losses[i],
            acc[i],
            evals,
            float(train_acc[i]),
            float(final[i]),
            steps,
            jax.tree.map(lambda a, i=i: a[i], params),
            float(first[i]),
        )
        for i in range(losses.shape[0])
    ]


def run_rows(job: Job):
    """``(output, compile seconds, run seconds)`` of a rows job (compiled once, cached)."""
    executable, compile_s = compiled(job.key, job.fn, *job.args)
    out, run_s = timed(executable, *job.args)
    return out, compile_s, run_s


# The lessons' four variants of Adam, as data: (l2, weight_decay, corrected).
LESSONS = {
    "adamw": (0.0, WEIGHT_DECAY, 1.0),
    "adam+l2": (WEIGHT_DECAY, 0.0, 1.0),
    "adam": (0.0, 0.0, 1.0),
    "adam (no bias corr.)": (0.0, 0.0, 0.0),
}


def lessons_job(steps: int, seed: int = 0):
    """One program for the four variants of Adam in ``LESSONS`` on the spiral."""
    tables = np.stack([constant(TRAIN_LR["adam"], steps)] * len(LESSONS))
    knobs = np.asarray(list(LESSONS.values()), np.float32)
    return rows_job(spiral(seed), "lesson", tables, steps, seed, knobs=knobs)


def lessons(steps: int, seed: int = 0) -> dict:
    """``{variant: Run}`` for the four variants of Adam in ``LESSONS``."""
    out, _, _ = run_rows(lessons_job(steps, seed))
    return dict(zip(LESSONS, runs_of(spiral(seed), steps, out)))


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
    batched = jax.tree.map(lambda *xs: jnp.stack(xs), *(per_seed + per_seed))  # [2 * seeds]
    mix = jnp.repeat(jnp.asarray([False, True]), len(seeds))
    tables = jnp.asarray(np.stack([constant(TRAIN_LR[name], steps)] * (2 * len(seeds))))
    fn = run_fn(problems[0], name, steps, mixup=True)
    batched_fn = jax.vmap(lambda tb, p, k, x, y, xt, yt, m: fn(tb, p, k, x, y, xt, yt, None, m))
    key = ("mixup", name, _round(steps)[1], tuple(seeds))
    return Job(key, batched_fn, (tables, *batched, mix), f"{name} with and without mixup")


def mixup_study(steps: int, seeds=(0, 1, 2), name: str = "adam") -> MixupStudy:
    """Adam on the small shapes set, with and without mixup, for each seed."""
    job = mixup_job(steps, seeds, name)
    executable, _ = compiled(job.key, job.fn, *job.args)
    _, _, _, acc, (_, train_acc) = jax.tree.map(np.asarray, executable(*job.args))
    k = len(seeds)
    acc = acc.reshape(2, k, -1)
    every, _ = _round(steps)
    evals = every * np.arange(1, acc.shape[-1] + 1)
    return MixupStudy(tuple(seeds), train_acc.reshape(2, k), acc[:, :, -1], acc, evals)


def schedule_tables(steps: int, peak: float) -> dict:
    """The schedule zoo at peak learning rate ``peak``: ``{name: values [steps]}``."""
    steps = _round(steps)[1]
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


def decision_grid(params, resolution: int = 100, lim: float = 1.1):
    """The predicted class on a ``resolution`` x ``resolution`` grid over [-lim, lim]^2."""
    g = np.linspace(-lim, lim, resolution)
    xs, ys = np.meshgrid(g, g)
    pts = jnp.asarray(np.stack([xs.ravel(), ys.ravel()], 1), jnp.float32)
    logits = mlp_logits(params, pts)
    return np.asarray(jnp.argmax(logits, -1)).reshape(resolution, resolution)
