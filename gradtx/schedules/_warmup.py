"""Schedules with a warmup: optax's, SGDR's warm restarts, inverse square root, warmup-stable-decay.

The conventions are those of ``_decays``: any numeric argument may be an array or a tracer.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx.schedules._decays import (
    Schedule,
    _check_exp,
    _check_steps,
    _check_warmup,
    _cosine_factor,
    _exp_decay,
    _floats,
    _pow01,
    _ramp,
    _safe,
    join_schedules,
)


def warmup_constant_schedule(init_value, peak_value, warmup_steps) -> Schedule:
    """Linear warmup from ``init_value`` to ``peak_value``, then ``peak_value``.

    value = init_value + (peak_value - init_value) * count / warmup_steps   (count < warmup_steps)
    value = peak_value                                                       (after)

    warmup_steps = 0 gives peak_value from the start (optax: init_value forever).
    """
    _check_warmup("gradtx.warmup_constant_schedule", init_value, peak_value, warmup_steps)

    def schedule(count):
        c, i, p, w = _floats(count, init_value, peak_value, warmup_steps)
        return jnp.where(c < w, _ramp(c, i, p, w), p)

    return schedule


def warmup_cosine_decay_schedule(
    init_value, peak_value, warmup_steps, decay_steps, end_value=0.0, exponent=1.0
) -> Schedule:
    """Linear warmup to ``peak_value``, then cosine decay to ``end_value``.

    value = linear from init_value to peak_value                  (count < warmup_steps)
    cosine = 0.5 * (1 + cos(pi * min(t, T) / T)),  t = count - warmup_steps,
             T = decay_steps - warmup_steps
    value = end_value + (peak_value - end_value) * cosine ** exponent   (after)

    Args:
        init_value: the value at count 0.
        peak_value: the value at ``warmup_steps``.
        warmup_steps: the length of the warmup (>= 0).
        decay_steps: the total length, warmup included (> warmup_steps).
        end_value: the value from ``decay_steps`` on.
        exponent: the power of the cosine factor (>= 0).
    """
    where = "gradtx.warmup_cosine_decay_schedule"
    _check_warmup(where, init_value, peak_value, warmup_steps)
    _check_steps(where, "decay_steps", decay_steps, positive=True)
    _checks.check_number(where, "exponent", exponent, low=0.0)
    py = _checks.is_python_number
    if py(warmup_steps) and py(decay_steps) and decay_steps <= warmup_steps:
        raise ValueError(
            f"{where}: decay_steps={decay_steps} <= warmup_steps={warmup_steps}; decay_steps is "
            "the total length, warmup included, so it must exceed warmup_steps."
        )

    def schedule(count):
        c, i, p, w, d, e, x = _floats(
            count, init_value, peak_value, warmup_steps, decay_steps, end_value, exponent
        )
        decay = e + (p - e) * _cosine_factor(c - w, d - w, x)
        return jnp.where(c < w, _ramp(c, i, p, w), decay)

    return schedule


def warmup_exponential_decay_schedule(
    init_value,
    peak_value,
    warmup_steps,
    transition_steps,
    decay_rate,
    transition_begin=0,
    staircase=False,
    end_value=None,
) -> Schedule:
    """Linear warmup to ``peak_value``, then ``exponential_decay`` of it.

    value = linear from init_value to peak_value                     (count < warmup_steps)
    value = exponential_decay(peak_value, transition_steps, decay_rate, transition_begin,
            staircase, end_value)(count - warmup_steps)                 (after)
    """
    where = "gradtx.warmup_exponential_decay_schedule"
    _check_warmup(where, init_value, peak_value, warmup_steps)
    _check_exp(where, transition_steps, decay_rate, transition_begin)

    def schedule(count):
        c, i, p, w, n, r, b, e = _floats(
            count, init_value, peak_value, warmup_steps, transition_steps, decay_rate,
            transition_begin, end_value,
        )  # fmt: skip
        decay = _exp_decay(c - w, p, n, r, b, e, staircase)
        return jnp.where(c < w, _ramp(c, i, p, w), decay)

    return schedule


def sgdr_schedule(cosine_kwargs: Sequence[dict]) -> Schedule:
    """SGD with warm restarts: ``warmup_cosine_decay_schedule`` cycles joined end to end.

    Cycle k runs warmup_cosine_decay_schedule(**cosine_kwargs[k]) for its ``decay_steps`` steps,
    on the count since the cycle began; the last cycle then holds its end value.

    Args:
        cosine_kwargs: one dict of ``warmup_cosine_decay_schedule`` arguments per cycle.

    References:
        Loshchilov and Hutter, SGDR: Stochastic Gradient Descent with Warm Restarts, 2017.
    """
    schedules, boundaries, total = [], [], 0
    for k, kwargs in enumerate(cosine_kwargs):
        if "decay_steps" not in kwargs:
            raise ValueError(
                f"gradtx.sgdr_schedule: cosine_kwargs[{k}] has no 'decay_steps'; each cycle needs "
                "the warmup_cosine_decay_schedule arguments, decay_steps giving its length."
            )
        schedules.append(warmup_cosine_decay_schedule(**kwargs))
        total = total + kwargs["decay_steps"]
        boundaries.append(total)
    return join_schedules(schedules, boundaries[:-1])


def warmup_inverse_sqrt_schedule(init_value, peak_value, warmup_steps) -> Schedule:
    """Linear warmup, then decay with the inverse square root of the count (Transformer).

    value = linear from init_value to peak_value              (count < warmup_steps)
    value = peak_value * sqrt(w / max(count, w)),  w = max(warmup_steps, 1)   (after)

    The peak is reached at count = warmup_steps, as in Vaswani et al.'s
    ``min(step ** -0.5, step * warmup ** -1.5)`` up to its constant.

    References:
        Vaswani et al., Attention Is All You Need, 2017.
    """
    _check_warmup("gradtx.warmup_inverse_sqrt_schedule", init_value, peak_value, warmup_steps)

    def schedule(count):
        c, i, p, w = _floats(count, init_value, peak_value, warmup_steps)
        scale = jnp.maximum(w, 1)
        decay = p * jnp.sqrt(scale / jnp.maximum(c, scale))
        return jnp.where(c < w, _ramp(c, i, p, w), decay)

    return schedule


_WSD_DECAYS = ("linear", "cosine", "1-sqrt")


def wsd_schedule(
    init_value,
    peak_value,
    warmup_steps,
    stable_steps,
    decay_steps,
    end_value=0.0,
    *,
    decay_type: str = "linear",
) -> Schedule:
    """Warmup-stable-decay: linear warmup, a constant phase, then a short cooldown.

    value = linear from init_value to peak_value            (count < warmup_steps)
    value = peak_value                                      (next stable_steps counts)
    f = clip(count - warmup_steps - stable_steps, 0, decay_steps) / decay_steps
    value = end_value + (peak_value - end_value) * shape(f)  (after), where shape(f) is
        1 - f (linear), (1 + cos(pi * f)) / 2 (cosine) or 1 - sqrt(f) (1-sqrt).

    Args:
        init_value: the value at count 0.
        peak_value: the value after the warmup and during the stable phase.
        warmup_steps: the length of the warmup (>= 0).
        stable_steps: the length of the constant phase (>= 0).
        decay_steps: the length of the cooldown (>= 0).
        end_value: the value at the end of the cooldown.
        decay_type: ``"linear"``, ``"cosine"`` or ``"1-sqrt"`` (static).

    References:
        Hu et al., MiniCPM, 2024. Hagele et al., Scaling Laws and Compute-Optimal Training
        Beyond Fixed Training Durations, 2024 (the 1-sqrt cooldown).
    """
    where = "gradtx.wsd_schedule"
    if decay_type not in _WSD_DECAYS:
        raise ValueError(f"{where}: decay_type={decay_type!r}; expected one of {_WSD_DECAYS}.")
    _check_warmup(where, init_value, peak_value, warmup_steps)
    _check_steps(where, "stable_steps", stable_steps)
    _check_steps(where, "decay_steps", decay_steps)
    _checks.check_number(where, "end_value", end_value)

    def schedule(count):
        c, i, p, w, s, d, e = _floats(
            count, init_value, peak_value, warmup_steps, stable_steps, decay_steps, end_value
        )
        t = c - jnp.maximum(w, 0) - s
        f = jnp.where(d > 0, jnp.clip(t, 0, _safe(d)) / _safe(d), 1)
        if decay_type == "linear":
            shape = 1 - f
        elif decay_type == "cosine":
            shape = (1 + jnp.cos(jnp.pi * f)) / 2
        else:
            shape = 1 - _pow01(f, 0.5)
        decay = jnp.where(t < 0, p, e + (p - e) * shape)
        return jnp.where(c < w, _ramp(c, i, p, w), decay)

    return schedule
