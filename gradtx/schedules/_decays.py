"""Schedules: pure functions ``count -> value`` for a learning rate, weight decay or momentum.

Decays without warmup (optax's, plus CS231n's step decay), and the helpers every schedule
file shares: optax's names, arguments and values. Every numeric argument may be a
Python number, an array or a tracer, so a sweep can ``vmap`` over a warmup length or a decay
rate and ``grad`` can differentiate through one; the schedule never branches in Python on an
argument's value. A schedule computes in the widest float dtype among its array arguments
(else JAX's default float: float32, float64 under x64) and returns an array shaped like
``count``. Python-number arguments are range-checked when the schedule is built.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.trees import acc_dtype

Schedule = Callable[..., object]
"""A schedule: a pure function ``count -> value`` (a float array shaped like ``count``)."""


def _dtype(*values):
    """The dtype a schedule computes in: the widest float among array arguments, >= float32."""
    widest = None
    for v in values:
        if v is None or _checks.is_python_number(v):
            continue
        dt = jnp.result_type(v)
        if jnp.issubdtype(dt, jnp.floating):
            dt = acc_dtype(dt)
            widest = dt if widest is None or dt.itemsize > widest.itemsize else widest
    return widest if widest is not None else jnp.dtype(jnp.result_type(float))


def _floats(*values):
    """Every value cast to the common float dtype of ``_dtype`` (None stays None)."""
    dt = _dtype(*values)
    return tuple(None if v is None else jnp.asarray(v, dtype=dt) for v in values)


def _pow01(base, exponent):
    """``base ** exponent`` for base in [0, 1], with finite gradients at base 0 (0 ** 0 = 1)."""
    pos = base > 0
    at_zero = jnp.where(exponent == 0, 1, 0).astype(base.dtype)
    return jnp.where(pos, jnp.where(pos, base, 1) ** exponent, at_zero)


def _ramp(c, start, end, steps):
    """Linear from ``start`` at c = 0 to ``end`` at c = steps, held after (steps > 0)."""
    safe = jnp.where(steps > 0, steps, 1)
    return (start - end) * (1 - jnp.clip(c, 0, safe) / safe) + end


def _cosine_factor(c, steps, exponent):
    """(0.5 * (1 + cos(pi * min(c, steps) / steps))) ** exponent; 0 when steps <= 0."""
    on = steps > 0
    safe = jnp.where(on, steps, 1)
    frac = jnp.where(on, jnp.minimum(c, safe) / safe, 1)
    return _pow01(0.5 * (1 + jnp.cos(jnp.pi * frac)), exponent)


def _is_int_count(count) -> bool:
    return jnp.issubdtype(jnp.result_type(count), jnp.integer) and not isinstance(count, bool)


def _static_int(x):
    """``x`` as a Python int if it is a Python number with an integer value, else None."""
    if _checks.is_python_number(x) and float(x).is_integer():
        return int(x)
    return None


def _reached(count, boundary, c, b):
    """``count >= boundary``, exactly in integers when both are (float32 counts round above
    2**24, which would fire a boundary one step early); else ``c >= b`` on the cast floats."""
    k = _static_int(boundary)
    if k is None or not _is_int_count(count):
        return c >= b
    count = jnp.asarray(count)
    info = jnp.iinfo(count.dtype)
    if k > info.max:
        return jnp.zeros(count.shape, bool)
    return count >= max(k, int(info.min))


def _check_steps(where, name, value, *, positive=False, hint=""):
    _checks.check_number(where, name, value, low=0.0, low_open=positive, hint=hint)


def _check_warmup(where, init_value, peak_value, warmup_steps):
    _checks.check_number(where, "init_value", init_value)
    _checks.check_number(where, "peak_value", peak_value)
    _check_steps(where, "warmup_steps", warmup_steps)


def _safe(x):
    """``x`` where positive, else 1: a denominator whose unused branch stays finite."""
    return jnp.where(x > 0, x, 1)


def _pow_count(base, k):
    """``base ** k`` for k >= 0, with 0 ** 0 = 1 and finite gradients at base 0."""
    zero = k == 0
    return jnp.where(zero, 1, jnp.where(zero, 1, base) ** k)


def constant_schedule(value) -> Schedule:
    """A constant: ``value`` at every count (an array shaped like ``count``).

    Example:
        >>> import gradtx
        >>> float(gradtx.constant_schedule(0.5)(100))
        0.5
    """
    _checks.check_number("gradtx.constant_schedule", "value", value)
    return lambda count: jnp.broadcast_to(_floats(count, value)[1], jnp.shape(count))


def polynomial_schedule(
    init_value, end_value, power, transition_steps, transition_begin=0
) -> Schedule:
    """Polynomial transition from ``init_value`` to ``end_value``.

    t = clip(count - transition_begin, 0, transition_steps)
    value = (init_value - end_value) * (1 - t / transition_steps) ** power + end_value
    transition_steps == 0 holds init_value forever (as optax).

    Args:
        init_value: the value up to ``transition_begin``.
        end_value: the value from ``transition_begin + transition_steps`` on.
        power: the polynomial's power (>= 0; 1 is linear).
        transition_steps: the length of the transition (>= 0).
        transition_begin: the count at which the transition starts (>= 0).
    """
    where = "gradtx.polynomial_schedule"
    _checks.check_number(where, "power", power, low=0.0)
    _check_steps(where, "transition_steps", transition_steps, hint="0 holds init_value.")
    _check_steps(where, "transition_begin", transition_begin)
    _checks.check_number(where, "init_value", init_value)
    _checks.check_number(where, "end_value", end_value)

    def schedule(count):
        c, i, e, p, n, b = _floats(
            count, init_value, end_value, power, transition_steps, transition_begin
        )
        on = n > 0
        safe = jnp.where(on, n, 1)
        # (safe - t) / safe, not 1 - t / safe: XLA turns a division by a constant into a
        # multiplication by its reciprocal under jit, and 1 - t * (1 / safe) misses 0 at the end
        frac = (safe - jnp.clip(c - jnp.maximum(b, 0), 0, safe)) / safe
        return jnp.where(on, (i - e) * _pow01(frac, p) + e, i)

    return schedule


def linear_schedule(init_value, end_value, transition_steps, transition_begin=0) -> Schedule:
    """Linear transition: ``polynomial_schedule`` with power 1.

    value = init_value + (end_value - init_value) * clip(count - transition_begin, 0,
    transition_steps) / transition_steps
    """
    return polynomial_schedule(init_value, end_value, 1, transition_steps, transition_begin)


def _exp_decay(c, i, n, r, b, e, staircase: bool):
    """The exponential decay on cast arrays (``e`` None: no bound)."""
    on = (n > 0) & (r != 0)
    p = jnp.maximum(c - jnp.maximum(b, 0), 0) / jnp.where(on, n, 1)
    p = jnp.floor(p) if staircase else p
    v = i * jnp.where(on, r, 1) ** p
    if e is not None:
        v = jnp.where(r < 1, jnp.maximum(v, e), jnp.minimum(v, e))
    return jnp.where(on, v, i)


def _check_exp(where, transition_steps, decay_rate, transition_begin):
    _check_steps(where, "transition_steps", transition_steps, positive=True)
    _checks.check_number(where, "decay_rate", decay_rate, low=0.0, low_open=True)
    _check_steps(where, "transition_begin", transition_begin)


def exponential_decay(
    init_value, transition_steps, decay_rate, transition_begin=0, staircase=False, end_value=None
) -> Schedule:
    """Exponential decay, continuous or in steps.

    p = max(count - transition_begin, 0) / transition_steps    (floor(p) if staircase)
    value = init_value * decay_rate ** p
    then bounded by end_value: max(value, end_value) if decay_rate < 1, else min.

    Args:
        init_value: the value up to ``transition_begin``.
        transition_steps: steps for one factor of ``decay_rate`` (> 0).
        decay_rate: the factor per ``transition_steps`` (> 0; > 1 grows).
        transition_begin: the count at which the decay starts (>= 0).
        staircase: decay at whole multiples of ``transition_steps`` only (static).
        end_value: a bound the value stops at, or None.
    """
    where = "gradtx.exponential_decay"
    _check_exp(where, transition_steps, decay_rate, transition_begin)

    def schedule(count):
        c, i, n, r, b, e = _floats(
            count, init_value, transition_steps, decay_rate, transition_begin, end_value
        )
        return _exp_decay(c, i, n, r, b, e, staircase)

    return schedule


def cosine_decay_schedule(init_value, decay_steps, alpha=0.0, exponent=1.0) -> Schedule:
    """Cosine decay from ``init_value`` to ``alpha * init_value`` over ``decay_steps``.

    cosine = 0.5 * (1 + cos(pi * min(count, decay_steps) / decay_steps))
    value = init_value * ((1 - alpha) * cosine ** exponent + alpha)

    Args:
        init_value: the value at count 0.
        decay_steps: the length of the decay (> 0).
        alpha: the final value as a fraction of ``init_value``.
        exponent: the power of the cosine factor (>= 0).

    References:
        Loshchilov and Hutter, SGDR: Stochastic Gradient Descent with Warm Restarts, 2017.
    """
    where = "gradtx.cosine_decay_schedule"
    _check_steps(where, "decay_steps", decay_steps, positive=True)
    _checks.check_number(where, "exponent", exponent, low=0.0)
    _checks.check_number(where, "alpha", alpha)

    def schedule(count):
        c, i, d, a, x = _floats(count, init_value, decay_steps, alpha, exponent)
        return i * ((1 - a) * _cosine_factor(c, d, x) + a)

    return schedule


def join_schedules(schedules: Sequence[Schedule], boundaries: Sequence) -> Schedule:
    """Run ``schedules[k]`` from ``boundaries[k - 1]`` on, on the count since that boundary.

    value = schedules[0](count)                          for count < boundaries[0]
    value = schedules[k](count - boundaries[k - 1])      for boundaries[k - 1] <= count < ...

    Args:
        schedules: the schedules, in order.
        boundaries: ``len(schedules) - 1`` counts (numbers or arrays) where each next one starts.
    """
    where = "gradtx.join_schedules"
    schedules, boundaries = list(schedules), list(boundaries)
    if not schedules or len(boundaries) != len(schedules) - 1:
        raise ValueError(
            f"{where}: got {len(schedules)} schedules and {len(boundaries)} boundaries; expected "
            "at least one schedule and one boundary fewer than schedules."
        )
    for k, s in enumerate(schedules):
        if not callable(s):
            raise TypeError(f"{where}: schedules[{k}] is {s!r}; expected a function of the count.")
    for k, b in enumerate(boundaries):
        _checks.check_number(where, f"boundaries[{k}]", b)
    integer = all(isinstance(b, int) for b in boundaries)

    def schedule(count):
        bounds = boundaries
        if not integer:
            count, *bounds = _floats(count, *boundaries)
        out = schedules[0](count)
        for b, s in zip(bounds, schedules[1:]):
            out, nxt = _floats(out, s(count - b))
            out = jnp.where(count < b, out, nxt)
        return out

    return schedule


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

    size = _static_int(step_size)

    def schedule(count):
        c, i, n, g = _floats(count, init_value, step_size, gamma)
        if size is not None and _is_int_count(count) and size <= jnp.iinfo(jnp.int32).max:
            whole = jnp.maximum(jnp.asarray(count), 0) // size  # exact above 2**24 counts
            return i * _pow_count(g, whole.astype(c.dtype))
        k = jnp.where(n > 0, jnp.floor(jnp.maximum(c, 0) / _safe(n)), 0)
        return i * _pow_count(g, k)

    return schedule
