"""torch.optim.lr_scheduler (torch 2.13) as gradtx schedules: ``count -> learning rate``.

Each scheduler is a pure, traceable function of ``count`` with torch's name and arguments
minus the optimizer. One ``count`` is one ``scheduler.step()`` call: ``schedule(0)`` is the
learning rate torch's optimizer holds right after the scheduler is built (the lr of the first
``optimizer.step()``), ``schedule(k)`` the lr after ``k`` calls of ``scheduler.step()``. gradtx
calls a schedule with the number of updates done so far, so a scheduler that torch steps once
per batch attaches as is (``gradtx.adamw(learning_rate=StepLR(30, lr=1e-3))``); one that torch
steps once per epoch attaches through ``per_epoch(schedule, steps_per_epoch)``, which evaluates
it at ``count // steps_per_epoch``.

The optimizer's learning rate, which torch reads from the optimizer, is the keyword-only
argument ``lr``; schedulers that set the lr themselves keep torch's arguments instead
(``CyclicLR``'s ``base_lr`` and ``max_lr``, ``OneCycleLR``'s ``max_lr``). ``OneCycleLR`` and
``CyclicLR`` offer the momentum (or Adam's beta1) torch cycles with ``cycle_momentum`` as the
schedule ``.momentum``. ``ReduceLROnPlateau`` is a gradient transformation (it needs the loss),
built on ``gradtx.reduce_on_plateau``.

Values are those of torch's ``step()`` (its recursive form where it has one), which equal
torch's closed forms up to rounding; where they differ in more than rounding (a
``total_iters=0``, a recursion continued past its end), the docstring says so and the schedule
follows ``step()``. docs/guide/torch_schedulers.md lists every difference from torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx.contrib._plateau import reduce_on_plateau
from gradtx.schedules._cyclic import cyclic_schedule
from gradtx.schedules._decays import (
    _dtype,
    _floats,
    _safe,
    exponential_decay,
    join_schedules,
    polynomial_schedule,
    step_decay_schedule,
)
from gradtx.schedules._piecewise import piecewise_constant_schedule

_py = _checks.is_python_number
_check = _checks.check_number


class TorchSchedule:
    """A torch scheduler as a gradtx schedule: call it with a count to get the learning rate.

    Attributes:
        name: torch's class name.
        lr: the base learning rate (None where the scheduler sets the lr itself).
        momentum: the momentum (or beta1) schedule torch cycles with ``cycle_momentum``, or None.
        factor: for the multiplicative schedulers (those ``ChainedScheduler`` can chain), the
            schedule ``count -> lr(count) / lr``; None for the others.
    """

    def __init__(self, name, fn, *, lr=None, factor=None, momentum=None, continued=None):
        self.name, self.lr, self.factor, self.momentum = name, lr, factor, momentum
        self._fn = fn
        self._continued = continued  # prev_lr -> schedule, for a SequentialLR phase after the first

    def __call__(self, count):
        return self._fn(count)

    def __repr__(self) -> str:
        return f"gradtx.compat.torch.lr_scheduler.{self.name}(lr={self.lr!r})"


def _where(name):
    return f"gradtx.compat.torch.lr_scheduler.{name}"


def _check_lr(where, lr):
    if lr is None:
        raise TypeError(
            f"{where}: lr is missing; pass the optimizer's learning rate as lr=, e.g. "
            f"{where.rsplit('.', 1)[-1]}(..., lr=1e-3) (torch reads it from the optimizer)."
        )
    _check(where, "lr", lr, low=0.0)


def _check_int(where, name, value, low):
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(
            f"{where}: {name}={value!r}; expected a Python int >= {low} (torch requires an int)."
        )


def _multiplicative(name, lr, factor, continued=None):
    """A scheduler whose ``step()`` multiplies the lr: lr(count) = lr * factor(count)."""

    def schedule(count):
        f = factor(count)
        f, base = _floats(f, lr)
        return base * f

    return TorchSchedule(name, schedule, lr=lr, factor=factor, continued=continued)


def _lambda_value(lr_lambda, k, dtype):
    """lr_lambda at count k, given k as a float array (integer-valued) and cast to dtype."""
    return jnp.asarray(lr_lambda(jnp.asarray(k, dtype)), dtype)


def _product(lr_lambda, count, first, dtype):
    """prod of lr_lambda(k) for k = first .. count (1 for an empty range), elementwise."""

    def one(n):
        def body(k, acc):
            return acc * _lambda_value(lr_lambda, k, dtype)

        return jax.lax.fori_loop(first, n + 1, body, jnp.ones((), dtype))

    n = jnp.floor(jnp.asarray(count)).astype(jnp.int32)
    return jnp.vectorize(one)(n)


def _check_lambda(where, lr_lambda):
    if not callable(lr_lambda):
        raise TypeError(
            f"{where}: lr_lambda={lr_lambda!r}; expected a function of the count written with "
            "jnp (per-group lists of lambdas: build one schedule per group)."
        )


def LambdaLR(lr_lambda: Callable, *, lr) -> TorchSchedule:
    """The lr times a function of the count (torch's ``LambdaLR``).

    value = lr * lr_lambda(count)
    One count is one ``scheduler.step()``; count 0 is the value right after construction.
    ``lr_lambda`` receives the count as a JAX float array with an integer value (torch passes
    an int; a float keeps ``0.95 ** epoch`` valid under strict dtype promotion) and must be
    written with jnp (``if epoch < 5`` does not trace: use ``jnp.where``).

    Args:
        lr_lambda: the factor as a function of the count.
        lr: the optimizer's learning rate (torch's ``initial_lr``).
    """
    where = _where("LambdaLR")
    _check_lambda(where, lr_lambda)
    _check_lr(where, lr)

    def schedule(count):
        dt = _dtype(lr)
        return jnp.asarray(lr, dt) * jnp.broadcast_to(
            _lambda_value(lr_lambda, count, dt), jnp.shape(count)
        )

    return TorchSchedule("LambdaLR", schedule, lr=lr)


def MultiplicativeLR(lr_lambda: Callable, *, lr) -> TorchSchedule:
    """The lr multiplied by ``lr_lambda(k)`` at each step k (torch's ``MultiplicativeLR``).

    value = lr * lr_lambda(1) * lr_lambda(2) * ... * lr_lambda(count)    (lr at count 0)
    One count is one ``scheduler.step()``; step k multiplies by lr_lambda(k). The product is a
    ``lax.fori_loop`` of ``count`` iterations (traceable, differentiable forward; fine for a
    per-epoch schedule, slow for a per-batch one over long runs: write a closed form as a
    ``LambdaLR`` then). As a later phase of ``SequentialLR`` it continues, as torch's does,
    from the lr at the milestone: prev_lr * lr_lambda(0) * ... * lr_lambda(count - milestone).

    Args:
        lr_lambda: the factor of each step as a function of the step's count (a float
            array, as in ``LambdaLR``).
        lr: the optimizer's learning rate.
    """
    where = _where("MultiplicativeLR")
    _check_lambda(where, lr_lambda)
    _check_lr(where, lr)

    def factor(count, first=1):
        return _product(lr_lambda, count, first, _dtype(lr))

    def continued(prev):
        return _multiplicative("MultiplicativeLR", prev, lambda c: factor(c, 0))

    return _multiplicative("MultiplicativeLR", lr, factor, continued)


def StepLR(step_size, gamma=0.1, *, lr) -> TorchSchedule:
    """The lr times ``gamma`` every ``step_size`` steps (torch's ``StepLR``).

    value = lr * gamma ** floor(count / step_size)
    One count is one ``scheduler.step()`` (torch's docs say epochs; per batch works the same).
    This is ``gradtx.step_decay_schedule(lr, step_size, gamma)``.

    Args:
        step_size: steps between two decays (> 0).
        gamma: the factor of each decay.
        lr: the optimizer's learning rate.
    """
    where = _where("StepLR")
    _check_lr(where, lr)
    _check(where, "step_size", step_size, low=0.0, low_open=True)
    return _multiplicative("StepLR", lr, step_decay_schedule(1.0, step_size, gamma))


def MultiStepLR(milestones: Sequence[int], gamma=0.1, *, lr) -> TorchSchedule:
    """The lr times ``gamma`` at each milestone (torch's ``MultiStepLR``).

    value = lr * gamma ** (number of milestones <= count, a repeated milestone counted again)
    One count is one ``scheduler.step()``; a milestone 0 applies from count 0, as torch's.
    This is ``gradtx.piecewise_constant_schedule(lr, [(m, gamma) for m in milestones])``.

    Args:
        milestones: the counts of the decays (>= 0, any order, repeats allowed).
        gamma: the factor of each decay (>= 0).
        lr: the optimizer's learning rate.
    """
    where = _where("MultiStepLR")
    _check_lr(where, lr)
    pairs = [(m, gamma) for m in milestones]
    return _multiplicative("MultiStepLR", lr, piecewise_constant_schedule(1.0, pairs))


def ConstantLR(factor=1.0 / 3, total_iters=5, *, lr) -> TorchSchedule:
    """The lr times ``factor`` for the first ``total_iters`` steps (torch's ``ConstantLR``).

    value = lr * factor  for count < total_iters, lr after
    One count is one ``scheduler.step()``. ``total_iters=0`` keeps ``lr * factor`` forever, as
    torch's ``step()`` does (its closed form would give ``lr``).

    Args:
        factor: the factor, in [0, 1].
        total_iters: the number of steps with the factor (>= 0).
        lr: the optimizer's learning rate.
    """
    where = _where("ConstantLR")
    _check_lr(where, lr)
    _check(where, "factor", factor, low=0.0, high=1.0)
    _check(where, "total_iters", total_iters, low=0.0)

    def f(count):
        c, k, n = _floats(count, factor, total_iters)
        return jnp.where((c < n) | (n == 0), k, jnp.ones_like(k))

    return _multiplicative("ConstantLR", lr, f)


def LinearLR(start_factor=1.0 / 3, end_factor=1.0, total_iters=5, *, lr) -> TorchSchedule:
    """The lr times a factor that moves linearly from ``start_factor`` to ``end_factor``.

    value = lr * (start_factor + (end_factor - start_factor) * min(count, total_iters)
                  / total_iters)
    One count is one ``scheduler.step()``. ``total_iters=0`` keeps ``lr * start_factor``
    forever, as torch's ``step()`` does (its closed form divides by zero).

    Args:
        start_factor: the factor at count 0, in (0, 1].
        end_factor: the factor from ``total_iters`` on, in [0, 1].
        total_iters: the length of the ramp (>= 0).
        lr: the optimizer's learning rate.
    """
    where = _where("LinearLR")
    _check_lr(where, lr)
    _check(where, "start_factor", start_factor, low=0.0, high=1.0, low_open=True)
    _check(where, "end_factor", end_factor, low=0.0, high=1.0)
    _check(where, "total_iters", total_iters, low=0.0)

    def f(count):
        c, s, e, n = _floats(count, start_factor, end_factor, total_iters)
        return s + (e - s) * jnp.where(n > 0, jnp.clip(c, 0, _safe(n)) / _safe(n), 0)

    return _multiplicative("LinearLR", lr, f)


def ExponentialLR(gamma, *, lr) -> TorchSchedule:
    """The lr times ``gamma`` at every step (torch's ``ExponentialLR``).

    value = lr * gamma ** count
    One count is one ``scheduler.step()``. This is ``gradtx.exponential_decay(lr, 1, gamma)``.

    Args:
        gamma: the factor per step (> 0; > 1 grows).
        lr: the optimizer's learning rate.
    """
    _check_lr(_where("ExponentialLR"), lr)
    return _multiplicative("ExponentialLR", lr, exponential_decay(1.0, 1, gamma))


def PolynomialLR(total_iters=5, power=1.0, *, lr) -> TorchSchedule:
    """Polynomial decay of the lr to 0 over ``total_iters`` steps (torch's ``PolynomialLR``).

    value = lr * (1 - min(count, total_iters) / total_iters) ** power
    One count is one ``scheduler.step()``; ``total_iters=0`` keeps ``lr``, as torch's
    ``step()``. This is ``gradtx.polynomial_schedule(lr, 0, power, total_iters)``.

    Args:
        total_iters: the length of the decay (>= 0).
        power: the polynomial's power (>= 0).
        lr: the optimizer's learning rate.
    """
    _check_lr(_where("PolynomialLR"), lr)
    f = polynomial_schedule(1.0, 0.0, power, total_iters)
    return _multiplicative("PolynomialLR", lr, f)


def _cosine(lr, eta_min, t, period):
    return eta_min + (lr - eta_min) * (1 + jnp.cos(jnp.pi * t / period)) / 2


def CosineAnnealingLR(T_max, eta_min=0.0, *, lr) -> TorchSchedule:
    """Cosine annealing from ``lr`` to ``eta_min`` over ``T_max`` steps (torch's closed form).

    value = eta_min + (lr - eta_min) * (1 + cos(pi * count / T_max)) / 2
    One count is one ``scheduler.step()``. torch's ``step()`` uses a recursion,
    lr_t = eta_min + (lr_(t-1) - eta_min) * (1 + cos(pi t / T_max)) / (1 + cos(pi (t-1) / T_max)),
    that equals this closed form in exact arithmetic, also past ``T_max``, where both rise
    again (period ``2 * T_max``; torch does not hold ``eta_min``). They differ in rounding
    only; near the trough both lose relative accuracy like 1e-16 * (T_max / pi) ** 2 to the
    cancellation in ``1 + cos``. The recursion also multiplies whatever lr another scheduler
    left, which is why this scheduler is not accepted by ``ChainedScheduler`` here.

    Args:
        T_max: the half period (> 0).
        eta_min: the lowest lr.
        lr: the optimizer's learning rate (the highest lr).

    References:
        Loshchilov and Hutter, SGDR: Stochastic Gradient Descent with Warm Restarts, 2017.
    """
    where = _where("CosineAnnealingLR")
    _check_lr(where, lr)
    _check(where, "T_max", T_max, low=0.0, low_open=True)
    _check(where, "eta_min", eta_min)

    def schedule(count):
        c, base, e, t = _floats(count, lr, eta_min, T_max)
        return _cosine(base, e, c, t)

    return TorchSchedule("CosineAnnealingLR", schedule, lr=lr)


def CosineAnnealingWarmRestarts(T_0: int, T_mult: int = 1, eta_min=0.0, *, lr) -> TorchSchedule:
    """Cosine annealing restarted after ``T_0``, ``T_0 * T_mult``, ... steps (SGDR).

    cycle n (n = 0, 1, ...) starts at S_n = T_0 * (T_mult ** n - 1) / (T_mult - 1)
    (S_n = n * T_0 for T_mult = 1) and lasts T_i = T_0 * T_mult ** n steps;
    T_cur = count - S_n for the cycle holding count (found from a log, then checked exactly)
    value = eta_min + (lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2
    One count is one ``scheduler.step()`` without an epoch argument (torch's fractional
    ``step(epoch)`` is not offered: pass a fractional count instead, which gives the same
    cycle arithmetic). The cycle is exact as in torch's integer ``step()`` (counts < 2 ** 53).

    Args:
        T_0: the length of the first cycle (a Python int > 0).
        T_mult: the growth of each next cycle (a Python int >= 1).
        eta_min: the lowest lr.
        lr: the optimizer's learning rate (the lr at each restart).

    References:
        Loshchilov and Hutter, SGDR: Stochastic Gradient Descent with Warm Restarts, 2017.
    """
    where = _where("CosineAnnealingWarmRestarts")
    _check_lr(where, lr)
    _check_int(where, "T_0", T_0, 1)
    _check_int(where, "T_mult", T_mult, 1)
    _check(where, "eta_min", eta_min)

    def schedule(count):
        c, base, e = _floats(count, lr, eta_min)
        c = jnp.maximum(c, 0)
        if T_mult == 1:
            t_cur, t_i = jnp.mod(c, T_0), jnp.asarray(T_0, c.dtype)
        else:  # the cycle n from a log, then corrected by one either way, exactly
            m = jnp.asarray(T_mult, c.dtype)
            n = jnp.floor(jnp.log1p(c / T_0 * (T_mult - 1)) / jnp.log(m))

            def start(n):
                return T_0 * (m**n - 1) / (T_mult - 1)

            n = jnp.where(start(n) > c, n - 1, jnp.where(start(n + 1) <= c, n + 1, n))
            t_cur, t_i = c - start(n), T_0 * m**n
        return _cosine(base, e, t_cur, t_i)

    return TorchSchedule("CosineAnnealingWarmRestarts", schedule, lr=lr)


def _anneal(strategy, start, end, pct):
    """torch's OneCycleLR annealing from ``start`` to ``end`` as pct goes from 0 to 1."""
    if strategy == "cos":
        return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1)
    return (end - start) * pct + start


def _check_strategy(where, name, value):
    if value not in ("cos", "linear"):
        raise ValueError(f"{where}: {name}={value!r}; expected 'cos' or 'linear'.")


def OneCycleLR(
    max_lr,
    total_steps: int | None = None,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    pct_start=0.3,
    anneal_strategy: str = "cos",
    cycle_momentum: bool = True,
    base_momentum=0.85,
    max_momentum=0.95,
    div_factor=25.0,
    final_div_factor=1e4,
    three_phase: bool = False,
) -> TorchSchedule:
    """The 1cycle policy (torch's ``OneCycleLR``, fastai's two phases by default).

    initial_lr = max_lr / div_factor; min_lr = initial_lr / final_div_factor
    phases (end_step, lr from -> to, momentum from -> to), each starting where the last ended:
      two phases:   (pct_start * total_steps - 1, initial_lr -> max_lr, max_m -> base_m),
                    (total_steps - 1, max_lr -> min_lr, base_m -> max_m)
      three_phase:  (pct_start * total_steps - 1, initial_lr -> max_lr, max_m -> base_m),
                    (2 * pct_start * total_steps - 2, max_lr -> initial_lr, base_m -> max_m),
                    (total_steps - 1, initial_lr -> min_lr, max_m -> max_m)
    the phase of count is the first with count <= end_step (else the last);
    pct = (count - phase start) / (end_step - phase start)
    value = anneal(from, to, pct): cos: to + (from - to) / 2 * (cos(pi * pct) + 1);
    linear: (to - from) * pct + from. ``.momentum`` is the same with the momentum values
    (None without ``cycle_momentum``); attach it as SGD's momentum or Adam's b1.

    One count is one ``scheduler.step()``, i.e. one batch. torch raises past
    ``count = total_steps``; here counts are clipped to [0, total_steps].

    Args:
        max_lr: the peak lr.
        total_steps: the length of the cycle (a Python int > 0), or None to use
            ``epochs * steps_per_epoch``.
        epochs, steps_per_epoch: Python ints > 0, used when total_steps is None.
        pct_start: the fraction of the cycle spent rising, in [0, 1].
        anneal_strategy: ``"cos"`` or ``"linear"`` (static).
        cycle_momentum: whether to offer ``.momentum`` (static).
        base_momentum: the momentum at the peak lr.
        max_momentum: the momentum at the start and end.
        div_factor: initial_lr = max_lr / div_factor (> 0).
        final_div_factor: min_lr = initial_lr / final_div_factor (> 0).
        three_phase: the paper's three phases instead of fastai's two (static).

    References:
        Smith and Topin, Super-Convergence: Very Fast Training of Neural Networks Using Large
        Learning Rates, 2017.
    """
    where = _where("OneCycleLR")
    if total_steps is None:
        if epochs is None or steps_per_epoch is None:
            raise ValueError(
                f"{where}: pass total_steps, or both epochs and steps_per_epoch (got "
                f"total_steps=None, epochs={epochs!r}, steps_per_epoch={steps_per_epoch!r})."
            )
        _check_int(where, "epochs", epochs, 1)
        _check_int(where, "steps_per_epoch", steps_per_epoch, 1)
        total_steps = epochs * steps_per_epoch
    _check_int(where, "total_steps", total_steps, 1)
    _check(where, "max_lr", max_lr, low=0.0)
    _check(where, "pct_start", pct_start, low=0.0, high=1.0)
    _check_strategy(where, "anneal_strategy", anneal_strategy)
    _check(where, "div_factor", div_factor, low=0.0, low_open=True)
    _check(where, "final_div_factor", final_div_factor, low=0.0, low_open=True)
    _check(where, "base_momentum", base_momentum)
    _check(where, "max_momentum", max_momentum)

    def phases(p, n, lo, peak, low):
        """[(end_step, lr_from, lr_to, momentum index from, to)] in torch's order."""
        if three_phase:
            return [(p * n - 1, lo, peak, 1, 0), (2 * p * n - 2, peak, lo, 0, 1),
                    (n - 1, lo, low, 1, 1)]  # fmt: skip
        return [(p * n - 1, lo, peak, 1, 0), (n - 1, peak, low, 0, 1)]

    def evaluate(count, values):
        c, top, p, d, fd, n = _floats(count, max_lr, pct_start, div_factor, final_div_factor,
                                      total_steps)  # fmt: skip
        c = jnp.clip(c, 0, n)
        initial = top / d
        spec = phases(p, n, initial, top, initial / fd)
        out = jnp.zeros_like(c)
        done = jnp.zeros(c.shape, bool)
        start = jnp.zeros_like(c)
        for k, (end, lr_from, lr_to, m_from, m_to) in enumerate(spec):
            here = ~done & ((c <= end) | (k == len(spec) - 1))
            pct = (c - start) / jnp.where(end - start != 0, end - start, 1)
            a, b = values(lr_from, lr_to, m_from, m_to, c.dtype)
            out = jnp.where(here, _anneal(anneal_strategy, a, b, pct), out)
            done, start = done | here, end
        return out

    def lr_values(lr_from, lr_to, m_from, m_to, dt):
        return lr_from, lr_to

    def momentum_values(lr_from, lr_to, m_from, m_to, dt):
        ms = _floats(base_momentum, max_momentum, jnp.zeros((), dt))[:2]
        return ms[m_from], ms[m_to]

    momentum = None
    if cycle_momentum:
        momentum = TorchSchedule("OneCycleLR.momentum", lambda c: evaluate(c, momentum_values))
    return TorchSchedule("OneCycleLR", lambda c: evaluate(c, lr_values), momentum=momentum)


def CyclicLR(
    base_lr,
    max_lr,
    step_size_up=2000,
    step_size_down=None,
    mode: str = "triangular",
    gamma=1.0,
    scale_fn: Callable | None = None,
    scale_mode: str = "cycle",
    cycle_momentum: bool = True,
    base_momentum=0.8,
    max_momentum=0.9,
) -> TorchSchedule:
    """Cyclical learning rates between ``base_lr`` and ``max_lr`` (torch's ``CyclicLR``).

    total = step_size_up + step_size_down; cycle = floor(1 + count / total)
    x = the position in the cycle: 0 -> 1 over step_size_up counts, 1 -> 0 over step_size_down
    scale = 1 (triangular), 1 / 2 ** (cycle - 1) (triangular2), gamma ** count (exp_range),
            or scale_fn(cycle) / scale_fn(count) with scale_mode "cycle" / "iterations"
    value = base_lr + (max_lr - base_lr) * x * scale
    .momentum = max_momentum - (max_momentum - base_momentum) * x * scale (None without
    ``cycle_momentum``): attach it as SGD's momentum or Adam's b1.

    One count is one ``scheduler.step()``, i.e. one batch. The three modes are
    ``gradtx.cyclic_schedule``; with ``scale_fn`` (written with jnp; it receives the cycle
    or the count as a float array) the position x is that of ``cyclic_schedule(0, 1, ...)``.

    Args:
        base_lr: the lr at the start of each cycle.
        max_lr: the lr at the top of the first cycle.
        step_size_up: counts rising (> 0).
        step_size_down: counts falling (> 0; None: step_size_up).
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"`` (ignored with scale_fn).
        gamma: the per-count amplitude factor of ``exp_range``.
        scale_fn: a custom amplitude, or None.
        scale_mode: ``"cycle"`` or ``"iterations"``: what scale_fn receives.
        cycle_momentum: whether to offer ``.momentum`` (static).
        base_momentum: the momentum at the top of the cycle.
        max_momentum: the momentum at the start of the cycle.

    References:
        Smith, Cyclical Learning Rates for Training Neural Networks, 2017.
    """
    where = _where("CyclicLR")
    if scale_fn is not None and not callable(scale_fn):
        raise TypeError(f"{where}: scale_fn={scale_fn!r}; expected a function or None.")
    if scale_mode not in ("cycle", "iterations"):
        raise ValueError(f"{where}: scale_mode={scale_mode!r}; expected 'cycle' or 'iterations'.")
    _check(where, "base_lr", base_lr, low=0.0)
    _check(where, "max_lr", max_lr, low=0.0)
    down = step_size_up if step_size_down is None else step_size_down

    def build(lo, hi):
        if scale_fn is None:
            return cyclic_schedule(lo, hi, step_size_up, down, gamma, mode=mode)
        position = cyclic_schedule(0.0, 1.0, step_size_up, down, mode="triangular")

        def schedule(count):
            c, a, b, up, dn = _floats(count, lo, hi, step_size_up, down)
            arg = jnp.floor(1 + c / (up + dn)) if scale_mode == "cycle" else c
            x = position(c)
            return a + (b - a) * x * jnp.asarray(scale_fn(arg), c.dtype)

        return schedule

    lr_schedule = build(base_lr, max_lr)
    momentum = None
    if cycle_momentum:
        momentum = TorchSchedule("CyclicLR.momentum", build(max_momentum, base_momentum))
    return TorchSchedule("CyclicLR", lr_schedule, momentum=momentum)


def _swalr(count, lr, swa_lr, anneal_epochs, anneal_strategy):
    c, base, swa, n = _floats(count, lr, swa_lr, anneal_epochs)
    step = jnp.where(n == 0, jnp.maximum(c, 1), c)
    t = jnp.clip(step / jnp.maximum(n, 1), 0, 1)
    alpha = (1 - jnp.cos(jnp.pi * t)) / 2 if anneal_strategy == "cos" else t
    return swa * alpha + base * (1 - alpha)


def SWALR(swa_lr, anneal_epochs: int = 10, anneal_strategy: str = "cos", *, lr=None):
    """Anneal the lr to ``swa_lr`` over ``anneal_epochs`` steps, then hold it (torch's SWALR).

    t = clip(count / max(anneal_epochs, 1), 0, 1)   (count >= 1 when anneal_epochs = 0)
    alpha = (1 - cos(pi * t)) / 2 (cos) or t (linear)
    value = swa_lr * alpha + lr * (1 - alpha)
    One count is one ``scheduler.step()``. ``lr`` is the lr the optimizer holds when SWALR is
    built; as a later phase of ``SequentialLR`` leave it None: it then starts, as torch's,
    from the lr the previous phase reached at the milestone.

    Args:
        swa_lr: the lr to anneal to.
        anneal_epochs: the length of the anneal (a Python int >= 0).
        anneal_strategy: ``"cos"`` or ``"linear"`` (static).
        lr: the starting lr (None only inside SequentialLR).

    References:
        Izmailov et al., Averaging Weights Leads to Wider Optima and Better Generalization, 2018.
    """
    where = _where("SWALR")
    _check_strategy(where, "anneal_strategy", anneal_strategy)
    _check_int(where, "anneal_epochs", anneal_epochs, 0)
    _check(where, "swa_lr", swa_lr, low=0.0)
    if lr is not None:
        _check(where, "lr", lr, low=0.0)

    def at(start_lr):
        def schedule(count):
            if start_lr is None:
                _check_lr(where, None)
            return _swalr(count, start_lr, swa_lr, anneal_epochs, anneal_strategy)

        return schedule

    return TorchSchedule(
        "SWALR", at(lr), lr=lr, continued=lambda prev: TorchSchedule("SWALR", at(prev), lr=prev)
    )


def SequentialLR(schedulers: Sequence[TorchSchedule], milestones: Sequence[int]):
    """Run ``schedulers[k]`` from ``milestones[k - 1]`` on, restarted at count 0 there.

    value = schedulers[0](count)                                   count < milestones[0]
    value = schedulers[k](count - milestones[k - 1])               from milestones[k - 1]
    One count is one ``SequentialLR.step()``. This is ``gradtx.join_schedules``. As in torch,
    a later ``MultiplicativeLR`` or ``SWALR`` (lr=None) continues from the lr reached just
    before its milestone instead of restarting from its own lr.

    Args:
        schedulers: the schedules of this module (or any ``count -> lr`` functions).
        milestones: ``len(schedulers) - 1`` increasing counts (>= 0).
    """
    where = _where("SequentialLR")
    schedulers, milestones = list(schedulers), list(milestones)
    if not schedulers or len(milestones) != len(schedulers) - 1:
        raise ValueError(
            f"{where}: got {len(schedulers)} schedulers and {len(milestones)} milestones; "
            "expected at least one scheduler and one milestone fewer than schedulers."
        )
    if isinstance(schedulers[0], TorchSchedule) and schedulers[0].name == "SWALR":
        if schedulers[0].lr is None:
            _check_lr(where + " (schedulers[0], a SWALR)", None)
    if any(_py(a) and _py(b) and b < a for a, b in zip(milestones, milestones[1:])):
        raise ValueError(f"{where}: milestones={milestones}; expected increasing counts.")
    joined = []
    for k, s in enumerate(schedulers):
        continued = getattr(s, "_continued", None)
        if k > 0 and continued is not None:
            s = _continue(continued, join_schedules(joined, milestones[: k - 1]), milestones[k - 1])
        joined.append(s)
    return TorchSchedule("SequentialLR", join_schedules(joined, milestones))


def _continue(continued, before, milestone):
    """The phase ``continued(prev_lr)``, prev_lr being ``before`` one count before the milestone."""

    def schedule(count):
        return continued(before(jnp.asarray(milestone - 1)))(count)

    return schedule


def ChainedScheduler(schedulers: Sequence[TorchSchedule]) -> TorchSchedule:
    """The product of multiplicative schedulers stepped together (torch's ``ChainedScheduler``).

    value = lr * factor_1(count) * factor_2(count) * ...
    One count is one ``ChainedScheduler.step()`` (each member stepped once). torch's chain
    multiplies each member's step into the shared lr, which is that product for the
    multiplicative schedulers (``MultiplicativeLR``, ``StepLR``, ``MultiStepLR``,
    ``ConstantLR``, ``LinearLR``, ``ExponentialLR``, ``PolynomialLR`` and chains of them);
    the others set the lr from their own formula and their chain depends on the step
    history, so they are refused here.

    Args:
        schedulers: multiplicative schedules of this module, all with the same ``lr``.
    """
    where = _where("ChainedScheduler")
    schedulers = list(schedulers)
    if not schedulers:
        raise ValueError(f"{where}: no schedulers; expected at least one.")
    for k, s in enumerate(schedulers):
        if getattr(s, "factor", None) is None:
            raise ValueError(
                f"{where}: schedulers[{k}] is {s!r}, which sets the lr instead of multiplying it;"
                " torch's chain of it depends on the step history. Chain only MultiplicativeLR, "
                "StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR (or "
                "write the combined lr as a LambdaLR)."
            )
    lr = schedulers[0].lr
    for k, s in enumerate(schedulers[1:], 1):
        if _py(lr) and _py(s.lr) and s.lr != lr:
            raise ValueError(
                f"{where}: schedulers[{k}] has lr={s.lr!r} but schedulers[0] has lr={lr!r}; "
                "torch's chained schedulers share one optimizer, so give them the same lr."
            )

    def factor(count):
        fs = _floats(*(s.factor(count) for s in schedulers))
        out = fs[0]
        for f in fs[1:]:
            out = out * f
        return out

    return _multiplicative("ChainedScheduler", lr, factor)


def per_epoch(schedule: Callable, steps_per_epoch: int) -> Callable:
    """A schedule torch steps once per epoch, evaluated on gradtx's per-update count.

    value = schedule(count // steps_per_epoch); ``.momentum`` likewise when the schedule has one.

    Args:
        schedule: a schedule of epochs (one of this module's, or any ``count -> value``).
        steps_per_epoch: updates per epoch (a Python int > 0).
    """
    _check_int(_where("per_epoch"), "steps_per_epoch", steps_per_epoch, 1)

    def epochs(count):
        return jnp.floor_divide(jnp.asarray(count), steps_per_epoch)

    out = TorchSchedule(
        f"per_epoch({getattr(schedule, 'name', 'schedule')})",
        lambda count: schedule(epochs(count)),
        lr=getattr(schedule, "lr", None),
    )
    inner = getattr(schedule, "momentum", None)
    if inner is not None:
        out.momentum = per_epoch(inner, steps_per_epoch)
    return out


def ReduceLROnPlateau(
    mode: str = "min",
    factor=0.1,
    patience: int = 10,
    threshold=1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr=0.0,
    eps=1e-8,
    *,
    lr,
) -> GradientTransformation:
    """Scale the updates down when a metric stops improving (torch's ``ReduceLROnPlateau``).

    A transformation, like ``gradtx.reduce_on_plateau`` (which it is, with torch's arguments):
    put it after the optimizer, ``chain(gradtx.sgd(lr), ReduceLROnPlateau(lr=lr))``, and pass
    the metric as ``update(..., loss=metric)``. One update with ``loss=`` is one
    ``scheduler.step(metric)``:
    better = metric < best * (1 - threshold)  (min, rel)  | metric < best - threshold  (min, abs)
             metric > best * (1 + threshold)  (max, rel)  | metric > best + threshold  (max, abs)
    num_bad_epochs = 0 if better else num_bad_epochs + 1; in cooldown num_bad_epochs = 0
    if num_bad_epochs > patience: the lr becomes max(lr * factor, min_lr), unless that lowers
    it by eps or less; cooldown restarts and num_bad_epochs = 0.
    The updates are scaled by lr_now / lr, where lr_now is torch's lr after ``step(metric)``.
    So the update that passes ``loss=metric`` already uses the lr that torch would use after
    ``step(metric)``: pass the metric of the previous epoch (or step), as torch's loop does.

    Args:
        mode: ``"min"`` or ``"max"`` (static).
        factor: the factor of each reduction, in (0, 1).
        patience: bad evaluations tolerated (torch's meaning: the lr drops on the
            ``patience + 1``-th; gradtx's ``patience`` is this plus one).
        threshold: the improvement needed (> 0; torch's 0 is refused, as gradtx's
            reduce_on_plateau needs a positive tolerance).
        threshold_mode: ``"rel"`` or ``"abs"`` (static).
        cooldown: evaluations after a reduction during which bad ones are not counted.
        min_lr: the lowest lr (one number; torch's per-group list is not taken).
        eps: reductions of the lr by eps or less are skipped.
        lr: the optimizer's learning rate (converts min_lr and eps to a scale).
    """
    where = _where("ReduceLROnPlateau")
    if mode not in ("min", "max"):
        raise ValueError(f"{where}: mode={mode!r}; expected 'min' or 'max'.")
    if threshold_mode not in ("rel", "abs"):
        raise ValueError(f"{where}: threshold_mode={threshold_mode!r}; expected 'rel' or 'abs'.")
    _check_lr(where, lr)
    _check(where, "lr", lr, low=0.0, low_open=True)
    _check(where, "threshold", threshold, low=0.0, low_open=True,
           hint="gradtx.reduce_on_plateau needs a positive tolerance; use e.g. 1e-12.")  # fmt: skip
    _check_int(where, "patience", patience, 0)
    _check(where, "min_lr", min_lr, low=0.0)
    _check(where, "eps", eps, low=0.0)
    rel = threshold_mode == "rel"
    return reduce_on_plateau(
        factor=factor,
        patience=patience + 1,
        rtol=threshold if rel else 0.0,
        atol=0.0 if rel else threshold,
        cooldown=cooldown,
        accumulation_size=1,
        min_scale=_ratio(min_lr, lr),
        min_decrease=_ratio(eps, lr),
        mode=mode,
    )


def _ratio(a, b):
    if _py(a) and _py(b):
        return a / b
    a, b = _floats(a, b)
    return a / b


__all__ = [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SWALR",
    "SequentialLR",
    "StepLR",
    "TorchSchedule",
    "per_epoch",
]
