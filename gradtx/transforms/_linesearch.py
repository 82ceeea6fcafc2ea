"""Line searches: the step size along the incoming direction, from the objective itself.

Both transforms read the objective through update's extra arguments: ``value`` (f at params),
``grad`` (its gradient there) and ``value_fn`` (f itself; any other extra argument that
``value_fn`` names is passed on to it). They store the value and gradient at the accepted
point, so ``value_and_grad_from_state`` hands them to the next step without recomputing them.
Each search is a ``lax.while_loop`` inside one update: a step is one jittable program, and
``vmap`` over independent problems runs them in lockstep (each stops where its own search
stops; finished members are masked).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gradtx._core import checks as _checks
from gradtx._core.base import GradientTransformation
from gradtx._core.trees import acc_dtype, as_dtype, tree_zeros_like

_MISSING = object()


def _scalar_dtype(tree):
    """The dtype of the search's scalars: the widest accumulation dtype of the leaves (real)."""
    dts = [acc_dtype(jnp.result_type(x)) for x in jax.tree.leaves(tree)]
    dt = max(dts, key=lambda d: d.itemsize) if dts else jnp.dtype(jnp.float32)
    return jnp.finfo(dt).dtype


def _tree_vdot(a, b, dtype):
    """sum over leaves of real(vdot(a, b)), in ``dtype``."""
    parts = [
        jnp.real(jnp.vdot(x.astype(acc_dtype(x.dtype)), y.astype(acc_dtype(x.dtype)))).astype(dtype)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    ]
    return sum(parts, jnp.zeros((), dtype))


def _tree_step(params, stepsize, direction):
    """params + stepsize * direction, leaf by leaf in at least float32, in each param's dtype."""

    def leaf(p, d):
        dt = acc_dtype(p.dtype)
        return (p.astype(dt) + stepsize.astype(dt) * d.astype(dt)).astype(p.dtype)

    return jax.tree.map(leaf, params, direction)


def _tree_scale(stepsize, tree):
    return jax.tree.map(
        lambda x: (stepsize.astype(acc_dtype(x.dtype)) * x.astype(acc_dtype(x.dtype))).astype(
            x.dtype
        ),
        tree,
    )


def _tree_like(tree, like):
    """``tree``'s leaves cast to the dtypes of ``like``'s."""
    return jax.tree.map(lambda x, y: jnp.asarray(x).astype(jnp.result_type(y)), tree, like)


def _where(cond, a, b):
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def _fn_kwargs(value_fn, extra_args):
    """The extra arguments that ``value_fn`` takes (all of them if it takes ``**kwargs``)."""
    try:
        sig = inspect.signature(value_fn)
    except (TypeError, ValueError):
        return {}
    kinds = [p.kind for p in sig.parameters.values()]
    if inspect.Parameter.VAR_KEYWORD in kinds:
        return dict(extra_args)
    return {k: v for k, v in extra_args.items() if k in sig.parameters}


def _objective(where, params, extra_args):
    """Split update's extra arguments into (value, grad, value_fn, value_fn's kwargs)."""
    extra = dict(extra_args)
    value = extra.pop("value", _MISSING)
    grad = extra.pop("grad", _MISSING)
    value_fn = extra.pop("value_fn", _MISSING)
    missing = [
        n for n, v in (("value", value), ("grad", grad), ("value_fn", value_fn)) if v is _MISSING
    ]
    if missing:
        raise TypeError(
            f"{where}: update needs the objective through its extra arguments value, grad and "
            f"value_fn, but {', '.join(missing)} {'was' if len(missing) == 1 else 'were'} not "
            "given. Drive it like this:\n"
            "    value_and_grad = gradtx.value_and_grad_from_state(f)\n"
            "    value, grad = value_and_grad(params, state=opt_state)\n"
            "    updates, opt_state = tx.update(grad, opt_state, params,\n"
            "                                   value=value, grad=grad, value_fn=f)\n"
            "(extra data for f goes in as further keyword arguments that f takes)."
        )
    if not callable(value_fn):
        raise TypeError(
            f"{where}: value_fn is {value_fn!r}, expected the objective f(params, ...) -> scalar."
        )
    _checks.require_params(params, where)
    _checks.check_same_structure(
        params, grad, where, "params", "grad", fix="Pass grad = the gradient of f at params."
    )
    return value, grad, value_fn, _fn_kwargs(value_fn, extra)


