"""Schedules against closed forms written here in float64 NumPy; jit, vmap and grad through them."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

STEPS = np.concatenate([np.arange(0, 131), [200, 1000]])
# Arguments that set where something happens (a count): a schedule may jump as they move.
STEP_ARGS = {
    "transition_steps", "transition_begin", "decay_steps", "warmup_steps", "stable_steps",
    "step_size", "step_size_up", "step_size_down", "boundary", "b1", "b2", "b3", "d1", "d2",
    "pct_start", "pct_final",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    build: Callable  # flat numeric kwargs -> schedule
    kwargs: dict
    ref: Callable  # (t: float, **kwargs) -> float, written from the documented formula
    sweeps: dict = dataclasses.field(default_factory=dict)  # arg -> values, where the default fails


# ---- references, one count at a time, float64 -------------------------------------------------
def lin(t, a, b, n):
    return a + (b - a) * t / n


def ref_poly(t, init_value, end_value, power, transition_steps, transition_begin=0):
    i, e, b, n = init_value, end_value, transition_begin, transition_steps
    if t < b:
        return i
    if t >= b + n:
        return e
    return (i - e) * (1 - (t - b) / n) ** power + e


def ref_linear(t, init_value, end_value, transition_steps, transition_begin=0):
    return lin(min(max(t - transition_begin, 0), transition_steps), init_value, end_value,
               transition_steps)  # fmt: skip


def ref_exp(t, init_value, transition_steps, decay_rate, transition_begin=0, staircase=False,
            end_value=None):  # fmt: skip
    p = (t - transition_begin) / transition_steps
    v = (
        init_value
        if t <= transition_begin
        else init_value * decay_rate ** (math.floor(p) if staircase else p)
    )
    if end_value is not None:
        v = max(v, end_value) if decay_rate < 1 else min(v, end_value)
    return v


def half_cos(x):
    return 0.5 * (1 + math.cos(math.pi * x))


def ref_cosine(t, init_value, decay_steps, alpha=0.0, exponent=1.0):
    if t > decay_steps:
        return alpha * init_value
    return init_value * (alpha + (1 - alpha) * half_cos(t / decay_steps) ** exponent)


def ref_warm_const(t, init_value, peak_value, warmup_steps):
    return lin(t, init_value, peak_value, warmup_steps) if t < warmup_steps else peak_value


def ref_warm_cos(t, init_value, peak_value, warmup_steps, decay_steps, end_value=0.0,
                 exponent=1.0):  # fmt: skip
    if t < warmup_steps:
        return lin(t, init_value, peak_value, warmup_steps)
    n = decay_steps - warmup_steps
    return end_value + (peak_value - end_value) * half_cos(min(t - warmup_steps, n) / n) ** exponent


def ref_warm_exp(t, init_value, peak_value, warmup_steps, transition_steps, decay_rate,
                 transition_begin, end_value):  # fmt: skip
    if t < warmup_steps:
        return lin(t, init_value, peak_value, warmup_steps)
    return ref_exp(t - warmup_steps, peak_value, transition_steps, decay_rate, transition_begin,
                   True, end_value)  # fmt: skip


def pairs3(b1, s1, b2, s2, b3, s3):
    return [(b1, s1), (b2, s2), (b3, s3)]  # deliberately unsorted in the specs


def ref_pw_const(t, init_value, **bs):
    v = init_value
    for b, s in pairs3(**bs):
        v = v * s if t >= b else v
    return v


def ref_pw_interp(kind):
    def ref(t, init_value, **bs):
        pairs = sorted(pairs3(**bs))
        knots, vals = [0] + [b for b, _ in pairs], [init_value]
        for _, s in pairs:
            vals.append(vals[-1] * s)
        if t < 0:
            return 0.0
        for k in range(len(pairs)):
            if knots[k] <= t < knots[k + 1]:
                pct = (t - knots[k]) / max(knots[k + 1] - knots[k], 1)
                if kind == "linear":
                    return vals[k] + (vals[k + 1] - vals[k]) * pct
                return vals[k + 1] + (vals[k] - vals[k + 1]) * half_cos(pct)
        return vals[-1]

    return ref


def ref_onecycle_linear(t, transition_steps, peak_value, pct_start, pct_final, div_factor,
                        final_div_factor):  # fmt: skip
    n, p = transition_steps, peak_value
    lo, a, b = p / div_factor, int(pct_start * n), int(pct_final * n)
    if t < a:
        return lin(t, lo, p, a)
    if t < b:
        return lin(t - a, p, lo, b - a)
    if t < n:
        return lin(t - b, lo, lo / final_div_factor, n - b)
    return lo / final_div_factor


def ref_onecycle_cos(t, transition_steps, peak_value, pct_start, div_factor, final_div_factor):
    n, p = transition_steps, peak_value
    lo, a = p / div_factor, int(pct_start * n)
    end = lo / final_div_factor
    if t < a:
        return p + (lo - p) * half_cos(t / a)
    if t < n:
        return end + (p - end) * half_cos((t - a) / (n - a))
    return end


def sgdr_cycles(d1, p1, d2, p2):
    return [
        dict(init_value=0.1, peak_value=p1, warmup_steps=5, decay_steps=d1),
        dict(init_value=0.0, peak_value=p2, warmup_steps=3, decay_steps=d2, end_value=0.01),
    ]


def ref_sgdr(t, d1, p1, d2, p2):
    c1, c2 = sgdr_cycles(d1, p1, d2, p2)
    return ref_warm_cos(t, **c1) if t < d1 else ref_warm_cos(t - d1, **c2)


def build_join(value, boundary, init_value, end_value, transition_steps):
    first = gradtx.constant_schedule(value)
    return gradtx.join_schedules(
        [first, gradtx.linear_schedule(init_value, end_value, transition_steps)], [boundary]
    )


def ref_join(t, value, boundary, init_value, end_value, transition_steps):
    return value if t < boundary else ref_linear(t - boundary, init_value, end_value,
                                                 transition_steps)  # fmt: skip


def ref_inv_sqrt(t, init_value, peak_value, warmup_steps):
    if t < warmup_steps:
        return lin(t, init_value, peak_value, warmup_steps)
    return peak_value * math.sqrt(warmup_steps / t)


def ref_wsd(kind):
    shapes = {"linear": lambda f: 1 - f, "cosine": half_cos, "1-sqrt": lambda f: 1 - math.sqrt(f)}

    def ref(t, init_value, peak_value, warmup_steps, stable_steps, decay_steps, end_value):
        if t < warmup_steps:
            return lin(t, init_value, peak_value, warmup_steps)
        f = min(max(t - warmup_steps - stable_steps, 0) / decay_steps, 1)
        return end_value + (peak_value - end_value) * shapes[kind](f)

    return ref


def ref_cyclic(mode):
    def ref(t, base_value, max_value, step_size_up, step_size_down, gamma):
        # torch.optim.lr_scheduler.CyclicLR.get_lr, with last_epoch = t
        total = step_size_up + step_size_down
        ratio = step_size_up / total
        cycle = math.floor(1 + t / total)
        x = 1.0 + t / total - cycle
        factor = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
        scale = {"triangular": 1.0, "triangular2": 1 / 2.0 ** (cycle - 1), "exp_range": gamma**t}
        return base_value + (max_value - base_value) * factor * scale[mode]

    return ref


def kw(**k):
    return k


def _named(f, **fixed):
    return lambda *a, **k: f(*a, **k, **fixed)


WARM_EXP = kw(init_value=0.1, peak_value=1.0, warmup_steps=10, transition_steps=7,
              decay_rate=0.8, transition_begin=3, end_value=0.2)  # fmt: skip
PW = kw(init_value=2.0, b1=50, s1=0.1, b2=10, s2=0.5, b3=90, s3=3.0)
WSD = kw(init_value=0.1, peak_value=1.0, warmup_steps=10, stable_steps=60, decay_steps=40,
         end_value=0.05)  # fmt: skip
CYC = kw(base_value=0.1, max_value=1.0, step_size_up=10, step_size_down=15, gamma=0.99)
POLY = kw(init_value=1.0, end_value=0.01, power=2.0, transition_steps=100, transition_begin=5)
LIN1 = kw(transition_steps=100, peak_value=1.0, pct_start=0.3, pct_final=0.85, div_factor=25.0,
          final_div_factor=1e4)  # fmt: skip
# Python's int(pct * steps) and float32's floor(pct * steps) agree on these (see the README).
ONECYCLE_PCT = (0.25, 0.375, 0.125)
SPECS = [
    Spec("constant", gradtx.constant_schedule, kw(value=0.3), lambda t, value: value),
    Spec("polynomial", gradtx.polynomial_schedule, POLY, ref_poly),
    Spec("linear", gradtx.linear_schedule,
         kw(init_value=1.0, end_value=0.01, transition_steps=100, transition_begin=5), ref_linear),
    Spec("exponential", gradtx.exponential_decay,
         kw(init_value=1.0, transition_steps=10, decay_rate=0.5, transition_begin=7), ref_exp),
    Spec("exponential_staircase_bounded", _named(gradtx.exponential_decay, staircase=True),
         kw(init_value=1.0, transition_steps=10, decay_rate=0.5, transition_begin=7,
            end_value=0.05), _named(ref_exp, staircase=True)),
    Spec("exponential_growth_bounded", gradtx.exponential_decay,
         kw(init_value=1.0, transition_steps=10, decay_rate=1.5, end_value=3.0), ref_exp),
    Spec("cosine_decay", gradtx.cosine_decay_schedule,
         kw(init_value=2.0, decay_steps=100, alpha=0.1, exponent=2.0), ref_cosine),
    Spec("warmup_constant", gradtx.warmup_constant_schedule,
         kw(init_value=0.1, peak_value=1.0, warmup_steps=10), ref_warm_const),
    Spec("warmup_cosine_decay", gradtx.warmup_cosine_decay_schedule,
         kw(init_value=0.1, peak_value=1.0, warmup_steps=10, decay_steps=100, end_value=0.05,
            exponent=1.5), ref_warm_cos),
    Spec("warmup_exponential_decay",
         _named(gradtx.warmup_exponential_decay_schedule, staircase=True), WARM_EXP, ref_warm_exp),
    Spec("piecewise_constant",
         lambda init_value, **bs: gradtx.piecewise_constant_schedule(init_value, pairs3(**bs)),
         PW, ref_pw_const),
    *[Spec(f"piecewise_interpolate_{kind}",
           lambda init_value, kind=kind, **bs: gradtx.piecewise_interpolate_schedule(
               kind, init_value, pairs3(**bs)), PW, ref_pw_interp(kind))
      for kind in ("linear", "cosine")],
    Spec("linear_onecycle", gradtx.linear_onecycle_schedule, LIN1, ref_onecycle_linear,
         sweeps={"pct_start": ONECYCLE_PCT, "pct_final": (0.875, 0.75, 0.8125)}),
    Spec("cosine_onecycle", gradtx.cosine_onecycle_schedule,
         kw(transition_steps=100, peak_value=1.0, pct_start=0.3, div_factor=25.0,
            final_div_factor=1e4), ref_onecycle_cos, sweeps={"pct_start": ONECYCLE_PCT}),
    Spec("sgdr", lambda **k: gradtx.sgdr_schedule(sgdr_cycles(**k)),
         kw(d1=40, p1=1.0, d2=60, p2=0.5), ref_sgdr),
    Spec("join", build_join,
         kw(value=0.3, boundary=20, init_value=1.0, end_value=0.1, transition_steps=50), ref_join),
    Spec("step_decay", gradtx.step_decay_schedule,
         kw(init_value=1.0, step_size=30, gamma=0.5),
         lambda t, init_value, step_size, gamma: init_value * gamma ** math.floor(t / step_size)),
    Spec("inverse_sqrt", gradtx.warmup_inverse_sqrt_schedule,
         kw(init_value=0.0, peak_value=1.0, warmup_steps=10), ref_inv_sqrt),
    *[Spec(f"wsd_{kind}", _named(gradtx.wsd_schedule, decay_type=kind), WSD, ref_wsd(kind))
      for kind in ("linear", "cosine", "1-sqrt")],
    *[Spec(f"cyclic_{mode}", _named(gradtx.cyclic_schedule, mode=mode), CYC, ref_cyclic(mode),
           sweeps={"gamma": (0.99, 0.95, 0.999)})
      for mode in ("triangular", "triangular2", "exp_range")],
]  # fmt: skip
IDS = [s.name for s in SPECS]
ARGS = [(s, a) for s in SPECS for a in s.kwargs if s.kwargs[a] is not None]


def reference(spec, steps=STEPS, **override):
    kwargs = {**spec.kwargs, **override}
    return np.array([spec.ref(float(t), **kwargs) for t in steps], np.float64)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_closed_form(spec):
    with jax.enable_x64(True):
        got = spec.build(**spec.kwargs)(np.asarray(STEPS, np.int64))
        assert got.dtype == jnp.float64 and got.shape == STEPS.shape
        np.testing.assert_allclose(got, reference(spec), rtol=1e-10, atol=1e-12)
    got32 = spec.build(**spec.kwargs)(jnp.asarray(STEPS, jnp.int32))
    assert got32.dtype == jnp.float32
    np.testing.assert_allclose(got32, reference(spec), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_jit_equals_eager(spec):
    sched = spec.build(**spec.kwargs)
    steps = jnp.asarray(STEPS, jnp.int32)
    jitted = jax.jit(sched)(steps)
    np.testing.assert_allclose(jitted, sched(steps), rtol=1e-6, atol=1e-7)
    for t in (10, 1000):  # a scalar count, Python int and int32
        np.testing.assert_allclose(sched(t), jitted[list(STEPS).index(t)], rtol=1e-6, atol=1e-7)
        assert jnp.shape(sched(jnp.int32(t))) == ()


def _sweep_values(spec, arg):
    if arg in spec.sweeps:
        return np.asarray(spec.sweeps[arg], np.float32)
    v = spec.kwargs[arg]
    return np.asarray([v, v * 1.25, v * 0.75] if v else [0.0, 0.25, 0.5], np.float32)


@pytest.mark.parametrize("spec,arg", ARGS, ids=[f"{s.name}-{a}" for s, a in ARGS])
def test_vmap_over_argument_equals_loop(spec, arg):
    values = _sweep_values(spec, arg)
    steps = jnp.asarray(STEPS, jnp.int32)
    run = lambda v: spec.build(**{**spec.kwargs, arg: v})(steps)
    got = jax.vmap(run)(jnp.asarray(values))
    for k, v in enumerate(values):
        np.testing.assert_allclose(got[k], run(float(v)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(  # and the swept values are the closed form's
        got[1], reference(spec, **{arg: float(values[1])}), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_grad_finite_and_matches_finite_difference(spec):
    with jax.enable_x64(True):
        steps = jnp.asarray(STEPS, jnp.int64)
        args = {a: float(v) for a, v in spec.kwargs.items() if v is not None}
        total = lambda a: jnp.sum(spec.build(**{**spec.kwargs, **a})(steps))
        args = {a: jnp.asarray(v, jnp.float64) for a, v in args.items()}
        grads = jax.grad(total)(args)
        for arg, v in args.items():
            assert np.isfinite(grads[arg]), arg
            if arg in STEP_ARGS:  # the schedule jumps as a count argument moves: no difference
                continue
            h = 1e-6 * max(abs(float(v)), 1.0)
            fd = (total({**args, arg: v + h}) - total({**args, arg: v - h})) / (2 * h)
            np.testing.assert_allclose(grads[arg], fd, rtol=1e-5, atol=1e-7, err_msg=arg)


def test_piecewise_dict_form_matches_optax_semantics():
    sched = gradtx.piecewise_constant_schedule(1.0, {100: 0.1, 200: 0.01})
    np.testing.assert_allclose(
        sched(jnp.asarray([0, 99, 100, 199, 200, 250])), [1, 1, 0.1, 0.1, 1e-3, 1e-3], rtol=1e-6
    )
    interp = gradtx.piecewise_interpolate_schedule("linear", 1.0, {4: 0.1, 8: 0.01})
    np.testing.assert_allclose(
        interp(jnp.arange(0, 11, 2)), [1.0, 0.55, 0.1, 0.0505, 0.001, 0.001], rtol=1e-5
    )


OPTAX_CASES = [
    ("polynomial_schedule", POLY),
    ("exponential_decay", kw(init_value=1.0, transition_steps=10, decay_rate=0.5,
                             transition_begin=7, staircase=True, end_value=0.05)),
    ("cosine_decay_schedule", kw(init_value=2.0, decay_steps=100, alpha=0.1, exponent=2.0)),
    ("warmup_constant_schedule", kw(init_value=0.1, peak_value=1.0, warmup_steps=10)),
    ("warmup_cosine_decay_schedule", kw(init_value=0.1, peak_value=1.0, warmup_steps=10,
                                        decay_steps=100, end_value=0.05)),
    ("warmup_exponential_decay_schedule", {**WARM_EXP, "staircase": True}),
    ("piecewise_constant_schedule", kw(init_value=1.0, boundaries_and_scales={10: 0.5, 90: 3})),
    ("piecewise_interpolate_schedule", kw(interpolate_type="cosine", init_value=1.0,
                                          boundaries_and_scales={0: 2.0, 10: 0.5, 90: 3.0})),
    ("linear_onecycle_schedule", LIN1),
    ("cosine_onecycle_schedule", kw(transition_steps=100, peak_value=1.0)),
    ("sgdr_schedule", kw(cosine_kwargs=sgdr_cycles(40, 1.0, 60, 0.5))),
]  # fmt: skip


@pytest.mark.parametrize("name,kwargs", OPTAX_CASES, ids=[c[0] for c in OPTAX_CASES])
def test_same_values_as_optax(name, kwargs):
    optax = pytest.importorskip("optax")
    with jax.numpy_dtype_promotion("standard"):  # optax's schedules mix int and float
        want = jax.vmap(getattr(optax, name)(**kwargs))(jnp.asarray(STEPS, jnp.int32))
    got = getattr(gradtx, name)(**kwargs)(jnp.asarray(STEPS, jnp.int32))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: gradtx.cosine_decay_schedule(1.0, 0), r"decay_steps=0 is out of range"),
        (lambda: gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 10, 10), "must exceed warmup"),
        (lambda: gradtx.exponential_decay(1.0, 10, 0.0), r"decay_rate=0.0 is out of range"),
        (lambda: gradtx.polynomial_schedule(1.0, 0.0, 1, -5), r"transition_steps=-5"),
        (lambda: gradtx.piecewise_constant_schedule(1.0, {10: -0.5}), r"the scale of"),
        (lambda: gradtx.piecewise_constant_schedule(1.0, [(1, 2, 3)]), r"\(step, scale\) pair"),
        (lambda: gradtx.piecewise_interpolate_schedule("cubic", 1.0), r"'linear' or 'cosine'"),
        (lambda: gradtx.join_schedules([gradtx.constant_schedule(1.0)], [5]), "one boundary fewer"),
        (lambda: gradtx.sgdr_schedule([dict(init_value=0.0, peak_value=1.0, warmup_steps=1)]),
         "no 'decay_steps'"),
        (lambda: gradtx.linear_onecycle_schedule(100, 1.0, pct_start=0.9, pct_final=0.5),
         "pct_final=0.5 < pct_start=0.9"),
        (lambda: gradtx.wsd_schedule(0.0, 1.0, 1, 1, 1, decay_type="sqrt"), "decay_type='sqrt'"),
        (lambda: gradtx.cyclic_schedule(0.1, 1.0, mode="sine"), "mode='sine'"),
        (lambda: gradtx.step_decay_schedule(1.0, 0), r"step_size=0 is out of range"),
        (lambda: gradtx.warmup_constant_schedule(0.0, 1.0, True), "is a bool"),
    ],
)  # fmt: skip
def test_python_arguments_validated(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_warmup_of_zero_steps_starts_at_peak():
    for sched in (
        gradtx.warmup_constant_schedule(0.0, 1.0, 0),
        gradtx.warmup_cosine_decay_schedule(0.0, 1.0, 0, 10),
        gradtx.warmup_inverse_sqrt_schedule(0.0, 1.0, 0),
        gradtx.wsd_schedule(0.0, 1.0, 0, 5, 5),
    ):
        np.testing.assert_allclose(sched(0), 1.0)


def test_momentum_schedule_in_sgd_matches_numpy():
    lr, mu = 0.1, gradtx.linear_schedule(0.5, 0.9, 4)
    with jax.enable_x64(True):
        tx = gradtx.sgd(lr, momentum=mu)
        rng = np.random.default_rng(0)
        p_ref, v = rng.normal(size=5), np.zeros(5)
        params = jnp.asarray(p_ref)
        state = tx.init(params)
        for t in range(7):
            g = rng.normal(size=5)
            mu_t = 0.5 + 0.4 * min(t, 4) / 4  # the momentum of step t (count from 0)
            v = mu_t * v - lr * g  # the seed's momentum
            p_ref = p_ref + v
            updates, state = tx.update(jnp.asarray(g), state, params)
            params = gradtx.apply_updates(params, updates)
            np.testing.assert_allclose(params, p_ref, rtol=1e-12, atol=1e-14)


def test_weight_decay_and_lr_schedules_in_adamw_match_numpy():
    b1, b2, eps = 0.9, 0.999, 1e-8
    with jax.enable_x64(True):
        tx = gradtx.adamw(
            gradtx.warmup_cosine_decay_schedule(0.0, 0.1, 2, 8),
            weight_decay=gradtx.step_decay_schedule(0.5, 3, 0.1),
        )
        rng = np.random.default_rng(1)
        p_ref, m, s = rng.normal(size=4), np.zeros(4), np.zeros(4)
        params = jnp.asarray(p_ref)
        state = tx.init(params)
        for t in range(1, 10):
            g = rng.normal(size=4)
            lr = 0.1 * (t - 1) / 2 if t - 1 < 2 else 0.1 * half_cos(min(t - 3, 6) / 6)
            wd = 0.5 * 0.1 ** ((t - 1) // 3)
            m = b1 * m + (1 - b1) * g
            s = b2 * s + (1 - b2) * g * g
            step = (m / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps)
            p_ref = p_ref - lr * (step + wd * p_ref)
            updates, state = tx.update(jnp.asarray(g), state, params)
            params = gradtx.apply_updates(params, updates)
            np.testing.assert_allclose(params, p_ref, rtol=1e-12, atol=1e-14)
