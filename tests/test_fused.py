"""The single-pass update formulation: same numbers as the default one, one fused kernel."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx._core import fused as _fused

AFFECTED = {
    "adam": lambda: gradtx.adam(0.01),
    "nadam": lambda: gradtx.adam(0.01, nesterov=True),
    "adamw": lambda: gradtx.adamw(0.01, weight_decay=0.1),
    "rmsprop": lambda: gradtx.rmsprop(0.01),
    "rmsprop_centered": lambda: gradtx.rmsprop(
        0.01, centered=True, bias_correction=True, momentum=0.9
    ),
    "adagrad": lambda: gradtx.adagrad(0.1),
    "sgd_momentum": lambda: gradtx.sgd(0.1, momentum=0.9),
    "sgd_nesterov": lambda: gradtx.sgd(0.1, momentum=0.9, nesterov=True),
    "ema": lambda: gradtx.ema(0.9),
    "trace_bf16": lambda: gradtx.trace(0.9, accumulator_dtype=jnp.bfloat16),
}


def _trajectory(tx, dtype, fused: bool, steps: int = 5):
    rng = np.random.default_rng(0)
    # one leaf above MIN_FUSED_SIZE (single-pass form), one below (default form)
    params = {"w": jnp.asarray(rng.standard_normal((16, 12)), dtype), "b": jnp.ones(3, dtype)}
    out = []
    with gradtx.fused_updates(fused):

        @jax.jit
        def step(p, s, g):
            u, s = tx.update(g, s, p)
            return gradtx.apply_updates(p, u), s, u

        state = tx.init(params)
        for _ in range(steps):
            grads = jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), dtype), params)
            params, state, updates = step(params, state, grads)
            out.append((params, state, updates))
    return out


@pytest.mark.parametrize("name", sorted(AFFECTED))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_equals_default(name, dtype):
    with jax.enable_x64(dtype == "float64"):
        tol = 1e-12 if dtype == "float64" else 1e-6
        a = _trajectory(AFFECTED[name](), jnp.dtype(dtype), fused=False)
        b = _trajectory(AFFECTED[name](), jnp.dtype(dtype), fused=True)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            assert x.dtype == y.dtype
            np.testing.assert_allclose(
                np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=tol, atol=tol
            )


def test_switch_precedence(monkeypatch):
    monkeypatch.delenv("GRADTX_FUSED", raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_extra_options=xla_cpu_use_multi_output_fusion")
    assert _fused.enabled()
    monkeypatch.setenv("GRADTX_FUSED", "0")
    assert not _fused.enabled()
    with gradtx.fused_updates(True):
        assert _fused.enabled()
        with gradtx.fused_updates(False):
            assert not _fused.enabled()
        assert _fused.enabled()
    monkeypatch.delenv("XLA_FLAGS")
    monkeypatch.setenv("GRADTX_FUSED", "1")
    assert _fused.enabled()


def test_switch_errors(monkeypatch):
    monkeypatch.setenv("GRADTX_FUSED", "yes")
    with pytest.raises(ValueError, match=r"GRADTX_FUSED='yes' is not understood"):
        _fused.enabled()
    with pytest.raises(TypeError, match=r"enabled=1 is not a bool"):
        with gradtx.fused_updates(1):
            pass


_HLO_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, gradtx
    cases = {
        "adam": gradtx.adam(1e-3), "adamw": gradtx.adamw(1e-3),
        "nadam": gradtx.adam(1e-3, nesterov=True), "rmsprop": gradtx.rmsprop(1e-3),
        "adagrad": gradtx.adagrad(0.1), "sgd_nesterov": gradtx.sgd(0.1, 0.9, nesterov=True),
    }
    p = {"w": jnp.ones((4099,))}
    for name, tx in cases.items():
        def step(p, s, g):
            u, s = tx.update(g, s, p)
            return gradtx.apply_updates(p, u), s
        text = jax.jit(step, donate_argnums=(0, 1)).lower(p, tx.init(p), p).compile().as_text()
        entry = text[text.index("ENTRY"):].splitlines()
        big = [l for l in entry if "fusion(" in l and "4099" in l.split("fusion(")[0]]
        print(name, len(big), sum(" copy(" in l for l in entry))
    """
)


def test_one_multi_output_fusion_with_the_flag():
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_backend_extra_options=xla_cpu_use_multi_output_fusion",
        JAX_PLATFORMS="cpu",
    )
    env.pop("GRADTX_FUSED", None)
    out = subprocess.run(
        [sys.executable, "-c", _HLO_SCRIPT],
        env=env,
        cwd=pathlib.Path(__file__).parents[1],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert len(counts) == 6
    for name, (fusions, copies) in counts.items():
        assert (fusions, copies) == ("1", "0"), f"{name}: {fusions} array kernels, {copies} copies"


def test_single_pass_form_is_traced_for_large_leaves_only():
    tx = gradtx.adam(0.1)

    def negations(params, fused):
        with gradtx.fused_updates(fused):
            jaxpr = jax.make_jaxpr(lambda g, s: tx.update(g, s))(params, tx.init(params))
        return sum(e.primitive.name == "neg" for e in jaxpr.jaxpr.eqns)

    big, small = {"w": jnp.ones(_fused.MIN_FUSED_SIZE)}, {"w": jnp.ones(3)}
    assert negations(big, True) > negations(big, False)
    assert negations(small, True) == negations(small, False)