# ------------------------------------------------------------------------------------------
# Zoom (strong Wolfe)
# ------------------------------------------------------------------------------------------


class ZoomLinesearchInfo(NamedTuple):
    num_linesearch_steps: jax.Array  # int32: function evaluations of the last search
    decrease_error: jax.Array  # >= 0 at the accepted step: 0 when sufficient decrease held
    curvature_error: jax.Array  # >= 0 at the accepted step: 0 when the curvature cond. held
    conditions_held: jax.Array  # bool: both held (within tol) at the accepted step
    non_finite: jax.Array  # bool: a non-finite value or slope was met (start or trial)


class ScaleByZoomLinesearchState(NamedTuple):
    learning_rate: jax.Array  # scalar: the accepted step size (0 when the search failed)
    value: jax.Array  # scalar: f at the accepted point, for value_and_grad_from_state
    grad: Any  # like params: grad f at the accepted point
    info: ZoomLinesearchInfo  # what the last search did


class _Zoom(NamedTuple):
    """The carry of one search: the trial, the bracket [low, high], the best safe point."""

    count: jax.Array
    stepsize: jax.Array
    value: jax.Array
    grad: Any
    slope: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array
    interval_found: jax.Array
    done: jax.Array
    failed: jax.Array
    non_finite: jax.Array
    low: jax.Array
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    cubic_ref: jax.Array
    value_cubic_ref: jax.Array
    safe_stepsize: jax.Array
    safe_value: jax.Array
    safe_slope: jax.Array
    safe_grad: Any


def _cubic_minimizer(a, fa, fpa, b, fb, c, fc):
    """The stationary point of the cubic through (a, fa), (b, fb), (c, fc) with slope fpa at a.

    NaN when it has none (the caller then falls back to the quadratic or bisection).
    Nocedal and Wright (2006), eq. 3.59; scipy.optimize's line search writes it the same way.
    """
    db, dc = b - a, c - a
    rb, rc = fb - fa - fpa * db, fc - fa - fpa * dc
    denom = (db * dc) ** 2 * (db - dc)
    A = (dc**2 * rb - db**2 * rc) / denom
    B = (-(dc**3) * rb + db**3 * rc) / denom
    return a + (-B + jnp.sqrt(B * B - 3.0 * A * fpa)) / (3.0 * A)


def _quadratic_minimizer(a, fa, fpa, b, fb):
    """The minimiser of the quadratic through (a, fa), (b, fb) with slope fpa at a (eq. 3.57)."""
    db = b - a
    curv = (fb - fa - fpa * db) / (db * db)
    return a - fpa / (2.0 * curv)


