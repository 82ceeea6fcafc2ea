"""Piecewise schedules and the one-cycle schedules built on them, with optax's semantics.

The conventions are those of ``_decays``: any numeric argument may be an array or a tracer;
the number of boundaries is static, their steps and scales may be arrays.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx.schedules._decays import Schedule, _check_steps, _floats, _reached

_py = _checks.is_python_number


def _pairs(where, boundaries_and_scales):
    """``{step: scale}`` (optax) or a sequence of ``(step, scale)`` pairs, as a list of pairs."""
    if boundaries_and_scales is None:
        return []
    if isinstance(boundaries_and_scales, Mapping):
        pairs = sorted(boundaries_and_scales.items())
    else:
        pairs = [tuple(p) for p in boundaries_and_scales]
    for k, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(
                f"{where}: boundaries_and_scales[{k}] is {pair!r}; expected a (step, scale) pair. "
                "Pass a dict {step: scale} or a sequence of (step, scale) pairs."
            )
        _check_steps(where, f"the step of boundaries_and_scales[{k}]", pair[0])
        _checks.check_number(where, f"the scale of boundaries_and_scales[{k}]", pair[1], low=0.0)
    return pairs


def _flat(pairs):
    return [x for pair in pairs for x in pair]


def piecewise_constant_schedule(init_value, boundaries_and_scales=None) -> Schedule:
    """``init_value`` times every scale whose boundary the count has reached.

    value = init_value * product of scale_k over the k with count >= boundary_k

    Args:
        init_value: the value before the first boundary.
        boundaries_and_scales: ``{step: scale}`` as optax, or a sequence of ``(step, scale)``
            pairs (dict keys cannot be arrays, so pass pairs to sweep over the steps). Scales
            must be >= 0. The number of boundaries is static; their values may be arrays.
    """
    where = "gradtx.piecewise_constant_schedule"
    _checks.check_number(where, "init_value", init_value)
    pairs = _pairs(where, boundaries_and_scales)

    def schedule(count):
        c, v, *flat = _floats(count, init_value, *_flat(pairs))
        v = jnp.broadcast_to(v, c.shape)
        for (step, _), b, s in zip(pairs, flat[::2], flat[1::2]):
            v = jnp.where(_reached(count, step, c, b), v * s, v)
        return v

    return schedule


def piecewise_interpolate_schedule(
    interpolate_type: str, init_value, boundaries_and_scales=None
) -> Schedule:
    """Interpolate between the accumulated values at the boundaries (linear or cosine).

    bounds = [0, b_1, ..., b_n] (sorted), values = [v_0, ..., v_n] with v_0 = init_value and
    v_k = v_(k-1) * scale_k. For bounds[k] <= count < bounds[k + 1]:
    pct = (count - bounds[k]) / max(bounds[k + 1] - bounds[k], 1)
    value = v_k + (v_(k+1) - v_k) * pct                                (linear)
    value = v_(k+1) + (v_k - v_(k+1)) * (1 + cos(pi * pct)) / 2          (cosine)
    value = v_n from b_n on, and 0 for a negative count (as optax).

    Args:
        interpolate_type: ``"linear"`` or ``"cosine"`` (static).
        init_value: the value at count 0.
        boundaries_and_scales: as in ``piecewise_constant_schedule``.
    """
    where = "gradtx.piecewise_interpolate_schedule"
    if interpolate_type not in ("linear", "cosine"):
        raise ValueError(
            f"{where}: interpolate_type={interpolate_type!r}; expected 'linear' or 'cosine'."
        )
    _checks.check_number(where, "init_value", init_value)
    pairs = _pairs(where, boundaries_and_scales)
    static = all(_py(b) for b, _ in pairs)
    pairs = sorted(pairs, key=lambda pair: pair[0]) if static else pairs

    def schedule(count):
        c, i, *flat = _floats(count, init_value, *_flat(pairs))
        steps, scales = flat[::2], flat[1::2]
        if not static:  # sort traced steps (and their scales) by step
            order = jnp.argsort(jnp.stack(steps))
            steps, scales = list(jnp.stack(steps)[order]), list(jnp.stack(scales)[order])
        bounds, values = [jnp.zeros_like(i), *steps], [i]
        raw = [0, *(step for step, _ in pairs)] if static else [None] * len(bounds)
        for scale in scales:
            values.append(values[-1] * scale)
        out = jnp.where(_reached(count, raw[-1], c, bounds[-1]), values[-1], 0)
        for k, (lo, hi, start, end) in enumerate(zip(bounds, bounds[1:], values, values[1:])):
            pct = (c - lo) / jnp.maximum(hi - lo, 1)
            if interpolate_type == "linear":
                inner = start + (end - start) * pct
            else:
                inner = end + (start - end) * (1 + jnp.cos(jnp.pi * pct)) / 2
            inside = _reached(count, raw[k], c, lo) & ~_reached(count, raw[k + 1], c, hi)
            out = out + jnp.where(inside, inner, 0)
        return out

    return schedule


def _step_of(pct, steps):
    """int(pct * steps) as optax computes it; floor(pct * steps) for arrays."""
    if _py(pct) and _py(steps):
        return int(pct * steps)
    p, n = _floats(pct, steps)
    return jnp.floor(p * n)


def _div(a, b):
    """``a / b`` in Python for numbers, else in the common float dtype."""
    if _py(a) and _py(b):
        return a / b
    a, b = _floats(a, b)
    return a / b


def _check_onecycle(where, transition_steps, pct_start, div_factor, final_div_factor):
    _check_steps(where, "transition_steps", transition_steps, positive=True)
    _checks.check_number(where, "pct_start", pct_start, low=0.0, high=1.0)
    _checks.check_number(where, "div_factor", div_factor, low=0.0, low_open=True)
    _checks.check_number(where, "final_div_factor", final_div_factor, low=0.0, low_open=True)


def linear_onecycle_schedule(
    transition_steps,
    peak_value,
    pct_start=0.3,
    pct_final=0.85,
    div_factor=25.0,
    final_div_factor=1e4,
) -> Schedule:
    """One cycle of three linear phases (optax's definition).

    init = peak_value / div_factor; a = int(pct_start * transition_steps),
    b = int(pct_final * transition_steps)
    value: init -> peak_value over [0, a], peak_value -> init over [a, b],
    init -> init / final_div_factor over [b, transition_steps], then held.
    (``piecewise_interpolate_schedule("linear", init, {a: div_factor, b: 1 / div_factor,
    transition_steps: 1 / final_div_factor})``.)

    References:
        Smith and Topin, Super-Convergence, 2017.
    """
    where = "gradtx.linear_onecycle_schedule"
    _check_onecycle(where, transition_steps, pct_start, div_factor, final_div_factor)
    _checks.check_number(where, "pct_final", pct_final, low=0.0, high=1.0)
    if _py(pct_start) and _py(pct_final) and pct_final < pct_start:
        raise ValueError(f"{where}: pct_final={pct_final} < pct_start={pct_start}.")
    pairs = [
        (_step_of(pct_start, transition_steps), div_factor),
        (_step_of(pct_final, transition_steps), _div(1.0, div_factor)),
        (transition_steps, _div(1.0, final_div_factor)),
    ]
    return piecewise_interpolate_schedule("linear", _div(peak_value, div_factor), pairs)


def cosine_onecycle_schedule(
    transition_steps, peak_value, pct_start=0.3, div_factor=25.0, final_div_factor=1e4
) -> Schedule:
    """One cycle: cosine up from ``peak_value / div_factor`` to the peak, then cosine down.

    init = peak_value / div_factor; a = int(pct_start * transition_steps)
    value: cosine from init to peak_value over [0, a], then cosine from peak_value to
    init / final_div_factor over [a, transition_steps], then held.

    References:
        Smith and Topin, Super-Convergence, 2017.
    """
    where = "gradtx.cosine_onecycle_schedule"
    _check_onecycle(where, transition_steps, pct_start, div_factor, final_div_factor)
    pairs = [
        (_step_of(pct_start, transition_steps), div_factor),
        (transition_steps, _div(_div(1.0, div_factor), final_div_factor)),
    ]
    return piecewise_interpolate_schedule("cosine", _div(peak_value, div_factor), pairs)
