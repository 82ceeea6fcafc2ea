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
    formula: str  # the loss, in words, for the panel's sentence
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
        "f = (x^2 + 50 y^2) / 2, an ill-conditioned valley",
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
        "f = x^2/2 + y^4/4 - y^2/2, a saddle at 0 (started a hair off the ridge)",
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
        "Rosenbrock, a curved narrow valley",
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
        "f = (x^2 + 4 y^2) / 2 with noisy gradients (std 1 per coordinate)",
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


def _horizon(steps):
    return max(s.steps for s in SURFACES) if steps is None else steps


def trajectory_job(name: str, steps=None, seed: int = 0, dtype=jnp.float32):
    """The compile job behind ``trajectory``: one program per optimizer for every surface.

    The surfaces are a batch (``vmap`` over a ``lax.switch`` on the surface's index) and the
    learning rate is an argument, so the seven optimizers need seven programs, not 28. Every
    surface runs ``steps`` steps (default: the longest surface's); ``trajectory`` keeps the
    first ``surface.steps``.
    """
    steps = _horizon(steps)
    grads = [jax.grad(s.loss) for s in SURFACES]

    def run(index, start, lr, noise):
        tx = make(name, lr)

        def body(carry, noise_t):
            xy, state = carry
            g = jax.lax.switch(index, grads, xy)
            updates, state = tx.update(g + noise_t, state, xy)
            xy = gradtx.apply_updates(xy, updates)
            return (xy, state), xy

        _, path = jax.lax.scan(body, (start, tx.init(start)), noise)
        return jnp.concatenate([start[None], path])

    args = (
        jnp.arange(len(SURFACES), dtype=jnp.int32),
        jnp.asarray([s.start for s in SURFACES], dtype),
        jnp.asarray([s.learning_rates[name] for s in SURFACES], dtype),
        jnp.stack([gradient_noise(s, steps, seed, dtype) for s in SURFACES]),
    )
    return Job(("surfaces", name), jax.vmap(run), args, f"{name} on the surfaces")


def trajectories(name: str, steps=None, seed: int = 0, dtype=jnp.float32) -> dict:
    """``{surface name: path}`` for optimizer ``name``, each path a NumPy array ``[n + 1, 2]``.

    ``n`` is ``steps`` if given, else ``surface.steps``. At step t the optimizer sees
    ``grad(loss)(xy) + gradient_noise(surface, horizon)[t]`` with the learning rate
    ``surface.learning_rates[name]``; ``horizon`` is ``steps`` or the longest surface's.
    """
    job = trajectory_job(name, steps, seed, dtype)
    executable, _ = compiled(job.key, job.fn, *job.args)
    paths = np.asarray(executable(*job.args))
    return {s.name: p[: (s.steps if steps is None else steps) + 1] for s, p in zip(SURFACES, paths)}


def trajectory(surface: Surface, name: str, steps=None, seed: int = 0, dtype=jnp.float32):
    """The path of optimizer ``name`` from ``surface.start`` (see ``trajectories``)."""
    return trajectories(name, steps, seed, dtype)[surface.name]


def losses(surface: Surface, path) -> np.ndarray:
    """The noise-free loss at every point of a path (in NumPy, float64)."""
    return np.asarray(surface.loss(np.asarray(path, np.float64).T))


def steps_to(loss_curve, threshold: float):
    """The first step whose loss is below ``threshold``, or None if it never gets there."""
    below = np.nonzero(np.asarray(loss_curve) < threshold)[0]
    return int(below[0]) if below.size else None


def step_lengths(path) -> np.ndarray:
    """The length of every step of a path: ``|xy[t + 1] - xy[t]|``."""
    return np.linalg.norm(np.diff(np.asarray(path, np.float64), axis=0), axis=1)


