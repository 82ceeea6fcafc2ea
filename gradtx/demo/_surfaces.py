"""2-D test surfaces that show the seed's failure modes, and each optimizer's path on them."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx.demo._jit import Job, compiled
from gradtx.demo._optimizers import make


class Surface(NamedTuple):
    name: str  # short id, used in file names and tables
    lesson: str  # what the panel shows
    loss: Callable  # f(xy) for xy of shape [2]
    start: tuple[float, float]
    minimum: tuple[float, float]
    box: tuple[float, float, float, float]  # xmin, xmax, ymin, ymax of the contour plot
    steps: int
    noise: float  # std of the Gaussian noise added to every gradient coordinate
    learning_rates: dict  # optimizer name -> learning rate, tuned so the lesson shows


def _ill_conditioned(p):
    return 0.5 * (p[0] ** 2 + 50.0 * p[1] ** 2)


def _saddle(p):
    return 0.5 * p[0] ** 2 + 0.25 * p[1] ** 4 - 0.5 * p[1] ** 2 + 0.25


def _rosenbrock(p):
    return (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2


def _bowl(p):
    return 0.5 * (p[0] ** 2 + 4.0 * p[1] ** 2)


SURFACES = (
    Surface(
        "ill_conditioned",
        "f = (x^2 + 50 y^2) / 2: SGD zig-zags across the valley; momentum overshoots and is faster",
        _ill_conditioned,
        (-4.0, 0.9),
        (0.0, 0.0),
        (-4.5, 1.0, -1.2, 1.2),
        80,
        0.0,
        {
            "sgd": 0.038,
            "momentum": 0.01,
            "nesterov": 0.01,
            "adagrad": 0.8,
            "rmsprop": 0.05,
            "adam": 0.2,
            "adamw": 0.2,
        },
    ),
    Surface(
        "saddle",
        "f = x^2/2 + y^4/4 - y^2/2: a saddle at 0; SGD crawls away, momentum and Adam escape",
        _saddle,
        (-2.0, 1e-3),
        (0.0, 1.0),
        (-2.2, 1.0, -1.4, 1.4),
        60,
        0.0,
        {
            "sgd": 0.1,
            "momentum": 0.03,
            "nesterov": 0.03,
            "adagrad": 0.5,
            "rmsprop": 0.02,
            "adam": 0.1,
            "adamw": 0.1,
        },
    ),
    Surface(
        "rosenbrock",
        "Rosenbrock: a curved narrow valley; SGD crawls, AdaGrad's step dies, Adam arrives",
        _rosenbrock,
        (-1.2, 1.0),
        (1.0, 1.0),
        (-1.6, 1.4, -0.5, 1.6),
        1000,
        0.0,
        {
            "sgd": 1.5e-3,
            "momentum": 3e-4,
            "nesterov": 3e-4,
            "adagrad": 0.3,
            "rmsprop": 0.01,
            "adam": 0.05,
            "adamw": 0.05,
        },
    ),
    Surface(
        "noisy",
        "f = (x^2 + 4 y^2) / 2 with noisy gradients: SGD wanders; averaging calms the path",
        _bowl,
        (-3.0, 2.0),
        (0.0, 0.0),
        (-3.5, 1.5, -1.5, 2.5),
        100,
        1.0,
        {
            "sgd": 0.1,
            "momentum": 0.01,
            "nesterov": 0.01,
            "adagrad": 0.5,
            "rmsprop": 0.05,
            "adam": 0.1,
            "adamw": 0.1,
        },
    ),
)
BY_NAME = {s.name: s for s in SURFACES}


def gradient_noise(surface: Surface, steps: int, seed: int = 0, dtype=jnp.float32):
    """The noise added to the gradient at each step: ``noise * normal(key, (steps, 2))``."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), zlib.crc32(surface.name.encode()) >> 1)
    return jnp.asarray(surface.noise, dtype) * jax.random.normal(key, (steps, 2), dtype)


def trajectory_job(surface: Surface, name: str, steps=None, seed: int = 0, dtype=jnp.float32):
    """The compile job behind ``trajectory`` (see ``_jit.compile_many``)."""
    steps = surface.steps if steps is None else steps
    tx = make(name, surface.learning_rates[name])
    grad = jax.grad(surface.loss)

    def body(carry, noise):
        xy, state = carry
        updates, state = tx.update(grad(xy) + noise, state, xy)
        xy = gradtx.apply_updates(xy, updates)
        return (xy, state), xy

    def run(start, noise):
        _, path = jax.lax.scan(body, (start, tx.init(start)), noise)
        return jnp.concatenate([start[None], path])

    args = (jnp.asarray(surface.start, dtype), gradient_noise(surface, steps, seed, dtype))
    key = ("surface", surface.name, surface.loss, name, surface.learning_rates[name])
    return Job(key, run, args, f"{name} on {surface.name}")


def trajectory(surface: Surface, name: str, steps=None, seed: int = 0, dtype=jnp.float32):
    """The path of optimizer ``name`` from ``surface.start``: a NumPy array ``[steps + 1, 2]``.

    At step t the optimizer sees ``grad(loss)(xy) + gradient_noise(...)[t]``; the learning
    rate is ``surface.learning_rates[name]``.
    """
    job = trajectory_job(surface, name, steps, seed, dtype)
    executable, _ = compiled(job.key, job.fn, *job.args)
    return np.asarray(executable(*job.args))


def losses(surface: Surface, path) -> np.ndarray:
    """The noise-free loss at every point of a path."""
    return np.asarray(jax.vmap(surface.loss)(jnp.asarray(path)))


def steps_to(loss_curve, threshold: float):
    """The first step whose loss is below ``threshold``, or None if it never gets there."""
    below = np.nonzero(np.asarray(loss_curve) < threshold)[0]
    return int(below[0]) if below.size else None
