"""Schedules optax lacks: step decay, inverse square root, warmup-stable-decay, cyclic.

Step decay is CS231n's and ``torch.optim.lr_scheduler.StepLR``'s; the cyclic schedule is
``torch.optim.lr_scheduler.CyclicLR``'s. The conventions are those of ``_schedules``: any
numeric argument may be an array or a tracer.
"""

from __future__ import annotations

import jax.numpy as jnp

from gradtx import _checks
from gradtx._schedules import (
    Schedule,
    _check_steps,
    _check_warmup,
    _floats,
    _pow01,
    _pow_count,
    _ramp,
    _safe,
)


def step_decay_schedule(init_value, step_size, gamma=0.1) -> Schedule:
    """Step decay (CS231n; ``torch.optim.lr_scheduler.StepLR``): times gamma every step_size.

    value = init_value * gamma ** floor(count / step_size)

    Args:
        init_value: the value for the first ``step_size`` counts.
        step_size: counts between two decays (> 0).
        gamma: the factor applied at each decay (>= 0; torch's default 0.1).
    """
    where = "gradtx.step_decay_schedule"
    _checks.check_number(where, "init_value", init_value)
    _check_steps(where, "step_size", step_size, positive=True)
    _checks.check_number(where, "gamma", gamma, low=0.0)

    def schedule(count):
        c, i, n, g = _floats(count, init_value, step_size, gamma)
        k = jnp.where(n > 0, jnp.floor(jnp.maximum(c, 0) / _safe(n)), 0)
        return i * _pow_count(g, k)

    return schedule


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
        init_value, peak_value, end_value: the values at count 0, after warmup, at the end.
        warmup_steps, stable_steps, decay_steps: the lengths of the three phases (>= 0).
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


_CYCLIC_MODES = ("triangular", "triangular2", "exp_range")


def cyclic_schedule(
    base_value,
    max_value,
    step_size_up=2000,
    step_size_down=None,
    gamma=1.0,
    *,
    mode: str = "triangular",
) -> Schedule:
    """Cyclical values between ``base_value`` and ``max_value``, as torch's ``CyclicLR``.

    total = step_size_up + step_size_down; r = count mod total; cycle = floor(count / total)
    x = r / step_size_up if r <= step_size_up else (total - r) / step_size_down
    amplitude = 1 (triangular), 0.5 ** cycle (triangular2), gamma ** count (exp_range)
    value = base_value + (max_value - base_value) * x * amplitude

    Args:
        base_value: the value at the start of each cycle (torch's ``base_lr``).
        max_value: the value at the top of the first cycle (torch's ``max_lr``); it may be
            below ``base_value`` (e.g. to cycle momentum the other way).
        step_size_up: counts from the base to the top (> 0).
        step_size_down: counts from the top back to the base (> 0; None: step_size_up).
        gamma: the per-count decay of the amplitude in ``exp_range`` mode (> 0).
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"`` (static).

    References:
        Smith, Cyclical Learning Rates for Training Neural Networks, 2017.
    """
    where = "gradtx.cyclic_schedule"
    if mode not in _CYCLIC_MODES:
        raise ValueError(f"{where}: mode={mode!r}; expected one of {_CYCLIC_MODES}.")
    _checks.check_number(where, "base_value", base_value)
    _checks.check_number(where, "max_value", max_value)
    _check_steps(where, "step_size_up", step_size_up, positive=True)
    if step_size_down is not None:
        _check_steps(where, "step_size_down", step_size_down, positive=True)
    _checks.check_number(where, "gamma", gamma, low=0.0, low_open=True)
    down_steps = step_size_up if step_size_down is None else step_size_down

    def schedule(count):
        c, lo, hi, up, down, g = _floats(
            count, base_value, max_value, step_size_up, down_steps, gamma
        )
        c = jnp.maximum(c, 0)
        total = _safe(up + down)
        r = jnp.mod(c, total)
        x = jnp.where(r <= up, r / _safe(up), (total - r) / _safe(down))
        if mode == "triangular":
            amplitude = 1
        elif mode == "triangular2":
            amplitude = 0.5 ** jnp.floor(c / total)
        else:
            amplitude = _pow_count(g, c)
        return lo + (hi - lo) * x * amplitude

    return schedule