def scale_by_zoom_linesearch(
    max_linesearch_steps,
    max_learning_rate=None,
    tol=0.0,
    increase_factor=2.0,
    slope_rtol=1e-4,
    curv_rtol=0.9,
    approx_dec_rtol=1e-6,
    stepsize_precision=1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> GradientTransformation:
    """Scale the direction by a step size satisfying the strong Wolfe conditions (zoom search).

    With w = params, u = updates (a descent direction), f = value_fn and phi(s) = f(w + s u):
      decrease_error  = max(phi(s) - phi(0) - slope_rtol * s * phi'(0), 0)         (Armijo)
      curvature_error = max(|phi'(s)| - curv_rtol * |phi'(0)|, 0)                (strong Wolfe)
    and, when approx_dec_rtol is not None, the decrease may instead hold approximately
    (Hager and Zhang's approximate Wolfe, for the last digits of f near a minimum):
      phi'(s) <= (2 * slope_rtol - 1) * phi'(0)  and  phi(s) <= phi(0) + approx_dec_rtol * |phi(0)|.
    Bracketing (Algorithm 3.5): s = guess, then s = increase_factor * s (at most
    max_learning_rate) until [low, high] brackets a point satisfying both. Zoom (Algorithm 3.6):
    the trial is the cubic interpolant's minimiser if it lies in the middle 60% of [low, high],
    else the quadratic's if in the middle 80%, else the midpoint. The search ends when
    max(decrease_error, curvature_error) <= tol; after max_linesearch_steps evaluations (or an
    interval shorter than stepsize_precision) it takes the best point with sufficient decrease
    seen, or the last trial if none had it. A non-finite phi(0) or phi'(0) stops it at once
    with step 0; a non-finite trial counts as too long a step, so the step returned is never
    NaN. updates = learning_rate * u, and the state keeps f and grad f at the accepted point.

    The guess is 1 (initial_guess_strategy="one", right for quasi-Newton directions) or the
    previous accepted step ("keep").

    Args:
        max_linesearch_steps: most evaluations of value_fn (and its gradient) per search.
        max_learning_rate: largest step size tried (None: no bound).
        tol: tolerance on both errors.
        increase_factor: growth of the trial while bracketing.
        slope_rtol: c1 of the sufficient decrease condition.
        curv_rtol: c2 of the curvature condition (inf: decrease only).
        approx_dec_rtol: relative slack of the approximate decrease (None: Armijo only).
        stepsize_precision: the bracket length below which a search with a safe point stops.
        initial_guess_strategy: "one" or "keep" (static).
        verbose: print a diagnostic when a search ends without the conditions (static).

    update takes the extra arguments value, grad and value_fn (and what value_fn takes).

    References:
        Nocedal and Wright, Numerical Optimization (2nd ed., 2006), Algorithms 3.5 and 3.6,
        interpolation eqs. 3.57-3.59. Hager and Zhang, A new conjugate gradient method with
        guaranteed descent and an efficient line search (SIAM J. Optim., 2005), eq. 4.1
        (approximate Wolfe conditions).
    """
    where = "gradtx.scale_by_zoom_linesearch"
    _checks.check_number(where, "max_linesearch_steps", max_linesearch_steps, low=1)
    if max_learning_rate is not None:
        _checks.check_number(where, "max_learning_rate", max_learning_rate, low=0.0, low_open=True)
    _checks.check_number(where, "tol", tol, low=0.0)
    _checks.check_number(where, "increase_factor", increase_factor, low=1.0, low_open=True)
    _checks.check_number(where, "slope_rtol", slope_rtol, low=0.0, high=1.0, low_open=True)
    _checks.check_number(where, "curv_rtol", curv_rtol, low=0.0, low_open=True)
    if approx_dec_rtol is not None:
        _checks.check_number(where, "approx_dec_rtol", approx_dec_rtol, low=0.0)
    _checks.check_number(where, "stepsize_precision", stepsize_precision, low=0.0)
    if initial_guess_strategy not in ("one", "keep"):
        raise ValueError(
            f"{where}: initial_guess_strategy={initial_guess_strategy!r}; expected 'one' (start "
            "each search at step 1) or 'keep' (start at the previous accepted step)."
        )

    def init(params):
        dt = _scalar_dtype(params)
        return ScaleByZoomLinesearchState(
            learning_rate=jnp.ones((), dt),
            value=jnp.full((), jnp.inf, dt),
            grad=tree_zeros_like(params),
            info=ZoomLinesearchInfo(
                num_linesearch_steps=jnp.zeros((), jnp.int32),
                decrease_error=jnp.full((), jnp.inf, dt),
                curvature_error=jnp.full((), jnp.inf, dt),
                conditions_held=jnp.zeros((), jnp.bool_),
                non_finite=jnp.zeros((), jnp.bool_),
            ),
        )

    def update(updates, state, params=None, **extra_args):
        value0, grad0, value_fn, fn_kwargs = _objective(where, params, extra_args)
        dt = jnp.dtype(state.learning_rate.dtype)
        h = functools.partial(as_dtype, dtype=dt)
        c1, c2, tol_ = h(slope_rtol), h(curv_rtol), h(tol)
        value0 = h(value0)
        grad0 = _tree_like(grad0, params)
        slope0 = _tree_vdot(updates, grad0, dt)
        value_and_grad = jax.value_and_grad(functools.partial(_call, value_fn, fn_kwargs))

        def errors(s, value, slope):
            dec = value - value0 - c1 * s * slope0
            if approx_dec_rtol is not None:
                approx = jnp.maximum(
                    slope - (2 * c1 - 1) * slope0,
                    value - value0 - h(approx_dec_rtol) * jnp.abs(value0),
                )
                dec = jnp.minimum(dec, approx)
            curv = jnp.abs(slope) - c2 * jnp.abs(slope0)
            clean = lambda e: jnp.where(jnp.isnan(e), jnp.inf, jnp.maximum(e, 0))  # noqa: E731
            return clean(dec), clean(curv)

        def trial_stepsize(z):
            # bracketing: the guess, then growth (Algorithm 3.5)
            guess = jnp.ones((), dt)
            if initial_guess_strategy == "keep":  # after a zero step, start again from 1
                guess = jnp.where(state.learning_rate > 0, state.learning_rate, guess)
            grown = jnp.where(z.count == 0, guess, h(increase_factor) * z.stepsize)
            reached = jnp.asarray(False)
            if max_learning_rate is not None:
                reached = grown >= h(max_learning_rate)
                grown = jnp.minimum(grown, h(max_learning_rate))
            # zoom: safeguarded interpolation inside [low, high] (Algorithm 3.6)
            lo, hi = jnp.minimum(z.low, z.high), jnp.maximum(z.low, z.high)
            width = hi - lo
            cubic = _cubic_minimizer(
                z.low,
                z.value_low,
                z.slope_low,
                z.high,
                z.value_high,
                z.cubic_ref,
                z.value_cubic_ref,
            )
            quad = _quadratic_minimizer(z.low, z.value_low, z.slope_low, z.high, z.value_high)
            use_cubic = (cubic > lo + 0.2 * width) & (cubic < hi - 0.2 * width)
            use_quad = ~use_cubic & (quad > lo + 0.1 * width) & (quad < hi - 0.1 * width)
            middle = jnp.where(use_cubic, cubic, jnp.where(use_quad, quad, (z.low + z.high) / 2))
            s = jnp.where(z.interval_found, middle, grown)
            return s, reached & ~z.interval_found, width <= h(stepsize_precision)

        def body(z):
            s, reached, too_short = trial_stepsize(z)
            value, grad = value_and_grad(_tree_step(params, s, updates))
            value = value.astype(dt)
            slope = _tree_vdot(grad, updates, dt)
            dec, curv = errors(s, value, slope)
            ok = jnp.maximum(dec, curv) <= tol_
            decreased = dec <= tol_
            non_finite = z.non_finite | ~jnp.isfinite(value) | ~jnp.isfinite(slope)
            last = z.count + 1 >= max_linesearch_steps
            new = (s, value, slope)
            low, high = (z.low, z.value_low, z.slope_low), (z.high, z.value_high, z.slope_high)

            # Algorithm 3.5: the trial closes the bracket when it fails to decrease (or rises
            # above the previous trial), or when the slope has turned non-negative
            prev = (z.stepsize, z.value, z.slope)
            b_high_new = (dec > 0) | ((value >= z.value) & (z.count > 0))
            b_low_new = (slope >= 0) & ~b_high_new
            b_low = _where(b_low_new, new, prev)
            b_high = _where(b_low_new, prev, new)
            b_found = b_high_new | b_low_new | ok
            b_safe = decreased
            b_done = ok | (reached & ~b_found)
            b_failed = last & ~b_done

            # Algorithm 3.6: shrink the bracket around the trial
            z_high_mid = (dec > 0) | (value >= z.value_low)
            z_high_low = (slope * (z.high - z.low) >= 0) & ~z_high_mid
            z_high = _where(z_high_mid, new, _where(z_high_low, low, high))
            z_low = _where(z_high_mid, low, new)
            z_safe = decreased & (value < z.safe_value)
            z_done = ok

            zoom = z.interval_found
            new_low = _where(zoom, z_low, b_low)
            new_high = _where(zoom, z_high, b_high)
            cubic_ref = jnp.where(zoom & ~(z_high_mid | z_high_low), z.low, z.high)
            value_cubic_ref = jnp.where(
                zoom & ~(z_high_mid | z_high_low), z.value_low, z.value_high
            )
            cubic_ref = jnp.where(zoom, cubic_ref, new_low[0])
            value_cubic_ref = jnp.where(zoom, value_cubic_ref, new_low[1])
            take_safe = jnp.where(zoom, z_safe, b_safe)
            safe = _where(
                take_safe,
                (s, value, slope, grad),
                (z.safe_stepsize, z.safe_value, z.safe_slope, z.safe_grad),
            )
            z_failed = (last | (too_short & (safe[0] > 0))) & ~z_done
            return _Zoom(
                count=z.count + 1,
                stepsize=s,
                value=value,
                grad=grad,
                slope=slope,
                decrease_error=dec,
                curvature_error=curv,
                interval_found=zoom | b_found,
                done=jnp.where(zoom, z_done, b_done),
                failed=jnp.where(zoom, z_failed, b_failed),
                non_finite=non_finite,
                low=new_low[0],
                value_low=new_low[1],
                slope_low=new_low[2],
                high=new_high[0],
                value_high=new_high[1],
                slope_high=new_high[2],
                cubic_ref=cubic_ref,
                value_cubic_ref=value_cubic_ref,
                safe_stepsize=safe[0],
                safe_value=safe[1],
                safe_slope=safe[2],
                safe_grad=safe[3],
            )

        start_ok = jnp.isfinite(value0) & jnp.isfinite(slope0)
        zero = jnp.zeros((), dt)
        z0 = _Zoom(
            count=jnp.zeros((), jnp.int32),
            stepsize=zero,
            value=value0,
            grad=grad0,
            slope=slope0,
            decrease_error=jnp.full((), jnp.inf, dt),
            curvature_error=jnp.full((), jnp.inf, dt),
            interval_found=jnp.asarray(False),
            done=~start_ok,
            failed=jnp.asarray(False),
            non_finite=~start_ok,
            low=zero,
            value_low=value0,
            slope_low=slope0,
            high=zero,
            value_high=value0,
            slope_high=slope0,
            cubic_ref=zero,
            value_cubic_ref=value0,
            safe_stepsize=zero,
            safe_value=value0,
            safe_slope=slope0,
            safe_grad=grad0,
        )
        z = jax.lax.while_loop(lambda z: ~(z.done | z.failed), body, z0)

        # a failed search falls back on the best point with sufficient decrease, or, when the
        # last trial was not even finite, on no step at all
        fallback = z.failed & ((z.safe_stepsize > 0) | ~jnp.isfinite(z.value) | ~start_ok)
        fallback = fallback | ~start_ok
        s, value, slope, grad = _where(
            fallback,
            (z.safe_stepsize, z.safe_value, z.safe_slope, z.safe_grad),
            (z.stepsize, z.value, z.slope, z.grad),
        )
        bad = ~jnp.isfinite(s) | ~jnp.isfinite(value) | ~start_ok
        s = jnp.where(bad, zero, s)
        value, grad = _where(bad, (value0, grad0), (value, grad))
        dec, curv = errors(s, value, jnp.where(bad, slope0, slope))
        held = (jnp.maximum(dec, curv) <= tol_) & start_ok
        if verbose:
            _report_failure(where, held, s, value0, slope0, dec, curv, z.non_finite)
        info = ZoomLinesearchInfo(z.count, dec, curv, held, z.non_finite)
        new_state = ScaleByZoomLinesearchState(s, value, _tree_like(grad, params), info)
        return _tree_scale(s, updates), new_state

    return GradientTransformation(init, update)


def _call(value_fn, fn_kwargs, params):
    return value_fn(params, **fn_kwargs)


def _report_failure(where, held, stepsize, value0, slope0, dec, curv, non_finite):
    def show(_):
        jax.debug.print(
            where + ": the search ended without the conditions: step {s}, f(params) {v}, "
            "slope {d} (must be < 0 for a descent direction), decrease error {de}, "
            "curvature error {ce}, non-finite value met: {nf}",
            s=stepsize,
            v=value0,
            d=slope0,
            de=dec,
            ce=curv,
            nf=non_finite,
        )

    jax.lax.cond(held, lambda _: None, show, None)


# ------------------------------------------------------------------------------------------
# Backtracking (Armijo)
# ------------------------------------------------------------------------------------------


class BacktrackingLinesearchInfo(NamedTuple):
    num_linesearch_steps: jax.Array  # int32: function evaluations of the last search
    decrease_error: jax.Array  # >= 0 at the accepted step: 0 when the Armijo condition held
    conditions_held: jax.Array  # bool: decrease_error <= atol at the accepted step
    non_finite: jax.Array  # bool: a non-finite value was met (start or trial)


class ScaleByBacktrackingLinesearchState(NamedTuple):
    learning_rate: jax.Array  # scalar: the accepted step size (0 after a non-finite value)
    value: jax.Array  # scalar: f at the accepted point
    grad: Any  # like params when store_grad, else (): grad f at the accepted point
    info: BacktrackingLinesearchInfo  # what the last search did


def scale_by_backtracking_linesearch(
    max_backtracking_steps,
    slope_rtol=1e-4,
    decrease_factor=0.8,
    increase_factor=1.5,
    max_learning_rate=1.0,
    atol=0.0,
    rtol=0.0,
    store_grad: bool = False,
    verbose: bool = False,
) -> GradientTransformation:
    """Scale the direction by the first step size of a shrinking sequence with Armijo decrease.

    With w = params, u = updates, f = value_fn, slope = <u, grad>:
      s = min(increase_factor * previous learning_rate, max_learning_rate)
      decrease_error(s) = max(f(w + s u) - (1 + rtol) f(w) - slope_rtol * s * slope, 0)
      while decrease_error(s) > atol (at most max_backtracking_steps times):
          s = decrease_factor * s
    A non-finite f(w + s u) counts as an infinite error; if the last one is still infinite, or
    f(w) or the slope is not finite, the step is 0. updates = s * u. The state keeps f (and,
    with store_grad, grad f) at the accepted point for value_and_grad_from_state.

    Args:
        max_backtracking_steps: most reductions of the step (evaluations: one more).
        slope_rtol: c of the Armijo condition.
        decrease_factor: the reduction factor, in (0, 1).
        increase_factor: growth of the guess from the previous step (inf: start at the max).
        max_learning_rate: the largest step size.
        atol: absolute slack of the condition.
        rtol: relative slack on f(w).
        store_grad: evaluate the gradient too and keep it (static).
        verbose: print a diagnostic when a search ends without the condition (static).

    update takes the extra arguments value, grad and value_fn (and what value_fn takes).

    References:
        Armijo, Minimization of functions having Lipschitz continuous first partial derivatives
        (Pacific J. Math., 1966); Nocedal and Wright, Numerical Optimization (2006), Algorithm 3.1.
    """
    where = "gradtx.scale_by_backtracking_linesearch"
    _checks.check_number(where, "max_backtracking_steps", max_backtracking_steps, low=0)
    _checks.check_number(where, "slope_rtol", slope_rtol, low=0.0, high=1.0, high_open=True)
    _checks.check_number(
        where, "decrease_factor", decrease_factor, low=0.0, high=1.0, low_open=True, high_open=True
    )
    _checks.check_number(where, "increase_factor", increase_factor, low=1.0)
    _checks.check_number(where, "max_learning_rate", max_learning_rate, low=0.0, low_open=True)
    _checks.check_number(where, "atol", atol, low=0.0)
    _checks.check_number(where, "rtol", rtol, low=0.0)

    def init(params):
        dt = _scalar_dtype(params)
        return ScaleByBacktrackingLinesearchState(
            learning_rate=jnp.ones((), dt),
            value=jnp.full((), jnp.inf, dt),
            grad=tree_zeros_like(params) if store_grad else (),
            info=BacktrackingLinesearchInfo(
                num_linesearch_steps=jnp.zeros((), jnp.int32),
                decrease_error=jnp.full((), jnp.inf, dt),
                conditions_held=jnp.zeros((), jnp.bool_),
                non_finite=jnp.zeros((), jnp.bool_),
            ),
        )

    def update(updates, state, params=None, **extra_args):
        value0, grad0, value_fn, fn_kwargs = _objective(where, params, extra_args)
        dt = jnp.dtype(state.learning_rate.dtype)
        h = functools.partial(as_dtype, dtype=dt)
        value0 = h(value0)
        grad0 = _tree_like(grad0, params)
        slope0 = _tree_vdot(updates, grad0, dt)
        f = functools.partial(_call, value_fn, fn_kwargs)
        evaluate = jax.value_and_grad(f) if store_grad else lambda p: (f(p), ())

        def decrease_error(s, value):
            e = value - (1 + h(rtol)) * value0 - s * h(slope_rtol) * slope0
            return jnp.where(jnp.isnan(e), jnp.inf, jnp.maximum(e, 0))

        def body(carry):
            count, s, _, _, _, non_finite = carry
            s = jnp.where(count > 0, h(decrease_factor) * s, s)
            value, grad = evaluate(_tree_step(params, s, updates))
            value = value.astype(dt)
            return (
                count + 1,
                s,
                value,
                grad,
                decrease_error(s, value),
                non_finite | ~jnp.isfinite(value),
            )

        def cond(carry):
            count, _, _, _, err, _ = carry
            return (err > h(atol)) & (count <= max_backtracking_steps)

        start_ok = jnp.isfinite(value0) & jnp.isfinite(slope0)
        guess = jnp.minimum(h(increase_factor) * state.learning_rate, h(max_learning_rate))
        carry0 = (
            jnp.where(start_ok, 0, max_backtracking_steps + 1).astype(jnp.int32),
            guess,
            value0,
            grad0 if store_grad else (),
            jnp.full((), jnp.inf, dt),
            ~start_ok,
        )
        count, s, value, grad, err, non_finite = jax.lax.while_loop(cond, body, carry0)
        count = jnp.where(start_ok, count, 0)
        bad = jnp.isinf(err) | ~start_ok
        s = jnp.where(bad, jnp.zeros((), dt), s)
        value = jnp.where(bad, value0, value)
        if store_grad:
            grad = _tree_like(_where(bad, grad0, grad), params)
        held = (err <= h(atol)) & ~bad
        if verbose:
            _report_failure(where, held, s, value0, slope0, err, jnp.zeros((), dt), non_finite)
        info = BacktrackingLinesearchInfo(count, err, held, non_finite)
        return _tree_scale(s, updates), ScaleByBacktrackingLinesearchState(s, value, grad, info)

    return GradientTransformation(init, update)


# ------------------------------------------------------------------------------------------


def value_and_grad_from_state(
    value_fn: Callable[..., jax.Array],
) -> Callable[..., tuple[jax.Array, Any]]:
    """``jax.value_and_grad(value_fn)`` that reuses the line search's last evaluation.

    value, grad = value_and_grad(params, *args, state=opt_state, **kwargs)
    returns the ``value`` and ``grad`` stored in ``opt_state`` (by name, as ``gradtx.tree_get``
    finds them) when the stored value is finite, and ``jax.value_and_grad(value_fn)(params,
    *args, **kwargs)`` otherwise (the first step, where init stored an infinite value). The
    stored pair is f and grad f at the point the line search accepted, which is the new
    params, so a full-batch loop evaluates f once per line-search trial and no more.

    Under ``vmap`` the choice is a select: both branches run (no saving, same results).

    Example:
        >>> import jax.numpy as jnp, gradtx
        >>> f = lambda w: jnp.sum((w - 1.0) ** 2)
        >>> tx = gradtx.lbfgs()
        >>> w = jnp.zeros(3)
        >>> state = tx.init(w)
        >>> value_and_grad = gradtx.value_and_grad_from_state(f)
        >>> for _ in range(3):
        ...     value, grad = value_and_grad(w, state=state)
        ...     updates, state = tx.update(grad, state, w, value=value, grad=grad, value_fn=f)
        ...     w = gradtx.apply_updates(w, updates)
        >>> print(jnp.round(w, 6))
        [1. 1. 1.]
    """
    from gradtx._state.tools import tree_get

    where = "gradtx.value_and_grad_from_state"

    def value_and_grad(params, *args, state, **kwargs):
        try:
            value, grad = tree_get(state, "value"), tree_get(state, "grad")
        except KeyError as e:
            raise ValueError(
                f"{where}: the state holds no single 'value' and 'grad' ({e.args[0]}). Use the "
                "state of an optimizer ending in a line search (scale_by_zoom_linesearch, or "
                "scale_by_backtracking_linesearch with store_grad=True)."
            ) from None
        if isinstance(grad, tuple) and not grad and jax.tree.leaves(params):
            raise ValueError(
                f"{where}: the line search keeps no gradient; build "
                "scale_by_backtracking_linesearch with store_grad=True."
            )
        fresh = jax.value_and_grad(value_fn)
        stored_ok = jnp.isfinite(value)
        value_, grad_ = jax.lax.cond(
            stored_ok,
            lambda p, a, k: (jnp.asarray(value), _tree_like(grad, params)),
            lambda p, a, k: _cast_pair(fresh(p, *a, **k), value, params),
            params,
            args,
            kwargs,
        )
        return value_, grad_

    return value_and_grad


def _cast_pair(pair, value_like, params):
    value, grad = pair
    return jnp.asarray(value).astype(jnp.result_type(value_like)), _tree_like(grad, params)
