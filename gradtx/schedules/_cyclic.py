"""Cyclical schedules: ``torch.optim.lr_scheduler.CyclicLR``'s triangular and exp_range modes.

The conventions are those of ``_decays``: any numeric argument may be an array or a tracer.
"""

from __future__ import annotations

import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx.schedules._decays import (
    Schedule,
    _check_steps,
    _floats,
    _pow_count,
    _safe,
)

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