def shrink_factor(path, window: int = 10) -> float:
    """How many times shorter the last ``window`` steps are than the first (mean lengths)."""
    lengths = step_lengths(path)
    window = max(1, min(window, len(lengths) // 2))
    return float(lengths[:window].mean() / max(lengths[-window:].mean(), 1e-300))


def _names(names):
    return ", ".join(names) if names else "none"


def lessons(paths: dict, steps_override=None) -> dict:
    """One sentence per surface, each computed from the plotted paths: ``{surface: text}``.

    ``paths[surface][optimizer]`` are the paths drawn in the figure. A sentence states the
    statistic it rests on, and says so when the run does not show the textbook lesson.
    """
    out = {}
    for s in SURFACES:
        p = paths[s.name]
        loss = {n: losses(s, path) for n, path in p.items()}
        n_steps = len(next(iter(p.values()))) - 1
        parts = []
        if s.name == "ill_conditioned":
            if "sgd" in p:
                first = p["sgd"][: min(21, n_steps + 1), 1]
                flips = int(np.sum(np.diff(np.sign(first)) != 0))
                shape = (
                    "zig-zags across the valley"
                    if flips >= 0.75 * (len(first) - 1)
                    else ("does not zig-zag here")
                )
                parts.append(
                    f"SGD {shape}: its y changes sign at {flips} of its first {len(first) - 1} "
                    "steps"
                )
            if "momentum" in p:
                x_max = float(p["momentum"][:, 0].max())
                parts.append(
                    f"momentum {'overshoots' if x_max > 0 else 'does not overshoot'} the "
                    f"minimum along x (largest x {x_max:.2f}; the minimum is at 0)"
                )
            if "sgd" in p and "momentum" in p:
                a, b = steps_to(loss["sgd"], 1e-2), steps_to(loss["momentum"], 1e-2)
                fmt = lambda k, n=n_steps: f"more than {n} steps" if k is None else f"{k} steps"
                faster = b is not None and (a is None or b < a)
                parts.append(
                    f"to reach loss 1e-2 momentum takes {fmt(b)}, SGD {fmt(a)}: momentum is "
                    f"{'faster' if faster else 'not faster'}"
                )
        elif s.name == "saddle":
            stalled = [n for n, c in loss.items() if c[-1] > 0.2]
            escaped = [n for n, c in loss.items() if c[-1] < 1e-2]
            parts.append(
                f"after {n_steps} steps, near the saddle (loss above 0.2; the saddle's is 0.25): "
                f"{_names(stalled)}; at a minimum (loss below 1e-2): {_names(escaped)}"
            )
        elif s.name == "rosenbrock":
            dist = {
                n: float(np.linalg.norm(path[-1] - np.asarray(s.minimum))) for n, path in p.items()
            }
            arrived = [n for n, d in dist.items() if d < 0.05]
            short = [f"{n} {d:.2f}" for n, d in dist.items() if d >= 0.05]
            parts.append(
                f"after {n_steps} steps, within 0.05 of the minimum (1, 1): {_names(arrived)}; "
                f"still short (distance): {_names(short)}"
            )
        elif s.name == "noisy":
            half = {n: float(c[len(c) // 2 :].mean()) for n, c in loss.items()}
            if "sgd" in half and "momentum" in half:
                a, b = half["sgd"], half["momentum"]
                verdict = (
                    f"momentum's averaging lowers it {a / b:.1f} times"
                    if b < a
                    else "momentum's averaging does not lower it here"
                )
                parts.append(
                    f"mean noise-free loss over the second half of the run: SGD {a:.3f}, "
                    f"momentum {b:.3f}; {verdict}"
                )
        if "adagrad" in p:
            f = shrink_factor(p["adagrad"])
            reached = loss["adagrad"][-1] < 1e-2
            parts.append(
                f"AdaGrad's step length falls {f:.3g} times from its first 10 steps to its "
                f"last 10, and it {'reaches' if reached else 'does not reach'} loss 1e-2"
            )
        out[s.name] = "; ".join(parts) if parts else "no statistic for these optimizers"
    return out
