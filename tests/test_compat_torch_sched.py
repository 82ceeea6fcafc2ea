"""gradtx.compat.torch.lr_scheduler against torch 2.13's schedulers.

The expected values are tests/fixtures/torch_sched.json, written by
tests/fixtures/make_torch_sched.py (torch's schedulers stepped on a dummy optimizer; count 0 is
the lr after construction, count k the lr after k ``step()`` calls). Each schedule is evaluated
once on ``jnp.arange(n)``, in float64, and must match to 1e-12 relative.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradtx.compat.torch import lr_scheduler as S

CASES = json.loads((pathlib.Path(__file__).parent / "fixtures" / "torch_sched.json").read_text())[
    "cases"
]
RTOL = 1e-12

# The fixture's named lambdas (make_torch_sched.LAMBDAS), written with jnp.
LAMBDAS = {
    "pow095": lambda e: 0.95**e,
    "inv1p": lambda e: 1.0 / (1.0 + 0.5 * e),
    "const09": lambda e: 0.9,
    "alt": lambda e: jnp.where(e % 3 == 0, 0.9, 0.98),
    "half_cycle": lambda x: 0.5 ** (x - 1),
    "inv_iter": lambda x: 1.0 / (1.0 + 0.02 * x),
}
TAKES_LR = {"CyclicLR": False, "OneCycleLR": False}


def _kwargs(kwargs):
    return {k: LAMBDAS[v] if k in ("lr_lambda", "scale_fn") else v for k, v in kwargs.items()}


def _build(kind, lr, kwargs):
    kwargs = _kwargs(kwargs)
    if TAKES_LR.get(kind, True):
        kwargs["lr"] = None if kind == "SWALR" and "lr" in kwargs else lr
    return getattr(S, kind)(**kwargs)


def _schedule(case):
    if case["kind"] == "SequentialLR":
        members = []
        for k, (kind, kw) in enumerate(case["members"]):
            # a later SWALR starts from the lr the sequence reached (lr=None), as torch's
            members.append(S.SWALR(**kw) if k and kind == "SWALR" else _build(kind, case["lr"], kw))
        return S.SequentialLR(members, case["milestones"])
    if case["kind"] == "ChainedScheduler":
        return S.ChainedScheduler([_build(k, case["lr"], kw) for k, kw in case["members"]])
    return _build(case["kind"], case["lr"], case["kwargs"])


def _rel(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    scale = np.where(want != 0, np.abs(want), np.max(np.abs(want)))
    return float(np.max(np.abs(got - want) / scale))


def _label(case):
    return f"{case['kind']}({case.get('kwargs') or case.get('members')})"


N = 64  # every case fits in counts 0 .. N - 1


def test_schedules_match_torch_under_jit_and_vmap():
    """Every scheduler case and every cycled momentum within 1e-12 relative of torch.

    All schedules are evaluated by one jitted function that vmaps each over jnp.arange(N)
    (so each is traced once, under jit and vmap, with a traced count).
    """
    cases = [c for c in CASES if c["kind"] != "ReduceLROnPlateau"]
    traces = []
    with jax.enable_x64(True):
        schedules = [_schedule(c) for c in cases]

        @jax.jit
        def values(counts):
            traces.append(1)
            out = []
            for s in schedules:
                momentum = getattr(s, "momentum", None)
                out.append(
                    (jax.vmap(s)(counts), None if momentum is None else jax.vmap(momentum)(counts))
                )
            return out

        got = values(jnp.arange(N))
        again = values(jnp.arange(N))  # no retrace
    assert len(traces) == 1
    worst = {}
    for case, (lr, momentum), (lr2, _) in zip(cases, got, again):
        n = len(case["want_lr"])
        assert n <= N and lr.dtype == jnp.float64, _label(case)
        np.testing.assert_array_equal(lr, lr2)
        err = _rel(lr[:n], case["want_lr"])
        if "want_momentum" in case:
            assert momentum is not None, _label(case)
            err = max(err, _rel(momentum[:n], case["want_momentum"]))
        elif case["kind"] in ("OneCycleLR", "CyclicLR"):
            assert momentum is None, _label(case)
        worst[case["kind"]] = max(worst.get(case["kind"], 0.0), err)
        assert err <= RTOL, f"{_label(case)}: relative error {err:.3g}"
    assert len(worst) == 15, sorted(worst)
    print("largest relative error vs torch:", {k: f"{v:.2g}" for k, v in sorted(worst.items())})


def test_reduce_lr_on_plateau_matches_torch():
    """torch's lr after each step(metric) is lr * the scale after each update(loss=metric).

    All cases run in one jitted scan over the scripted metrics.
    """
    cases = [c for c in CASES if c["kind"] == "ReduceLROnPlateau"]
    with jax.enable_x64(True):
        txs = [S.ReduceLROnPlateau(**c["kwargs"], lr=c["lr"]) for c in cases]
        params = {"w": jnp.zeros((), jnp.float64)}
        ones = {"w": jnp.ones((), jnp.float64)}

        @jax.jit
        def run(losses):
            def step(states, row):
                out = [
                    tx.update(ones, st, params, loss=loss) for tx, st, loss in zip(txs, states, row)
                ]
                return [o[1] for o in out], jnp.stack([o[0]["w"] for o in out])

            return jax.lax.scan(step, [tx.init(params) for tx in txs], losses)[1]

        losses = jnp.asarray([c["losses"] for c in cases], jnp.float64).T
        scales = np.asarray(run(losses)).T
    worst = 0.0
    for case, scale in zip(cases, scales):
        assert len(set(case["want_lr"])) > 2, "the case should drop the lr at least twice"
        err = _rel(case["lr"] * scale, case["want_lr"])
        assert err <= RTOL, f"{_label(case)}: relative error {err:.3g}"
        worst = max(worst, err)
    print(f"ReduceLROnPlateau: largest relative error {worst:.2g}")


def test_sweep_and_per_epoch():
    """A vmapped sweep over lr and gamma, and per_epoch's count // steps_per_epoch (one jit)."""

    @jax.jit
    def values(lrs, gammas):
        sweep = jax.vmap(lambda lr, g: S.StepLR(2, g, lr=lr)(jnp.arange(5)))(lrs, gammas)
        epochs = S.per_epoch(S.StepLR(1, 0.5, lr=1.0), steps_per_epoch=3)(jnp.arange(7))
        return sweep, epochs

    sweep, epochs = values(jnp.array([0.1, 0.2]), jnp.array([0.5, 0.9]))
    want = [[lr * g ** (k // 2) for k in range(5)] for lr, g in ((0.1, 0.5), (0.2, 0.9))]
    np.testing.assert_allclose(sweep, want, rtol=1e-6)
    np.testing.assert_array_equal(epochs, [1, 1, 1, 0.5, 0.5, 0.5, 0.25])
    cycled = S.TorchSchedule("x", jnp.asarray, momentum=S.TorchSchedule("m", jnp.negative))
    assert S.per_epoch(cycled, 4).momentum(9) == -2


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: S.StepLR(3), "keyword-only argument: .lr."),
        (lambda: S.SWALR(0.01)(3), "lr is missing"),
        (lambda: S.StepLR(0, lr=0.1), "step_size=0"),
        (lambda: S.LinearLR(start_factor=0.0, lr=0.1), "start_factor=0.0"),
        (lambda: S.CosineAnnealingWarmRestarts(2.5, lr=0.1), "T_0=2.5"),
        (lambda: S.OneCycleLR(0.1), "total_steps, or both epochs"),
        (lambda: S.CyclicLR(0.01, 0.1, mode="tri"), "mode='tri'"),
        (lambda: S.SequentialLR([S.ExponentialLR(0.9, lr=0.1)], [3]), "1 schedulers and 1"),
        (lambda: S.ChainedScheduler([S.CosineAnnealingLR(5, lr=0.1)]), "sets the lr instead"),
        (lambda: S.ReduceLROnPlateau(threshold_mode="relative", lr=0.1), "threshold_mode="),
        (lambda: S.ReduceLROnPlateau(threshold=0.0, lr=0.1), "threshold=0.0"),
        (lambda: S.SWALR(0.01, anneal_strategy="cosine"), "anneal_strategy='cosine'"),
    ],
)
def test_bad_arguments(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()
